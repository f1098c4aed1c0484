"""The replay engine: captured packets through the runtime qdiscs, arrival by arrival.

:class:`Replayer` is fed PACKETS chunks in time order and keeps the state of the qdisc tree,
the link and the seed schedule between chunks. In memory, its decision log grows by 57 bytes
per packet (the PACKETS chunks come and go); with a ``sink`` (a per-packet dataset,
:class:`qoslab.io.run_tables.TableWriter`) the rows whose fate is known — departed or dropped
— leave the log every :data:`FLUSH_ROWS` rows as DECISIONS and PROBES parts
(:class:`~qoslab.replay.output.ReplayOutput`), so memory is bounded by the chunk size, the
packets still queued and the number of flows, never by the length of the capture.

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
from ..io.run_tables import DatasetRun
from ..qdiscs import BuildContext, apply_change, build, walk
from ..qdiscs.changes import for_changes
from ..qdiscs.decisions import DecisionLog, unique_labels
from ..qdiscs.seeds import perturbation_plan, seed_schedule
from ..runs import Run
from .flows import FlowIndex
from .output import ReplayOutput

__all__ = ["Replayer", "Seeds", "SLICE", "FLUSH_ROWS", "STALL_PARTS", "replay_times",
           "epoch_ns"]

#: Packets run between progress updates (and per internal slice of a large chunk).
SLICE = 1 << 16
#: With a sink, rows queued behind a packet still in the tree are written around it (the
#: packet's row held aside) once this many parts' worth of them wait.
STALL_PARTS = 4
#: With a sink, decided rows leave the log in parts of at least this many rows (a part's
#: DECISIONS and PROBES frames take ~0.8 kB a row while they are built and written: 50 MB).
FLUSH_ROWS = 1 << 16


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

    __slots__ = ("dropped", "off", "held")

    def __init__(self, dropped: list, held: dict) -> None:
        self.dropped = dropped
        self.off = 0  # packets that left the log before its first row
        self.held = held  # rows that left the log while their packet was still queued

    def on_drop(self, pkt: list, now: float) -> None:
        j = pkt[3] - self.off
        if j >= 0:
            self.dropped[j] = 1
        else:
            self.held[pkt[3]][_DROPPED] = 1


#: Columns of a held row (:attr:`Replayer.held`): the log's, then the PROBES ``seq``.
_HELD = (*DecisionLog.TYPECODES, "seq")
_DEPARTURE, _DROPPED = _HELD.index("t_departure"), _HELD.index("dropped")
_NUMPY = {**{c: {"q": np.int64, "d": np.float64, "b": np.int8}[code]
              for c, code in DecisionLog.TYPECODES.items()}, "seq": np.int64}


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
    sink
        Where decided rows go while the replay runs (``sink.write(table, frame)``, e.g. a
        :class:`qoslab.io.run_tables.TableWriter`); ``None``: kept in memory until
        :meth:`finish`.
    probes
        Build the per-flow PROBES rows as well.
    flush_rows
        With a sink: decided rows leave the log in parts of at least this many.
    """

    def __init__(self, tree: Any, *, link: Any, seeds: Seeds, changes: tuple = (),
                 l2_bytes: int = 0, t0: Any = None, sink: Any = None, probes: bool = True,
                 flush_rows: int = FLUSH_ROWS) -> None:
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
        #: rows whose packet was still queued when the log was written out around it (a
        #: packet starved for long, e.g. a low band under a flood): log index -> values
        self.held: dict[int, list] = {}
        self.deferred = 0  # rows written out of arrival order
        self.owner = _Drops(self.log.dropped, self.held)
        self.flushed = 0  # rows that left the log (to the sink)
        self.sink = sink
        self.flush_rows = int(flush_rows)
        self.output = ReplayOutput(self.index, probes=probes, sink=sink)
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
            if self.sink is not None:
                self._flush()
            if progress is not None:
                progress(hi - lo)
        self.last_t = float(t[-1])

    def _flush(self, final: bool = False) -> None:
        """Hand the decided rows at the head of the log to the output (all with ``final``;
        otherwise once :attr:`flush_rows` of them wait).

        A packet still queued holds back the rows after it; when :data:`STALL_PARTS` parts'
        worth of rows wait behind queued packets, every row leaves the log and the queued
        ones are held aside (:attr:`held`, at most the packets the tree can queue) until
        their fate is known; they are then written in a later part, and the column
        ``arrival`` of the parts restores the order."""
        log = self.log
        n = len(log)
        if not n or (n < self.flush_rows and not final):
            return
        k = n
        if not final:
            dep = np.frombuffer(log.t_departure, np.float64)
            drp = np.frombuffer(log.dropped, np.int8)
            waiting = np.flatnonzero(np.isnan(dep) & (drp == 0))
            del dep, drp  # the arrays must not be exported while they are resized
            k = int(waiting[0]) if len(waiting) else n
            if k < self.flush_rows:
                if n < STALL_PARTS * self.flush_rows:
                    return
                k = n  # queued packets hold back too much: hold them aside instead
        block = log.take(k)
        arrival = np.arange(self.flushed, self.flushed + k, dtype=np.int64)
        seq = self.output.next_seq(block["fid"])
        queued = np.isnan(block["t_departure"]) & ~block["dropped"]
        self.flushed += k
        self.owner.off = self.flushed
        if queued.any():
            for j in np.flatnonzero(queued).tolist():
                self.held[int(arrival[j])] = [block[c][j].item() for c in _HELD[:-1]] + \
                    [int(seq[j])]
            keep = ~queued
            block = {c: v[keep] for c, v in block.items()}
            arrival, seq = arrival[keep], seq[keep]
        self._release_held(final)
        self.output.add(block, seq=seq, arrival=arrival)

    def _release_held(self, final: bool) -> None:
        """Write the held rows whose packet has left the tree (all with ``final``)."""
        done = sorted(i for i, r in self.held.items()
                      if final or r[_DROPPED] or not math.isnan(r[_DEPARTURE]))
        if not done:
            return
        rows = [self.held.pop(i) for i in done]
        cols = {c: np.array([r[j] for r in rows], dtype=_NUMPY[c])
                for j, c in enumerate(_HELD)}
        cols["dropped"] = cols["dropped"].astype(bool)
        self.deferred += len(rows)
        self.output.add({c: cols[c] for c in _HELD[:-1]}, seq=cols["seq"],
                        arrival=np.asarray(done, np.int64))

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
        off = self.flushed
        k = 8.0 / self.link.rate
        ovh = self.link.overhead
        next_try, tx_end = self.next_try, self.tx_end
        next_ctrl = self._control_time()
        base = off + len(dep)
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
                    elif pkt[3] >= off:
                        dep[pkt[3] - off] = next_try
                        tx_end = next_try = next_try + (pkt[1] + ovh) * k
                    else:  # its row was held aside (see _flush)
                        self.held[pkt[3]][_DEPARTURE] = next_try
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
            if pkt[3] >= self.flushed:
                self.log.t_departure[pkt[3] - self.flushed] = next_try
            else:
                self.held[pkt[3]][_DEPARTURE] = next_try
            tx_end = next_try = next_try + (pkt[1] + self.link.overhead) * k
        self.now = max(self.now, tx_end)
        self.next_try, self.tx_end = math.inf, tx_end

    # ------------------------------------------------------------------ output
    def decisions(self) -> pd.DataFrame:
        """The DECISIONS rows still in the log (every row so far without a sink), in arrival
        order."""
        return self.log.frame(self.index.labels)

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

    def finish(self, meta: dict | None = None, *, probes: bool = True,
               progress: bool = False) -> Run:
        """Drain the tree and return the RUN (DECISIONS, per-flow PROBES, EVENTS, META).

        With a sink, the last rows go there and the RUN is a
        :class:`~qoslab.io.run_tables.DatasetRun` reading them from the dataset; ``probes``
        was decided when the replayer was made. ``progress``: a bar while the tables are
        built.
        """
        self.drain()
        end = max(self.now, self.last_t if self.last_t > -math.inf else 0.0)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.log), unit="pkt", desc="per-flow tables",
                       dynamic_ncols=True)
        try:
            if self.sink is None:
                self.output.want_probes = probes
                self.output.add(self.log.take(len(self.log)))
            else:
                self._flush(final=True)
        finally:
            if bar is not None:
                bar.update(bar.total)
                bar.close()
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
            "packets": self.output.rows,
            "dropped": int(self.output.dropped.sum()),
            "flows": len(self.index),
            "packets_reordered": self.reordered,
            "packets_without_time": self.untimed,
            "qdisc_stats": self.root.stats(),
            "probes": "per-packet queueing delay (time in the qdisc tree), one stream per flow",
        }
        info.update(self.output.summary())
        info.update(meta or {})
        events = self.events(end)
        if self.sink is not None:
            info["per_packet"] = self.sink.close(flows=unique_labels(self.index.labels),
                                                 ordered=not self.deferred)
            return DatasetRun(Run(events=events, meta=info), info["per_packet"]["path"])
        decisions, pr = self.output.tables()
        return Run(pr, events, info, decisions=decisions) if pr is not None else \
            Run(events=events, meta=info, decisions=decisions)


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
