"""The replay engine: captured packets through the runtime qdiscs, arrival by arrival.

:class:`Replayer` is fed PACKETS chunks in time order and keeps the state of the qdisc tree,
the link and the seed schedule between chunks, so a capture of any length replays in bounded
memory (the decision columns grow by 57 bytes per packet; the PACKETS chunks come and go).

What runs is what the simulator runs: the tree's runtime (:mod:`qoslab.qdiscs`) on the flows
of :class:`~qoslab.replay.flows.FlowIndex`, a link that takes one packet at a time at its line
rate (``(size + overhead) × 8 / rate`` seconds each, as :class:`qoslab.sim.engine.Engine`),
hash changes at the times of the seed schedule (also while the tree drains after the last
packet, as in the simulator), config changes at theirs. Only the source of
packets differs: the capture's arrival times and sizes, instead of traffic models; so nothing
reacts to drops or delay (TCP would slow down on a real link; the capture's TCP does not).

The loop is lean: per packet one list for the record, one ``enqueue``, and (when the link is
free) one ``dequeue``; the bucket of every flow for a seed comes from one vectorised hashing
call for all flows (the flow table's cached answers), never per packet.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..qdiscs import BuildContext, apply_change, build, walk
from ..qdiscs.changes import for_changes
from ..qdiscs.decisions import DecisionLog
from ..qdiscs.seeds import perturbation_plan, seed_schedule
from ..runs import Run
from .flows import FlowIndex

__all__ = ["Replayer", "Seeds", "SLICE", "replay_times", "epoch_ns"]

#: Packets run between progress updates (and per internal slice of a large chunk).
SLICE = 1 << 16


class Seeds:
    """The hash seeds a replay uses: the schedule of :func:`~qoslab.qdiscs.seeds.seed_schedule`
    for ``seed`` (grown as the capture goes on), or given ``seeds`` and change ``times``.
    """

    def __init__(self, tree: Any, *, seed: int = 1, seeds: list | None = None,
                 times: list | None = None) -> None:
        self.tree = tree
        self.seed = int(seed)
        self.explicit = seeds is not None
        if self.explicit:
            times = [float(t) for t in (times or [])]
            if len(times) != len(seeds) - 1:
                raise ConfigError(f"replay: {len(seeds)} seeds need {len(seeds) - 1} change "
                                  f"times, got {len(times)}")
            if any(b < a for a, b in zip(times, times[1:], strict=False)):
                raise ConfigError("replay: seed change times must not decrease")
            self.seeds = [int(s) for s in seeds]
            self.times = times
            self.details = [f"seed=0x{s:08x} (given)" for s in self.seeds[1:]]
            self.horizon = math.inf
        else:
            self.plan = perturbation_plan(tree)
            self.seeds, self.times, self.details = [], [], []
            self.horizon = 0.0
            self.extend(60.0)

    def extend(self, until: float) -> None:
        """Make sure the schedule is known up to ``until`` seconds (same seeds whatever the
        horizon: the schedule's draws come in order)."""
        if until <= self.horizon:
            return
        horizon = max(until, 2 * self.horizon, 60.0)
        sched = seed_schedule(self.tree, horizon, self.seed)
        n = len(self.times)
        self.seeds[:] = sched.seeds
        self.times.extend(sched.times[n:])
        self.details.extend(sched.events["detail"].astype(str).tolist()[n:])
        self.horizon = horizon if sched.plan.period > 0 else math.inf


class _Drops:
    """The owner of every replayed packet: marks it dropped."""

    __slots__ = ("dropped",)

    def __init__(self, dropped: list) -> None:
        self.dropped = dropped

    def on_drop(self, pkt: list, now: float) -> None:
        self.dropped[pkt[3]] = 1


class Replayer:
    """Replay PACKETS chunks through a qdisc tree (see the module docstring).

    Parameters
    ----------
    tree
        The qdisc tree spec (:mod:`qoslab.qdiscs`; a shaper included if any).
    link
        The device after the tree (:class:`qoslab.sim.Link`): its rate serialises packets.
    seeds
        The seed schedule (:class:`Seeds`).
    changes
        Config changes (:class:`qoslab.qdiscs.ConfigChange`) at replay times.
    l2_bytes
        Bytes added to each packet's ``wire_len`` for the qdisc's accounting (``skb->len``
        holds the link header: 14 for a capture of raw IP packets, 0 for Ethernet frames).
    t0
        The capture time that is replay time 0 (a ``pandas.Timestamp`` or Unix seconds);
        default: the capture's own ``t`` (seconds since its first packet).
    """

    def __init__(self, tree: Any, *, link: Any, seeds: Seeds, changes: tuple = (),
                 l2_bytes: int = 0, t0: Any = None) -> None:
        self.tree = tree
        self.link = link
        self.seeds = seeds
        self.index = FlowIndex()
        self.ctx = BuildContext(self.index.table, mtu_bytes=link.mtu + 14,
                                seeds=seeds.seeds, txqueuelen=link.txqueuelen)
        self.changes = sorted(changes, key=lambda c: c.t)
        self.root = for_changes(build(tree, self.ctx), self.changes)
        self.l2_bytes = int(l2_bytes)
        self.t0_ns = None if t0 is None else epoch_ns(t0)
        # the decision log (57 bytes a packet); ``packet`` is the row of the capture
        self.log = DecisionLog()
        self.owner = _Drops(self.log.dropped)
        # loop state
        self.rows_seen = 0
        self.next_try = math.inf
        self.tx_end = -math.inf  # idle since ever: replay times may start below 0 (``t0``)
        self.hash_i = 0  # changes of the seed schedule applied so far
        self.change_i = 0
        self.last_t = -math.inf
        self.reordered = 0
        self.untimed = 0
        self.now = 0.0

    # ------------------------------------------------------------------ input
    def times(self, packets: pd.DataFrame) -> np.ndarray:
        """Replay times (seconds) of a PACKETS chunk."""
        return replay_times(packets, self.t0_ns)

    def feed(self, packets: pd.DataFrame, progress: Any = None, *,
             rows: np.ndarray | None = None, reordered: int | None = None) -> None:
        """Replay the next chunk (packets later than every packet fed before).

        ``rows``: the packets' positions in the whole input (DECISIONS ``packet``); by
        default they follow the packets fed before. ``reordered``: how many of them are not
        where the input had them (META ``packets_reordered``); by default counted in the
        chunk. An engine merging chunks by time passes both.
        """
        if not len(packets):
            return
        t = self.times(packets)
        if rows is None:
            rows = np.arange(self.rows_seen, self.rows_seen + len(packets), dtype=np.int64)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            if len(rows) != len(packets):
                raise ValueError(f"feed: {len(rows)} rows for {len(packets)} packets")
        self.rows_seen += len(packets)
        timed = ~np.isnan(t)
        if not timed.all():
            self.untimed += int((~timed).sum())
            packets, t, rows = packets[timed], t[timed], rows[timed]
            if not len(t):  # a chunk of untimed packets only (pcapng simple packet blocks)
                return
        order = np.argsort(t, kind="stable")
        moved = order != np.arange(len(order))
        self.reordered += int(moved.sum()) if reordered is None else int(reordered)
        if moved.any():
            packets, t, rows = packets.iloc[order], t[order], rows[order]
        early = t < self.last_t
        if early.any():  # behind an earlier chunk: they arrive now, in their order
            self.reordered += int(early.sum())
            t = np.maximum(t, self.last_t)
        fid = self.index.fids(packets)
        size = packets["wire_len"].to_numpy(dtype=np.int64) + self.l2_bytes
        if not self.seeds.explicit:
            self.seeds.extend(float(t[-1]) + 1.0)
        for lo in range(0, len(t), SLICE):
            hi = min(lo + SLICE, len(t))
            self._run(t[lo:hi].tolist(), size[lo:hi].tolist(), fid[lo:hi].tolist(),
                      rows[lo:hi].tolist())
            if progress is not None:
                progress(hi - lo)
        self.last_t = float(t[-1])

    # ------------------------------------------------------------------ the loop
    def _control_time(self) -> float:
        nh = self.seeds.times[self.hash_i] if self.hash_i < len(self.seeds.times) else math.inf
        nc = self.changes[self.change_i].t if self.change_i < len(self.changes) else math.inf
        return nh if nh < nc else nc

    def _control(self, at: float) -> None:
        """Apply the seed change or config change due at ``at``."""
        times = self.seeds.times
        if self.hash_i < len(times) and times[self.hash_i] == at:
            self.hash_i += 1
            self.root.on_hash_change(self.hash_i, at)
        else:
            apply_change(self.root, self.changes[self.change_i], self.ctx, at)
            self.change_i += 1
        if at >= self.tx_end and self.next_try > at:
            self.next_try = at

    def _run(self, ta: list, sizes: list, fids: list, rows: list) -> None:
        root = self.root
        enqueue, dequeue = root.enqueue, root.dequeue
        log = self.log
        dep, cls_, queue_, seed_ix = log.t_departure, log.cls, log.queue, log.seed_index
        dropped = log.dropped
        owner = self.owner
        k = 8.0 / self.link.rate
        ovh = self.link.overhead
        next_try, tx_end = self.next_try, self.tx_end
        next_ctrl = self._control_time()
        base = len(dep)
        n = len(ta)
        dep.extend([math.nan] * n)
        dropped.extend(bytes(n))
        log.packet.extend(rows)
        log.fid.extend(fids)
        log.size.extend(sizes)
        log.t_arrival.extend(ta)
        for i in range(n):
            t = ta[i]
            while True:
                if next_try <= t and next_try <= next_ctrl:
                    pkt = dequeue(next_try)
                    if pkt is None:
                        next_try = root.next_wake
                    else:
                        dep[pkt[3]] = next_try
                        tx_end = next_try = next_try + (pkt[1] + ovh) * k
                elif next_ctrl <= t:
                    self.next_try, self.tx_end = next_try, tx_end
                    self._control(next_ctrl)
                    next_try, tx_end = self.next_try, self.tx_end
                    next_ctrl = self._control_time()
                else:
                    break
            pkt = [fids[i], sizes[i], t, base + i, 0, owner, -1, -1]
            enqueue(pkt, t)
            cls_.append(pkt[6])
            queue_.append(pkt[7])
            seed_ix.append(self.hash_i)
            if next_try > t and t >= tx_end:
                next_try = t
        self.next_try, self.tx_end = next_try, tx_end
        if n:
            self.now = ta[-1]

    def drain(self) -> None:
        """Run the link until the tree is empty (no more arrivals)."""
        root = self.root
        next_try, tx_end = self.next_try, self.tx_end
        k = 8.0 / self.link.rate
        while root.qlen or next_try < math.inf:
            ctrl = self._control_time()
            if ctrl < next_try and root.qlen:
                self.next_try, self.tx_end = next_try, tx_end
                self._control(ctrl)
                next_try, tx_end = self.next_try, self.tx_end
                continue
            if next_try == math.inf:
                break
            pkt = root.dequeue(next_try)
            if pkt is None:
                next_try = root.next_wake
                continue
            self.log.t_departure[pkt[3]] = next_try
            tx_end = next_try = next_try + (pkt[1] + self.link.overhead) * k
        self.now = max(self.now, tx_end)
        self.next_try, self.tx_end = math.inf, tx_end

    # ------------------------------------------------------------------ output
    def decisions(self) -> pd.DataFrame:
        """The DECISIONS table so far (one row per replayed packet, in arrival order)."""
        return self.log.frame(self.index.labels)

    def probes(self, decisions: pd.DataFrame) -> pd.DataFrame:
        """Per-flow queueing delay as PROBES rows: one stream per flow, ``rtt_ms`` = time in
        the tree (NaN and status ``lost`` when dropped), ``size`` = bytes accounted,
        ``seq`` = the packet's number within its flow (from 1)."""
        flows = self.index.table.frame
        fid = np.asarray(self.log.fid, np.int64)
        host, tos = _flow_host_tos(flows)
        labels = pd.Categorical.from_codes(fid, categories=decisions["flow"].cat.categories)
        seq = pd.Series(fid).groupby(fid).cumcount().to_numpy() + 1
        delay = (decisions["t_departure"] - decisions["t_arrival"]).to_numpy() * 1000.0
        lost = decisions["dropped"].to_numpy()
        return pd.DataFrame({
            "stream": _strings(fid, list(labels.categories)),
            "host": _strings(fid, list(host)),
            "tos": pd.array(tos[fid], dtype="Int64"),
            "size": pd.array(decisions["size"].to_numpy(), dtype="Int64"),
            "seq": pd.array(seq, dtype="Int64"),
            "t_sent": decisions["t_arrival"].to_numpy(),
            "rtt_ms": np.where(lost, np.nan, delay),
            "status": _strings(lost.astype(np.int64), ["ok", "lost"]),
            "ttl": pd.arrays.IntegerArray(np.zeros(len(fid), np.int64),
                                          np.ones(len(fid), bool)),
        })

    def events(self, end: float) -> pd.DataFrame:
        """EVENTS: run start and stop, every hash change and config change up to ``end``."""
        rows = [(0.0, "run_start", "replay")]
        for t, d in zip(self.seeds.times, self.seeds.details, strict=False):
            if t <= end:
                rows.append((float(t), "hash_change", d))
        rows += [(float(c.t), "config_change", c.detail) for c in self.changes if c.t <= end]
        rows.append((float(end), "run_stop", "replay"))
        rows.sort(key=lambda r: (r[0], {"run_start": -1, "run_stop": 2}.get(r[1], 0)))
        return pd.DataFrame(rows, columns=["t", "kind", "detail"])

    def finish(self, meta: dict | None = None, *, probes: bool = True) -> Run:
        """Drain the tree and return the RUN (DECISIONS, per-flow PROBES, EVENTS, META)."""
        self.drain()
        end = max(self.now, self.last_t if self.last_t > -math.inf else 0.0)
        decisions = self.decisions()
        used = len(self.seeds.times) if self.seeds.explicit else \
            int(np.searchsorted(np.asarray(self.seeds.times), end, side="right"))
        info = {
            "source": "replay",
            "tc": self.tree.to_tc(),
            "profile": next((s.profile for s in walk(self.tree)
                             if hasattr(s, "profile")), None),
            "link": {"rate": self.link.rate, "overhead": self.link.overhead,
                     "mtu": self.link.mtu, "txqueuelen": self.link.txqueuelen},
            "l2_bytes": self.l2_bytes,
            "hash_seeds": [f"0x{s:x}" for s in self.seeds.seeds[:used + 1]],
            "hash_seed_times": [0.0, *self.seeds.times[:used]],
            "seeds_given": self.seeds.explicit,
            "packets": len(decisions),
            "dropped": int(decisions["dropped"].sum()),
            "flows": len(self.index),
            "packets_reordered": self.reordered,
            "packets_without_time": self.untimed,
            "qdisc_stats": self.root.stats(),
            "probes": "per-packet queueing delay (time in the qdisc tree), one stream per flow",
        }
        info.update(meta or {})
        pr = self.probes(decisions) if probes else None
        return Run(pr, self.events(end), info, decisions=decisions) if pr is not None else \
            Run(events=self.events(end), meta=info, decisions=decisions)


def _strings(codes: np.ndarray, values: list) -> pd.api.extensions.ExtensionArray:
    """``values[codes]`` as a pandas string array, decoded by Arrow (millions of rows)."""
    import pyarrow as pa

    table = pa.array([None if v is None else str(v) for v in values], pa.string())
    decoded = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), pa.int32()),
                                             table).cast(pa.string())
    return pd.array(decoded, dtype="string")


def _flow_host_tos(flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: the (inner) destination and TOS byte."""
    n = len(flows)
    if not n:
        return np.zeros(0, object), np.zeros(0, object)
    tunnelled = flows["inner_dst"].notna().to_numpy() if "inner_dst" in flows \
        else np.zeros(n, bool)

    def pick(outer: str, inner: str) -> np.ndarray:
        out = flows[outer].astype(object).to_numpy() if outer in flows else \
            np.full(n, None, object)
        if inner in flows and tunnelled.any():
            out = np.where(tunnelled, flows[inner].astype(object).to_numpy(), out)
        return np.array([None if v is None or v is pd.NA or (isinstance(v, float) and
                                                             math.isnan(v)) else v
                         for v in out], dtype=object)

    host = np.array([None if v is None else str(v) for v in pick("dst", "inner_dst")], object)
    tos = pick("tos", "inner_tos")
    return host, tos


def epoch_ns(t0: Any) -> int:
    """``t0`` (a timestamp or Unix seconds) in nanoseconds since the epoch."""
    if isinstance(t0, (pd.Timestamp, np.datetime64)) or hasattr(t0, "isoformat"):
        ts = pd.Timestamp(t0)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return int(ts.value)
    return int(round(float(t0) * 1e9))


def replay_times(packets: pd.DataFrame, t0_ns: int | None = None) -> np.ndarray:
    """Replay times (seconds, NaN where unknown) of PACKETS: ``t``, or ``time`` minus
    ``t0_ns`` (nanoseconds since the epoch) when given."""
    if t0_ns is not None:
        stamps = packets["time"]
        missing = stamps.isna().to_numpy()
        ns = stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(
            dtype="datetime64[ns]").astype(np.int64) if stamps.dt.tz is not None else \
            stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        t = (ns - t0_ns) / 1e9
        t[missing] = np.nan
        return t
    return packets["t"].to_numpy(dtype=float)
