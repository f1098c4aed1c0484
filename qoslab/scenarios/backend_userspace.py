"""The ``userspace`` backend: real packets in lab namespaces, scheduled by qoslab's own qdisc
models — for the qdiscs, classifiers and tunnels a kernel lacks (``sch_sfq``, ``cls_flow``,
``ipip`` …).

The bed is the kernel backend's (:class:`~qoslab.scenarios.backend_kernel.KernelBed`): the
same namespaces, addresses, pings, floods and TCP uploads, always with a router between client
and server. What differs is the bottleneck:

* **the datapath** — policy routing on the router sends every packet arriving from the
  client into a TUN device (``ip rule iif <client side> lookup 100``; table 100's default
  route is the TUN); a ``qoslab datapath`` process on that device runs the setup's qdisc tree
  (shaper, qdisc, classifier: the same runtime objects the simulator drives) on the wall clock,
  emulates the link (its rate; the path's delay, both ways, as a delay line after it) and
  writes the packets back; the kernel routes them on to the server. The return path stays in
  the kernel (:mod:`qoslab.datapath`);
* **seeds** — the datapath's hash seeds and perturb timers are the schedule of
  :func:`~qoslab.qdiscs.seeds.seed_schedule` for the run's ``seed`` (the simulator's seeds), so
  the EVENTS ``hash_change`` are the real instants and META says which seed was in force;
* **changes** — applied by the datapath at their scenario time (``tc filter replace`` as the
  runtime's :meth:`set_filter`), reported as EVENTS;
* **tunnels** — the router's datapath encapsulates the client's tunnelled traffic (4in4,
  6in4 …) before its qdisc; the tunnel's remote address is routed, on the server, into a
  second TUN device whose ``qoslab datapath`` strips the outer header and hands the inner
  packet to the server's stack. The client's routes to tunnelled destinations carry the
  tunnel's MTU (1480 over IPv4), as a real tunnel device's would;
* **the decision log** — every packet the datapath saw, in ``run.decisions``;
* **captures** — ``capture=`` records the bottleneck link after the datapath (the router's
  interface toward the server: real encapsulated packets); ``input_capture=`` writes the
  datapath's own input, time-stamped on its clock (the packets as the classifier saw them).

The datapath is a router: packets carry no socket (``sk_token`` 0) whatever ``forwarded``
says. Everything is removed at the end, on SIGINT and SIGTERM; a killed run's namespaces (and
the processes in them) are removed by the next lab run (:func:`qoslab.lab.netns.remove_leftovers`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..datapath.lab import route_into
from ..datapath.plan import Plan, tree_profile
from ..datapath.process import DatapathProcess
from ..errors import ConfigError, KernelFeatureMissing
from ..lab.netns import require_lab, work_dir
from ..outputs import check_output, write_with
from ..qdiscs import parse_tree
from ..qdiscs.decisions import decisions_frame
from ..qdiscs.seeds import seed_schedule
from ..runs import Run
from ..sim.traffic import PingFlood, PingStream, flow_frame
from .backend_kernel import KernelBed
from .setup import Setup

__all__ = ["run", "UserspaceBed", "OPTIONS"]


def _address(value: Any) -> str | None:
    """An address in one spelling (IPv6 compressed), None when there is none."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return str(value)

#: Options of this backend (``Scenario.run(options=…)``, ``qoslab run --input-capture``).
OPTIONS = ("input_capture",)



def run(setup: Setup, *, scenario, values: dict[str, Any], path: Any = None,
        capture: Any = None, force: bool = False, progress: Any = None,
        input_capture: Any = None) -> Run:
    """Run ``setup`` through the userspace datapath; save the RUN to ``path`` when given
    (journalled as it runs). ``input_capture`` writes the datapath's input as a pcap."""
    require_lab()
    if not os.path.exists("/dev/net/tun"):
        raise KernelFeatureMissing("the userspace backend needs TUN devices (/dev/net/tun; "
                                   "modprobe tun)")
    if input_capture is not None:
        check_output(input_capture, force=force, what="input capture")
    bed = UserspaceBed(setup, scenario, values, path=path, capture=capture, force=force,
                       progress=progress)
    bed.input_capture = input_capture
    return bed.run()


class UserspaceBed(KernelBed):
    """One userspace-datapath run of a setup (see the module docstring)."""

    backend = "userspace"

    def __init__(self, setup: Setup, scenario, values, **kw) -> None:
        super().__init__(setup, scenario, values, **kw)
        self.router = True
        self.at = "router"
        self.input_capture = None
        self.seed = int(values.get("seed", 1))
        horizon = setup.duration + self._timeout() + 120.0  # the loads' length, and more
        self.schedule = seed_schedule(self.tree, horizon, self.seed)
        self.tunnels = {t.dst: t.tunnel for t in setup.traffic if t.tunnel is not None}
        self.router_dp = self.decap_dp = None
        self.work: Path | None = None
        self.t0 = None
        self.summary: dict | None = None
        self._decisions: pd.DataFrame | None = None

    @staticmethod
    def tree_of(setup: Setup) -> Any:
        return setup.qdisc  # the datapath emulates the link itself: no HTB around the tree

    def run(self) -> Run:
        self.work = Path(work_dir())  # a killed run's is removed by the next run's clean-up
        try:
            return super().run()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------------ the datapath
    def _plans(self, tb):
        profile = tree_profile(self.tree, tuple(self.setup.changes))
        if parse_tree(self.tree.to_tc(), profile=profile) != self.tree:
            raise ConfigError(f"scenario {self.scenario.name}: its qdisc tree does not survive "
                              "its tc text; the userspace datapath cannot run it")
        link = self.setup.link
        router = Plan(
            "router", tb.ifname("t0"), tree=self.tree.to_tc(), profile=profile,
            link={"rate": link.rate, "overhead": link.overhead, "mtu": link.mtu,
                  "txqueuelen": link.txqueuelen},
            delay=2 * link.delay,
            seeds=[f"{s:x}" for s in self.schedule.seeds],
            seed_times=list(self.schedule.times),
            seed_details=self.schedule.events["detail"].astype(str).tolist(),
            changes=Plan.changes_of(tuple(self.setup.changes), profile),
            tunnels={dst: {"local": t.local, "remote": t.remote, "tos": t.tos}
                     for dst, t in self.tunnels.items()},
            log=str(self.work / "decisions.npz"), flows=str(self.work / "flows.json"),
            input_capture=str(self.work / "input.pcap") if self.input_capture else None)
        decap = Plan("decap", tb.ifname("t1")) if self.tunnels else None
        return router, decap

    def install(self, tb) -> None:
        router_plan, decap_plan = self._plans(tb)
        if decap_plan is not None:
            decap_plan.save(self.work / "decap.json")
            self.decap_dp = DatapathProcess(tb.ns("server"), self.work / "decap.json",
                                            stderr_path=self.work / "decap.err")
            tb.on_close(self.decap_dp.kill)
        router_plan.save(self.work / "router.json")
        self.router_dp = DatapathProcess(tb.ns("router"), self.work / "router.json",
                                         on_event=lambda e: self._event(tb, e),
                                         stderr_path=self.work / "router.err")
        tb.on_close(self._stop_datapath)
        route_into(tb, router_plan.tun, decap_tun=decap_plan.tun if decap_plan else None,
                   tunnels=self.tunnels, mtu=self.setup.link.mtu)
        tb.meta["datapath"] = {
            "router": {**self.router_dp.ready, "plan": {
                k: v for k, v in vars(router_plan).items()
                if k not in ("log", "flows", "input_capture")}},
            "decap": self.decap_dp.ready if self.decap_dp else None}
        tb.event("config_change", f"router: userspace datapath on {router_plan.tun} "
                 f"({self.tree.to_tc().splitlines()[0]} …)")

    def _event(self, tb, event: dict) -> None:
        if self.t0 is not None:
            tb.event(str(event["kind"]), str(event["detail"]), t=self.t0 + float(event["t"]))

    def start_capture(self, tb) -> None:
        """``--capture``: tcpdump on the bottleneck link, after the datapath."""
        tb.capture(self.capture, at="router-out", bpf=None, snaplen=128, force=self.force)

    def at_time_zero(self, tb, t0: float, meta: dict) -> None:
        self.t0 = t0
        self.router_dp.go(int(round((tb.t0 + t0) * 1e9)))

    def wind_down(self, tb, loads: list) -> None:
        for load in loads:
            load.finish()
        self._stop_datapath()
        self._load_decisions()

    def _stop_datapath(self) -> None:
        if self.router_dp is not None and self.summary is None:
            self.summary = self.router_dp.stop() or {}
        if self.decap_dp is not None:
            self.decap_summary = self.decap_dp.stop()

    # ------------------------------------------------------------------ the RUN
    def _load_decisions(self) -> pd.DataFrame | None:
        if self._decisions is not None or self.work is None:
            return self._decisions
        log, flows = self.work / "decisions.npz", self.work / "flows.json"
        if not (log.exists() and flows.exists()) or self.t0 is None or not self.summary:
            return None
        with np.load(log, allow_pickle=False) as d:
            cols = {k: d[k] for k in d.files}
        doc = json.loads(flows.read_text())
        # the log's clock counts from the datapath's start (origin_ns): shift to scenario time
        t0 = (self.summary["t0_ns"] - self.summary["origin_ns"]) / 1e9
        cols["t_arrival"] = cols["t_arrival"] - t0
        cols["t_departure"] = cols["t_departure"] - t0
        self._decisions = decisions_frame(labels=doc["labels"], **cols)
        self._flows = doc.get("flows") or {}
        names = self.stream_names(pd.DataFrame(self._flows))
        if len(self._decisions):
            self._decisions["stream"] = pd.array(names[cols["fid"]], dtype="string")
        if self.input_capture is not None and (self.work / "input.pcap").exists():
            write_with(self.input_capture,
                       lambda tmp: shutil.copyfile(self.work / "input.pcap", tmp),
                       force=self.force, what="input capture")
        return self._decisions

    def stream_names(self, flows: pd.DataFrame) -> np.ndarray:
        """The traffic spec each flow the datapath saw belongs to, by the name the simulator
        gives it (its DECISIONS ``stream``), or None: matched by the flow's innermost
        destination and protocol, and the server port the bed gave a load
        (:meth:`load_port`) or the TOS of a ping; a flow several specs could have sent (two
        ping streams alike) or none (the bed's own packets) gets None.

        The flow labels name the packets' real headers (the bed's client address, the ping
        runner's ICMP ids, the loads' ephemeral ports), so a simulation's DECISIONS and the
        datapath's join on ``stream``; each side's ``flow`` says what it sent.
        """
        names = flow_frame(list(self.setup.traffic))["flow"].tolist()
        n = len(flows)
        out = np.full(n, None, dtype=object)
        if not n:
            return out
        tunnel = flows["tunnel"] if "tunnel" in flows else pd.Series([None] * n)
        inner = tunnel.notna().to_numpy() & ~tunnel.isin(["none", ""]).to_numpy()

        def pick(name: str) -> list:
            outer = flows[name].tolist() if name in flows else [None] * n
            inside = flows["inner_" + name].tolist() if "inner_" + name in flows else [None] * n
            return [b if k else a for a, b, k in zip(outer, inside, inner, strict=True)]

        dst, proto, dport, tos = pick("dst"), pick("proto"), pick("dport"), pick("tos")
        specs = []
        for i, spec in enumerate(self.setup.traffic):
            ping = isinstance(spec, (PingStream, PingFlood))
            specs.append((_address(spec.dst), spec.proto, None if ping else self.load_port(i, spec),
                          (spec.tos & 0xFC) if ping else None, names[i]))
        for j in range(n):
            d, p = _address(dst[j]), proto[j]
            hits = [name for sd, sp, port, stos, name in specs
                    if sd == d and sp == p
                    and (port is None or dport[j] == port)
                    and (stos is None or (tos[j] is not None and (int(tos[j]) & 0xFC) == stos))]
            if len(hits) == 1:
                out[j] = hits[0]
        return out

    def _to_scenario_time(self, run: Run, t0: float) -> Run:
        out = super()._to_scenario_time(run, t0)
        decisions = self._load_decisions()
        meta = dict(out.meta)
        used = [0.0, *self.schedule.times]
        end = float(out.events["t"].max()) if len(out.events) else 0.0
        n = int(np.searchsorted(np.asarray(used), end, side="right"))
        meta.update({
            "hash_seeds": [f"0x{s:x}" for s in self.schedule.seeds[:max(n, 1)]],
            "hash_seed_times": used[:max(n, 1)],
            "seed": self.seed,
            "datapath_summary": self.summary,
            "datapath_flows": getattr(self, "_flows", None),
            "unix_time_zero": None if not self.summary or self.summary.get("t0_ns") is None
            else (self.summary["t0_ns"] + self.summary["unix_offset_ns"]) / 1e9,
        })
        if self.summary and self.summary.get("t0_ns") is not None:
            s = self.summary  # what a replay of the input capture needs to use the same clock
            meta["datapath_clock"] = {
                "origin_unix_ns": s["origin_ns"] + s["unix_offset_ns"],
                "t0_unix_ns": s["t0_ns"] + s["unix_offset_ns"],
                "scenario_t0_s": (s["t0_ns"] - s["origin_ns"]) / 1e9}
        if decisions is None:
            return Run(out.probes, out.events, meta, out.samples)
        return Run(out.probes, out.events, meta, out.samples, decisions)

