"""``simulate(config) -> Run``: build the flows, the qdisc and the sources, run, tabulate.

RUN produced:

* PROBES: one row per ping request of every :class:`~qoslab.sim.traffic.PingStream`
  (``seq`` from 1 like iputils), with the statuses of qoslab's ping runner, which measures on
  the kernel and userspace backends: ``ok`` when the reply came back within ``ping_timeout``,
  ``lost`` when it did not (dropped, or still queued), ``late`` when it came after its timeout
  while the runner still waited for other probes (:mod:`qoslab.sim.sources`);
* EVENTS: ``run_start``, ``load_start``/``load_stop`` of every flood and bulk flow,
  ``hash_change`` at every perturbation (the schedule of :func:`qoslab.hashing.hash_changes`,
  detail ``seed=0x...``) until the run ends (drain included), ``config_change`` for every
  :class:`ConfigChange`, ``run_stop`` (at ``duration``);
* META: ``source="sim"``, the scenario name and parameters, the seed, the link, shaper, qdisc
  (as ``tc`` text) and traffic specs, the flows as the classifier saw them, ``tc -s``-like
  counters, per-flow counters and the occupancy samples (see :func:`occupancy`);
* DECISIONS (with ``SimConfig(decisions=True)``): one row per packet the qdisc tree saw
  (:mod:`qoslab.qdiscs.decisions`); ``flow`` is the flow label of the packet's headers (as
  replay and the userspace datapath write it), the extra column ``stream`` the traffic spec's
  name.

How a run ends is how the kernel backend ends it: the ping streams send during ``duration``
seconds; a load without a ``stop`` (or one stopping later) runs until the ping runner is done
(every probe answered or timed out: ``meta["pings_done"]``); the tree then drains for
:data:`DRAIN` seconds (``meta["end"]``). The qdisc's perturb timer runs all that time, as the
kernel's does while the qdisc exists, and as replay's does while its tree drains.

Deterministic: the same config (seed included) gives an identical RUN; nothing in it depends
on the wall clock.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..labels import flow_labels
from ..ping.runner import DEFAULT_TIMEOUT
from ..qdiscs import BuildContext, FlowTable, Pfifo, build
from ..qdiscs.changes import ConfigChange, apply_change, for_changes
from ..qdiscs.decisions import LoggedRoot
from ..qdiscs.seeds import seed_schedule
from ..runs import Run, jsonable
from .budget import check_budget
from .engine import Engine
from .link import Link, TokenBucket
from .sources import STATUS, PingRunner, PingSource, make_source
from .traffic import BulkFlow, PingStream, TrafficSpec, flow_frame, wire_size

__all__ = ["SimConfig", "ConfigChange", "simulate", "occupancy", "root_spec", "OCCUPANCY_KEY"]

#: ``run.meta`` key holding the occupancy samples.
OCCUPANCY_KEY = "occupancy"
#: Seconds the run continues once the ping runner is done and the loads stopped, so the
#: packets still queued leave.
DRAIN = 3.0


@dataclass(frozen=True)
class SimConfig:
    """Everything one simulation needs; META records all of it.

    Parameters
    ----------
    traffic
        Traffic specs (:mod:`qoslab.sim.traffic`).
    qdisc
        Root (or shaped leaf) qdisc spec: any spec of :mod:`qoslab.qdiscs` (a whole tree
        included).
    link, shaper
        The device and an optional token bucket (one-class HTB / TBF) in front of the qdisc.
    duration
        Seconds during which the sources send.
    seed
        Seed of every random choice (hash seeds at init and at each perturbation).
    changes
        :class:`ConfigChange` list.
    sample_interval
        Occupancy sampling period in seconds (0: off).
    forwarded
        The shaping host routes the traffic (sockets live on other hosts): no socket
        identity reaches the classifier.
    name, params
        Scenario name and its parameters, for META.
    decisions
        Record what the qdisc tree decided for every packet (the DECISIONS table,
        ``run.decisions``); off by default: it costs about a third of the run time.
    ping_timeout
        Seconds the ping runner waits for each probe's answer (then ``lost``; an answer
        after that, while it waits for others, makes it ``late``): by default the ping
        runner's own :data:`qoslab.ping.DEFAULT_TIMEOUT`; a scenario gives the one every
        backend uses (:attr:`qoslab.scenarios.Setup.ping_timeout`).
    """

    traffic: tuple[TrafficSpec, ...]
    qdisc: Any = field(default_factory=lambda: Pfifo(limit=1000))
    link: Link = field(default_factory=Link)
    shaper: TokenBucket | None = None
    duration: float = 60.0
    seed: int = 1
    changes: tuple[ConfigChange, ...] = ()
    sample_interval: float = 0.1
    forwarded: bool = False
    name: str = "custom"
    params: dict = field(default_factory=dict)
    decisions: bool = False
    ping_timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ConfigError(f"sim: duration must be > 0 seconds, got {self.duration}")
        if not self.traffic:
            raise ConfigError("sim: traffic is empty; give at least one source")
        if self.sample_interval < 0:
            raise ConfigError("sim: sample_interval must be >= 0")
        if not (math.isfinite(self.ping_timeout) and self.ping_timeout > 0):
            raise ConfigError(f"sim: ping_timeout must be a finite number of seconds > 0, "
                              f"got {self.ping_timeout}")


def root_spec(config: SimConfig) -> Any:
    """The whole qdisc tree the simulation runs: the shaper's tree around the qdisc, or the
    qdisc alone."""
    return config.shaper.wrap(config.qdisc) if config.shaper is not None else config.qdisc


def simulate(config: SimConfig) -> Run:
    """Run one simulation and return its RUN.

    Parameters
    ----------
    config
        The experiment (:class:`SimConfig`).

    Returns
    -------
    qoslab.Run
        PROBES, EVENTS, META; occupancy samples in ``run.meta["occupancy"]``.

    Examples
    --------
    >>> from qoslab.sim.traffic import PingStream, UdpFlood
    >>> cfg = SimConfig(traffic=(PingStream("10.0.0.2"), UdpFlood("10.0.0.3", rate=2e6)),
    ...                 qdisc=Pfifo(limit=20), link=Link(rate=1e6, delay=0.01), duration=5)
    >>> run = simulate(cfg)
    >>> float(run.probes["rtt_ms"].median()) > 200   # 20 MTU packets queued ahead at 1 Mbit/s
    True
    """
    check_budget(config)  # before anything is built: a few characters can ask for billions
    traffic = list(config.traffic)
    flows = flow_frame(traffic, forwarded=config.forwarded)
    mtu_bytes = config.link.mtu + 14
    # the qdisc lives until the run ends: its perturb timer runs through the pings' wait and
    # the drain (as the kernel's, and as replay's); the run ends no later than this
    latest = config.duration + config.ping_timeout + DRAIN
    schedule = seed_schedule(root_spec(config), latest, config.seed)
    hash_events, seeds, change_times = schedule.events, schedule.seeds, schedule.times
    ctx = BuildContext(FlowTable(flows), mtu_bytes=mtu_bytes, seeds=seeds,
                       txqueuelen=config.link.txqueuelen)
    root = build(root_spec(config), ctx)
    leaf = root.children()[0] if config.shaper is not None else root
    root = for_changes(root, config.changes)  # a change may replace the root qdisc itself
    if config.decisions:
        root = LoggedRoot(root)
    engine = Engine(root, link_rate=config.link.rate, overhead=config.link.overhead,
                    duration=latest, sample_interval=config.sample_interval,
                    n_flows=len(traffic))
    enqueue = engine.enqueue  # an idle link takes an arriving packet at once
    sources = []
    loads = []

    def pings_done(t: float) -> None:
        """The ping runner is done: the loads still running stop (the kernel backend stops
        them then), the tree drains for DRAIN seconds."""
        for src in loads:
            src.t_stop = min(src.t_stop, t)
        engine.call_at(t, lambda now: setattr(engine, "duration", now + DRAIN))

    runner = PingRunner(config.ping_timeout, pings_done)
    runner.start()  # the run's sending time: the runner is never done before its end
    engine.call_at(config.duration, runner.stop_sending)
    for fid, spec in enumerate(traffic):
        if spec.stop is not None and spec.stop <= spec.start:
            raise ConfigError(f"traffic[{fid}] ({spec.name}): stop must be after start")
        ping = isinstance(spec, PingStream)
        if ping:  # a ping stream sends during the run's duration
            stop = config.duration if spec.stop is None else min(spec.stop, config.duration)
        else:  # a load sends until its stop time, or until the pings are done
            stop = spec.stop
        spec_run = dataclasses.replace(spec, stop=stop)
        size = wire_size(spec)
        reply = 54 + 12 if isinstance(spec, BulkFlow) else size
        src = make_source(spec_run, fid, size, config.link.base_rtt(reply), engine, enqueue,
                          runner=runner)
        sources.append(src)
        if spec.start < config.duration:
            src.start()
            if not ping:
                loads.append(src)
    for i, t in enumerate(change_times, start=1):
        engine.call_at(t, lambda now, i=i: root.on_hash_change(i, now))
    change_rows = []
    for change in sorted(config.changes, key=lambda c: c.t):
        engine.call_at(change.t, lambda now, c=change: apply_change(root, c, ctx, now))
        change_rows.append((float(change.t), "config_change", change.detail))
    engine.run()
    end = engine.duration
    done = runner.done_at if runner.done_at is not None else end
    load_events = []
    for src in loads:
        name = flows["flow"].iloc[src.fid]
        load_events.append((src.t_start, "load_start", name))
        load_events.append((min(src.t_stop, done), "load_stop", name))
    used = int(np.searchsorted(np.asarray(change_times, dtype=float), end, side="right"))
    hash_events = hash_events.iloc[:used]
    timing = {"ping_timeout": config.ping_timeout, "pings_done": float(done), "end": end}
    return _tabulate(config, traffic, flows, sources, engine, root, leaf, hash_events,
                     load_events, change_rows, seeds[:used + 1], timing)


def _tabulate(config, traffic, flows, sources, engine, root, leaf, hash_events, load_events,
              change_rows, seeds, timing) -> Run:
    cols: dict[str, list] = {k: [] for k in
                             ("stream", "host", "tos", "size", "seq", "t_sent", "rtt_ms",
                              "status", "ttl")}
    labels = flows["flow"].tolist()
    for src in sources:
        if not isinstance(src, PingSource):
            continue
        spec = src.spec
        n = len(src.t_sent)
        rtt = np.asarray(src.rtt_ms, dtype=float)
        state = np.asarray(src.state, dtype=np.int64)
        ok = ~np.isnan(rtt)
        cols["stream"] += [labels[src.fid]] * n
        cols["host"] += [spec.dst] * n
        cols["tos"] += [spec.tos] * n
        cols["size"] += [spec.size] * n
        cols["seq"] += list(range(1, n + 1))
        cols["t_sent"] += src.t_sent
        cols["rtt_ms"] += rtt.tolist()
        cols["status"] += [STATUS[k] for k in state.tolist()]
        cols["ttl"] += [64 if o else None for o in ok]
    probes = pd.DataFrame(cols)
    rows = [(0.0, "run_start", f"sim {config.name} seed={config.seed}")]
    rows += load_events + change_rows
    rows += list(hash_events[["t", "kind", "detail"]].itertuples(index=False, name=None))
    rows.append((float(config.duration), "run_stop", f"sim {config.name}"))
    order = {"run_start": -1, "run_stop": 2}
    rows.sort(key=lambda r: (r[0], order.get(r[1], 0)))
    events = pd.DataFrame(rows, columns=["t", "kind", "detail"])
    samples = engine.samples
    occ = {
        "t": [s[0] for s in samples],
        "flow": [labels[s[1]] for s in samples],
        "bucket": [s[2] for s in samples],
        "packets": [s[3] for s in samples],
        "bytes": [s[4] for s in samples],
    }
    meta = {
        "source": "sim",
        "scenario": config.name,
        "params": dict(config.params),
        "seed": config.seed,
        "duration": config.duration,
        "forwarded": config.forwarded,
        "interval": next((s.interval for s in traffic if isinstance(s, PingStream)), None),
        "targets": sorted({s.dst for s in traffic if isinstance(s, PingStream)}),
        "link": dataclasses.asdict(config.link),
        "shaper": None if config.shaper is None else root_spec(config).to_tc().splitlines()[0],
        "qdisc": config.qdisc.to_tc(),
        "tc": root_spec(config).to_tc(),
        "profile": getattr(config.qdisc, "profile", None),
        "hash_seeds": [f"0x{s:x}" for s in seeds],
        "hash_seed_times": [0.0, *[float(t) for t in hash_events["t"]]],
        "traffic": [dict(kind=type(s).__name__, **jsonable(dataclasses.asdict(s)))
                    for s in traffic],
        "flows": jsonable(flows.astype(object).where(flows.notna(), None).to_dict("list")),
        "qdisc_stats": leaf.stats(),
        "flow_stats": [dict(flow=labels[src.fid], sent=src.sent, delivered=src.delivered,
                            dropped=src.dropped, reordered=engine.reordered[src.fid])
                       for src in sources],
        "engine": {"events": engine.events_processed, "packets": engine.packets_sent,
                   "bytes": engine.bytes_sent},
        "sample_interval": config.sample_interval,
        **timing,
        OCCUPANCY_KEY: occ,
    }
    decisions = _decisions(root.log, flows) if isinstance(root, LoggedRoot) else None
    return Run(probes, events, meta, decisions=decisions) if decisions is not None \
        else Run(probes, events, meta)


def _decisions(log, flows: pd.DataFrame) -> pd.DataFrame:
    """The DECISIONS table of the run: ``flow`` names each flow by its headers (the one
    flow label of :func:`qoslab.labels.flow_labels`, as replay and the userspace datapath name
    the flows they see), so the three join on ``flow``; the extra column ``stream`` keeps the
    traffic spec's own name (text: a ping's PROBES ``stream``, a load's name in EVENTS)."""
    frame = log.frame(flow_labels(flows).tolist())
    names = np.asarray(flows["flow"].astype(str).tolist(), dtype=object)
    frame["stream"] = pd.array(names[frame["flow"].cat.codes.to_numpy()], dtype="string")
    return frame


def occupancy(run: Run) -> pd.DataFrame:
    """The occupancy samples of a simulated RUN as an OCCUPANCY frame.

    Columns ``t`` (sample time), ``flow`` (flow label), ``bucket`` (queue index: SFQ bucket,
    fq_codel flow index, pfifo_fast / prio band, HTB class number), ``packets`` and
    ``bytes`` that flow had queued there. One row per (sample, flow, queue) with packets > 0;
    :func:`qoslab.plots.occupancy` draws it.

    Raises
    ------
    ConfigError
        When the RUN has no occupancy samples (not from the simulator, or sampling off).
    """
    occ = run.meta.get(OCCUPANCY_KEY)
    if not isinstance(occ, dict) or "t" not in occ:
        raise ConfigError("run.meta has no 'occupancy' samples (not a simulator RUN, or "
                          "sample_interval=0)")
    frame = pd.DataFrame({k: occ[k] for k in ("t", "flow", "bucket", "packets", "bytes")})
    return frame.astype({"t": "float64", "flow": "string", "bucket": "int64",
                         "packets": "int64", "bytes": "int64"})
