"""The ``kernel`` backend: a scenario's :class:`~qoslab.scenarios.setup.Setup` on the running
kernel, in throw-away network namespaces (:class:`qoslab.lab.Testbed`; needs root).

How the setup maps onto the bed:

* **topology** — client and server, with a router between them when the setup is
  ``forwarded``; the qdisc tree goes on the client's uplink, or the router's interface toward
  the server (:func:`bottleneck_tree`: a tree without a shaper at or below the link's rate gets
  an HTB class at that rate around it, so the queue forms in the tree as it does on the
  simulated link);
* **addresses** — every destination address of the scenario is given to the server
  (``/32`` or ``/128`` on its loopback) and routed there, so PROBES show the scenario's own
  addresses;
* **traffic** — ping streams through qoslab's ping runner (one process, the streams staggered
  as separately started pings), ping floods through iputils ``ping -f``, UDP floods and TCP
  uploads through the lab's load generators (:mod:`qoslab.lab.loads`); IP-in-IP needs the
  kernel's ``ipip``/``sit``;
* **link delay** — ``netem`` on the server's reply path (the kernel must have it);
* **changes** — ``tc filter replace`` / ``tc qdisc replace`` at their time;
* **hash changes** — the kernel's seeds are random and its perturb timer starts when the qdisc
  is created: EVENTS ``hash_change`` mark the expected instants (``expected: kernel timer``).

Times in the RUN are scenario time: seconds from the moment the traffic starts.
A setup needing something the kernel lacks raises
:class:`~qoslab.errors.KernelFeatureMissing` before anything is built, naming the module and
the backends that can run it instead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import time
from typing import Any

from ..errors import ConfigError, KernelFeatureMissing
from ..lab.experiment import Experiment
from ..lab.loads import start_ping_flood, start_tcp_bulk, start_udp_flood
from ..lab.netns import require_lab
from ..lab.pings import PingTarget
from ..lab.probe import require_features
from ..lab.tc import tree_facts
from ..qdiscs import Htb, HtbClass, Tbf, walk
from ..qdiscs.htb import child_handle
from ..qdiscs.seeds import perturbation_plan
from ..runs import Run
from ..sim.traffic import BulkFlow, PingFlood, PingStream, UdpFlood, ip_header
from .setup import Setup

__all__ = ["run", "bottleneck_tree", "needed_features", "KernelBed"]


def bottleneck_tree(setup: Setup) -> Any:
    """The tree to install: the setup's, under an HTB at the link rate unless it already
    shapes at or below it."""
    rate = setup.link.rate
    shapers = [s for s in walk(setup.qdisc) if isinstance(s, (Htb, Tbf))]
    if rate >= 1e9 or any(_shaper_rate(s) <= rate for s in shapers):
        return setup.qdisc
    return Htb(classes=(HtbClass("1:10", rate, leaf=setup.qdisc, name="link"),), default=0x10)


def _shaper_rate(spec: Any) -> float:
    if isinstance(spec, Tbf):
        return spec.rate
    return max((c.effective_ceil for c in spec.classes), default=math.inf)


def needed_features(setup: Setup) -> dict[str, set[str]]:
    """The qdisc, filter and link kinds the kernel must have for ``setup``."""
    qdiscs, filters, _, _ = tree_facts(bottleneck_tree(setup))
    links = set()
    for spec in setup.traffic:
        if spec.tunnel is not None:
            inner6, outer6 = ":" in spec.dst, ":" in spec.tunnel.remote
            links.add({(False, False): "ipip", (True, False): "sit",
                       (False, True): "ip6tnl", (True, True): "ip6tnl"}[(inner6, outer6)])
    if setup.link.delay > 0:
        qdiscs.add("netem")
    return {"qdiscs": qdiscs, "filters": filters, "links": links}


def _require(setup: Setup, scenario) -> None:
    try:
        require_features(**needed_features(setup), what=f"scenario {scenario.name}")
    except KernelFeatureMissing as exc:
        others = [b for b in scenario.backends if b != "kernel"]
        hint = (f" — run it with --backend {' or --backend '.join(others)}" if others else "")
        raise KernelFeatureMissing(f"{exc}{hint}") from None


def run(setup: Setup, *, scenario, values: dict[str, Any], path: Any = None,
        capture: Any = None, force: bool = False, progress: Any = None) -> Run:
    """Run ``setup`` on the kernel; save the RUN to ``path`` when given (journalled as it
    runs)."""
    require_lab()
    _require(setup, scenario)
    return KernelBed(setup, scenario, values, path=path, capture=capture, force=force,
                     progress=progress).run()


class KernelBed:
    """One run of a setup on a lab testbed (see the module docstring).

    The steps of :meth:`run` that are the kernel's own — installing the tree
    (:meth:`install`), what happens at scenario time 0 (:meth:`at_time_zero`) and after the
    pings (:meth:`wind_down`) — are methods a backend that runs the same traffic on the same
    bed differently overrides (:mod:`~qoslab.scenarios.backend_userspace`).
    """

    backend = "kernel"

    def __init__(self, setup: Setup, scenario, values, *, path, capture, force, progress):
        self.setup, self.scenario, self.values = setup, scenario, values
        self.path, self.capture, self.force, self.progress = path, capture, force, progress
        self.router = bool(setup.forwarded)
        self.tree = self.tree_of(setup)
        self.at = "router" if self.router else "client"
        self.family6 = any(":" in t.dst for t in setup.traffic)
        self.pings = [t for t in setup.traffic if isinstance(t, PingStream)]
        if not self.pings:
            raise ConfigError(f"scenario {scenario.name}: the {self.backend} backend "
                              "measures with pings; the setup has none")
        intervals = {t.interval for t in self.pings}
        if len(intervals) > 1:
            raise ConfigError(f"scenario {scenario.name}: ping streams with different "
                              f"intervals {sorted(intervals)}: one ping runner runs them all")
        self.interval = intervals.pop()
        self.start = min(t.start for t in self.pings)
        self.count = max(1, int(round((setup.duration - self.start) / self.interval)))
        # loads: scenario time 0 on the bed's clock once known, and what waits for it
        self._t0: float | None = None
        self._later: list = []  # (start, begin) of loads starting after t = 0
        self._stops: list = []  # (stop, finish) of started loads with a stop time

    @staticmethod
    def tree_of(setup: Setup) -> Any:
        """The qdisc tree this backend installs."""
        return bottleneck_tree(setup)

    def run(self) -> Run:
        meta = self.scenario.meta(self.values, self.backend, self.setup)
        meta["tc"] = self.tree.to_tc()
        exp = Experiment(self.path, meta, capture=self.capture, force=self.force,
                         router=self.router, ipv6=True,
                         txqueuelen=self.setup.link.txqueuelen)
        with exp as (tb, ping_file):
            self._addresses(tb)
            self.install(tb)
            if self.capture:
                self.start_capture(tb)
            t_load = tb.now()  # the loads start
            loads = self._start_loads(tb)
            self._sleep_until(tb, t_load + self.start)
            proc = tb.start_ping(self._targets(), interval=self.interval, count=self.count,
                                 path=ping_file, timeout=self._timeout())
            # scenario time 0 is set so that the first ping goes out at its declared time (a
            # ping runner takes a moment to start); changes and snapshots follow that clock
            t0 = proc.wait_started() - tb.t0 - self.start
            exp.transform = lambda r: self._to_scenario_time(r, t0)
            if exp.journal is not None:  # probes reach the -w journal as they are measured
                exp.journal.update_meta(scenario_t0_on_bed_clock=round(t0, 6))
                proc.follow(exp.journal, self._reshaper(tb, t0))
            self._schedule_loads(tb, t0)  # later starts and stops, on the scenario's clock
            self.at_time_zero(tb, t0, meta)
            pings = proc.result(t0_unix=tb.t0_unix)
            self.wind_down(tb, loads)
        return exp.finish(pings)

    # ------------------------------------------------------------------ the kernel's steps
    def install(self, tb) -> None:
        """Put the tree on the bottleneck (and the path's delay on the reply path)."""
        tb.apply(self.tree, self.at)
        self._t_tree = tb.now()
        tb.snapshot("before", self.at)
        tb.sample(self.at)
        if self.setup.link.delay > 0:
            tb.tc("server", "qdisc", "replace", "dev", "DEV", "root", "netem", "delay",
                  f"{2 * self.setup.link.delay * 1000:g}ms",
                  detail=f"server: netem delay {2 * self.setup.link.delay:g} s (both "
                  "ways' propagation on the reply path)")

    def start_capture(self, tb) -> None:
        """``--capture``: tcpdump where the client's packets enter the bottleneck."""
        tb.capture(self.capture, bpf=None, snaplen=128, force=self.force)

    def at_time_zero(self, tb, t0: float, meta: dict) -> None:
        """Scenario time 0 is ``t0`` on the bed's clock: schedule the changes and the phase
        snapshots."""
        self._schedule_changes(tb, t0)
        self._schedule_snapshots(tb, t0, meta["phases"])

    def wind_down(self, tb, loads: list) -> None:
        """The pings are done: last statistics, loads stopped, the kernel's expected hash
        changes as EVENTS."""
        tb.snapshot("after", self.at)
        for load in loads:
            load.finish()
        plan = perturbation_plan(self.tree)
        if plan.period > 0:
            k = 1
            while self._t_tree + k * plan.period < tb.now():
                tb.event("hash_change", f"expected: kernel timer ({plan.what}, "
                         f"every {plan.period:g} s from the qdisc's creation)",
                         t=self._t_tree + k * plan.period)
                k += 1

    # ------------------------------------------------------------------ the bed
    def _addresses(self, tb) -> None:
        """Give every destination to the server and route it there."""
        server = tb.ns("server")
        dests = sorted({t.dst for t in self.setup.traffic}, key=str)
        for d in dests:
            addr = ipaddress.ip_address(d)
            plen, fam = (128, "-6") if addr.version == 6 else (32, "-4")
            server.ip(fam, "addr", "add", f"{d}/{plen}", "dev", "lo", log=tb.commands)
            hops = [("client", "router" if tb.router else "server")]
            if tb.router:
                hops.append(("router", "server"))
            for src, via in hops:
                tb.ns(src).ip(fam, "route", "add", f"{d}/{plen}", "via",
                              self._next_hop(tb, src, via, addr.version), log=tb.commands)

    @staticmethod
    def _next_hop(tb, src: str, via: str, version: int) -> str:
        for link in tb.links:
            roles = {link.left_role: link, link.right_role: link}
            if src in roles and via in roles:
                side = "left" if link.left_role == via else "right"
                return getattr(link, f"{side}_v{version}")
        raise AssertionError((src, via))

    def _start_loads(self, tb) -> list:
        """Start the loads declared from t = 0 now (they must be running before the first ping
        goes out; scenario time 0 is only known once the ping runner started); the others, and
        every load's ``stop``, are scheduled on the scenario's clock by :meth:`_schedule_loads`.
        """
        client, server = tb.ns("client"), tb.ns("server")
        started: list = []
        for i, spec in enumerate(self.setup.traffic):
            if isinstance(spec, PingStream):
                continue
            # generous: a load is stopped explicitly once the pings are done (a loaded
            # machine can take seconds to start the ping runner)
            length = self.setup.duration + self._timeout() + 60

            def begin(spec=spec, i=i, length=length):
                if isinstance(spec, UdpFlood):
                    load = start_udp_flood(client, server, spec.dst, rate=spec.rate,
                                           size=spec.size + 8 + ip_header(spec.dst),
                                           tos=spec.tos, duration=length,
                                           port=self.load_port(i, spec),
                                           prefill=spec.prefill, jitter=spec.jitter)
                elif isinstance(spec, BulkFlow):
                    if spec.ecn:
                        client.sysctl("net.ipv4.tcp_ecn", 1)
                    load = start_tcp_bulk(client, server, spec.dst, tos=spec.tos,
                                          duration=length, port=self.load_port(i, spec),
                                          backend="builtin")
                elif isinstance(spec, PingFlood):
                    load = start_ping_flood(client, spec.dst, size=spec.size, tos=spec.tos,
                                            duration=length)
                else:  # pragma: no cover - every traffic kind is handled above
                    raise ConfigError(f"kernel backend: no load for {type(spec).__name__}")
                started.append(tb.track_load(load, spec.name))
                if spec.stop is not None:  # as the simulator: the load ends at its stop time
                    if self._t0 is None:
                        self._stops.append((spec.stop, load.finish))
                    else:
                        tb.at_time(self._t0 + spec.stop, load.finish)
            if spec.start <= 0:
                begin()
            else:
                self._later.append((spec.start, begin))
        return started

    @staticmethod
    def load_port(i: int, spec: Any) -> int | None:
        """The server port the load ``traffic[i]`` sends to on the bed (UDP floods from 9000,
        TCP uploads from 20000, one per load; None for ping floods)."""
        if isinstance(spec, UdpFlood):
            return 9000 + i
        if isinstance(spec, BulkFlow):
            return 20000 + i
        return None

    def _schedule_loads(self, tb, t0: float) -> None:
        self._t0 = t0
        for start, begin in self._later:
            tb.at_time(t0 + start, begin)
        for stop, finish in self._stops:
            tb.at_time(t0 + stop, finish)

    def _schedule_changes(self, tb, t0: float) -> None:
        for k, change in enumerate(self.setup.changes, start=1):
            def act(change=change, k=k):
                if change.tc is not None:  # the user's own tc line, verbatim
                    tb.tc(self.at, *change.tc, detail=change.detail)
                    return
                if change.classifier is not None:
                    tb.tc(self.at, "filter", "replace", "dev", "DEV", "parent", "1:",
                          "protocol", "all", "prio", "1", "handle", "1",
                          *change.classifier.to_tc().split(), detail=change.detail)
                if change.qdisc is not None:
                    # a new handle: the kernel then builds a new qdisc and destroys the old one
                    # with its queue (the same handle would only change the old one's options)
                    parent = change.parent or "root"
                    base = int(("1:" if parent == "root" else child_handle(parent))[:-1], 16)
                    handle = f"{base + 0x10 * k:x}:"
                    for argv in change.qdisc.commands("DEV", parent, handle):
                        if argv[0] == "qdisc":  # the first line replaces, the rest add
                            argv = ["qdisc", "replace", *argv[2:]]
                        tb.tc(self.at, *argv, detail=change.detail)
            tb.at_time(t0 + change.t, act, change.detail)

    def _schedule_snapshots(self, tb, t0: float, phases: list[dict]) -> None:
        """``tc -s`` in the middle of the pings, and at the end of each phase (just before a
        change ends it): the leaf qdisc's counters go into that phase's META."""
        at = self.at
        mid = t0 + (self.start + self.setup.duration) / 2
        tb.at_time(mid, lambda: tb.snapshot("during", at))
        for ph in phases:
            def take(ph=ph):
                snap = tb.snapshot(f"end of {ph['name']}", at)
                qdiscs = snap.get("qdiscs") or []
                ph["tc"] = qdiscs[-1] if qdiscs else {}
            tb.at_time(t0 + ph["t_end"] - 0.1, take)

    @staticmethod
    def _sleep_until(tb, t: float) -> None:
        wait = t - tb.now()
        if wait > 0:
            time.sleep(wait)

    def _reshaper(self, tb, t0: float):
        """A probe row of the runner's journal, on scenario time with the scenario's label."""
        labels = {f"s{i}": t.name for i, t in enumerate(self.pings)}

        def reshape(row: dict, runner_meta: dict) -> dict:
            row = dict(row)
            start = runner_meta.get("start_time")
            offset = (dt.datetime.fromisoformat(str(start)).timestamp() - tb.t0_unix
                      if start else 0.0)
            if isinstance(row.get("t_sent"), (int, float)):
                row["t_sent"] = row["t_sent"] + offset - t0
            sid = str(row.get("stream", "")).split(":", 1)[0]
            row["stream"] = labels.get(sid, row.get("stream"))
            return row

        return reshape

    def _targets(self):
        return [PingTarget(f"s{i}", t.dst, t.tos, t.size) for i, t in enumerate(self.pings)]

    def _timeout(self) -> float:
        return self.setup.ping_timeout  # the simulator's pings wait as long

    # ------------------------------------------------------------------ the RUN
    def _to_scenario_time(self, run: Run, t0: float) -> Run:
        probes = run.probes.copy()
        probes["t_sent"] = probes["t_sent"] - t0
        labels = {f"s{i}": t.name for i, t in enumerate(self.pings)}
        ids = probes["stream"].astype(str).str.split(":", n=1).str[0]
        probes["stream"] = ids.map(labels).fillna(probes["stream"].astype(str))
        events = run.events.copy()
        events["t"] = events["t"] - t0
        meta = dict(run.meta)
        meta["scenario_t0_on_bed_clock"] = round(t0, 6)
        return Run(probes, events.sort_values("t", kind="stable").reset_index(drop=True), meta)
