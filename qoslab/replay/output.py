"""What a replay gives per packet and per flow, built a chunk of decided packets at a time.

A :class:`~qoslab.replay.Replayer` hands :class:`ReplayOutput` the rows of its decision log
whose fate is known (departed or dropped), in packet order: all of them at the end of an
in-memory replay, or a chunk at a time when the per-packet tables stream to a dataset
(:class:`qoslab.io.run_tables.TableWriter`). Each chunk becomes DECISIONS rows and PROBES rows
(one stream per flow, ``rtt_ms`` = time in the tree, ``seq`` counted per flow across chunks)
and updates the per-flow totals META keeps (``meta["flow_summary"]``) and a histogram of the
time in the tree (``meta["delay_ms"]``: median and 99th percentile within 0.2 %), both bounded
by the number of flows, never by the number of packets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..qdiscs.decisions import decisions_frame
from .flows import FlowIndex

__all__ = ["ReplayOutput", "DELAY_BINS_PER_DECADE"]

#: Bins per decade of the delay histogram (log-spaced from 1 ns to 10⁶ s; 0 in a bin of its
#: own): a quantile read from it is within 10^(1/1000) ≈ 0.23 % of the true one.
DELAY_BINS_PER_DECADE = 1000
_DECADES = (-6, 9)  # milliseconds: 1 ns … 10⁶ s


class ReplayOutput:
    """Per-packet tables and per-flow totals of a replay (see the module doc).

    Parameters
    ----------
    index
        The replay's flows (labels, header fields).
    probes
        Build PROBES rows as well as DECISIONS.
    sink
        Write each chunk's tables there (``sink.write(name, frame)``) instead of keeping
        them.
    """

    def __init__(self, index: FlowIndex, *, probes: bool = True, sink: Any = None) -> None:
        self.index = index
        self.want_probes = probes
        self.sink = sink
        self.kept: dict[str, list[pd.DataFrame]] = {"decisions": [], "probes": []}
        self.seq = np.zeros(0, np.int64)  # packets of each flow so far (PROBES seq)
        self.packets = np.zeros(0, np.int64)
        self.bytes = np.zeros(0, np.int64)
        self.dropped = np.zeros(0, np.int64)
        self.delay_sum = np.zeros(0, np.float64)
        self.delay_max = np.full(0, np.nan)
        lo, hi = _DECADES
        self.hist = np.zeros((hi - lo) * DELAY_BINS_PER_DECADE + 2, np.int64)  # [0]: zero
        self._host: list = []
        self._tos: list = []
        self.rows = 0

    # ------------------------------------------------------------------ per chunk
    def next_seq(self, fid: np.ndarray) -> np.ndarray:
        """PROBES ``seq`` of packets of flows ``fid`` arriving next, in order (each packet's
        number within its flow, from 1, across chunks)."""
        self._grow(len(self.index))
        seq = pd.Series(fid).groupby(fid).cumcount().to_numpy() + 1 + self.seq[fid]
        self.seq += np.bincount(fid, minlength=len(self.seq))
        return seq

    def add(self, cols: dict[str, np.ndarray], *, seq: np.ndarray | None = None,
            arrival: np.ndarray | None = None) -> None:
        """Take the decided rows ``cols`` (:meth:`DecisionLog.columns` form, in arrival
        order); ``seq`` from :meth:`next_seq` (computed here when not given); ``arrival``:
        the rows' numbers in arrival order, a column ``arrival`` of the parts written."""
        if not len(cols["fid"]):
            return
        n_flows = len(self.index)
        self._grow(n_flows)
        if seq is None:
            seq = self.next_seq(cols["fid"])
        labels = self.index.labels
        decisions = decisions_frame(labels=labels, **cols)
        fid = cols["fid"]
        lost = cols["dropped"].astype(bool)
        delay = (cols["t_departure"] - cols["t_arrival"]) * 1000.0
        self._totals(fid, cols["size"], lost, delay)
        self.rows += len(fid)
        tables = {"decisions": decisions}
        if self.want_probes:
            tables["probes"] = self._probes(decisions, fid, lost, delay, seq)
        for name, frame in tables.items():
            if self.sink is not None:
                self.sink.write(name, frame if arrival is None else
                                frame.assign(arrival=np.asarray(arrival, np.int64)))
            else:
                self.kept[name].append(frame)

    def _grow(self, n: int) -> None:
        extra = n - len(self.seq)
        if extra <= 0:
            return
        z = np.zeros(extra, np.int64)
        self.seq, self.packets, self.bytes, self.dropped = (
            np.concatenate([a, z]) for a in (self.seq, self.packets, self.bytes, self.dropped))
        self.delay_sum = np.concatenate([self.delay_sum, np.zeros(extra)])
        self.delay_max = np.concatenate([self.delay_max, np.full(extra, np.nan)])

    def _totals(self, fid: np.ndarray, size: np.ndarray, lost: np.ndarray,
                delay: np.ndarray) -> None:
        n = len(self.seq)
        self.packets += np.bincount(fid, minlength=n)
        self.bytes += np.bincount(fid, weights=size, minlength=n).astype(np.int64)
        self.dropped += np.bincount(fid[lost], minlength=n)
        sent = ~lost & ~np.isnan(delay)
        d, f = delay[sent], fid[sent]
        self.delay_sum += np.bincount(f, weights=d, minlength=n)
        if len(d):
            top = np.full(n, -np.inf)
            np.maximum.at(top, f, d)
            seen = top > -np.inf
            self.delay_max[seen] = np.fmax(self.delay_max[seen], top[seen])
        self.hist += np.bincount(_bins(d), minlength=len(self.hist))[:len(self.hist)]

    def _probes(self, decisions: pd.DataFrame, fid: np.ndarray, lost: np.ndarray,
                delay: np.ndarray, seq: np.ndarray) -> pd.DataFrame:
        """PROBES rows: one stream per flow, ``rtt_ms`` = time in the tree (NaN and status
        ``lost`` when dropped), ``size`` = bytes accounted, ``seq`` = the packet's number
        within its flow (from 1, across chunks)."""
        host, tos = self._host_tos()
        names = list(decisions["flow"].cat.categories)
        return pd.DataFrame({
            "stream": _strings(fid, names),
            "host": _strings(fid, host),
            "tos": pd.array(np.asarray(tos, dtype=object)[fid] if len(fid) else [],
                            dtype="Int64"),
            "size": pd.array(decisions["size"].to_numpy(), dtype="Int64"),
            "seq": pd.array(seq, dtype="Int64"),
            "t_sent": decisions["t_arrival"].to_numpy(),
            "rtt_ms": np.where(lost, np.nan, delay),
            "status": _strings(lost.astype(np.int64), ["ok", "lost"]),
            "ttl": pd.arrays.IntegerArray(np.zeros(len(fid), np.int64),
                                          np.ones(len(fid), bool)),
        })

    def _host_tos(self) -> tuple[list, list]:
        """Per flow: the (inner) destination and TOS byte (new flows looked up once)."""
        flows = self.index.table.frame
        if len(self._host) < len(flows):
            host, tos = _flow_host_tos(flows.iloc[len(self._host):])
            self._host.extend(host.tolist())
            self._tos.extend(tos.tolist())
        return self._host, self._tos

    # ------------------------------------------------------------------ at the end
    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The kept DECISIONS and PROBES (an in-memory replay)."""
        out = []
        for name in ("decisions", "probes"):
            parts = self.kept[name]
            if name == "probes" and not self.want_probes:
                out.append(None)
            elif len(parts) == 1:
                out.append(parts[0])
            elif not parts:
                out.append(self._empty(name))
            else:
                out.append(pd.concat(parts, ignore_index=True))
        return out[0], out[1]

    def _empty(self, name: str) -> pd.DataFrame:
        empty = {k: np.zeros(0, np.int64) for k in ("packet", "fid", "size", "cls", "queue",
                                                    "seed_index", "dropped")}
        empty.update(t_arrival=np.zeros(0), t_departure=np.zeros(0))
        decisions = decisions_frame(labels=self.index.labels, **empty)
        if name == "decisions":
            return decisions
        z = np.zeros(0, np.int64)
        return self._probes(decisions, z, z.astype(bool), np.zeros(0), z)

    def summary(self) -> dict[str, Any]:
        """META entries: ``flow_summary`` (per flow: packets, bytes, dropped, mean and
        largest time in the tree) and ``delay_ms`` (median, p99 of every sent packet)."""
        self._grow(len(self.index))
        sent = self.packets - self.dropped
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(sent > 0, self.delay_sum / np.maximum(sent, 1), np.nan)
        labels = self.index.labels
        return {
            "flow_summary": {
                "flow": [str(x) for x in labels],
                "packets": self.packets.tolist(),
                "bytes": self.bytes.tolist(),
                "dropped": self.dropped.tolist(),
                "delay_mean_ms": [None if math.isnan(v) else round(float(v), 6) for v in mean],
                "delay_max_ms": [None if math.isnan(v) else float(v) for v in self.delay_max],
            },
            "delay_ms": {"median": _quantile(self.hist, 0.5), "p99": _quantile(self.hist, 0.99),
                         "sent": int(self.hist.sum()),
                         "resolution": f"{10 ** (1 / DELAY_BINS_PER_DECADE) - 1:.2%}"},
        }


def _bins(delay_ms: np.ndarray) -> np.ndarray:
    """Histogram bin of each delay (0: zero; 1…: log-spaced; clipped at both ends)."""
    lo, hi = _DECADES
    out = np.zeros(len(delay_ms), np.int64)
    pos = delay_ms > 0
    if pos.any():
        x = (np.log10(delay_ms[pos]) - lo) * DELAY_BINS_PER_DECADE
        out[pos] = 1 + np.clip(x, 0, (hi - lo) * DELAY_BINS_PER_DECADE).astype(np.int64)
    return out


def _quantile(hist: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile of the histogram (the geometric middle of its bin)."""
    total = int(hist.sum())
    if not total:
        return None
    k = int(np.searchsorted(np.cumsum(hist), q * total, side="left"))
    if k == 0:
        return 0.0
    lo = _DECADES[0]
    return float(10 ** (lo + (k - 1 + 0.5) / DELAY_BINS_PER_DECADE))


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
