"""TCP round-trip times seen in a capture: handshake and data → ACK, as PROBES rows.

Each sample is Wireshark's ``tcp.analysis.ack_rtt`` (epan/dissectors/packet-tcp.c,
``tcp_analyze_sequence_number``), computed the same way:

* every segment that carries data, a SYN or a FIN is remembered per direction with its
  ``nextseq`` (sequence number + payload bytes, + 1 for SYN/FIN) — up to 10 000 unacknowledged
  segments per direction, as Wireshark keeps;
* every frame, whatever its flags, acknowledges the other direction: a remembered segment is
  forgotten when the frame's acknowledgement number reaches its ``nextseq`` (in sequence-number
  arithmetic); when it equals a ``nextseq`` exactly, the frame gets an RTT: its time minus the
  time of the oldest segment so acknowledged;
* an RTT of exactly 0 is not reported (Wireshark shows none); a SYN with a new initial sequence
  number on the same ports starts a new connection.

The vectorized path finds, for every segment, the first later frame of the other direction
whose acknowledgement reaches it (binary lifting over a sparse table of running maxima of the
unwrapped acknowledgement numbers). A connection direction that ever holds 10 000
unacknowledged segments is replayed exactly, frame by frame.

TCP is read in the innermost header (a tunnel's inner TCP when the tunnel was opened);
fragments of IP datagrams carrying TCP are not reassembled and take no part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..schema import conform, empty_probes

__all__ = ["tcp_rtts", "tcp_candidates", "connection_keys", "MAX_UNACKED", "TCP_SYN", "TCP_FIN",
           "TCP_ACK", "TCP_RST"]

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x001, 0x002, 0x004, 0x010
#: Unacknowledged segments remembered per direction (Wireshark's TCP_MAX_UNACKED_SEGMENTS).
MAX_UNACKED = 10_000
_M32 = 1 << 32


def _num(series: pd.Series) -> np.ndarray:
    return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _usable(packets: pd.DataFrame) -> np.ndarray:
    """Rows that take part: unfragmented TCP (innermost header) with its sequence and
    acknowledgement numbers, payload length and a time stamp."""
    tun = packets["inner_ip_version"].notna().to_numpy()
    proto = np.where(tun, _num(packets["inner_proto"]), _num(packets["proto"]))
    frag = packets["frag"].to_numpy(dtype=bool) | packets["inner_frag_more"].to_numpy(
        dtype=bool) | (np.nan_to_num(_num(packets["inner_frag_offset"])) > 0)
    return ((proto == 6) & ~frag & packets["tcp_len"].notna().to_numpy()
            & packets["tcp_seq"].notna().to_numpy() & packets["tcp_ack"].notna().to_numpy()
            & packets["t"].notna().to_numpy())


def tcp_candidates(packets: pd.DataFrame) -> pd.DataFrame:
    """The rows :func:`tcp_rtts` uses (unfragmented TCP with sequence and acknowledgement
    numbers and a time stamp), as they are.

    ``tcp_rtts(packets)`` equals ``tcp_rtts(tcp_candidates(packets))``; and split by
    :func:`connection_keys` into groups that keep the set's order, the groups' results,
    concatenated and sorted by ``ack_row``, are the whole table's. The Dask engine works so.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> tcp_rtts(tcp_candidates(pk)).equals(tcp_rtts(pk))
    True
    >>> c = tcp_candidates(pk)
    >>> keys = connection_keys(c)
    >>> parts = [tcp_rtts(c[keys % 2 == k]) for k in (0, 1)]
    >>> whole = pd.concat(parts).sort_values("ack_row", ignore_index=True)
    >>> whole.equals(tcp_rtts(pk))
    True
    """
    return packets[_usable(packets)]


def connection_keys(packets: pd.DataFrame) -> np.ndarray:
    """A 64-bit key per row of :func:`tcp_candidates`, equal for both directions of a
    connection (the unordered pair of innermost address:port endpoints)."""
    seg = _segments(packets)
    one = seg["src"].astype(str) + "|" + seg["sport"].astype(str)
    two = seg["dst"].astype(str) + "|" + seg["dport"].astype(str)
    pair = pd.Series(np.where(one < two, one + " " + two, two + " " + one))
    return pd.util.hash_pandas_object(pair, index=False).to_numpy()


def _segments(packets: pd.DataFrame) -> pd.DataFrame:
    """The TCP rows of ``packets`` with their innermost endpoints, in frame order."""
    rows = np.flatnonzero(_usable(packets))
    sel = packets.iloc[rows]
    tun = sel["inner_ip_version"].notna().to_numpy()
    return pd.DataFrame({
        "frame": rows,
        "label": sel.index.to_numpy(),
        "t": sel["t"].to_numpy(),
        "src": np.where(tun, sel["inner_src"].astype(object), sel["src"].astype(object)),
        "dst": np.where(tun, sel["inner_dst"].astype(object), sel["dst"].astype(object)),
        "sport": np.where(tun, _num(sel["inner_sport"]), _num(sel["sport"])).astype(np.int64),
        "dport": np.where(tun, _num(sel["inner_dport"]), _num(sel["dport"])).astype(np.int64),
        "seq": sel["tcp_seq"].to_numpy(dtype=np.int64),
        "ack": sel["tcp_ack"].to_numpy(dtype=np.int64),
        "len": sel["tcp_len"].to_numpy(dtype=np.int64),
        "flags": sel["tcp_flags"].fillna(0).to_numpy(dtype=np.int64),
        "tos": np.where(tun, _num(sel["inner_tos"]), _num(sel["tos"])),
        "ttl": np.where(tun, np.nan, _num(sel["ttl"])),
    })


def _connections(seg: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Connection number and direction (0: from the lower-numbered endpoint) per row; a
    SYN without ACK whose sequence number differs from its direction's first SYN starts a
    new connection on the same ports."""
    codes, _ = pd.factorize(np.concatenate([seg["src"].to_numpy(dtype=object),
                                            seg["dst"].to_numpy(dtype=object)]))
    n = len(seg)
    a = codes[:n].astype(np.int64) * 65536 + seg["sport"].to_numpy()  # endpoint numbers
    b = codes[n:].astype(np.int64) * 65536 + seg["dport"].to_numpy()
    direction = (a > b).astype(np.int8)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    lo_code, hi_code = pd.factorize(lo)[0], pd.factorize(hi)[0]  # each below n: no overflow
    pair = pd.factorize(lo_code.astype(np.int64) * (n + 1) + hi_code)[0]
    syn = (seg["flags"].to_numpy() & (TCP_SYN | TCP_ACK)) == TCP_SYN
    # a new ISN in a SYN: count per pair the SYNs that differ from the previous SYN's ISN
    s = pd.DataFrame({"pair": pair[syn], "dir": direction[syn], "seq": seg["seq"].to_numpy()[syn]})
    prev = s.groupby(["pair", "dir"])["seq"].shift()
    new = (prev.notna() & (prev != s["seq"])).to_numpy()
    bump = np.zeros(len(seg), np.int64)
    bump[np.flatnonzero(syn)[new]] = 1
    generation = pd.Series(bump).groupby(pair).cumsum().to_numpy()
    conn = pd.factorize(pair * (1 << 20) + generation)[0]
    return conn, direction


def _unwrap(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Unwrap 32-bit sequence numbers (in frame order) within each group: each value is taken
    as the one nearest the previous value of its group."""
    out = values.astype(np.int64)
    if not len(out):
        return out
    order = np.argsort(group, kind="stable")
    v = out[order]
    g = group[order]
    first = np.r_[True, g[1:] != g[:-1]]
    step = np.r_[0, ((np.diff(v) + (1 << 31)) % _M32) - (1 << 31)]  # signed 32-bit steps
    step[first] = 0
    csum = np.cumsum(step)
    start = np.maximum.accumulate(np.where(first, np.arange(len(v)), 0))
    out[order] = v[start] + csum - csum[start]
    return out


def _first_reaching(ack: np.ndarray, start: np.ndarray, need: np.ndarray) -> np.ndarray:
    """For each query q, the first index j >= start[q] with ack[j] >= need[q] (len(ack) if
    none): binary lifting over a sparse table of range maxima."""
    n = len(ack)
    if n == 0:
        return np.full(len(start), 0, np.int64)
    levels = [ack]
    span = 1
    while span * 2 <= n:
        prev = levels[-1]
        levels.append(np.maximum(prev[:-span], prev[span:]))
        span *= 2
    pos = start.copy()
    for k in range(len(levels) - 1, -1, -1):
        table = levels[k]
        width = 1 << k
        can = pos + width <= n
        ok = np.zeros(len(pos), bool)
        ok[can] = table[pos[can]] < need[can]  # the whole block is short: jump over it
        pos[ok] += width
    return pos


@dask_aware("tcp_rtts")
def tcp_rtts(packets: pd.DataFrame) -> pd.DataFrame:
    """TCP round-trip times of a capture, one PROBES row per sample (Wireshark's
    ``tcp.analysis.ack_rtt``: handshake and data → ACK).

    Parameters
    ----------
    packets
        A PACKETS table (:func:`qoslab.read_capture`), or a Dask one
        (:func:`qoslab.read_captures` with ``engine="dask"``: the TCP rows are shuffled by
        connection, each group measured by this function; a pandas frame comes back).

    Returns
    -------
    pandas.DataFrame
        PROBES (:data:`qoslab.schema.PROBES`), one row per acknowledged segment, in order of
        the acknowledging frame: ``stream`` names the direction of the data, one per TCP
        flow (``"10.0.0.1:40000 > 10.0.0.2:5201 tcp"``); ``host`` is the acknowledging end;
        ``tos`` the segment's TOS byte; ``size`` its payload bytes; ``seq`` its sequence
        number relative to the direction's first (Wireshark's relative numbering: the SYN is
        0); ``t_sent`` its ``t``; ``rtt_ms`` the time until the acknowledgement; ``ttl`` the
        acknowledgement's TTL / hop limit (outer header; NA in a tunnel); ``status`` ok.
        Extra columns: ``kind`` — ``handshake`` (a SYN or SYN/ACK acknowledged), ``data`` or
        ``fin``; ``segment_row`` and ``ack_row`` — the index labels in ``packets`` of the
        segment and of the frame that acknowledged it.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> rtt = tcp_rtts(read_capture(data_path("captures/tunnel_uploads.pcap")))
    >>> sorted(rtt["stream"].unique())[:1]
    ['10.10.0.2:40022 > 10.20.0.5:22 tcp']
    >>> bool((rtt["rtt_ms"] > 0).all())
    True
    """
    seg = _segments(packets)
    if seg.empty:
        return _empty()
    conn, direction = _connections(seg)
    seg["conn"], seg["dir"] = conn, direction
    flags = seg["flags"].to_numpy()
    synfin = (flags & (TCP_SYN | TCP_FIN)) != 0
    is_seg = (seg["len"].to_numpy() > 0) | synfin
    # one sequence space per (connection, direction): its segments' numbers and the other
    # direction's acknowledgement numbers, unwrapped together in frame order
    space_seg = conn * 2 + direction
    space_ack = conn * 2 + (1 - direction)
    n = len(seg)
    values = np.r_[seg["seq"].to_numpy(), seg["ack"].to_numpy()]
    spaces = np.r_[space_seg, space_ack]
    order_key = np.r_[np.arange(n) * 2, np.arange(n) * 2 + 1]
    by_time = np.argsort(order_key, kind="stable")
    unwrapped = np.empty(2 * n, np.int64)
    unwrapped[by_time] = _unwrap(values[by_time], spaces[by_time])
    useq, uack = unwrapped[:n], unwrapped[n:]
    nextseq = useq + seg["len"].to_numpy() + synfin
    samples = _vectorized(seg, is_seg, space_seg, space_ack, nextseq, uack)
    return _probes(seg, samples, useq)


def _vectorized(seg, is_seg, space_seg, space_ack, nextseq, uack):
    """(segment row, acknowledging row) of every RTT sample."""
    n = len(seg)
    # the acknowledging frames of each space, in frame order: every frame of the other side
    ack_order = np.lexsort((np.arange(n), space_ack))
    ack_space = space_ack[ack_order]
    seg_rows = np.flatnonzero(is_seg)
    sp = space_seg[seg_rows]
    hi = np.searchsorted(ack_space, sp, side="right")
    # first acknowledging frame after the segment (rows are frame-ordered within a space)
    width = np.int64(n + 1)
    after = np.searchsorted(ack_space.astype(np.int64) * width + ack_order,
                            sp.astype(np.int64) * width + seg_rows, side="right")
    # values offset per space so that a search never leaves its space
    span = np.int64(1) << 40
    base_val = uack[ack_order].min() if n else 0
    keyed = ack_space.astype(np.int64) * span + (uack[ack_order] - base_val)
    need = sp.astype(np.int64) * span + (nextseq[seg_rows] - base_val)
    reach = _first_reaching(keyed, after, need)
    deleted = reach < hi
    if not _fits(reach, sp, seg_rows, deleted, ack_order):
        return _replay(seg, is_seg, space_seg, space_ack, nextseq, uack)
    s_rows = seg_rows[deleted]
    a_rows = ack_order[reach[deleted]]
    exact = uack[a_rows] == nextseq[s_rows]
    s_rows, a_rows = s_rows[exact], a_rows[exact]
    # per acknowledging frame, the oldest segment it acknowledges exactly
    pick = pd.DataFrame({"s": s_rows, "a": a_rows}).groupby("a")["s"].min()
    return pick.to_numpy(), pick.index.to_numpy()


def _fits(reach, sp, seg_rows, deleted, ack_order) -> bool:
    """Did no direction ever hold MAX_UNACKED unacknowledged segments? (Then every segment
    was remembered, as the vectorized path assumes.)"""
    if len(seg_rows) < MAX_UNACKED:
        return True
    codes, _ = pd.factorize(sp)
    crowded = np.flatnonzero(np.bincount(codes) >= MAX_UNACKED)
    if not len(crowded):
        return True
    gone_at = np.full(len(seg_rows), np.iinfo(np.int64).max)
    gone_at[deleted] = ack_order[reach[deleted]]
    for c in crowded:  # only the directions with that many segments at all
        mine = codes == c
        gone = np.sort(gone_at[mine])
        rows = seg_rows[mine]
        alive = np.arange(len(rows)) - np.searchsorted(gone, rows, side="left")
        if alive.max() >= MAX_UNACKED:
            return False
    return True


def _replay(seg, is_seg, space_seg, space_ack, nextseq, uack):
    """Wireshark's walk, frame by frame (used when a direction fills its segment list)."""
    lists: dict[int, list[tuple[int, int]]] = {}
    s_out, a_out = [], []
    for j in range(len(seg)):
        pending = lists.get(int(space_ack[j]))
        if pending:
            a = int(uack[j])
            matched = None
            keep = []
            for i, nxt in pending:  # oldest first
                if nxt <= a:
                    if nxt == a and matched is None:
                        matched = i
                else:
                    keep.append((i, nxt))
            lists[int(space_ack[j])] = keep
            if matched is not None:
                s_out.append(matched)
                a_out.append(j)
        if is_seg[j]:
            mine = lists.setdefault(int(space_seg[j]), [])
            if len(mine) < MAX_UNACKED:
                mine.append((j, int(nextseq[j])))
    return np.array(s_out, np.int64), np.array(a_out, np.int64)


def _probes(seg: pd.DataFrame, samples, useq: np.ndarray) -> pd.DataFrame:
    s_rows, a_rows = samples
    t = seg["t"].to_numpy()
    rtt = (t[a_rows] - t[s_rows]) * 1000.0
    keep = rtt != 0  # Wireshark shows no RTT of exactly 0
    s_rows, a_rows, rtt = s_rows[keep], a_rows[keep], rtt[keep]
    if not len(s_rows):
        return _empty()
    order = np.argsort(a_rows, kind="stable")
    s_rows, a_rows, rtt = s_rows[order], a_rows[order], rtt[order]
    flags = seg["flags"].to_numpy()
    # relative sequence numbers: from the direction's SYN, else from its first segment - 1
    space = seg["conn"].to_numpy() * 2 + seg["dir"].to_numpy()
    first = pd.Series(np.arange(len(seg))).groupby(space).transform("min").to_numpy()
    syn_first = (flags[first] & TCP_SYN) != 0
    base = useq[first] - np.where(syn_first, 0, 1)
    rel = (useq - base) % _M32
    src, dst = seg["src"].to_numpy(), seg["dst"].to_numpy()
    sport, dport = seg["sport"].to_numpy(), seg["dport"].to_numpy()

    def endpoint(addr, port):
        text = str(addr)
        return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"

    streams = [f"{endpoint(src[i], sport[i])} > {endpoint(dst[i], dport[i])} tcp"
               for i in s_rows]
    kind = np.where((flags[s_rows] & TCP_SYN) != 0, "handshake",
                    np.where(seg["len"].to_numpy()[s_rows] > 0, "data", "fin"))
    probes = pd.DataFrame({
        "stream": streams,
        "host": [str(h) for h in dst[s_rows]],
        "tos": seg["tos"].to_numpy()[s_rows],
        "size": seg["len"].to_numpy()[s_rows],
        "seq": rel[s_rows],
        "t_sent": t[s_rows],
        "rtt_ms": rtt,
        "status": "ok",
        "ttl": seg["ttl"].to_numpy()[a_rows],
        "kind": kind,
        "segment_row": seg["label"].to_numpy()[s_rows],
        "ack_row": seg["label"].to_numpy()[a_rows],
    })
    return conform(probes, "probes", source="tcp_rtts")


def _empty() -> pd.DataFrame:
    out = empty_probes()
    out["kind"] = pd.Series(dtype="string")
    out["segment_row"] = pd.Series(dtype=np.int64)
    out["ack_row"] = pd.Series(dtype=np.int64)
    return out
