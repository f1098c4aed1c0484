"""One readable name per flow, for every table that shows flows (sharing reports, occupancy
figures, replay's per-flow PROBES, widgets).

The format names the flow by its innermost header, as the qdiscs that look through tunnels
see it, then says what carried it::

    tcp 10.0.0.1:40000 > 10.0.9.1:22
    udp [2001:db8::1]:5353 > [ff02::fb]:5353
    icmp 10.0.0.1 > 10.0.1.1 id=0x1234 tos=0x10 via 4in4 192.0.2.1 > 198.51.100.1
    non-IP 0x0806

IPv6 addresses are bracketed where a port follows them, as in URLs. ``tos=`` appears when the TOS byte is not 0, ``id=`` for ICMP echo identifiers, and the
columns of :data:`EXTRAS` (which tell flows apart for the hashes that read them: the firewall
mark, ``skb->priority``, the VLAN id) wherever the frame has a value; a row without addresses
is named by its EtherType.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["flow_labels", "flow_label", "PROTOCOL_NAMES", "EXTRAS"]

#: IP protocol numbers named in labels (others print as ``proto N``).
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah",
                  58: "icmpv6", 132: "sctp", 136: "udplite"}

#: Columns shown as ``name=value`` where present: (column, format of the value).
EXTRAS = (("mark", "{:d}"), ("priority", "0x{:x}"), ("vlan", "{:d}"))

_NO_TUNNEL = ("none", "")


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as strings (NA where absent or missing); integers without ``.0``."""
    if name not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    col = frame[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object)
    if pd.api.types.is_float_dtype(col.dtype):
        col = col.astype("Int64")
    return col.astype("string")


def _ints(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as float (NaN where absent or missing)."""
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name].astype(object), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)


def _hex(values: np.ndarray, width: int, prefix: str) -> pd.Series:
    ok = ~np.isnan(values)
    out = np.full(len(values), "", dtype=object)
    out[ok] = [f"{prefix}0x{int(v):0{width}x}" for v in values[ok]]
    return pd.Series(out, dtype="string")


def _with_port(address: pd.Series, port: pd.Series, ports: pd.Series) -> pd.Series:
    """``address:port`` where the row has ports, IPv6 addresses in brackets (``[::1]:80``)."""
    text = address.fillna("?")
    v6 = text.str.contains(":", regex=False).fillna(False)
    host = text.where(~v6, "[" + text + "]")
    return text.where(~ports, host + ":" + port.fillna(""))


def flow_labels(packets: pd.DataFrame) -> pd.Series:
    """The label of each row's flow (a ``string`` Series named ``flow`` on ``packets``' index).

    Examples
    --------
    >>> p = pd.DataFrame({"src": ["10.0.0.1", "192.0.2.1", None], "dst": ["10.0.0.2",
    ...     "198.51.100.1", None], "proto": [17, 4, None], "sport": [5000, None, None],
    ...     "dport": [53, None, None], "tos": [0, 0, None], "tunnel": ["none", "4in4", "none"],
    ...     "inner_src": [None, "10.0.0.1", None], "inner_dst": [None, "10.0.1.1", None],
    ...     "inner_proto": [None, 1, None], "inner_icmp_id": [None, 0x1234, None],
    ...     "inner_tos": [None, 16, None], "l2_proto": [0x800, 0x800, 0x806]})
    >>> flow_labels(p).tolist()   # doctest: +NORMALIZE_WHITESPACE
    ['udp 10.0.0.1:5000 > 10.0.0.2:53',
     'icmp 10.0.0.1 > 10.0.1.1 id=0x1234 tos=0x10 via 4in4 192.0.2.1 > 198.51.100.1',
     'non-IP 0x0806']
    """
    frame = packets.reset_index(drop=True)
    n = len(frame)
    tunnel = _text(frame, "tunnel").fillna("none")
    inner = ~tunnel.isin(_NO_TUNNEL).to_numpy()

    def pick(name: str) -> pd.Series:
        outer = _text(frame, name)
        if not inner.any():
            return outer
        return outer.where(~inner, _text(frame, "inner_" + name))

    def pick_ints(name: str) -> np.ndarray:
        return np.where(inner, _ints(frame, "inner_" + name), _ints(frame, name))

    src, dst = pick("src"), pick("dst")
    proto = pick_ints("proto")
    names = np.array([PROTOCOL_NAMES.get(int(p), f"proto {int(p)}") if not np.isnan(p)
                      else "ip" for p in proto], dtype=object)
    sport, dport = pick("sport"), pick("dport")
    ports = sport.notna() & dport.notna()
    a = _with_port(src, sport, ports)
    b = _with_port(dst, dport, ports)
    label = pd.Series(names, dtype="string") + " " + a + " > " + b
    label = label + _hex(pick_ints("icmp_id"), 4, " id=")
    tos = pick_ints("tos")
    label = label + _hex(np.where(tos == 0, np.nan, tos), 2, " tos=")
    via = (" via " + tunnel + " " + _text(frame, "src").fillna("?") + " > "
           + _text(frame, "dst").fillna("?"))
    label = label.where(~inner, label + via)
    for name, fmt in EXTRAS:
        values = _ints(frame, name)
        if name in frame.columns and not np.isnan(values).all():
            ok = ~np.isnan(values)
            text = np.full(n, "", dtype=object)
            text[ok] = [f" {name}=" + fmt.format(int(v)) for v in values[ok]]
            label = label + pd.Series(text, dtype="string")
    non_ip = (src.isna() | dst.isna()).to_numpy()
    if non_ip.any():
        l2 = _ints(frame, "l2_proto")
        named = pd.Series(["non-IP"] * n, dtype="string") + _hex(l2, 4, " ")
        label = label.where(~non_ip, named)
    return pd.Series(label.to_numpy(), index=packets.index, dtype="string", name="flow")


def flow_label(row: pd.Series) -> str:
    """The label of one PACKETS row (a Series), as :func:`flow_labels` gives it.

    >>> flow_label(pd.Series({"src": "10.0.0.1", "dst": "10.0.9.1", "proto": 6,
    ...                      "sport": 40000, "dport": 22, "tos": 0, "tunnel": "none"}))
    'tcp 10.0.0.1:40000 > 10.0.9.1:22'
    >>> flow_label(pd.Series({"src": "2001:db8::1", "dst": "2001:db8::2:80", "proto": 6,
    ...                      "sport": 40000, "dport": 80, "tos": 0, "tunnel": "none"}))
    'tcp [2001:db8::1]:40000 > [2001:db8::2:80]:80'
    """
    return str(flow_labels(row.to_frame().T.infer_objects()).iloc[0])
