"""Flows in a PACKETS table: one row per 5-tuple, inner (tunnelled) or outer headers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engines.dispatch import dask_aware
from ..errors import ConfigError
from .frame import address_sort_key
from .reader import concat_packets

__all__ = ["flows", "flow_keys", "flow_partials", "flows_from_partials", "FLOW_COLUMNS"]

#: Columns of the table :func:`flows` returns.
FLOW_COLUMNS = ("src", "dst", "proto", "sport", "dport", "tunnel", "first", "last", "duration",
                "packets", "bytes", "rate_bps", "tos")

_INNER = {"src": "inner_src", "dst": "inner_dst", "proto": "inner_proto",
          "sport": "inner_sport", "dport": "inner_dport", "tos": "inner_tos"}


def flow_keys(packets: pd.DataFrame, level: str = "inner") -> pd.DataFrame:
    """The flow-defining header fields of every packet at ``level``.

    ``"inner"`` reads the tunnelled IP header of tunnelled packets (IP-in-IP, GRE, NVGRE,
    VXLAN, Geneve; the only header of the others); ``"outer"`` reads the outermost IP header,
    so every packet of a tunnel is one flow.
    Columns: src, dst, proto, sport, dport, tos, tunnel.
    """
    if level not in ("inner", "outer"):
        raise ConfigError(f"flows: level must be 'inner' or 'outer', got {level!r}")
    keys = pd.DataFrame({c: packets[c] for c in ("src", "dst", "proto", "sport", "dport", "tos")})
    keys["tunnel"] = packets["tunnel"]
    if level == "inner":
        # the inner header where a tunnel was opened (not an ARP frame inside VXLAN, nor a
        # GRE payload qoslab does not open: those count for their outer flow)
        tunnelled = packets["inner_src"].notna().to_numpy()
        if tunnelled.any():
            for col, inner in _INNER.items():
                outer = keys[col]
                if isinstance(outer.dtype, pd.CategoricalDtype):
                    both = pd.api.types.union_categoricals([outer, packets[inner]])
                    cats = both.categories
                    merged = pd.Categorical(outer, categories=cats)
                    inner_vals = pd.Categorical(packets[inner], categories=cats)
                    codes = np.where(tunnelled, inner_vals.codes, merged.codes)
                    keys[col] = pd.Categorical.from_codes(codes, categories=cats)
                else:
                    keys[col] = outer.where(~tunnelled, packets[inner])
    return keys


@dask_aware("flows")
def flows(packets: pd.DataFrame, level: str = "inner") -> pd.DataFrame:
    """One row per 5-tuple flow (src, dst, proto, sport, dport) found in ``packets``.

    Parameters
    ----------
    packets
        A PACKETS table (:func:`qoslab.read_capture`), or a Dask one
        (:func:`qoslab.read_captures` with ``engine="dask"``: computed partition by partition
        with :func:`flow_partials`, combined with :func:`flows_from_partials`).
    level
        ``"inner"``: tunnelled packets count for the flow of their inner header;
        ``"outer"``: the outermost IP header defines the flow (a whole tunnel is one flow).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FLOW_COLUMNS`: first/last seen (``t`` seconds), duration, packets,
        bytes (wire length), mean rate in bit/s over the flow's duration (NaN for a single
        packet), the tunnel the flow travelled in, and the TOS byte values seen as text
        (``"0x00,0x10"``). Ordered by first packet; frames without IP are left out. ``src``
        and ``dst`` are categories of the addresses present, in address order.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> inner, outer = flows(pk, "inner"), flows(pk, "outer")
    >>> len(inner) > len(outer)
    True
    >>> int(inner["packets"].sum()) == int(pk["src"].notna().sum())
    True
    """
    return flows_from_partials(flow_partials(packets, level))


def flow_partials(packets: pd.DataFrame, level: str = "inner") -> pd.DataFrame:
    """Partial flow table of ``packets``: one row per flow and TOS value, in order of first
    packet, with first/last ``t``, packets, bytes and the tunnel of its first packet.

    The partials of consecutive pieces of a table (chunks, Dask partitions), concatenated in
    order, give :func:`flows_from_partials` exactly the table's :func:`flows`.

    Examples
    --------
    >>> from qoslab import data_path, read_capture
    >>> pk = read_capture(data_path("captures/tunnel_uploads.pcap"))
    >>> halves = [flow_partials(pk.iloc[:4000]), flow_partials(pk.iloc[4000:])]
    >>> flows_from_partials(halves).equals(flows(pk))
    True
    """
    keys = flow_keys(packets, level)
    keys["t"] = packets["t"].to_numpy()
    keys["wire_len"] = packets["wire_len"].to_numpy()
    keys = keys[keys["src"].notna().to_numpy()]
    grouped = keys.groupby(_BY + ["tos"], dropna=False, observed=True, sort=False)
    out = grouped.agg(first=("t", "min"), last=("t", "max"), packets=("t", "size"),
                      bytes=("wire_len", "sum"), tunnel=("tunnel", "first"))
    return out.reset_index()


def flows_from_partials(partials) -> pd.DataFrame:
    """Combine :func:`flow_partials` (a list in table order, or their concatenation) into
    the flow table :func:`flows` returns."""
    if isinstance(partials, pd.DataFrame):
        parts = partials
    else:
        partials = [p for p in partials if len(p)] or list(partials[:1])
        parts = concat_packets(partials) if len(partials) > 1 else partials[0]
    parts = parts.reset_index(drop=True)
    grouped = parts.groupby(_BY, dropna=False, observed=True, sort=False)
    out = grouped.agg(first=("first", "min"), last=("last", "max"), packets=("packets", "sum"),
                      bytes=("bytes", "sum"), tunnel=("tunnel", "first"))
    out = out.reset_index()
    out["tos"] = _tos_text(grouped.ngroup().to_numpy(), parts["tos"], len(out))
    out["packets"] = out["packets"].astype(np.int64)
    out["bytes"] = out["bytes"].astype(np.int64)
    out["duration"] = out["last"] - out["first"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = out["bytes"].to_numpy(float) * 8 / out["duration"].to_numpy(float)
    out["rate_bps"] = np.where(out["duration"].to_numpy() > 0, rate, np.nan)
    out["tos"] = out["tos"].astype("string")
    for col in ("src", "dst"):
        out[col] = _in_address_order(out[col])
    out = out.sort_values(["first", "src", "dst"], kind="stable").reset_index(drop=True)
    return out[list(FLOW_COLUMNS)]


_BY = ["src", "dst", "proto", "sport", "dport"]
_TOS_TEXT = np.array([f"0x{v:02x}" for v in range(256)], dtype=object)


def _tos_text(flow: np.ndarray, tos: pd.Series, n: int) -> np.ndarray:
    """Per flow, its distinct TOS values in increasing order as ``"0x00,0x10"`` ("" if none).

    Vectorized: one pass per rank of a value within its flow (a flow rarely has more than a
    few TOS values), never a Python call per flow.
    """
    seen = tos.notna().to_numpy()
    key = np.unique(flow[seen].astype(np.int64) * 256 + tos.to_numpy(
        dtype=np.int64, na_value=0)[seen])
    code, value = key // 256, key % 256
    first = np.searchsorted(code, code, side="left")
    rank = np.arange(len(key)) - first
    text = np.full(n, "", dtype=object)
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        at = rank == r
        text[code[at]] = text[code[at]] + ("," if r else "") + _TOS_TEXT[value[at]]
    return text


def _in_address_order(values: pd.Series) -> pd.Series:
    """A categorical of the values present, categories in address order (text order for
    values that are not addresses)."""
    present = pd.unique(values.dropna().astype(str))
    try:
        order = sorted(present, key=address_sort_key)
    except ValueError:
        order = sorted(present)
    return pd.Series(pd.Categorical(values.astype(object), categories=pd.Index(order, dtype=str)),
                     index=values.index, name=values.name)
