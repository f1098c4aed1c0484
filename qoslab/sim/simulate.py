"""``simulate(config) -> Run``: build the flows, the qdisc and the sources, run, tabulate.

RUN produced:

* PROBES: one row per ping request of every :class:`~qoslab.sim.traffic.PingStream`
  (``seq`` from 1 like iputils; lost when a qdisc dropped it or its reply did not come back
  before the run drained);
* EVENTS: ``run_start``, ``load_start``/``load_stop`` of every flood and bulk flow,
  ``hash_change`` at every perturbation (the schedule of :func:`qoslab.hashing.hash_changes`,
  detail ``seed=0x...``), ``config_change`` for every :class:`ConfigChange`, ``run_stop``;
* META: ``source="sim"``, the scenario name and parameters, the seed, the link, shaper, qdisc
  (as ``tc`` text) and traffic specs, the flows as the classifier saw them, ``tc -s``-like
  counters, per-flow counters and the occupancy samples (see :func:`occupancy`).

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
from ..runs import Run
from ._qdisc import BuildContext
from .engine import Engine
from .fifo import Pfifo
from .shaper import Link, ShapedRoot, TokenBucket
from .sources import PingSource, make_source
from .traffic import BulkFlow, PingStream, TrafficSpec, flow_frame, wire_size

__all__ = ["SimConfig", "ConfigChange", "simulate", "occupancy", "OCCUPANCY_KEY"]

#: ``run.meta`` key holding the occupancy samples.
OCCUPANCY_KEY = "occupancy"
#: Seconds the run continues after the sources stop, so the last replies come back.
DRAIN = 3.0


@dataclass(frozen=True)
class ConfigChange:
    """A change made while the experiment runs (``tc filter replace`` …).

    Parameters
    ----------
    t
        Seconds from the start.
    detail
        What changed, for the EVENTS row (e.g. the new ``tc`` line).
    classifier
        A new external classifier for an SFQ root or leaf (``FlowClassifier``).
    """

    t: float
    detail: str
    classifier: Any = None


@dataclass(frozen=True)
class SimConfig:
    """Everything one simulation needs; META records all of it.

    Parameters
    ----------
    traffic
        Traffic specs (:mod:`qoslab.sim.traffic`).
    qdisc
        Root (or shaped leaf) qdisc spec: :class:`~qoslab.sim.fifo.Pfifo`,
        :class:`~qoslab.sim.fifo.PfifoFast`, :class:`~qoslab.sim.sfq.SfqQdisc`,
        :class:`~qoslab.sim.fq_codel.FqCodel`, :class:`~qoslab.sim.classful.HtbTree`,
        :class:`~qoslab.sim.classful.Prio`.
    link, shaper
        The device and an optional token bucket (HTB class / TBF) in front of the qdisc.
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
    """

    traffic: tuple[TrafficSpec, ...]
    qdisc: Any = field(default_factory=Pfifo)
    link: Link = field(default_factory=Link)
    shaper: TokenBucket | None = None
    duration: float = 60.0
    seed: int = 1
    changes: tuple[ConfigChange, ...] = ()
    sample_interval: float = 0.1
    forwarded: bool = False
    name: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ConfigError(f"sim: duration must be > 0 seconds, got {self.duration}")
        if not self.traffic:
            raise ConfigError("sim: traffic is empty; give at least one source")
        if self.sample_interval < 0:
            raise ConfigError("sim: sample_interval must be >= 0")


def _perturb_source(qdisc) -> tuple[float, str, int]:
    """Which timer changes the hash seed: the classifier's or the SFQ's.

    Returns ``(period seconds, what, seed bits)``: 128-bit SipHash keys for the SFQ of
    5.4+ profiles, 32 bits otherwise (cls_flow's ``hashrnd`` is always a u32).
    """
    from ..hashing import get_profile
    from .fq_codel import FqCodel
    from .sfq import SfqQdisc

    found = []

    def visit(spec) -> None:
        if isinstance(spec, SfqQdisc):
            cls = spec.classifier
            if cls is not None:
                found.append((float(getattr(cls, "perturb", 0) or 0), "cls_flow perturb", 32))
            else:
                bits = 128 if get_profile(spec.profile).flow_hash == "siphash" else 32
                found.append((float(spec.perturb or 0), "sfq perturb", bits))
        if isinstance(spec, FqCodel):
            bits = 128 if get_profile(spec.profile).flow_hash == "siphash" else 32
            found.append((0.0, "fq_codel", bits))
        for child in getattr(spec, "children", ()) or ():
            visit(child)
        for cls in getattr(spec, "classes", ()) or ():
            visit(cls.qdisc)

    visit(qdisc)
    periods = {p for p, _, _ in found if p > 0}
    if len(periods) > 1:
        raise ConfigError(f"sim: several perturb periods {sorted(periods)}; use one")
    # The seed list serves the perturbing qdisc; an fq_codel elsewhere only reads seed 0.
    for p, what, bits in found:
        if p > 0:
            return p, what, bits
    return 0.0, found[0][1] if found else "", found[0][2] if found else 32


def _uses_classic_quirk(qdisc) -> bool:
    from .sfq import SfqQdisc, scheduler_of

    return isinstance(qdisc, SfqQdisc) and scheduler_of(qdisc.profile) == "classic"


def _seed_schedule(config: SimConfig) -> tuple[pd.DataFrame, list[int], list[float]]:
    """Hash-change EVENTS, the seed list (index 0 at t=0) and the change times."""
    period, what, bits = _perturb_source(config.qdisc)
    rng = np.random.default_rng([config.seed, 0x5EED])
    initial = int.from_bytes(rng.bytes(bits // 8), "little")
    if period > 0:
        from ..hashing import hash_changes, seeds_from_events

        events = hash_changes(0.0, config.duration, period, bits=bits,
                              rng_seed=int(rng.integers(0, 2**63)))
        at, seeds = seeds_from_events(events, initial=initial)
        if len(events):
            events = events.assign(detail=events["detail"].astype(str) + f" ({what})")
        return events, [int(s) for s in seeds], [float(x) for x in at]
    # No perturbation: classic SFQ configured with options keeps perturbation 0 (init quirk).
    if _uses_classic_quirk(config.qdisc):
        initial = 0
    return pd.DataFrame({"t": [], "kind": [], "detail": []}), [initial], []


def _build_root(config: SimConfig, ctx: BuildContext):
    leaf = config.qdisc.build(ctx)
    if config.shaper is None:
        return leaf, leaf
    return ShapedRoot(config.shaper, leaf, ctx.mtu_bytes), leaf


def _apply_change(leaf, change: ConfigChange, seeds: list[int]) -> None:
    if change.classifier is None:
        return
    targets = [leaf]
    targets += list(getattr(leaf, "leaves", []) or []) + list(getattr(leaf, "children", []) or [])
    applied = False
    for q in targets:
        if hasattr(q, "set_classifier"):
            q.set_classifier(change.classifier, seeds)
            applied = True
    if not applied:
        raise ConfigError(f"config change at t={change.t}: no SFQ to attach a classifier to")


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
    traffic = list(config.traffic)
    flows = flow_frame(traffic, forwarded=config.forwarded)
    ect = [(int(t) & 3) != 0 for t in flows["tos"].astype("int64")]
    mtu_bytes = config.link.mtu + 14
    hash_events, seeds, change_times = _seed_schedule(config)
    ctx = BuildContext(flows=flows, ect=ect, mtu_bytes=mtu_bytes, seeds=seeds)
    root, leaf = _build_root(config, ctx)
    end = config.duration + DRAIN
    engine = Engine(root, link_rate=config.link.rate, overhead=config.link.overhead,
                    duration=end, sample_interval=config.sample_interval,
                    n_flows=len(traffic))
    enqueue = root.enqueue
    sources = []
    load_events = []
    for fid, spec in enumerate(traffic):
        if spec.stop is not None and spec.stop <= spec.start:
            raise ConfigError(f"traffic[{fid}] ({spec.name}): stop must be after start")
        stop = config.duration if spec.stop is None else min(spec.stop, config.duration)
        spec_run = dataclasses.replace(spec, stop=stop)
        size = wire_size(spec)
        reply = 54 + 12 if isinstance(spec, BulkFlow) else size
        src = make_source(spec_run, fid, size, config.link.base_rtt(reply), engine, enqueue)
        sources.append(src)
        if spec.start < config.duration:
            src.start()
            if not isinstance(spec, PingStream):
                name = flows["flow"].iloc[fid]
                load_events.append((float(spec.start), "load_start", name))
                load_events.append((float(stop), "load_stop", name))
    for i, t in enumerate(change_times, start=1):
        engine.call_at(t, lambda now, i=i: root.on_hash_change(i, now))
    change_rows = []
    for change in sorted(config.changes, key=lambda c: c.t):
        engine.call_at(change.t, lambda now, c=change: _apply_change(leaf, c, seeds))
        change_rows.append((float(change.t), "config_change", change.detail))
    engine.run()
    return _tabulate(config, traffic, flows, sources, engine, root, leaf, hash_events,
                     load_events, change_rows, seeds)


def _tabulate(config, traffic, flows, sources, engine, root, leaf, hash_events, load_events,
              change_rows, seeds) -> Run:
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
        ok = ~np.isnan(rtt)
        cols["stream"] += [labels[src.fid]] * n
        cols["host"] += [spec.dst] * n
        cols["tos"] += [spec.tos] * n
        cols["size"] += [spec.size] * n
        cols["seq"] += list(range(1, n + 1))
        cols["t_sent"] += src.t_sent
        cols["rtt_ms"] += rtt.tolist()
        cols["status"] += np.where(ok, "ok", "lost").tolist()
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
        "shaper": None if config.shaper is None else config.shaper.to_tc(),
        "qdisc": config.qdisc.to_tc(),
        "profile": getattr(config.qdisc, "profile", None),
        "hash_seeds": [f"0x{s:x}" for s in seeds],
        "hash_seed_times": [0.0, *[float(t) for t in hash_events["t"]]],
        "traffic": [dict(kind=type(s).__name__, **_plain(dataclasses.asdict(s)))
                    for s in traffic],
        "flows": _plain(flows.astype(object).where(flows.notna(), None).to_dict("list")),
        "qdisc_stats": leaf.stats(),
        "flow_stats": [dict(flow=labels[src.fid], sent=src.sent, delivered=src.delivered,
                            dropped=src.dropped, reordered=engine.reordered[src.fid])
                       for src in sources],
        "engine": {"events": engine.events_processed, "packets": engine.packets_sent,
                   "bytes": engine.bytes_sent},
        "sample_interval": config.sample_interval,
        OCCUPANCY_KEY: occ,
    }
    return Run(probes, events, meta)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, float) and math.isinf(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if value is pd.NA:
        return None
    return repr(value)


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
