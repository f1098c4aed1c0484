"""Vectorized IP / transport / tunnel decoding of a batch of frames.

Each stage gathers the bytes it needs for all packets of a layout at once (see
:mod:`._bytes`), so the cost per packet is a few numpy operations, never Python code.
Stages: link layer (:mod:`.linktypes`) → outer IPv4/IPv6 (IPv6 extension headers walked in
lock step) → transport (ports, ICMP, ESP/AH SPI, TCP sequence numbers) → tunnels
(:mod:`.tunnels`: IP-in-IP, GRE, NVGRE, VXLAN, Geneve; an inner Ethernet frame, its IP header
and transport, one level deep). A malformed or cut header sets ``problem`` and leaves every
field decoded before it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..schema import PACKETS
from ._bytes import ByteSource
from .linktypes import ETH_P_IP, ETH_P_IPV6, decode_ethernet, decode_link
from .options import bad_option_lists
from .records import PROBLEMS, RecordBatch
from .tunnels import (
    ETH_P_MPLS,
    ETH_P_PPP,
    ETH_P_TEB,
    TUNNELS,
    parse_gre,
    parse_udp_tunnel,
    skip_mpls,
    skip_ppp,
    udp_tunnel_ports,
)

__all__ = ["PROBLEMS", "TUNNELS", "Decoded", "decode_batch", "PORT_PROTOCOLS"]
#: Transport protocols whose first four bytes are source and destination port.
PORT_PROTOCOLS = (6, 17, 33, 132, 136)  # TCP, UDP, DCCP, SCTP, UDP-Lite
#: Minimum transport header length: a shorter capture is flagged ``truncated``.
_MIN_L4 = {6: 20, 17: 8, 33: 12, 132: 12, 136: 8, 1: 8, 58: 8, 50: 8, 51: 12}
#: ICMP types carrying identifier and sequence (echo, timestamp, information, address mask).
_ICMP4_ID_TYPES = (0, 8, 13, 14, 15, 16, 17, 18)
#: ICMP messages longer than 8 bytes by definition (RFC 792, RFC 950): timestamp and its reply
#: (three 32-bit times), address mask request and reply (the mask).
_ICMP4_LENGTH = np.full(256, 8, np.int64)
_ICMP4_LENGTH[[13, 14]] = 20
_ICMP4_LENGTH[[17, 18]] = 12
_ICMP6_ID_TYPES = (128, 129)
#: IPv6 extension headers walked to reach the transport.
_IPV6_EXT = (0, 43, 44, 60)  # hop-by-hop, routing, fragment, destination options
_MAX_EXT = 16
_P = {name: code for code, name in enumerate(PROBLEMS)}


def _numpy_dtypes() -> dict[str, np.dtype]:
    kinds = {"UInt8": np.uint8, "UInt16": np.uint16, "UInt32": np.uint32, "bool": np.bool_}
    out = {name: np.dtype(kinds[d]) for name, d in PACKETS.items() if d in kinds}
    out["tunnel"] = np.dtype(np.int8)
    return out


#: numpy dtype each decoded column is stored in (from :data:`qoslab.schema.PACKETS`).
_STORE = _numpy_dtypes()


def _nonempty_mask(mask):
    """``None`` when every element of ``mask`` is True (the fast path), else ``mask``."""
    if mask is None or mask is True:
        return None
    return None if mask.all() else mask


def _as_slice(rows: np.ndarray):
    """A consecutive run of row numbers as a slice (a cheap block write), else ``rows``."""
    if len(rows) > 1 and rows[-1] - rows[0] == len(rows) - 1:
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class Decoded:
    """Columns of a decoded batch: ``values[name]`` with ``valid[name]`` (False = NA)."""

    def __init__(self, n: int):
        self.n = n
        self.values: dict[str, np.ndarray] = {}
        self.valid: dict[str, np.ndarray] = {}
        self.addr: dict[str, list] = {k: [] for k in ("src", "dst", "inner_src", "inner_dst")}
        self.problem = np.zeros(n, np.int8)
        for name, dtype in _STORE.items():  # allocated up front: threads only fill rows
            self.values[name] = np.zeros(n, dtype)
            self.valid[name] = np.zeros(n, bool)

    def put(self, name: str, rows: np.ndarray, values, ok=None) -> None:
        """Set ``name`` at ``rows`` to ``values``, valid where ``ok`` (None: everywhere) and
        NA elsewhere; names outside PACKETS are dropped.

        Every row of ``rows`` is written (a later put on the same rows replaces an earlier
        one, valid or not): one scatter, no gathering of the valid rows first."""
        if name not in self.values:
            return
        rows = _as_slice(rows)
        self.values[name][rows] = values
        self.valid[name][rows] = True if ok is None else ok

    def put_addr(self, name: str, rows: np.ndarray, version: int, values: np.ndarray,
                 ok=None) -> None:
        ok = _nonempty_mask(ok)
        if ok is not None:
            rows, values = rows[ok], values[ok]
        self.addr[name].append((rows, version, values))  # list.append is atomic

    def flag(self, rows: np.ndarray, problem: str, where=None) -> None:
        """Record ``problem`` at ``rows`` (where ``where``) unless one is already recorded."""
        if where is not None:
            if not where.any():
                return
            rows = rows[where]
        rows = rows[self.problem[rows] == 0]
        self.problem[rows] = _P[problem]


#: Frames decoded together: small enough that every stage finds the header cache lines the
#: previous stage touched still in the CPU cache.
SUB_BATCH = 1 << 15
#: Threads decoding sub-batches at once (the CPUs this process may use, at most 4).
THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else (os.cpu_count() or 1))


def decode_batch(src: ByteSource, batch: RecordBatch, udp_tunnels=None) -> Decoded:
    """Decode every frame of ``batch``; see the module docstring for the stages.

    ``udp_tunnels``: ``{UDP destination port: "vxlan" | "geneve"}``, default
    :data:`.tunnels.UDP_TUNNEL_PORTS`."""
    n = len(batch)
    out = Decoded(n)
    # where each frame ends on the wire: a record claiming fewer original than captured bytes
    # ends after its captured bytes (Wireshark's reported length is the larger of the two);
    # an Ethernet frame check sequence (pcapng if_fcslen) is not part of what is decoded
    length = np.maximum(batch.wire_len, batch.cap_len)
    cap_len = batch.cap_len
    if batch.fcs.any():
        length = length - np.where(batch.linktype == 1, batch.fcs, 0)
        cap_len = np.minimum(cap_len, np.maximum(length, 0))
    out.wire_end = batch.data_off + length
    out.cap_end = batch.data_off + cap_len  # where its captured bytes end
    out.misplaced = []  # rows of a hop-by-hop options header after another header
    out.udp_kind = np.zeros(1 << 16, np.int8)  # tunnel code per UDP destination port
    for port, code in udp_tunnel_ports(udp_tunnels).items():
        out.udp_kind[port] = code
    first = batch.flag == _P["unknown_interface"]  # before every header problem
    out.problem[first] = batch.flag[first]
    out.flag(np.flatnonzero(batch.cap_len > batch.wire_len), "cap_len_exceeds_wire_len")

    def run(lo: int) -> None:
        hi = min(lo + SUB_BATCH, n)
        rows = np.arange(lo, hi)
        _decode_rows(src.with_heads(rows, batch.data_off[lo:hi]), out, rows,
                     batch.data_off[lo:hi], cap_len[lo:hi], batch.linktype[lo:hi])

    starts = range(0, n, SUB_BATCH)
    if len(starts) > 1 and THREADS > 1:
        # numpy releases the GIL in the gathers and arithmetic; sub-batches write disjoint rows
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(run, starts))
    else:
        for lo in starts:
            run(lo)
    for rows in out.misplaced:
        out.flag(rows, "bad_ext_header")
    late = (batch.flag >= _P["no_timestamp"]) & (out.problem == 0)  # after every other one
    out.problem[late] = batch.flag[late]
    return out


def _decode_rows(src, out: Decoded, everyone, data_off, cap_len, linktype) -> None:
    link = decode_link(src, data_off, cap_len, linktype, everyone)
    out.flag(everyone, "unsupported_link", ~link.known)
    out.flag(everyone, "truncated", link.truncated)
    out.flag(everyone, "too_many_vlan_tags", link.too_many_tags)
    out.flag(everyone, "bad_ip_header", link.not_ip)
    out.put("l2_proto", everyone, link.l2_proto, link.l2_proto >= 0)
    tagged = link.vlan >= 0
    out.put("vlan", everyone, link.vlan & 0x0FFF, tagged)
    out.put("vlan_pcp", everyone, link.vlan >> 13, tagged)
    out.put("vlan_dei", everyone, (link.vlan >> 12) & 1, tagged)
    end = data_off + cap_len
    for version, ethertype in ((4, ETH_P_IP), (6, ETH_P_IPV6)):
        sel = np.flatnonzero(link.l2_proto == ethertype)
        if len(sel):
            pos = link.l3_off[sel]
            ip = _decode_ip(src, out, "", everyone[sel], pos, end[sel] - pos, version)
            _decode_l4(src, out, "", *ip)


#: Fixed IPv4 / IPv6 / transport header layouts (network byte order).
IPV4 = np.dtype([("vihl", "u1"), ("tos", "u1"), ("len", ">u2"), ("id", ">u2"), ("ff", ">u2"),
                 ("ttl", "u1"), ("proto", "u1"), ("csum", ">u2"), ("src", ">u4"),
                 ("dst", ">u4")])
IPV6 = np.dtype([("vtf", ">u4"), ("plen", ">u2"), ("nxt", "u1"), ("hlim", "u1"),
                 ("src", "V16"), ("dst", "V16")])
#: The first 16 bytes of a transport header, overlapping views: ports (TCP/UDP/SCTP/DCCP),
#: ICMP identifier and sequence, ESP/AH SPI, TCP sequence/acknowledgement/offset and flags.
L4 = np.dtype({"names": ["w0", "w1", "w2", "w3", "word0", "word1", "word2", "w6"],
               "formats": [">u2", ">u2", ">u2", ">u2", ">u4", ">u4", ">u4", ">u2"],
               "offsets": [0, 2, 4, 6, 0, 4, 8, 12], "itemsize": 16})
EXT = np.dtype([("nxt", "u1"), ("len", "u1"), ("frag", ">u2"), ("rest", ">u4")])
#: protocol number -> minimum transport header length (0: not checked)
_NEED = np.zeros(256, np.int64)
for _p, _n in _MIN_L4.items():
    _NEED[_p] = _n
_PORTED = np.zeros(256, bool)
_PORTED[list(PORT_PROTOCOLS)] = True


def _subset(good, *arrays):
    """``arrays`` restricted to ``good`` (no copy when every row is good)."""
    good = _nonempty_mask(good)
    if good is None:
        return arrays
    return tuple(a[good] for a in arrays)


def _decode_ip(src, out: Decoded, prefix: str, rows, pos, avail, version: int):
    """Decode IPv``version`` headers at ``pos``; return what the transport stage needs."""
    h = src.records(pos, IPV6 if version == 6 else IPV4, rows=rows)
    first = h["vtf"] >> 28 if version == 6 else h["vihl"] >> 4
    empty = avail < 1
    bad_version = (first != version) & ~empty
    bad_code = "bad_ip_header" if not prefix else "bad_inner_ip_header"
    out.flag(rows, bad_code, bad_version)
    out.flag(rows, "truncated", empty)
    rows, pos, avail, h = _subset(~bad_version & ~empty, rows, pos, avail, h)
    out.put(prefix + "ip_version", rows, version)
    full = len(avail) == 0 or int(avail.min()) >= (40 if version == 6 else 20)

    def have(k):  # the first k header bytes were captured (None: all rows)
        return None if full else avail >= k

    if version == 4:
        hlen = (h["vihl"] & 15).astype(np.int64) * 4
        totlen = h["len"].astype(np.int64)
        ff = h["ff"]
        offset = ff & 0x1FFF
        out.put(prefix + "tos", rows, h["tos"], have(2))
        out.put(prefix + "ttl", rows, h["ttl"], have(9))
        out.put(prefix + "proto", rows, h["proto"], have(10))
        out.put_addr(prefix + "src", rows, 4, h["src"], have(16))
        out.put_addr(prefix + "dst", rows, 4, h["dst"], have(20))
        out.put(prefix + "frag", rows, (ff & 0x3FFF) != 0, have(8))  # MF or an offset
        out.put(prefix + "frag_offset", rows, offset, have(8))
        out.put(prefix + "frag_more", rows, (ff & 0x2000) != 0, have(8))
        out.put(prefix + "ip_id", rows, h["id"], have(6))
        known_len = (totlen != 0) if full else (avail >= 4) & (totlen != 0)
        bad = (hlen < 20) | (known_len & (totlen < hlen))
        out.flag(rows, bad_code, bad)
        cut = ~bad & (avail < np.maximum(hlen, 20))
        out.flag(rows, "truncated", cut)
        # a total length past the frame lies (Wireshark: "IPv4 total length exceeds packet
        # length"): flagged, then read as unknown (the frame's end ends the datagram)
        past = known_len & (totlen > out.wire_end[rows] - pos)
        out.flag(rows, bad_code, past)
        totlen = np.where(past, 0, totlen)
        optioned = np.flatnonzero(~bad & ~cut & (hlen > 20))
        if len(optioned):
            out.flag(rows[optioned], bad_code, bad_option_lists(
                src, rows[optioned], pos[optioned] + 20, hlen[optioned] - 20,
                avail[optioned] - 20))
        # The transport starts after the options and ends at the total length (0 = TSO).
        l4avail = np.where(totlen > 0, np.minimum(avail, totlen), avail) - hlen
        stated = np.where(totlen > 0, totlen - hlen, -1)
        later = ~bad & ~cut & (offset != 0)  # a later fragment: its share of the data
        if later.any():
            out.put("l4_len", rows, stated, later & (stated >= 0))
        ok = ~bad & ~cut & (offset == 0)
        rows, pos, hlen, l4avail, stated, proto = _subset(
            ok, rows, pos, hlen, l4avail, stated, h["proto"])
        return rows, pos + hlen, l4avail, stated, proto.astype(np.int64), 4
    vtf = h["vtf"]
    plen = h["plen"].astype(np.int64)
    out.put(prefix + "tos", rows, (vtf >> 20) & 0xFF, have(2))
    out.put(prefix + "flow_label", rows, vtf & 0xFFFFF, have(4))
    out.put(prefix + "ttl", rows, h["hlim"], have(8))
    out.put_addr(prefix + "src", rows, 6, h["src"], have(24))
    out.put_addr(prefix + "dst", rows, 6, h["dst"], have(40))
    cut = avail < 40
    out.flag(rows, "truncated", cut)
    nh = h["nxt"].astype(np.int64)
    out.put(prefix + "ipv6_nexthdr", rows, h["nxt"], have(7))
    # a payload length past the frame lies (Wireshark: "IPv6 payload length exceeds framing
    # length"): flagged, then read as unknown (the frame's end ends the datagram)
    framed = out.wire_end[rows] - pos - 40  # bytes after the fixed header in the frame
    past = ~cut & (plen > framed)
    out.flag(rows, bad_code, past)
    plen = np.where(past, 0, plen)
    cur = pos + 40
    rem = np.where(plen > 0, np.minimum(avail - 40, plen), avail - 40)
    left = plen.copy()  # bytes the header says follow (0 = jumbogram: unknown)
    room = np.where(plen > 0, plen, framed)  # bytes the extension headers may take
    offset = np.zeros(len(rows), np.int64)
    mf = np.zeros(len(rows), np.int64)
    ident = np.full(len(rows), -1, np.int64)  # fragment header identification
    alive = ~cut
    done = np.zeros(len(rows), bool)
    for step in range(_MAX_EXT):
        walking = np.flatnonzero(alive & ~done & np.isin(nh, _IPV6_EXT))
        if not len(walking):
            break
        r = src.records(cur[walking], EXT, rows=rows[walking])
        captured = avail[walking] - (cur[walking] - pos[walking])
        is_frag = nh[walking] == 44
        hl = np.where(is_frag, 8, (r["len"].astype(np.int64) + 1) * 8)
        need = np.where(is_frag | (captured >= 2), hl, 8)  # its length byte was captured
        # past the payload length (or the frame): malformed; else past the capture: cut
        over = need > room[walking] - (cur[walking] - pos[walking] - 40)
        # ... but a first fragment ends where it ends: the rest is in the next fragment
        in_fragment = over & (mf[walking] == 1)
        over &= ~in_fragment
        opts = np.flatnonzero(~over & ((nh[walking] == 0) | (nh[walking] == 60))
                              & (captured > 2))
        if len(opts):  # hop-by-hop and destination options: an impossible option item
            at = walking[opts]  # makes the header malformed: the walk stops there
            over[opts] = bad_option_lists(src, rows[at], cur[at] + 2, hl[opts] - 2,
                                          captured[opts] - 2, ipv6=True)
        short = ~over & ((need > captured) | in_fragment)
        out.flag(rows[walking], "bad_ext_header", over)
        out.flag(rows[walking], "truncated", short)
        if step:  # RFC 8200 4.1: a hop-by-hop options header only right after the IPv6 one
            # (read on, as Wireshark reads it; flagged once every other problem is known)
            out.misplaced.append(rows[walking][nh[walking] == 0])
        short |= over
        readable = short & (captured >= 1)
        nh[walking[readable]] = r["nxt"][readable]  # the next-header byte was captured
        alive[walking[short]] = False
        w, r, hl, is_frag = walking[~short], r[~short], hl[~short], is_frag[~short]
        fo = r["frag"].astype(np.int64)
        offset[w] = np.where(is_frag, fo >> 3, offset[w])
        mf[w] = np.where(is_frag, fo & 1, mf[w])
        ident[w] = np.where(is_frag, r["rest"].astype(np.int64), ident[w])
        nh[w] = r["nxt"]
        cur[w] += hl
        rem[w] -= hl
        left[w] -= hl
        # behind a later fragment's header lies data, not the next header: stop there
        done[w[is_frag & ((fo >> 3) != 0)]] = True
    else:
        stuck = alive & ~done & np.isin(nh, _IPV6_EXT)
        out.flag(rows, "bad_ext_header", stuck)
        alive &= ~stuck
    out.put(prefix + "proto", rows, nh, have(7))
    out.put(prefix + "frag", rows, (mf == 1) | (offset != 0), ~cut)
    out.put(prefix + "frag_offset", rows, offset, ~cut)
    out.put(prefix + "frag_more", rows, mf == 1, ~cut)
    out.put(prefix + "ip_id", rows, ident, ident >= 0)
    stated = np.where(plen > 0, left, -1)
    later = alive & (offset != 0)  # a later fragment: its share of the data
    if later.any():
        out.put("l4_len", rows, stated, later & (stated >= 0))
    ok = alive & (offset == 0)
    rows, cur, rem, stated, nh = _subset(ok, rows, cur, rem, stated, nh)
    return rows, cur, rem, stated, nh, 6


def _decode_l4(src, out: Decoded, prefix: str, rows, pos, avail, stated, proto,
               version) -> None:
    """Ports / ICMP / SPI / TCP fields of the transport header; then, at the outer level,
    the tunnels."""
    if not len(rows):
        return
    # l4_len describes the innermost transport: a tunnel's inner decode overwrites it.
    out.put("l4_len", rows, stated, stated >= 0)
    raw = src.rows(pos, 16, rows=rows)
    h = raw.view(L4).reshape(-1)
    need = _NEED[proto]
    whole = ~out.values[prefix + "frag_more"][rows]  # not a first fragment
    if prefix:  # ... nor carried in one
        whole &= ~out.values["frag_more"][rows]
    # a header cut by the IP payload's end (not by the capture) does not fit the datagram;
    # in a first fragment the rest of it is in the next fragment
    short = avail < need
    if short.any():
        captured = out.cap_end[rows] - pos
        out.flag(rows, "bad_transport_header", short & (captured >= need) & whole)
        out.flag(rows, "truncated", short)
    full = int(avail.min()) >= 16
    ported = _PORTED[proto]
    if ported.any():
        out.put(prefix + "sport", rows, h["w0"], ported if full else ported & (avail >= 2))
        out.put(prefix + "dport", rows, h["w1"], ported if full else ported & (avail >= 4))
    icmp = proto == (1 if version == 4 else 58)
    if icmp.any():
        itype = raw[:, 0]
        out.put(prefix + "icmp_type", rows, itype, icmp & (avail >= 1))
        out.put(prefix + "icmp_code", rows, raw[:, 1], icmp & (avail >= 2))
        echo = icmp & np.isin(itype, _ICMP4_ID_TYPES if version == 4 else _ICMP6_ID_TYPES)
        out.put(prefix + "icmp_id", rows, h["w2"], echo & (avail >= 6))
        out.put(prefix + "icmp_seq", rows, h["w3"], echo & (avail >= 8))
        if version == 4:
            out.flag(rows, "bad_transport_header", icmp & (avail >= 1) & whole & (stated >= 0)
                     & (_ICMP4_LENGTH[itype] > stated))
    esp, ah = proto == 50, proto == 51
    if esp.any() or ah.any():  # ESP: the SPI comes first; AH: after next header and length
        spi = np.where(ah, h["word1"], h["word0"])
        out.put(prefix + "spi", rows, spi, (esp & (avail >= 4)) | (ah & (avail >= 8)))
        # AH's length (32-bit words, minus 2) within the IP payload (RFC 4302 2.2)
        ah_len = (raw[:, 1].astype(np.int64) + 2) * 4
        out.flag(rows, "bad_transport_header",
                 ah & (avail >= 2) & whole & (stated >= 0) & (ah_len > stated))
    dccp = proto == 33
    if dccp.any():  # DCCP's data offset (32-bit words): 12 bytes at least, 16 with the
        # extended sequence number (X bit), and within the IP payload (RFC 4340 5.1)
        doff = raw[:, 4].astype(np.int64) * 4
        least = np.where(raw[:, 8] & 1, 16, 12)
        out.flag(rows, "bad_transport_header", dccp & (avail >= 9) & (
            (doff < least) | (whole & (stated >= 0) & (doff > stated))))
    tcp = proto == 6
    if tcp.any():  # the innermost TCP header: at most one level has one
        out.put("tcp_seq", rows, h["word1"], tcp & (avail >= 8))
        out.put("tcp_ack", rows, h["word2"], tcp & (avail >= 12))
        out.put("tcp_flags", rows, h["w6"] & 0x0FFF, tcp & (avail >= 14))
        hlen = (h["w6"] >> 12).astype(np.int64) * 4
        # as Wireshark counts it: what the IP header states, cut to the frame's wire length
        # (the wire length alone when the IP total length is 0: TSO)
        on_wire = out.wire_end[rows] - pos
        seglen = np.where(stated >= 0, np.minimum(stated, on_wire), on_wire) - hlen
        # a first fragment holds part of the segment: its length is unknown (NA), as in
        # Wireshark, which has no tcp.len for a fragment it did not reassemble
        offset_known = tcp & (avail >= 13)
        out.put("tcp_len", rows, seglen, offset_known & whole & (hlen >= 20) & (seglen >= 0))
        # a data offset under the fixed header, or past the segment, is malformed
        out.flag(rows, "bad_transport_header",
                 offset_known & ((hlen < 20) | (whole & (seglen < 0))))
        optioned = np.flatnonzero(offset_known & (hlen > 20) & (avail > 20))
        if len(optioned):
            out.flag(rows[optioned], "bad_transport_header", bad_option_lists(
                src, rows[optioned], pos[optioned] + 20, hlen[optioned] - 20,
                avail[optioned] - 20))
    udp = proto == 17
    bad_udp = None
    if udp.any():  # the UDP length: the header and its data, within the IP payload
        ulen = h["w2"].astype(np.int64)
        jumbo = (ulen == 0) & (version == 6)  # RFC 2675: the IPv6 payload length says
        beyond = whole & (stated >= 0) & (ulen > stated)
        bad_udp = udp & (avail >= 6) & (ulen < 8) & ~jumbo
        out.flag(rows, "bad_transport_header", bad_udp | (udp & (avail >= 6) & beyond))
    if prefix:
        return
    _decode_tunnels(src, out, rows, pos, avail, stated, proto, version, h["w1"], h["w2"],
                    bad_udp)


#: Bytes of a tunnel's payload copied once per tunnelled frame (inner Ethernet, VLAN tags,
#: IPv4 or IPv6 and the transport's first 16 bytes fit).
TUNNEL_HEADS = 96
#: Protocol numbers of IP-in-IP and GRE.
_IPIP, _IPV6IN, _GRE = 4, 41, 47
_IP_TUNNEL = np.zeros(256, bool)
_IP_TUNNEL[[_IPIP, _IPV6IN, _GRE]] = True


def _decode_tunnels(src, out: Decoded, rows, pos, avail, stated, proto, version, dport, ulen,
                    bad_udp) -> None:
    """The encapsulation of tunnelled rows, then what they carry (one level); a datagram
    whose UDP length is under its own header's (``bad_udp``) carries nothing (Wireshark stops
    there too; one whose length runs past the IP payload is read to the payload's end).

    What a tunnel carries ends with the outer datagram, not the frame: at its IP length
    (``stated``), and for UDP at its UDP length (Linux trims the datagram to it)."""
    tunnelled = _IP_TUNNEL[proto] | ((proto == 17) & (out.udp_kind[dport] > 0))
    if tunnelled.any():
        t = np.flatnonzero(tunnelled)
        end = np.where(stated[t] >= 0, pos[t] + stated[t], out.wire_end[rows[t]])
        by_udp = (proto[t] == 17) & (ulen[t] >= 8)
        end = np.where(by_udp, np.minimum(end, pos[t] + ulen[t].astype(np.int64)), end)
        out.wire_end[rows[t]] = np.minimum(out.wire_end[rows[t]], end)
    for inner_version, ip_proto in ((4, _IPIP), (6, _IPV6IN)):
        t = np.flatnonzero(proto == ip_proto)
        if len(t):
            code = TUNNELS.index(f"{inner_version}in{version}")
            _open_tunnel(src, out, rows[t], np.full(len(t), code, np.int8), None, pos[t],
                         avail[t], np.full(len(t), ETH_P_IP if inner_version == 4
                                           else ETH_P_IPV6))
    g = np.flatnonzero(proto == _GRE)
    if len(g):
        enc = parse_gre(src, rows[g], pos[g], avail[g])
        _flag_cut(out, enc, pos[g])
        out.flag(enc.rows, "bad_tunnel_header", enc.unopened)
        _open_tunnel(src, out, enc.rows, enc.kind, enc.tunnel_id, enc.inner_pos,
                     enc.inner_avail, enc.payload)
    udp = np.flatnonzero(proto == 17)
    kind = out.udp_kind[dport[udp]]
    # the tunnel header and payload lie within the UDP length (0: an IPv6 jumbogram's)
    room = np.where(ulen[udp] >= 8, np.minimum(avail[udp], ulen[udp].astype(np.int64)),
                    avail[udp])
    ok = (kind > 0) & (room > 8)  # a byte of the tunnel header was captured
    if bad_udp is not None:
        ok &= ~bad_udp[udp]
    u, room = udp[ok], room[ok]
    if len(u):
        enc = parse_udp_tunnel(src, rows[u], pos[u], room, out.udp_kind[dport[u]])
        _flag_cut(out, enc, pos[u])
        _open_tunnel(src, out, enc.rows, enc.kind, enc.tunnel_id, enc.inner_pos,
                     enc.inner_avail, enc.payload)


def _flag_cut(out: Decoded, enc, pos) -> None:
    """An encapsulation header cut by the capture is ``truncated``; one that runs past the
    datagram carrying it (its IP or UDP length) is a ``bad_tunnel_header``."""
    captured = out.cap_end[enc.rows] - pos
    room = enc.inner_pos + enc.inner_avail - pos  # what the header had to fit in
    out.flag(enc.rows, "bad_tunnel_header", enc.cut & (room < captured))
    out.flag(enc.rows, "truncated", enc.cut)


def _open_tunnel(src, out: Decoded, rows, kind, tunnel_id, pos, avail, payload) -> None:
    """Name the tunnel and decode its payload: an Ethernet frame (0x6558), an MPLS label
    stack or a PPP header, and an IP header (0x0800 / 0x86dd) with its transport; other
    payloads keep their EtherType in ``inner_l2_proto``."""
    out.valid["l4_len"][rows] = False
    out.put("tunnel", rows, kind)
    # the payload's first bytes, copied once: the inner headers are read from them
    src = src.with_heads(rows, pos, TUNNEL_HEADS)
    if tunnel_id is not None:
        out.put("tunnel_id", rows, tunnel_id, tunnel_id >= 0)
    eth = np.flatnonzero(payload == ETH_P_TEB)
    if len(eth):
        l3, proto, tci, cut, deep = decode_ethernet(src, pos[eth], avail[eth], rows[eth])
        out.flag(rows[eth], "truncated", cut)
        out.flag(rows[eth], "too_many_vlan_tags", deep)
        tagged = tci >= 0
        out.put("inner_vlan", rows[eth], tci & 0x0FFF, tagged)
        avail = avail.copy()
        avail[eth] -= l3 - pos[eth]
        pos = pos.copy()
        pos[eth] = l3
        payload = payload.copy()
        payload[eth] = proto
    out.put("inner_l2_proto", rows, payload, payload >= 0)
    for kinds, skip in ((ETH_P_MPLS, skip_mpls), ((ETH_P_PPP,), skip_ppp)):
        behind = np.flatnonzero(np.isin(payload, kinds))
        if len(behind):  # the IP header lies behind labels / a PPP header
            pos, avail, payload = pos.copy(), avail.copy(), payload.copy()
            pos[behind], avail[behind], payload[behind] = skip(src, rows[behind], pos[behind],
                                                               avail[behind])
    for version, ethertype in ((4, ETH_P_IP), (6, ETH_P_IPV6)):
        sel = np.flatnonzero(payload == ethertype)
        if len(sel):
            ip = _decode_ip(src, out, "inner_", rows[sel], pos[sel], avail[sel], version)
            _decode_l4(src, out, "inner_", *ip)
            inner_rows, inner_proto = ip[0], ip[4]
            nested = np.isin(inner_proto, (_IPIP, _IPV6IN, _GRE))
            udp = np.flatnonzero(inner_proto == 17)
            if len(udp):
                dport = out.values["inner_dport"][inner_rows[udp]]
                ok = out.valid["inner_dport"][inner_rows[udp]]
                nested[udp] |= ok & (out.udp_kind[dport] > 0)
            out.flag(inner_rows, "nested_tunnel", nested)
