"""PACKETS-like frame → the numpy arrays the hash functions read (private).

One place that knows how PACKETS columns map to header fields, which optional columns exist
(:data:`OPTIONAL_COLUMNS`) and their defaults, how raw (``__be``) loads look on a host of a given
byte order, and how opaque ``addr_fold`` tokens get their identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..addresses import address_words
from ..errors import ConfigError
from .jhash import jhash

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "Header", "IPIP_KINDS", "column", "header",
           "tunnel_kinds", "raw16",
           "raw32", "bswap32", "tokens", "string_codes", "PORT_PROTOS", "check_frame"]

REQUIRED_COLUMNS = ("ip_version", "src", "dst", "proto", "sport", "dport", "tos", "frag",
                    "tunnel", "inner_src", "inner_dst", "inner_proto", "inner_sport",
                    "inner_dport")

#: Columns a capture cannot know, or may lack: name -> what it is and its default.
OPTIONAL_COLUMNS: dict[str, str] = {
    "mark": "skb->mark (fwmark); default 0",
    "priority": "skb->priority; default rt_tos2priority(TOS) of the (inner) IPv4 header, which is "
                "what ip_forward and the IP_TOS socket option set (profile's TOS table); 0 for "
                "IPv6 and non-IP",
    "iif": "skb->skb_iif (ingress ifindex of forwarded traffic); default 0 (locally generated)",
    "vlan": "VLAN id; NA or absent = untagged",
    "flow_label": "IPv6 flow label of the outer header; default 0",
    "spi": "ESP/AH SPI (gives proto-src/proto-dst halves for ESP and AH); default 0",
    "sk_token": "opaque addr_fold(skb->sk) token: one value per local socket, 0 for forwarded "
                "traffic; default 0 (no local socket: the capture cannot tell)",
    "route_token": "opaque addr_fold(skb_dst) token; default derived: one per route entry, "
                   "i.e. with the routing cache (profiles before 3.6) per (outer destination, "
                   "TOS & IPTOS_RT_MASK, mark), plus (source, iif) for forwarded packets "
                   "(iif != 0); per next hop after (column `nexthop` if present, else the "
                   "outer destination); 0 for non-IP",
    "nexthop": "next-hop address used to derive route tokens in profiles without routing cache",
    "nfct_token": "opaque addr_fold(conntrack) token, 0 without conntrack; default 0. When "
                  "non-zero the nfct-* keys read the packet's own (un-NATed) tuple",
    "sk_uid": "fsuid of the sending socket's file; default 0",
    "sk_gid": "fsgid of the sending socket's file; default 0",
    "rt_classid": "route realm (dst->tclassid); default 0",
    "l2_proto": "EtherType (skb->protocol); default 0x0800/0x86dd from ip_version, else 0",
    "inner_tos": "TOS byte of the inner IPv4 header (for the default priority); default outer TOS",
    "t": "packet time in seconds; needed only with a perturb schedule (`at`)",
}

#: IP protocols whose first four L4 bytes are (source port, destination port).
PORT_PROTOS = (6, 17, 136, 132, 33)  # TCP, UDP, UDP-Lite, SCTP, DCCP
ESP, AH = 50, 51


def check_frame(packets: pd.DataFrame, needed=REQUIRED_COLUMNS) -> None:
    """Raise :class:`ConfigError` naming missing PACKETS columns."""
    if not isinstance(packets, pd.DataFrame):
        raise ConfigError(f"packets: expected a PACKETS-like DataFrame, got {type(packets).__name__}")
    missing = [c for c in needed if c not in packets.columns]
    if missing:
        raise ConfigError(f"packets: missing column(s) {', '.join(missing)} "
                          "(expected a PACKETS-like frame, see qoslab.hashing.OPTIONAL_COLUMNS)")


def column(packets: pd.DataFrame, name: str, default: int = 0, dtype=np.uint32) -> np.ndarray:
    """Integer column with NA → ``default``; an absent column is all ``default``."""
    n = len(packets)
    if name not in packets.columns:
        return np.full(n, default, dtype=dtype)
    s = packets[name]
    if s.dtype == bool or s.dtype == "boolean":
        return s.fillna(bool(default)).to_numpy(dtype=bool).astype(dtype)
    try:
        values = pd.to_numeric(s, errors="raise")
    except (TypeError, ValueError):
        raise ConfigError(f"packets column {name!r}: expected integers, got {s.dtype}") from None
    arr = values.to_numpy(dtype="float64", na_value=np.nan) if values.hasnans or \
        values.dtype.kind == "f" else values.to_numpy()
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), default, arr)
    return (arr.astype(np.int64) & 0xFFFFFFFF).astype(dtype)


def present(packets: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean mask of non-NA values (all False if the column is absent)."""
    if name not in packets.columns:
        return np.zeros(len(packets), dtype=bool)
    return packets[name].notna().to_numpy()


def bswap32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.uint32).byteswap()


def raw32(host: np.ndarray, endianness: str = "little") -> np.ndarray:
    """The integer a ``(__force u32)`` load of a big-endian field gives on this host."""
    return bswap32(host) if endianness == "little" else np.asarray(host, dtype=np.uint32)


def raw16(host: np.ndarray, endianness: str = "little") -> np.ndarray:
    """The integer a ``(__force u16)`` load of a big-endian 16-bit field gives on this host."""
    h = np.asarray(host, dtype=np.uint32) & 0xFFFF
    return ((h >> 8) | ((h & 0xFF) << 8)).astype(np.uint32) if endianness == "little" else h


@dataclass
class Header:
    """One IP header level, as arrays of length N."""

    version: np.ndarray  # uint8: 4, 6 or 0 (not IP / absent)
    src: np.ndarray  # (N, 4) host-order words
    dst: np.ndarray
    proto: np.ndarray  # uint32
    sport: np.ndarray  # uint32 host order, 0 when absent
    dport: np.ndarray
    has_ports: np.ndarray  # bool: sport/dport columns were filled
    tos: np.ndarray
    frag: np.ndarray  # bool


def _version(values: np.ndarray) -> np.ndarray:
    return np.where((values == 4) | (values == 6), values, 0).astype(np.uint8)


#: The IP-in-IP tunnel kinds and the IP version they carry.
IPIP_KINDS = {"4in4": 4, "4in6": 4, "6in4": 6, "6in6": 6}


def tunnel_kinds(packets: pd.DataFrame) -> np.ndarray:
    """The ``tunnel`` column as an array of strings ("none" where missing)."""
    codes, cats = string_codes(packets["tunnel"])
    return np.array(cats + ["none"], dtype=object)[codes]


def header(packets: pd.DataFrame, level: str = "outer", *, kinds=None) -> Header:
    """Arrays of the outer or inner (tunnelled) IP header.

    ``kinds``: the tunnel kinds whose inner header counts (default the IP-in-IP kinds; the
    inner IP version of other kinds comes from ``inner_ip_version``); other rows get version 0.
    """
    n = len(packets)
    if level == "outer":
        ver = _version(column(packets, "ip_version"))
        p = ""
        tos = column(packets, "tos")
        frag = column(packets, "frag", 0, bool)
    else:
        codes, cats = string_codes(packets["tunnel"])
        kinds = tuple(IPIP_KINDS) if kinds is None else tuple(kinds)
        per_cat = np.array([IPIP_KINDS.get(c, 255) if c in kinds else 0 for c in cats] + [0],
                           dtype=np.uint8)
        ver = per_cat[codes]  # code -1 (missing) picks the trailing 0
        other = ver == 255  # a tunnel kind carrying IPv4 or IPv6: its inner_ip_version
        if other.any():
            iv = _version(column(packets, "inner_ip_version"))
            ver = np.where(other, iv, ver).astype(np.uint8)
        ver[~present(packets, "inner_src")] = 0
        p = "inner_"
        tos = column(packets, "inner_tos", 0) if "inner_tos" in packets else column(packets, "tos")
        frag = np.zeros(n, dtype=bool)
    sport_ok = present(packets, p + "sport") & present(packets, p + "dport")
    return Header(ver, address_words(packets[p + "src"]), address_words(packets[p + "dst"]),
                  column(packets, p + "proto"), column(packets, p + "sport"),
                  column(packets, p + "dport"), sport_ok, tos, frag)


def string_codes(values) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 = missing) and the strings they stand for, cheap for categoricals."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy().astype(np.int64), [str(c) for c in s.cat.categories]
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def tokens(kind: str, *parts) -> np.ndarray:
    """Opaque non-zero u32 tokens, one per distinct identity (the tuple of ``parts``).

    Stands for ``addr_fold(pointer)``: equal identities give equal tokens, different ones
    differ (up to a 2**-32 chance), and the value itself means nothing.
    """
    coded = [string_codes(x) for x in parts]
    key = np.zeros(len(coded[0][0]) if coded else 0, dtype=np.int64)
    for codes, cats in coded:
        key = key * (len(cats) + 1) + (codes + 1)
    inverse, uniques = pd.factorize(key)
    table = np.empty(len(uniques), dtype=np.uint32)
    for i, u in enumerate(uniques):
        rest, words = int(u), []
        for _codes, cats in reversed(coded):
            rest, c = divmod(rest, len(cats) + 1)
            words.append(cats[c - 1] if c else "")
        ident = "|".join([kind] + words[::-1])
        table[i] = jhash(ident.encode(), 0x9F1A5EED) | 1
    return table[inverse]
