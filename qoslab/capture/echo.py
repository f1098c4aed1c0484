"""ICMP / ICMPv6 echo round trips in a PACKETS table, as PROBES rows.

Pings are read from the innermost IP header (a tunnelled one when the tunnel was opened).
Fragmented pings are paired on their reassembled datagram, as Wireshark pairs them: the
datagram's full size, at the time of the fragment that completed it. Fragments are grouped by
source, destination, identification and protocol; a completed datagram leaves the
reassembly, so later fragments with the same key (a duplicated datagram, a reused
identification) start a new one, as they do in Linux and Wireshark, and so does a group quiet
for :data:`REASSEMBLY_TIMEOUT` seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..schema import conform, empty_probes, stream_label

__all__ = ["echo_rtts", "echo_candidates", "reassembled", "ECHO_TYPES", "REASSEMBLY_TIMEOUT"]

#: (request type, reply type) per IP version.
ECHO_TYPES = {4: (8, 0), 6: (128, 129)}
#: Rounds of vectorized reassembly (each settles one datagram per key); keys shared by more
#: datagrams are finished fragment by fragment.
MAX_ROUNDS = 8
#: Seconds after which a fragment no longer joins earlier ones (Linux ipfrag_time).
REASSEMBLY_TIMEOUT = 30.0


def _num(series: pd.Series) -> np.ndarray:
    return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _innermost(packets: pd.DataFrame) -> pd.DataFrame:
    """The fields of the innermost decoded IP header of every packet (one row each)."""
    tun = packets["inner_ip_version"].notna().to_numpy()

    def pick(outer, inner):
        o, i = packets[outer], packets[inner]
        if isinstance(o.dtype, pd.CategoricalDtype):
            return np.where(tun, i.astype(object), o.astype(object))
        if o.dtype == bool:
            return np.where(tun, i.to_numpy(), o.to_numpy())
        return np.where(tun, _num(i), _num(o))

    return pd.DataFrame({
        "row": packets.index.to_numpy(),
        "t": packets["t"].to_numpy(),
        "version": pick("ip_version", "inner_ip_version"),
        "src": pick("src", "inner_src"),
        "dst": pick("dst", "inner_dst"),
        "proto": pick("proto", "inner_proto"),
        "type": pick("icmp_type", "inner_icmp_type"),
        "id": pick("icmp_id", "inner_icmp_id"),
        "seq": pick("icmp_seq", "inner_icmp_seq"),
        "tos": pick("tos", "inner_tos"),
        "ttl": np.where(tun, np.nan, _num(packets["ttl"])),
        "l4_len": _num(packets["l4_len"]),
        "frag_offset": pick("frag_offset", "inner_frag_offset"),
        "frag_more": pick("frag_more", "inner_frag_more"),
        "ip_id": pick("ip_id", "inner_ip_id"),
    })


def reassembled(pk: pd.DataFrame) -> pd.DataFrame:
    """One row per complete fragmented datagram of ``pk`` (rows of :func:`_innermost`), with
    the first fragment's header fields, ``l4_len`` the whole payload and ``t`` the time of the
    fragment that completed it (the first moment every byte had been seen)."""
    frag = (pk["frag_more"].to_numpy(dtype=bool)
            | (np.nan_to_num(pk["frag_offset"].to_numpy(dtype=float)) > 0))
    fr = pk[frag & pk["ip_id"].notna().to_numpy() & pk["l4_len"].notna().to_numpy()].copy()
    if fr.empty:
        return pk.iloc[:0]
    fr["frame"] = np.arange(len(fr))
    key = ["version", "src", "dst", "proto", "ip_id"]
    fr = fr.sort_values(key + ["frame"], kind="stable", na_position="last")
    for col in ("src", "dst"):
        fr[col] = fr[col].astype(str)
    grp = fr.groupby(key, sort=False, dropna=False)
    quiet = grp["t"].diff().to_numpy() > REASSEMBLY_TIMEOUT  # a new datagram, same key
    fr["gen"] = pd.Series(quiet.astype(np.int64), index=fr.index).groupby(
        grp.ngroup()).cumsum().to_numpy()
    dgram = fr.groupby(key + ["gen"], sort=False, dropna=False).ngroup().to_numpy(copy=True)
    start = fr["frag_offset"].to_numpy(dtype=float) * 8
    end = start + fr["l4_len"].to_numpy(dtype=float)
    last = ~fr["frag_more"].to_numpy(dtype=bool)
    # A completed datagram leaves the reassembly: a later fragment with the same key (a
    # duplicated datagram, a reused identification) starts a new one, as in Linux and
    # Wireshark. Each round settles every datagram up to its completion.
    n = len(fr)
    at = np.full(n, n)
    fresh = np.ones(n, bool)
    total = np.full(n, np.nan)
    todo = np.arange(n)
    for _ in range(MAX_ROUNDS):
        sub = _completion(dgram[todo], start[todo], end[todo], last[todo])
        at[todo] = np.where(sub[0] < len(todo), todo[np.minimum(sub[0], len(todo) - 1)], n)
        fresh[todo], total[todo] = sub[1], sub[2]
        later = (sub[0] < len(todo)) & (np.arange(len(todo)) > sub[0])
        if not later.any():
            break
        todo = todo[later]  # the rest of each datagram: a new one
    else:  # many datagrams share a key: walk the rest fragment by fragment
        sub = _completion_walk(dgram[todo], start[todo], end[todo], last[todo])
        at[todo] = np.where(sub[0] < len(todo), todo[np.minimum(sub[0], len(todo) - 1)], n)
        fresh[todo], total[todo] = sub[1], sub[2]
    first = (start == 0) & fresh & (at < len(fr))
    out = fr[first].copy()
    completing = at[first]
    out["t"] = fr["t"].to_numpy()[completing]
    out["row"] = fr["row"].to_numpy()[completing]
    out["l4_len"] = total[completing]
    return out.drop(columns=["frame", "gen"])


def _completion(dgram, start, end, last):
    """Per fragment (grouped by ``dgram``, in capture order): the position of the fragment
    completing its datagram (``len`` when none does: the first moment every byte from 0 to
    the end its first last fragment states had been seen, overlapping fragments counted
    once), whether it is the first copy of its offset, and the datagram's total length (NaN
    without a last fragment)."""
    n = len(dgram)
    pos = np.arange(n)
    fresh = ~pd.DataFrame({"d": dgram, "s": start}).duplicated().to_numpy()
    first_last = pd.Series(np.where(last, pos, n)).groupby(dgram).transform("min").to_numpy()
    total = np.where(first_last < n, end[np.minimum(first_last, n - 1)], np.nan)
    # elementary pieces between the fragments' boundaries; each is seen at the earliest
    # fragment covering it; the datagram is complete when every piece below its total is
    bound = 1 << 21  # above any IP offset + length
    edge = np.unique(np.r_[dgram * bound + start, dgram * bound + end].astype(np.int64))
    seg_d, seg_s = edge // bound, edge % bound
    lo = np.searchsorted(edge, (dgram * bound + start).astype(np.int64))
    hi = np.searchsorted(edge, (dgram * bound + end).astype(np.int64))
    count = hi - lo
    idx = np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count,
                                                                    count)
    seen = np.full(len(edge), n)
    np.minimum.at(seen, idx, np.repeat(pos, count))
    d_total = pd.Series(total).groupby(dgram).first()
    seg_total = d_total.reindex(seg_d).to_numpy()
    inside = seg_s < seg_total  # pieces below the total (the last edge starts none)
    pieces = pd.DataFrame({"d": seg_d[inside], "s": seg_s[inside], "seen": seen[inside]})
    per_d = pieces.groupby("d").agg(lowest=("s", "min"), when=("seen", "max"))
    ok = (per_d["lowest"] == 0) & (per_d["when"] < n)
    when = np.maximum(per_d["when"], pd.Series(first_last, index=dgram).groupby(level=0)
                      .first().reindex(per_d.index))
    done_at = pd.Series(np.where(ok, when, n), index=per_d.index)
    at = done_at.reindex(dgram).fillna(n).to_numpy(dtype=np.int64)
    return at, fresh, total


def _completion_walk(dgram, start, end, last):
    """:func:`_completion` with every completed datagram leaving the reassembly, one
    fragment at a time (for keys shared by many datagrams)."""
    n = len(dgram)
    at, fresh, total = np.full(n, n), np.ones(n, bool), np.full(n, np.nan)
    open_ = {}  # key -> (rows, pieces, offsets, total)
    for i in range(n):
        rows, pieces, offsets, size = open_.setdefault(int(dgram[i]), ([], [], set(), [None]))
        rows.append(i)
        fresh[i] = start[i] not in offsets
        offsets.add(start[i])
        pieces.append((start[i], end[i]))
        if last[i] and size[0] is None:
            size[0] = end[i]
        if size[0] is None:
            continue
        reach = 0.0
        for s, e in sorted(pieces):
            if s > reach:
                break
            reach = max(reach, e)
        if reach >= size[0]:
            at[rows] = i
            total[rows] = size[0]
            del open_[int(dgram[i])]
    for rows, _, _, size in open_.values():
        total[rows] = np.nan if size[0] is None else size[0]
    return at, fresh, total


def _datagrams(packets: pd.DataFrame) -> pd.DataFrame:
    """Every unfragmented packet and every reassembled datagram, innermost headers."""
    pk = _innermost(packets)
    frag = (pk["frag_more"].to_numpy(dtype=bool)
            | (np.nan_to_num(pk["frag_offset"].to_numpy(dtype=float)) > 0))
    whole = pk[~frag]
    again = reassembled(pk)
    if again.empty:
        return whole
    for col in ("src", "dst"):
        again[col] = again[col].astype(object)
    return pd.concat([whole, again]).sort_values("t", kind="stable")


def echo_candidates(packets: pd.DataFrame) -> pd.DataFrame:
    """The rows :func:`echo_rtts` can use: ICMP/ICMPv6 echo requests and replies (outer or
    tunnelled header) and IP fragments.

    ``echo_rtts(packets)`` equals ``echo_rtts(echo_candidates(packets))``, and the
    candidates of consecutive pieces of a table, concatenated in order, pair exactly as the
    whole table does — requests and replies in different files or chunks included. The Dask
    engine collects them partition by partition and pairs them once.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> echo_rtts(echo_candidates(pk)).equals(echo_rtts(pk))
    True
    """
    types = {t for pair in ECHO_TYPES.values() for t in pair}
    keep = packets["icmp_type"].isin(types).to_numpy(dtype=bool, na_value=False)
    keep |= packets["inner_icmp_type"].isin(types).to_numpy(dtype=bool, na_value=False)
    keep |= packets["frag"].to_numpy(dtype=bool)
    keep |= packets["inner_frag_more"].to_numpy(dtype=bool)
    keep |= packets["inner_frag_offset"].fillna(0).to_numpy(dtype=np.int64) > 0
    return packets[keep]


@dask_aware("echo_rtts")
def echo_rtts(packets: pd.DataFrame, *, timeout: float = 10.0) -> pd.DataFrame:
    """Pair ICMP / ICMPv6 echo requests with their replies: one PROBES row per request.

    A request (type 8 / 128) is answered by the first reply (type 0 / 129) from its destination
    back to its source with the same identifier and sequence number within ``timeout``
    seconds; tunnelled pings are read from the inner header, and fragmented pings are paired
    on their reassembled datagram (its full size, the time of the fragment that completed it:
    Wireshark's ``icmp.resptime``). Requests without such a reply are ``lost`` (``rtt_ms``
    NaN); further replies to the same request are extra rows with status ``duplicate`` (as
    ping reports ``DUP!``).

    Parameters
    ----------
    packets
        A PACKETS table (:func:`qoslab.read_capture`), or a Dask one
        (:func:`qoslab.read_captures`, ``engine="dask"``): its :func:`echo_candidates` are
        collected partition by partition and paired here, so a reply in the next chunk or
        file still finds its request.
    timeout
        Seconds after which an unanswered request counts as lost.

    Returns
    -------
    pandas.DataFrame
        PROBES (:data:`qoslab.schema.PROBES`): ``stream`` is ``"<dst> tos=0x.. size=N"``
        (N = ICMP payload bytes), ``host`` the request's destination, ``t_sent`` the
        capture's ``t``, ``ttl`` the reply's TTL / hop limit (outer header; NA in a tunnel).
        Extra columns ``request_row`` and ``reply_row``: the index labels in ``packets`` of the
        request and of the reply (of the fragment that completed a fragmented one; NA when
        lost).

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> probes = echo_rtts(read_capture(data_path("captures/tunnel_uploads.pcap")))
    >>> sorted(probes["tos"].unique().tolist())
    [0, 8, 16]
    >>> bool((probes["rtt_ms"].dropna() > 0).all())
    True
    """
    pk = _datagrams(packets)
    version = pk["version"]
    is_req = ((version == 4) & (pk["type"] == 8)) | ((version == 6) & (pk["type"] == 128))
    is_rep = ((version == 4) & (pk["type"] == 0)) | ((version == 6) & (pk["type"] == 129))
    ok = pk["id"].notna() & pk["seq"].notna()
    req = pk[is_req & ok].copy()
    rep = pk[is_rep & ok].copy()
    if req.empty:
        out = empty_probes()
        out["request_row"] = pd.Series(dtype="Int64")
        out["reply_row"] = pd.Series(dtype="Int64")
        return out
    req = req.rename(columns={"row": "request_row"})
    req["row"] = np.arange(len(req))
    # A reply goes from the request's destination back to its source.
    req["a"], req["b"] = req["src"].astype(str), req["dst"].astype(str)
    rep["a"], rep["b"] = rep["dst"].astype(str), rep["src"].astype(str)
    keys = ["a", "b", "id", "seq"]
    rep = rep.rename(columns={"t": "t_reply", "ttl": "ttl_reply", "row": "reply_row"})[
        keys + ["t_reply", "ttl_reply", "reply_row"]]
    cand = req[keys + ["row", "t"]].merge(rep, on=keys)
    cand = cand[(cand["t_reply"] >= cand["t"]) & (cand["t_reply"] - cand["t"] <= timeout)]
    cand = cand.sort_values(["row", "t_reply"], kind="stable")
    rank = cand.groupby("row").cumcount().to_numpy()
    first = cand[rank == 0][["row", "t_reply", "ttl_reply", "reply_row"]]
    paired = req.merge(first, on="row", how="left")
    paired["status"] = np.where(paired["t_reply"].notna(), "ok", "lost")
    # Further replies to an answered request are kept as their own "duplicate" rows.
    dups = req.drop(columns=["ttl"]).merge(
        cand[rank > 0][["row", "t_reply", "ttl_reply", "reply_row"]], on="row")
    dups["status"] = "duplicate"
    rows = pd.concat([paired, dups], ignore_index=True).sort_values(
        ["t", "row", "t_reply"], kind="stable")
    size = rows["l4_len"] - 8
    streams = [stream_label(h, int(t) if t == t else None, int(s) if s == s else None)
               for h, t, s in zip(rows["b"], rows["tos"], size, strict=True)]
    probes = pd.DataFrame({
        "stream": streams,
        "host": rows["b"].to_numpy(),
        "tos": rows["tos"].to_numpy(),
        "size": size.to_numpy(),
        "seq": rows["seq"].to_numpy(),
        "t_sent": rows["t"].to_numpy(),
        "rtt_ms": (rows["t_reply"] - rows["t"]).to_numpy() * 1000.0,
        "status": rows["status"].to_numpy(),
        "ttl": rows["ttl_reply"].to_numpy(),
        "request_row": rows["request_row"].to_numpy(),
        "reply_row": pd.array(rows["reply_row"].to_numpy(dtype=float, na_value=np.nan),
                              dtype="Float64").astype("Int64"),
    })
    return conform(probes, "probes", source="echo_rtts")
