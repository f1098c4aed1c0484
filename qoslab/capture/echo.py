"""ICMP / ICMPv6 echo round trips in a PACKETS table, as PROBES rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..schema import conform, empty_probes, stream_label

__all__ = ["echo_rtts", "echo_candidates", "ECHO_TYPES"]

#: (request type, reply type) per IP version.
ECHO_TYPES = {4: (8, 0), 6: (128, 129)}


def _innermost(packets: pd.DataFrame) -> pd.DataFrame:
    tun = (packets["tunnel"] != "none").to_numpy()

    def pick(outer, inner):
        o, i = packets[outer], packets[inner]
        if isinstance(o.dtype, pd.CategoricalDtype):
            return np.where(tun, i.astype(object), o.astype(object))
        return np.where(tun, i.astype("Int64").to_numpy(dtype=float, na_value=np.nan),
                        o.astype("Int64").to_numpy(dtype=float, na_value=np.nan))

    icmp_version = np.where(tun, np.where(packets["tunnel"].astype(str).str[0] == "6", 6, 4),
                            packets["ip_version"].to_numpy(dtype=float, na_value=np.nan))
    return pd.DataFrame({
        "t": packets["t"].to_numpy(),
        "version": icmp_version,
        "src": pick("src", "inner_src"),
        "dst": pick("dst", "inner_dst"),
        "type": pick("icmp_type", "inner_icmp_type"),
        "id": pick("icmp_id", "inner_icmp_id"),
        "seq": pick("icmp_seq", "inner_icmp_seq"),
        "tos": pick("tos", "inner_tos"),
        "ttl": np.where(tun, np.nan, packets["ttl"].to_numpy(dtype=float, na_value=np.nan)),
        "l4_len": packets["l4_len"].to_numpy(dtype=float, na_value=np.nan),
    })


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
    return packets[keep]


@dask_aware("echo_rtts")
def echo_rtts(packets: pd.DataFrame, *, timeout: float = 10.0) -> pd.DataFrame:
    """Pair ICMP / ICMPv6 echo requests with their replies: one PROBES row per request.

    A request (type 8 / 128) is answered by the first reply (type 0 / 129) from its destination
    back to its source with the same identifier and sequence number within ``timeout``
    seconds; tunnelled pings are read from the inner header. Requests without such a reply
    are ``lost`` (``rtt_ms`` NaN); further replies to the same request are extra rows with
    status ``duplicate`` (as ping reports ``DUP!``).

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

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> probes = echo_rtts(read_capture(data_path("captures/tunnel_uploads.pcap")))
    >>> sorted(probes["tos"].unique().tolist())
    [0, 8, 16]
    >>> bool((probes["rtt_ms"].dropna() > 0).all())
    True
    """
    pk = _innermost(packets)
    version = pk["version"]
    is_req = ((version == 4) & (pk["type"] == 8)) | ((version == 6) & (pk["type"] == 128))
    is_rep = ((version == 4) & (pk["type"] == 0)) | ((version == 6) & (pk["type"] == 129))
    ok = pk["id"].notna() & pk["seq"].notna()
    req = pk[is_req & ok].copy()
    rep = pk[is_rep & ok].copy()
    if req.empty:
        return empty_probes()
    req["row"] = np.arange(len(req))
    # A reply goes from the request's destination back to its source.
    req["a"], req["b"] = req["src"].astype(str), req["dst"].astype(str)
    rep["a"], rep["b"] = rep["dst"].astype(str), rep["src"].astype(str)
    keys = ["a", "b", "id", "seq"]
    rep = rep.rename(columns={"t": "t_reply", "ttl": "ttl_reply"})[keys + ["t_reply", "ttl_reply"]]
    cand = req[keys + ["row", "t"]].merge(rep, on=keys)
    cand = cand[(cand["t_reply"] >= cand["t"]) & (cand["t_reply"] - cand["t"] <= timeout)]
    cand = cand.sort_values(["row", "t_reply"], kind="stable")
    rank = cand.groupby("row").cumcount().to_numpy()
    first = cand[rank == 0][["row", "t_reply", "ttl_reply"]]
    paired = req.merge(first, on="row", how="left")
    paired["status"] = np.where(paired["t_reply"].notna(), "ok", "lost")
    # Further replies to an answered request are kept as their own "duplicate" rows.
    dups = req.drop(columns=["ttl"]).merge(
        cand[rank > 0][["row", "t_reply", "ttl_reply"]], on="row")
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
    })
    return conform(probes, "probes", source="echo_rtts")
