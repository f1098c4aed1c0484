"""Packets → the flows a qdisc tree sees: one row of a PACKETS-like frame per flow.

A qdisc's hashes and filters read header fields that stay the same for every packet of a
flow (addresses, protocol, ports, TOS, ICMP identifier, tunnel headers, flow label …) and
never the fields that change from packet to packet (time, lengths, TTL, ICMP sequence …). So
the runtime qdiscs ask :mod:`qoslab.hashing` once per flow and seed (the
:class:`~qoslab.qdiscs.FlowTable`), and a driver only has to say which flow each packet
belongs to. :class:`FlowIndex` does that for capture replay (a whole chunk of PACKETS at once)
and for the userspace datapath (one new packet at a time), with one definition of a flow:
every column of the frame except :data:`PER_PACKET_COLUMNS`. Extra columns a user adds
(``mark``, ``priority``, ``sk_token`` … :data:`qoslab.hashing.OPTIONAL_COLUMNS`) are part of
the flow, as the hashes read them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..labels import PROTOCOL_NAMES, flow_label, flow_labels
from ..qdiscs import FlowTable

__all__ = ["PER_PACKET_COLUMNS", "FlowIndex", "flow_columns", "flow_label", "PROTOCOL_NAMES"]

#: PACKETS columns that vary within a flow (or repeat another column): never part of a flow.
#: Every other PACKETS column defines flows (``tests/test_replay.py`` checks that each column
#: of :data:`qoslab.schema.PACKETS` is one or the other, so a new column is a decision).
PER_PACKET_COLUMNS = frozenset({
    "time", "t", "ifindex", "section", "wire_len", "cap_len", "ttl", "icmp_seq",
    "inner_icmp_seq", "l4_len", "frag_offset", "frag_more", "ip_id", "inner_frag_offset",
    "inner_frag_more", "inner_ip_id", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_len", "dscp",
    "ecn", "problem", "file", "frame",
})
#: IP protocol number -> name used in flow labels.
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Chunks of at most this many packets are indexed row by row (no factorising).
SMALL = 8


def flow_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that define a flow (all but :data:`PER_PACKET_COLUMNS`)."""
    cols = [c for c in frame.columns if c not in PER_PACKET_COLUMNS]
    if "src" not in cols or "dst" not in cols:
        raise ConfigError("packets: expected a PACKETS frame (qoslab.read_capture) with at "
                          f"least src and dst; got columns {list(frame.columns)[:8]} …")
    return cols


def _as_ints(values: pd.Series) -> np.ndarray:
    """A column as int64 codes for hashing within one chunk (NA: -1)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64)
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        if values.dtype.kind in "iub":
            return values.to_numpy(dtype=np.int64, na_value=-1)
    elif values.dtype.kind in "iub":
        return values.to_numpy().astype(np.int64)
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _values(values: pd.Series) -> list:
    """Python values of a column (``None`` for NA): the identity of a flow across chunks."""
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and \
            values.dtype.kind in "iub":
        return [_plain(v) for v in values.to_numpy(dtype=object, na_value=None)]
    return [_plain(v) for v in values.astype(object).tolist()]


def _plain(v):
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


class FlowIndex:
    """Flow ids for packets, growing a :class:`~qoslab.qdiscs.FlowTable` as flows appear.

    Parameters
    ----------
    table
        The flow table the qdiscs read (a new one by default).

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> index = FlowIndex()
    >>> fid = index.fids(pk)
    >>> bool(len(index) == len(index.table) == fid.max() + 1), index.labels[0]
    (True, 'udp 10.10.0.3:5004 > 10.20.0.5:5004 tos=0xb8 via 4in4 192.0.2.1 > 198.51.100.1')
    >>> (index.fids(pk) == fid).all()       # the same packets again: the same flows
    np.True_
    """

    def __init__(self, table: FlowTable | None = None) -> None:
        self.table = table if table is not None else FlowTable()
        self.columns: list[str] | None = None
        self._ids: dict[tuple, int] = {}
        self._labels: list[str] = []
        self._unlabelled: list[pd.DataFrame] = []  # rows of new flows, named when asked

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def labels(self) -> list[str]:
        """The label of every flow (:func:`qoslab.labels.flow_labels`), by flow id. Named in
        one call when asked, not as flows appear: a live datapath's new flow costs no
        labelling on its way through."""
        if self._unlabelled:
            rows = pd.concat(self._unlabelled, ignore_index=True) \
                if len(self._unlabelled) > 1 else self._unlabelled[0]
            self._labels.extend(flow_labels(rows).tolist())
            self._unlabelled = []
        return self._labels

    def fids(self, packets: pd.DataFrame) -> np.ndarray:
        """The flow id of every packet (int64); flows not seen before are added to the table."""
        n = len(packets)
        if not n:
            return np.zeros(0, np.int64)
        if self.columns is None:
            self.columns = flow_columns(packets)
        missing = [c for c in self.columns if c not in packets.columns]
        if missing:
            raise ConfigError(f"packets: column(s) {', '.join(missing)} missing in this chunk; "
                              "every chunk needs the same columns")
        cols = self.columns
        if n <= SMALL:  # a few packets (the live datapath's new flows): no factorising
            values = packets[cols].to_numpy(dtype=object)
            keys = [tuple(_plain(v) for v in row) for row in values]
            distinct = list(dict.fromkeys(keys))
            where = {k: j for j, k in enumerate(distinct)}
            codes = np.fromiter((where[k] for k in keys), np.int64, n)
            first = np.array([keys.index(k) for k in distinct], np.int64)
            return self._assign(packets, cols, first, distinct)[codes]
        ints = [_as_ints(packets[c]) for c in cols]
        h = np.zeros(n, np.uint64)
        with np.errstate(over="ignore"):
            for v in ints:
                h = (h ^ v.astype(np.uint64)) * _MIX
                h ^= h >> np.uint64(29)
        codes, uniques = pd.factorize(h)
        first = np.full(len(uniques), n, np.int64)
        np.minimum.at(first, codes, np.arange(n, dtype=np.int64))
        owner = first[codes]
        if not all(np.array_equal(v, v[owner]) for v in ints):  # a 64-bit collision
            codes, first = self._exact(ints)
            owner = first[codes]
        reps = packets.iloc[first][cols].reset_index(drop=True)
        keys = list(zip(*(_values(reps[c]) for c in cols), strict=True))
        return self._assign(packets, cols, first, keys)[codes]

    def _assign(self, packets: pd.DataFrame, cols: list[str], first: np.ndarray,
                keys: list[tuple]) -> np.ndarray:
        """Flow ids of the distinct keys (rows ``first`` of ``packets``); new ones join the
        table."""
        local = np.empty(len(keys), np.int64)
        new_rows = []
        for j, key in enumerate(keys):
            fid = self._ids.get(key)
            if fid is None:
                fid = self._ids[key] = len(self._ids)
                new_rows.append(j)
            local[j] = fid
        if new_rows:
            rows = packets.iloc[first[new_rows]][cols].reset_index(drop=True)
            for c in cols:
                if isinstance(rows[c].dtype, pd.CategoricalDtype):
                    rows[c] = rows[c].astype(object).where(rows[c].notna(), None)
            self._unlabelled.append(rows)
            self.table.add(rows)
        return local

    @staticmethod
    def _exact(ints: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        codes = np.zeros(len(ints[0]), np.int64)
        for v in ints:
            c, u = pd.factorize(v)
            codes, _ = pd.factorize(codes * len(u) + c)
        n_u = int(codes.max()) + 1
        first = np.full(n_u, len(codes), np.int64)
        np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
        return codes, first


