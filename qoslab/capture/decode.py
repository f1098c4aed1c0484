"""Vectorized IP / transport / IP-in-IP decoding of a batch of frames.

Each stage gathers the bytes it needs for all packets of a layout at once (see
:mod:`._bytes`), so the cost per packet is a few numpy operations, never Python code.
Stages: link layer (:mod:`.linktypes`) → outer IPv4/IPv6 (IPv6 extension headers walked in
lock step) → transport (ports, ICMP, ESP/AH SPI) → for protocol 4 / 41 the inner IP header and
its transport. A malformed or cut header sets ``problem`` and leaves every field decoded
before it.
"""

from __future__ import annotations

import numpy as np

from ._bytes import ByteSource, be16, be32
from .linktypes import ETH_P_IP, ETH_P_IPV6, decode_link
from .records import RecordBatch

__all__ = ["PROBLEMS", "TUNNELS", "Decoded", "decode_batch", "PORT_PROTOCOLS"]

#: Values of the ``problem`` column, in the order they are checked ("" = clean).
PROBLEMS: tuple[str, ...] = (
    "",
    "unsupported_link",
    "truncated",
    "bad_ip_header",
    "bad_ext_header",
    "bad_inner_ip_header",
)
#: Values of the ``tunnel`` column: outer version + inner version.
TUNNELS: tuple[str, ...] = ("none", "4in4", "6in4", "4in6", "6in6")
#: Transport protocols whose first four bytes are source and destination port.
PORT_PROTOCOLS = (6, 17, 33, 132, 136)  # TCP, UDP, DCCP, SCTP, UDP-Lite
#: Minimum transport header length: a shorter capture is flagged ``truncated``.
_MIN_L4 = {6: 20, 17: 8, 33: 12, 132: 12, 136: 8, 1: 8, 58: 8, 50: 8, 51: 12}
#: ICMP types carrying identifier and sequence (echo, timestamp, information, address mask).
_ICMP4_ID_TYPES = (0, 8, 13, 14, 15, 16, 17, 18)
_ICMP6_ID_TYPES = (128, 129)
#: IPv6 extension headers walked to reach the transport.
_IPV6_EXT = (0, 43, 44, 60)  # hop-by-hop, routing, fragment, destination options
_MAX_EXT = 16
_P = {name: code for code, name in enumerate(PROBLEMS)}


class Decoded:
    """Columns of a decoded batch: ``values[name]`` with ``valid[name]`` (False = NA)."""

    def __init__(self, n: int):
        self.n = n
        self.values: dict[str, np.ndarray] = {}
        self.valid: dict[str, np.ndarray] = {}
        self.addr: dict[str, list] = {}  # name -> [(rows, 4 | 6, values)]
        self.problem = np.zeros(n, np.int8)

    def put(self, name: str, rows: np.ndarray, values: np.ndarray, ok=None) -> None:
        """Set ``name`` at ``rows`` (where ``ok``) to ``values``."""
        if name not in self.values:
            self.values[name] = np.zeros(self.n, np.int64)
            self.valid[name] = np.zeros(self.n, bool)
        if ok is not None:
            rows, values = rows[ok], values[ok]
        self.values[name][rows] = values
        self.valid[name][rows] = True

    def put_addr(self, name: str, rows: np.ndarray, version: int, values: np.ndarray,
                 ok: np.ndarray) -> None:
        self.addr.setdefault(name, []).append((rows[ok], version, values[ok]))

    def flag(self, rows: np.ndarray, problem: str, where=None) -> None:
        """Record ``problem`` at ``rows`` (where ``where``) unless one is already recorded."""
        if where is not None:
            rows = rows[where]
        rows = rows[self.problem[rows] == 0]
        self.problem[rows] = _P[problem]


def decode_batch(src: ByteSource, batch: RecordBatch) -> Decoded:
    """Decode every frame of ``batch``; see the module docstring for the stages."""
    n = len(batch)
    out = Decoded(n)
    link = decode_link(src, batch.data_off, batch.cap_len, batch.linktype)
    everyone = np.arange(n)
    out.flag(everyone, "unsupported_link", ~link.known)
    out.flag(everyone, "truncated", link.truncated)
    out.put("l2_proto", everyone, link.l2_proto, link.l2_proto >= 0)
    out.put("vlan", everyone, link.vlan, link.vlan >= 0)
    end = batch.data_off + batch.cap_len
    for version, ethertype in ((4, ETH_P_IP), (6, ETH_P_IPV6)):
        rows = np.flatnonzero(link.l2_proto == ethertype)
        if len(rows):
            pos = link.l3_off[rows]
            ip = _decode_ip(src, out, "", rows, pos, end[rows] - pos, version)
            _decode_l4(src, out, "", *ip)
    return out


def _decode_ip(src, out: Decoded, prefix: str, rows, pos, avail, version: int):
    """Decode IPv``version`` headers at ``pos``; return what the transport stage needs."""
    m = src.rows(pos, 40 if version == 6 else 24, avail)
    bad_version = (m[:, 0] >> 4 != version) & (avail >= 1)
    bad_code = "bad_ip_header" if not prefix else "bad_inner_ip_header"
    out.flag(rows, bad_code, bad_version)
    out.flag(rows, "truncated", avail < 1)
    good = ~bad_version & (avail >= 1)
    rows, pos, avail, m = rows[good], pos[good], avail[good], m[good]
    out.put(prefix + "ip_version", rows, np.full(len(rows), version))
    if version == 4:
        hlen = (m[:, 0] & 15).astype(np.int64) * 4
        totlen = be16(m, 2)
        ff = be16(m, 6)
        offset, mf = ff & 0x1FFF, (ff >> 13) & 1
        tos, ttl, proto = m[:, 1], m[:, 8], m[:, 9]
        have_ff = avail >= 8
        out.put(prefix + "tos", rows, tos, avail >= 2)
        out.put(prefix + "ttl", rows, ttl, avail >= 9)
        out.put(prefix + "proto", rows, proto, avail >= 10)
        out.put_addr(prefix + "src", rows, 4, be32(m, 12), avail >= 16)
        out.put_addr(prefix + "dst", rows, 4, be32(m, 16), avail >= 20)
        if not prefix:
            out.put("frag", rows, (mf == 1) | (offset != 0), have_ff)
            out.put("frag_offset", rows, offset, have_ff)
        bad = (hlen < 20) | ((avail >= 4) & (totlen != 0) & (totlen < hlen))
        out.flag(rows, bad_code, bad)
        cut = ~bad & (avail < np.maximum(hlen, 20))
        out.flag(rows, "truncated", cut)
        # The transport starts after the options and ends at the total length (0 = TSO).
        l4avail = np.where(totlen > 0, np.minimum(avail, totlen), avail) - hlen
        stated = np.where(totlen > 0, totlen - hlen, -1)
        ok = ~bad & ~cut & (offset == 0)
        return (rows[ok], pos[ok] + hlen[ok], l4avail[ok], stated[ok],
                proto[ok].astype(np.int64), 4)
    vtf = be32(m, 0)
    plen = be16(m, 4)
    out.put(prefix + "tos", rows, (vtf >> 20) & 0xFF, avail >= 2)
    if not prefix:
        out.put("flow_label", rows, vtf & 0xFFFFF, avail >= 4)
    out.put(prefix + "ttl", rows, m[:, 7], avail >= 8)
    out.put_addr(prefix + "src", rows, 6, m[:, 8:24], avail >= 24)
    out.put_addr(prefix + "dst", rows, 6, m[:, 24:40], avail >= 40)
    cut = avail < 40
    out.flag(rows, "truncated", cut)
    nh = m[:, 6].astype(np.int64)
    cur = pos + 40
    rem = np.where(plen > 0, np.minimum(avail - 40, plen), avail - 40)
    left = plen.copy()  # bytes the header says follow (0 = jumbogram: unknown)
    offset = np.zeros(len(rows), np.int64)
    mf = np.zeros(len(rows), np.int64)
    alive = ~cut
    for _ in range(_MAX_EXT):
        walking = np.flatnonzero(alive & np.isin(nh, _IPV6_EXT))
        if not len(walking):
            break
        r = src.rows(cur[walking], 8, rem[walking])
        short = rem[walking] < 8
        is_frag = nh[walking] == 44
        hl = np.where(is_frag, 8, (r[:, 1].astype(np.int64) + 1) * 8)
        short |= rem[walking] < hl
        out.flag(rows[walking], "truncated", short)
        cut_rows = walking[short & (rem[walking] >= 1)]
        nh[cut_rows] = r[short & (rem[walking] >= 1), 0]  # the next-header byte was captured
        alive[walking[short]] = False
        w, r, hl, is_frag = walking[~short], r[~short], hl[~short], is_frag[~short]
        fo = be16(r, 2)
        offset[w] = np.where(is_frag, fo >> 3, offset[w])
        mf[w] = np.where(is_frag, fo & 1, mf[w])
        nh[w] = r[:, 0]
        cur[w] += hl
        rem[w] -= hl
        left[w] -= hl
    else:
        stuck = alive & np.isin(nh, _IPV6_EXT)
        out.flag(rows, "bad_ext_header", stuck)
        alive &= ~stuck
    out.put(prefix + "proto", rows, nh, avail >= 7)
    if not prefix:
        out.put("frag", rows, (mf == 1) | (offset != 0), avail >= 40)
        out.put("frag_offset", rows, offset, avail >= 40)
    ok = alive & (offset == 0)
    stated = np.where(plen > 0, left, -1)
    return rows[ok], cur[ok], rem[ok], stated[ok], nh[ok], 6


def _decode_l4(src, out: Decoded, prefix: str, rows, pos, avail, stated, proto,
               version) -> None:
    """Ports / ICMP / SPI of the transport header; recurse once into IP-in-IP."""
    if not len(rows):
        return
    # l4_len describes the innermost transport: a tunnel's inner decode overwrites it.
    out.put("l4_len", rows, stated, stated >= 0)
    m = src.rows(pos, 8, avail)
    need = np.zeros(len(rows), np.int64)
    for p, length in _MIN_L4.items():
        need[proto == p] = length
    out.flag(rows, "truncated", avail < need)
    ported = np.isin(proto, PORT_PROTOCOLS)
    out.put(prefix + "sport", rows, be16(m, 0), ported & (avail >= 2))
    out.put(prefix + "dport", rows, be16(m, 2), ported & (avail >= 4))
    icmp = proto == (1 if version == 4 else 58)
    itype = m[:, 0]
    out.put(prefix + "icmp_type", rows, itype, icmp & (avail >= 1))
    if not prefix:
        out.put("icmp_code", rows, m[:, 1], icmp & (avail >= 2))
    echo = icmp & np.isin(itype, _ICMP4_ID_TYPES if version == 4 else _ICMP6_ID_TYPES)
    out.put(prefix + "icmp_id", rows, be16(m, 4), echo & (avail >= 6))
    out.put(prefix + "icmp_seq", rows, be16(m, 6), echo & (avail >= 8))
    if prefix:
        return
    out.put("spi", rows, be32(m, 0), (proto == 50) & (avail >= 4))
    out.put("spi", rows, be32(m, 4), (proto == 51) & (avail >= 8))
    for inner_version, ip_proto in ((4, 4), (6, 41)):
        t = proto == ip_proto
        if t.any():
            out.valid["l4_len"][rows[t]] = False
            code = TUNNELS.index(f"{inner_version}in{version}")
            out.put("tunnel", rows, np.full(len(rows), code), t)
            ip = _decode_ip(src, out, "inner_", rows[t], pos[t], avail[t], inner_version)
            _decode_l4(src, out, "inner_", *ip)
