"""Flows in a PACKETS table: one row per 5-tuple, inner (tunnelled) or outer headers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["flows", "flow_keys", "FLOW_COLUMNS"]

#: Columns of the table :func:`flows` returns.
FLOW_COLUMNS = ("src", "dst", "proto", "sport", "dport", "tunnel", "first", "last", "duration",
                "packets", "bytes", "rate_bps", "tos")

_INNER = {"src": "inner_src", "dst": "inner_dst", "proto": "inner_proto",
          "sport": "inner_sport", "dport": "inner_dport", "tos": "inner_tos"}


def flow_keys(packets: pd.DataFrame, level: str = "inner") -> pd.DataFrame:
    """The flow-defining header fields of every packet at ``level``.

    ``"inner"`` reads the tunnelled header of IP-in-IP packets (and the only header of the
    others); ``"outer"`` reads the outermost IP header, so every packet of a tunnel is one flow.
    Columns: src, dst, proto, sport, dport, tos, tunnel.
    """
    if level not in ("inner", "outer"):
        raise ConfigError(f"flows: level must be 'inner' or 'outer', got {level!r}")
    keys = pd.DataFrame({c: packets[c] for c in ("src", "dst", "proto", "sport", "dport", "tos")})
    keys["tunnel"] = packets["tunnel"]
    if level == "inner":
        tunnelled = (packets["tunnel"] != "none").to_numpy()
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


def flows(packets: pd.DataFrame, level: str = "inner") -> pd.DataFrame:
    """One row per 5-tuple flow (src, dst, proto, sport, dport) found in ``packets``.

    Parameters
    ----------
    packets
        A PACKETS table (:func:`qoslab.read_capture`).
    level
        ``"inner"``: tunnelled packets count for the flow of their inner header;
        ``"outer"``: the outermost IP header defines the flow (a whole tunnel is one flow).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FLOW_COLUMNS`: first/last seen (``t`` seconds), duration, packets,
        bytes (wire length), mean rate in bit/s over the flow's duration (NaN for a single
        packet), the tunnel the flow travelled in, and the TOS byte values seen as text
        (``"0x00,0x10"``). Ordered by first packet; frames without IP are left out.

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
    keys = flow_keys(packets, level)
    keys["t"] = packets["t"].to_numpy()
    keys["wire_len"] = packets["wire_len"].to_numpy()
    keys = keys[keys["src"].notna().to_numpy()]
    by = ["src", "dst", "proto", "sport", "dport"]
    grouped = keys.groupby(by, dropna=False, observed=True, sort=False)
    out = grouped.agg(first=("t", "min"), last=("t", "max"), packets=("t", "size"),
                      bytes=("wire_len", "sum"), tunnel=("tunnel", "first"))
    tos = (keys.dropna(subset=["tos"]).drop_duplicates(by + ["tos"])
           .sort_values("tos").groupby(by, dropna=False, observed=True, sort=False)["tos"]
           .agg(lambda s: ",".join(f"0x{int(v):02x}" for v in s)))
    out = out.join(tos.rename("tos"), how="left")
    out = out.reset_index()
    out["duration"] = out["last"] - out["first"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = out["bytes"].to_numpy(float) * 8 / out["duration"].to_numpy(float)
    out["rate_bps"] = np.where(out["duration"].to_numpy() > 0, rate, np.nan)
    out["tos"] = out["tos"].fillna("").astype("string")
    out = out.sort_values(["first", "src", "dst"], kind="stable").reset_index(drop=True)
    return out[list(FLOW_COLUMNS)]
