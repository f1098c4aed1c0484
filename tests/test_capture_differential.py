"""Differential decoding against tshark on random crafted captures.

A seeded generator draws frames across everything the decoder reads — link types (Ethernet
with up to three VLAN tags of any TPID, PCP and DEI; Linux cooked v1/v2; raw IP; BSD
loopback), IPv4 options and fragments (first, middle, last, overlapping), IPv6 extension-header
chains (hop-by-hop, routing, destination options, fragment), TCP options, UDP, ICMP/ICMPv6 echo
and errors quoting a header, ESP/AH, IP-in-IP of all four kinds, GRE (C/K/S bits, version 1 of
PPTP), NVGRE with an inner VLAN, VXLAN, Geneve with options, nested tunnels — writes them to
pcapng files of several sections, interfaces, snap lengths and timestamp resolutions (with
Simple Packet Blocks) and compares every PACKETS column of the tshark field map
(:mod:`tests.test_capture_tshark`) cell by cell. The same run pairs crafted pings (fragmented,
tunnelled) against ``icmp.resptime`` and crafted TCP exchanges (retransmissions, SACK, dup
acks, window updates) against ``tcp.analysis.ack_rtt``.

A second family (:func:`corrupted_packet`) makes one header of each frame malformed — IPv4
version, header length, total length below the header or past the frame, an option length;
IPv6 payload length, an extension header's length; TCP data offset, a TCP option length; UDP
length; random bit flips anywhere in the first headers, tunnels included — and checks that
every frame malformed by its protocol's specification is flagged (``problem``), that every
frame tshark warns about in a layer qoslab reads is flagged (:data:`NOT_CHECKED` names what
qoslab deliberately does not check), and that the cells both decoders fill agree.

The default run draws ``QOSLAB_DIFF_PACKETS`` frames (default 1500, a few seconds) and
``QOSLAB_DIFF_CORRUPTED`` corrupted ones (default half as many); a longer
run: ``QOSLAB_DIFF_PACKETS=20000 pytest tests/test_capture_differential.py``, or
``python -m tests.test_capture_differential 20000 [seed]`` for a per-column report.
"""

from __future__ import annotations

import collections
import os
import random
import struct
import sys
import tempfile
from pathlib import Path

from scapy.all import (
    AH,
    ESP,
    GRE,
    GRE_PPTP,
    ICMP,
    IP,
    PPP,
    TCP,
    UDP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Ether,
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_Timestamp,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
)
from scapy.layers.vxlan import VXLAN

from tests.test_capture_tshark import COMPARED, _geneve, disagreements, pcapng_bytes

PACKETS = int(os.environ.get("QOSLAB_DIFF_PACKETS", "1500"))
#: Frames of the corrupted-headers family (default: half as many, a few seconds).
CORRUPTED = int(os.environ.get("QOSLAB_DIFF_CORRUPTED", str(PACKETS // 2)))
T0 = 1_700_000_000


# ---------------------------------------------------------------- random headers
def _a4(r):
    return f"10.{r.randrange(4)}.{r.randrange(4)}.{r.randrange(1, 9)}"


def _a6(r):
    return f"2001:db8:{r.randrange(4):x}::{r.randrange(1, 9):x}"


def _tcp(r):
    opts = r.choice([[], [("MSS", 1460)], [("NOP", None), ("WScale", 7)],
                     [("SAckOK", b""), ("Timestamp", (r.getrandbits(32), 0))],
                     [("NOP", None), ("NOP", None),
                      ("SAck", (r.getrandbits(32), r.getrandbits(32)))]])
    flags = r.choice(["S", "SA", "A", "PA", "FA", "R", "RA", "U", "EC", "SEC", "CA"])
    return TCP(sport=r.randrange(1, 65536), dport=r.randrange(1, 65536), flags=flags,
               seq=r.getrandbits(32), ack=r.getrandbits(32), window=r.randrange(65536),
               options=opts) / Raw(b"t" * r.choice([0, 0, 1, 13, 100, 700]))


def _tunnel_sport(r):
    """A UDP tunnel's source port, from the ephemeral range as Linux picks it. Wireshark
    hands a UDP payload to the dissector of the *lower* port first: a source port below
    4789 / 6081 that some protocol registered (3130 ICP …) would hide the tunnel from it,
    while the receiving kernel dispatches on the destination port alone (a tshark quirk,
    not modelled)."""
    return r.randrange(49152, 65536)


def _udp(r):
    dport = r.choice([53, 123, 4789, 6081, r.randrange(1, 65536)])
    if dport in (4789, 6081):  # a tunnel port carrying junk: opened as the tunnel
        return UDP(sport=_tunnel_sport(r), dport=dport) / Raw(bytes(8) + b"j" * 30)
    return UDP(sport=r.randrange(1, 65536), dport=dport) / Raw(b"u" * r.randrange(0, 300))


def _transport(r, v):
    """A transport header for IP version ``v`` (ICMP errors quote a whole header)."""
    k = r.randrange(9)
    if k == 8:  # other transports: SCTP, DCCP, UDP-Lite (ports), ICMP timestamp/mask, ND
        if r.random() < 0.5:
            proto = r.choice([132, 33, 136])
            hdr = struct.pack(">HH", r.randrange(1, 65536), r.randrange(1, 65536))
            hdr += {132: bytes(8), 33: bytes([0, 0x10, 0, 0, 0x03]) + bytes(11),
                    136: struct.pack(">HH", 0, 0)}[proto]
            return Raw(hdr + b"x" * r.randrange(0, 40)), proto
        if v == 4:
            return ICMP(type=r.choice([13, 14, 15, 16, 17, 18]), id=r.randrange(65536),
                        ts_ori=0, ts_rx=0, ts_tx=0,  # scapy would stamp the time of day
                        seq=r.randrange(65536)) / Raw(bytes(12))
        return Raw(bytes([r.choice([133, 134, 135, 136, 143]), 0, 0, 0]) + bytes(20)), 58
    if k < 2:
        return _tcp(r)
    if k < 4:
        return _udp(r)
    if k == 4:
        if v == 4:
            return ICMP(type=r.choice([8, 0]), id=r.randrange(65536),
                        seq=r.randrange(65536)) / Raw(b"p" * r.choice([0, 8, 56]))
        echo = r.choice([ICMPv6EchoRequest, ICMPv6EchoReply])
        return echo(id=r.randrange(65536), seq=r.randrange(65536)) / Raw(b"p" * 8)
    if k == 5:  # an error quoting a datagram
        quoted = (IP(src=_a4(r), dst=_a4(r)) if v == 4 else IPv6(src=_a6(r), dst=_a6(r))) \
            / UDP(sport=r.randrange(65536), dport=r.randrange(65536))
        if v == 4:
            return ICMP(type=r.choice([3, 11, 12, 5]), code=r.randrange(4)) / quoted
        return r.choice([ICMPv6DestUnreach(code=r.randrange(5)), ICMPv6PacketTooBig(mtu=1280),
                         ICMPv6TimeExceeded()]) / quoted
    if k == 6:
        return ESP(spi=r.getrandbits(32), seq=r.randrange(100)) / Raw(b"e" * 16)
    return AH(spi=r.getrandbits(32), nh=59, payloadlen=4) / Raw(bytes(16))


def _ip4(r, payload=None, **kw):
    opts = r.choice([[], [], [IPOption_Router_Alert()], [IPOption_NOP()] * 4,
                     [IPOption_Timestamp(flg=0, timestamp=1)]])
    h = IP(src=_a4(r), dst=_a4(r), tos=r.randrange(256), ttl=r.randrange(1, 256),
           id=r.randrange(65536), flags=r.choice([0, 2]), options=opts, **kw)
    if payload is None:
        payload = _transport(r, 4)
        if isinstance(payload, tuple):
            payload, h.proto = payload
    return h / payload


def _ip6(r, payload=None):
    h = IPv6(src=_a6(r), dst=_a6(r), tc=r.randrange(256), fl=r.getrandbits(20),
             hlim=r.randrange(256))
    chain = []
    for ext in r.sample(["hbh", "rt", "dst", "dst"], r.randrange(0, 4)):
        chain.append({"hbh": IPv6ExtHdrHopByHop, "dst": IPv6ExtHdrDestOpt,
                      "rt": lambda: IPv6ExtHdrRouting(addresses=[_a6(r)])}[ext]())
    if payload is None:
        payload = _transport(r, 6)
        if isinstance(payload, tuple):
            payload, proto = payload
            (chain[-1] if chain else h).nh = proto
    for e in chain:
        h = h / e
    return h / payload


def _ip(r, payload=None):
    return _ip4(r, payload) if r.random() < 0.55 else _ip6(r, payload)


def _fragments4(r, pkt):
    """IPv4 fragments of ``pkt`` (8-byte aligned), sometimes overlapping; a random subset
    in random order."""
    pkt = IP(bytes(pkt))  # built: protocol and lengths filled in
    data = bytes(pkt[IP].payload)
    size = r.choice([8, 16, 64, 200])
    out, off = [], 0
    while off < len(data):
        end = min(len(data), off + size)
        chunk = data[off:end]
        h = pkt[IP].copy()
        h.remove_payload()
        h.flags = 1 if end < len(data) else 0
        h.frag = off // 8
        h.len = h.chksum = None
        out.append(h / Raw(chunk))
        off = end - (8 if r.random() < 0.2 and end - off > 8 else 0)  # overlap
    r.shuffle(out)
    return out[:r.randrange(1, len(out) + 1)]


def _fragments6(r, pkt):
    pkt = IPv6(bytes(pkt))  # built: next header filled in
    data = bytes(pkt[IPv6].payload)
    nh = pkt[IPv6].nh
    ident = r.getrandbits(32)
    size = r.choice([8, 16, 64])
    out, off = [], 0
    while off < len(data):
        end = min(len(data), off + size)
        h = IPv6(src=pkt[IPv6].src, dst=pkt[IPv6].dst, tc=pkt[IPv6].tc, fl=pkt[IPv6].fl)
        out.append(h / IPv6ExtHdrFragment(nh=nh, offset=off // 8, m=int(end < len(data)),
                                          id=ident) / Raw(data[off:end]))
        off = end
    r.shuffle(out)
    return out[:r.randrange(1, len(out) + 1)]


_IE = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")


def _inner(r, depth):
    """What a tunnel carries: an IP packet, sometimes fragmented, sometimes itself a tunnel."""
    if depth == 0 and r.random() < 0.12:
        return _tunnel(r, depth + 1)
    p = _ip(r)
    if r.random() < 0.1:
        return r.choice(_fragments4(r, _ip4(r)) if p.version == 4 else _fragments6(r, p))
    return p


def _tags(r, inner, n=None):
    n = r.choice([0, 0, 0, 1, 1, 2, 3]) if n is None else n
    layers = []
    for i in range(n):
        tpid = r.choice([0x8100, 0x88A8, 0x9100]) if i < n - 1 else 0x8100
        layers.append((tpid, r.randrange(8), r.randrange(2), r.randrange(4096)))
    return layers, inner


def _eth_payload(r, inner):
    """An inner Ethernet frame with 0-2 VLAN tags around ``inner``."""
    f = _IE
    for i in range(r.choice([0, 0, 1, 2])):
        f = f / (Dot1AD if i == 0 and r.random() < 0.3 else Dot1Q)(
            vlan=r.randrange(4096), prio=r.randrange(8), dei=r.randrange(2))
    return f / inner


def _tunnel(r, depth=0):
    """An outer IP header carrying a tunnel."""
    k = r.randrange(9)
    inner = _inner(r, depth)
    if k == 0:  # IP in IP
        return _ip(r, inner)
    if k in (1, 2):  # GRE with random C/K/S bits
        g = GRE(chksum_present=r.randrange(2), key_present=r.randrange(2),
                seqnum_present=r.randrange(2), key=r.getrandbits(32),
                sequence_number=r.getrandbits(32))
        if r.random() < 0.3:
            g.proto = 0x6558
            return _ip(r, g / _eth_payload(r, inner))
        return _ip(r, g / inner)
    if k == 3:  # NVGRE
        return _ip(r, GRE(proto=0x6558, key_present=1, key=r.getrandbits(32))
                   / _eth_payload(r, inner))
    if k == 4:  # enhanced GRE (PPTP)
        return _ip(r, GRE_PPTP(seqnum_present=r.randrange(2), acknum_present=r.randrange(2),
                               sequence_number=r.randrange(100), ack_number=r.randrange(100),
                               call_id=r.randrange(65536))
                   / PPP(proto=0x21 if inner.version == 4 else 0x57) / inner)
    if k in (5, 6):
        return _ip(r, UDP(sport=_tunnel_sport(r), dport=4789)
                   / VXLAN(vni=r.getrandbits(24)) / _eth_payload(r, inner))
    opts = b"".join(struct.pack(">HBB", r.randrange(65536), r.randrange(256), n)
                    + bytes(4 * n) for n in r.sample([0, 1, 2], r.randrange(3)))
    if k == 7:
        g = _geneve(r.getrandbits(24), 0x6558, opts)
        return _ip(r, UDP(sport=_tunnel_sport(r), dport=6081) / Raw(g)
                   / _eth_payload(r, inner))
    g = _geneve(r.getrandbits(24), 0x0800 if inner.version == 4 else 0x86DD, opts)
    return _ip(r, UDP(sport=_tunnel_sport(r), dport=6081) / Raw(g) / inner)


def network_packet(r):
    """One random network-layer packet (bytes)."""
    k = r.random()
    if k < 0.35:
        p = _ip(r)
    elif k < 0.5:
        p = r.choice(_fragments4(r, _ip4(r)) if r.random() < 0.6 else _fragments6(r, _ip6(r)))
    else:
        p = _tunnel(r)
    return bytes(p)


# ---------------------------------------------------------------- corrupted headers
#: Corruptions every frame of which is malformed by its protocol's specification: the row must
#: be flagged (``problem`` set) whenever the corrupted byte was captured.
INVALID = ("ip_version", "ip_ihl_short", "ip_len_below_header", "ip_len_beyond_frame",
           "ip_option_len", "ip6_plen_beyond_frame", "ext_len_beyond_payload",
           "tcp_offset_short", "tcp_offset_beyond_segment", "tcp_option_len",
           "udp_len_short", "udp_len_beyond_payload")
#: Corruptions that may or may not leave a valid packet (a longer IPv4 header whose "options"
#: are the transport's first bytes, a shorter IP length, random bit flips anywhere in the
#: first headers, tunnels included): compared with tshark; flagged where tshark finds the
#: packet malformed.
ODD = ("ip_ihl_long", "ip_len_short", "ip6_plen_short", "bitflip", "bitflip", "bitflip")


def _layout(b):
    """(IP version, IP header + extension headers length, transport protocol) of ``b``."""
    if b[0] >> 4 == 4:
        return 4, (b[0] & 15) * 4, b[9]
    nh, cur = b[6], 40
    while nh in (0, 43, 44, 60) and cur + 8 <= len(b):
        nh, cur = b[cur], cur + (8 if nh == 44 else (b[cur + 1] + 1) * 8)
    return 6, cur, nh


def _option_payload(r, v):
    """A TCP segment with options, or a UDP datagram, or any transport."""
    return r.choice([TCP(sport=r.randrange(1, 65536), dport=r.randrange(1, 65536),
                         flags="PA", options=[("MSS", 1460), ("NOP", None), ("WScale", 7),
                                              ("SAckOK", b"")]) / Raw(b"o" * 9),
                     _udp(r), _tcp(r)])


def corrupted_packet(r):
    """A packet with one header made malformed: ``(bytes, (kind, offset of the corrupted
    byte in the packet), IP version)``."""
    kind = r.choice(INVALID + ODD)
    v = (4 if kind.startswith(("ip_ihl", "ip_len", "ip_option"))
         else 6 if kind.startswith(("ip6", "ext")) else r.choice([4, 6]))
    if kind == "bitflip":
        b = bytearray(network_packet(r))
        version = b[0] >> 4  # what the link announces
        at = r.randrange(min(len(b), 120))
        for _ in range(r.randrange(1, 4)):
            b[r.randrange(max(0, at - 8), min(len(b), at + 8))] ^= 1 << r.randrange(8)
        return bytes(b), (kind, at), version
    if kind == "ip_option_len":
        h = IP(src=_a4(r), dst=_a4(r), options=r.choice(
            [[IPOption_Router_Alert()], [IPOption_Timestamp(flg=0, timestamp=1)],
             [IPOption_NOP(), IPOption_Router_Alert()]]))
        b = bytearray(bytes(h / _transport_only(r, 4)))
    elif kind.startswith("ext"):
        b = bytearray(bytes(IPv6(src=_a6(r), dst=_a6(r)) / r.choice(
            [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(),
             IPv6ExtHdrRouting(addresses=[_a6(r)])]) / _transport_only(r, 6)))
    else:
        payload = (_option_payload(r, v) if kind.startswith(("tcp", "udp"))
                   else _transport_only(r, v))
        if kind.startswith("tcp") and TCP not in payload:
            payload = _tcp(r)
        if kind.startswith("udp"):
            payload = UDP(sport=_tunnel_sport(r), dport=r.choice([53, 4789, 9999])) \
                / Raw(b"u" * r.randrange(0, 60))
        b = bytearray(bytes(_ip4(r, payload) if v == 4 else _ip6(r, payload)))
    _, hl, proto = _layout(b)
    total = len(b)
    if kind == "ip_version":
        b[0] = (r.choice([0, 1, 2, 3, 5, 7, 15]) << 4) | (b[0] & 15)
        at = 0
    elif kind == "ip_ihl_short":
        b[0], at = 0x40 | r.randrange(5), 0
    elif kind == "ip_ihl_long":
        b[0], at = 0x40 | r.randrange(hl // 4 + 1, 16), 0
    elif kind.startswith("ip_len"):
        new = {"ip_len_below_header": r.randrange(1, hl),
               "ip_len_beyond_frame": total + r.randrange(1, 400),
               "ip_len_short": r.randrange(hl, total)}[kind]
        b[2:4], at = struct.pack(">H", new), 2
    elif kind.startswith("ip6_plen"):
        new = (total - 40 + r.randrange(1, 400) if kind == "ip6_plen_beyond_frame"
               else r.randrange(1, total - 40))
        b[4:6], at = struct.pack(">H", new), 4
    elif kind == "ext_len_beyond_payload":
        b[41], at = r.randrange((total - 40) // 8, 256), 41
    elif kind == "ip_option_len":
        at = 20 + (b[20] == 1)  # the first option with a length (after a NOP)
        b[at + 1] = r.choice([0, 1, hl - at + 1 + r.randrange(40)]) & 0xFF
        at += 1
    elif kind.startswith("tcp"):
        seg, opts_end = total - hl, hl + (b[hl + 12] >> 4) * 4
        at = hl + 20  # the first option with a length field, if any
        while at < opts_end and b[at] == 1:
            at += 1
        if kind == "tcp_option_len" and (at >= opts_end - 1 or b[at] == 0):
            kind = "tcp_offset_short"  # no option to corrupt
        if kind == "tcp_offset_beyond_segment" and seg >= 60:
            kind = "tcp_offset_short"  # a data offset cannot reach past this segment
        if kind == "tcp_option_len":
            b[at + 1] = r.choice([0, 1, opts_end - at + 1 + r.randrange(30)])
            at += 1
        else:
            off = r.randrange(5) if kind == "tcp_offset_short" else r.randrange(seg // 4 + 1, 16)
            b[hl + 12], at = (off << 4) | (b[hl + 12] & 15), hl + 12
    elif kind.startswith("udp"):
        # (an IPv6 UDP length of 0 is a jumbogram's: RFC 2675, the IPv6 length says)
        new = (r.randrange(v == 6, 8) if kind == "udp_len_short"
               else total - hl + r.randrange(1, 400))
        b[hl + 4:hl + 6], at = struct.pack(">H", new), hl + 4
    return bytes(b), (kind, at), v


def _transport_only(r, v):
    """A transport for IP version ``v`` (protocol set by the IP layer)."""
    t = _transport(r, v)
    while isinstance(t, tuple):
        t = _transport(r, v)
    return t


def link_frame(r, linktype, packet, version=None):
    """``packet`` (bytes) behind a ``linktype`` header (``version``: the IP version the
    link announces; by default the packet's own)."""
    v6 = (packet[0] >> 4 if version is None else version) == 6
    etype = 0x86DD if v6 else 0x0800
    if linktype == 1:
        f = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8100))[:12]
        tags, _ = _tags(r, None)
        for tpid, pcp, dei, vid in tags:
            f += struct.pack(">HH", tpid, (pcp << 13) | (dei << 12) | vid)
        return f + struct.pack(">H", etype) + packet
    if linktype == 113:
        return bytes(CookedLinux(pkttype=r.randrange(5), lladdrtype=1, lladdrlen=6,
                                 proto=etype)) + packet
    if linktype == 276:
        return bytes(CookedLinuxV2(proto=etype, ifindex=r.randrange(9), lladdrtype=1,
                                   lladdrlen=6)) + packet
    if linktype == 0:
        return struct.pack("<I", r.choice([24, 28, 30]) if v6 else 2) + packet
    if linktype == 108:
        return struct.pack(">I", 24 if v6 else 2) + packet
    return packet  # 101 raw, 228 IPv4, 229 IPv6


#: link type -> IP versions it carries
_LINKS = {1: (4, 6), 113: (4, 6), 276: (4, 6), 101: (4, 6), 228: (4,), 229: (6,), 0: (4, 6),
          108: (4, 6)}


def _epb_options(r, order):
    """Enhanced Packet Block options (pcapng §4.3): comment, flags, hash, drop count,
    packet id, queue, verdict.

    The flags' FCS length (bits 5-8) stays 0: the crafted frames end with their datagram
    (FCS lengths are checked in tests.test_capture_tshark)."""
    flags = r.getrandbits(32) & ~0x1E0
    pick = [(1, b"a comment"[:r.randrange(1, 10)]), (2, struct.pack(order + "I", flags)),
            (3, b"\x02" + bytes(4)), (4, struct.pack(order + "Q", r.randrange(100))),
            (5, struct.pack(order + "Q", r.getrandbits(64))),
            (6, struct.pack(order + "I", r.randrange(8))),
            (7, b"\x00" + bytes(r.randrange(0, 9)))]
    return r.sample(pick, r.choice([0, 0, 1, 2, 3]))


def random_capture(r, n, packet=None, kinds=None):
    """``n`` random frames as one pcapng of 1-3 sections (bytes).

    ``packet(r)`` draws a network-layer packet: bytes, or ``(bytes, what, ip version)``
    whose ``what`` is appended to the list ``kinds`` (frames in file order) together with the
    frame's link header length and its snap length."""
    out = []
    left = n
    while left > 0:
        count = left if r.random() < 0.5 else min(left, r.randrange(1, n + 1))
        left -= count
        links = r.sample(sorted(_LINKS), r.randrange(1, 5))
        if 1 not in links:
            links.insert(0, 1)
        ifaces = []
        for lt in links:
            snap = r.choice([0, 0, 0, 48, 64, 96, 128])
            res = r.choice([None, 9, 3, 0x80 | 20, 7])
            ifaces.append((lt, snap, res) if r.random() < 0.8
                          else (lt, snap, res, r.randrange(-10**6, 10**6)))  # if_tsoffset
        packets = []
        ticks = {}
        order = r.choice("<>")
        for _ in range(count):
            i = r.randrange(len(ifaces))
            lt, snap, res, *_ = ifaces[i]
            pkt, what, version = _draw(r, packet or network_packet)
            while version not in _LINKS[lt]:
                pkt, what, version = _draw(r, packet or network_packet)
            units = 10**6 if res is None else (1 << (res & 0x7F)) if res & 0x80 else 10**res
            ticks[i] = ticks.get(i, T0 * units) + r.randrange(1, units // 100 + 2)
            kind = "spb" if i == 0 and r.random() < 0.05 else r.choice(["epb", "epb", "opb"])
            frame = link_frame(r, lt, pkt, version)
            packets.append((kind, i, ticks[i], frame, _epb_options(r, order)))
            if kinds is not None:
                kinds.append((what, len(frame) - len(pkt), snap))
        out.append(pcapng_bytes(ifaces, packets, order=order,
                                extra_blocks=r.random() < 0.3))
    return b"".join(out)


def _draw(r, packet):
    """``packet(r)`` as (bytes, what, IP version)."""
    got = packet(r)
    if isinstance(got, bytes):
        return got, None, got[0] >> 4
    return got


def differential(n, seed=0, folder=None, per_file=500):
    """Decode ``n`` random frames with qoslab and tshark; return (frames compared,
    Counter of mismatching columns, first examples per column)."""
    r = random.Random(seed)
    counts, examples, total = collections.Counter(), {}, 0
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        k = 0
        while total < n:
            m = min(per_file, n - total)
            path = Path(tmp) / f"diff{k}.pcapng"
            path.write_bytes(random_capture(r, m))
            ours, bad = disagreements(path)
            total += len(ours)
            for row, col, got, want, tunnel in bad:
                counts[col] += 1
                examples.setdefault(col, []).append((k, row, got, want, tunnel))
            k += 1
    return total, counts, examples


#: tshark's expert severities (epan/proto.h PI_WARN, PI_ERROR): a warning or an error on a
#: frame means Wireshark found it malformed (with sequence analysis off, see below) ...
_WARN = 0x00600000
#: ... but for these warnings, about what qoslab deliberately does not check:
NOT_CHECKED = (
    # checksums: a capture on the sending host holds offloaded, not yet filled checksums
    "Bad checksum", "Incorrect GRE Checksum", "Illegal checksum value",
    # what TCP flags and options say about the connection, not how its header is built
    "NOP in a row", "Connection reset (RST)", "non-SYN packet does contain a MSS option",
    "D-SACK Sequence",
    # what an option or address means (its own length rule, where it may appear, multicast
    # source MACs, a routing header's segments), and Geneve's options: read past, not checked
    "Invalid Length", "Invalid option length", "must use a hop-by-hop options header",
    "segments left field must not exceed", "must not be a group address", "Class: ",
    "extension header length must not be odd", "Invalid length", "shift exceeds 14",
    "Suboption would go past end of option", "must use a destination options header",
)
#: ICMP messages whose body qoslab does not read, so tshark's warnings about it are not used:
#: errors (IPv4 3 4 5 11 12, ICMPv6 1-4) quote a datagram, which may legitimately stop
#: anywhere; ICMPv6 neighbour discovery, MLD, RPL ... bodies (every type but echo) are not
#: decoded (ICMP's common header, and the echo identifier and sequence, are).
_ICMP_BODIES = {4: lambda t: t in (3, 4, 5, 11, 12), 6: lambda t: t not in (128, 129)}


#: Wireshark layers (protocol filter names) whose headers qoslab reads: warnings of other
#: layers (DNS, NTP, ... carried as data) are not about anything qoslab decodes; nor are
#: SCTP's (qoslab reads its common header, the ports: tshark's warnings there are about the
#: chunks, SCTP's payload).
READ_LAYERS = {"frame", "eth", "vlan", "ieee8021ad", "sll", "null", "ip", "ipv6", "tcp", "udp",
               "udplite", "dccp", "icmp", "icmpv6", "esp", "ah", "gre", "vxlan", "geneve",
               "ppp", "mpls"}


def _experts(tree):
    """Every (severity, message) of the expert items inside a tshark JSON subtree."""
    if isinstance(tree, list):
        for item in tree:
            yield from _experts(item)
    elif isinstance(tree, dict):
        if "_ws.expert.severity" in tree:
            yield int(tree["_ws.expert.severity"]), tree.get("_ws.expert.message", "")
        for value in tree.values():
            yield from _experts(value)


def _plen_zero(tree):
    """Does an IPv6 header of this tshark JSON ``ipv6`` layer state a payload length of 0?"""
    trees = tree if isinstance(tree, list) else [tree]
    return any(isinstance(t, dict) and t.get("ipv6.plen") == "0" for t in trees)


def tshark_malformed(path):
    """Per frame, tshark's expert messages of severity warning or error in the layers
    qoslab reads (a list; None for a frame with an IPv6 payload length of 0, see
    :func:`corrupted_differential`); an exception ("Malformed Packet") belongs to the layer
    before it."""
    import json
    import subprocess

    from .conftest import need_tool

    out = subprocess.run(
        [need_tool("tshark"), "-n", "-r", str(path), "-o", "ip.defragment:FALSE", "-o",
         "ipv6.defragment:FALSE", "-o", "ip.check_checksum:FALSE", "-o",
         "tcp.analyze_sequence_numbers:FALSE", "-T", "json", "--no-duplicate-keys"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    rows = []
    for frame in json.loads(out):
        layers = frame["_source"]["layers"]
        if "frame.interface_id" not in layers.get("frame", {}) and \
                "frame.time_epoch" not in layers.get("frame", {}):
            continue  # an unknown pcapng block, listed as a record
        # an exception belongs to the last layer dissected (layers of one name are merged
        # into the first one's place: frame.protocols keeps the order)
        protocols = layers["frame"].get("frame.protocols", "").split(":")
        last = [p for p in protocols if p != "_ws.malformed"][-1:] or [None]
        found = []
        for name, tree in layers.items():
            owner = last[0] if name == "_ws.malformed" else name
            if owner in READ_LAYERS and not (name == "_ws.malformed" and "ah" in protocols):
                found += [m for k, m in _experts(tree)
                          if k >= _WARN and not any(x in m for x in NOT_CHECKED)]
            if name == "ah":
                break  # qoslab reads AH's SPI; what it protects is not decoded
        rows.append(None if _plen_zero(layers.get("ipv6")) else found)
    return rows


#: Columns read behind the IPv6 extension headers.
BEHIND_EXT_HEADERS = {"proto", "sport", "dport", "icmp_type", "icmp_code", "icmp_id", "icmp_seq",
                      "spi", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_len", "tunnel",
                      "tunnel_id"} | {c for c in COMPARED if c.startswith("inner_")}


def corrupted_differential(n, seed=0, folder=None, per_file=400):
    """Decode ``n`` frames with one malformed header each (:func:`corrupted_packet`) with
    qoslab and tshark; return (frames, Counter of findings, examples per finding).

    Findings: a column name (a cell both decoders fill differs; see
    ``disagreements(..., flagged_both_decode=True)``); ``unflagged_invalid`` (a header
    malformed by its specification, captured, and ``problem`` empty); ``unflagged_malformed``
    (tshark warns about the frame and ``problem`` is empty)."""
    r = random.Random(seed)
    counts, examples, total = collections.Counter(), {}, 0

    def found(what, example):
        counts[what] += 1
        examples.setdefault(what, []).append(example)

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        k = 0
        while total < n:
            m = min(per_file, n - total)
            path = Path(tmp) / f"bad{k}.pcapng"
            kinds = []
            path.write_bytes(random_capture(r, m, corrupted_packet, kinds))
            ours, bad = disagreements(path, flagged_both_decode=True)
            warned = tshark_malformed(path)
            assert len(warned) == len(ours) == len(kinds)
            problem = ours["problem"].astype(str).tolist()
            version, proto = (ours[c].astype("Int64").fillna(0).tolist()
                              for c in ("ip_version", "proto"))
            for row, col, got, want, tunnel in bad:
                if warned[row] is None:
                    continue  # an IPv6 payload length of 0: qoslab reads the payload to the
                    # frame's end (as an IPv4 total length of 0: segmentation offload; Linux
                    # BIG TCP captures hold such packets), tshark reads an empty payload
                if col == "l4_len":
                    # l4_len is the IP payload as the IP header states it; the comparison
                    # reads tshark's udp.length for it, and that field may be the corrupted one
                    continue
                if problem[row] == "bad_inner_ip_header" and col == "tunnel":
                    continue  # tshark names no tunnel whose inner header it cannot read;
                    # qoslab names it by the outer header's protocol, and flags the inner one
                if problem[row] == "bad_ext_header" and col in BEHIND_EXT_HEADERS:
                    continue  # qoslab stops at a malformed extension header (Linux drops
                    # such a packet); tshark dissects on as far as it can
                if col.startswith("icmp_") and got is None and (version[row], proto[row]) in (
                        (6, 1), (4, 58)):
                    continue  # ICMP over IPv6 / ICMPv6 over IPv4: qoslab reads the ICMP
                    # fields of each IP version's own ICMP only (tshark reads either)
                if col == "tunnel" and got == "none" and problem[row] == "bad_ip_header":
                    # tshark's IPv4 dissector hands a header of version 6 to IPv6 (layers
                    # ip:ipv6, read here as a tunnel); qoslab flags the version that disagrees
                    # with the link's EtherType / family
                    continue
                found(col, (k, row, kinds[row][0], problem[row], got, want, tunnel))
            cap = ours["cap_len"].tolist()
            quoting = [v in _ICMP_BODIES and t >= 0 and _ICMP_BODIES[v](t) for t, v in zip(
                ours["icmp_type"].astype("Int64").fillna(-1), ours["ip_version"].astype("Int64").fillna(0), strict=True)]
            for row, ((kind, at), link, _snap) in enumerate(kinds):
                if problem[row]:
                    continue
                if kind in INVALID and link + at < cap[row]:
                    found("unflagged_invalid", (k, row, kind, at))
                if warned[row] and not quoting[row]:
                    found("unflagged_malformed", (k, row, kind, warned[row]))
            total += len(ours)
            k += 1
    return total, counts, examples


def test_random_captures_decode_as_tshark_decodes(tmp_path):
    total, counts, examples = differential(PACKETS, seed=18, folder=tmp_path)
    assert total >= PACKETS
    assert not counts, f"{dict(counts)}; e.g. {[(c, v[:3]) for c, v in examples.items()]}"




def test_corrupted_headers_are_flagged_and_decode_as_tshark_decodes(tmp_path):
    """Frames with one malformed header each: every one malformed by its specification is
    flagged, every one tshark warns about (in a layer qoslab reads) is flagged, and the cells
    both decoders fill agree."""
    total, counts, examples = corrupted_differential(CORRUPTED, seed=18, folder=tmp_path)
    assert total >= CORRUPTED
    assert not counts, f"{dict(counts)}; e.g. {[(c, v[:3]) for c, v in examples.items()]}"


# ---------------------------------------------------------------- round trips
def _wrap(r, kind, pkt):
    """``pkt`` (an IP packet) inside tunnel ``kind`` between two fixed outer hosts."""
    o4 = IP(src="192.0.2.1", dst="198.51.100.7")
    if kind == "none":
        return pkt
    if kind == "ipip":
        return o4 / pkt
    if kind == "ip6ip":
        return IPv6(src="2001:db8:f::1", dst="2001:db8:f::2") / pkt
    if kind == "gre":
        return o4 / GRE(key_present=1, key=7) / pkt
    if kind == "nvgre":
        return o4 / GRE(proto=0x6558, key_present=1, key=0x100) / _IE / pkt
    if kind == "vxlan":
        return o4 / UDP(sport=50000, dport=4789) / VXLAN(vni=42) / _IE / pkt
    ptype = 0x0800 if pkt.version == 4 else 0x86DD
    return o4 / UDP(sport=50001, dport=6081) / Raw(_geneve(9, ptype)) / pkt


def _ping_fragments(r, pkt):
    """``pkt`` whole, or as fragments (sometimes out of order)."""
    if len(bytes(pkt)) < 600 or r.random() < 0.3:
        return [pkt]
    size = r.choice([256, 512, 1000])
    overlap = r.choice([0, 0, 0, 8, 64])  # each fragment repeats the previous one's tail
    if pkt.version == 4:
        parts = _fragments4_exact(pkt, size, overlap)
    else:
        parts = _fragments6_exact(pkt, size, r.getrandbits(32), overlap)
    if r.random() < 0.3:
        r.shuffle(parts)
    return parts


def _fragments4_exact(pkt, size, overlap=0):
    pkt = IP(bytes(pkt))
    data = bytes(pkt[IP].payload)
    out = []
    for off in _offsets(len(data), size, overlap):
        h = pkt[IP].copy()
        h.remove_payload()
        h.flags = 1 if off + size < len(data) else 0
        h.frag, h.len, h.chksum = off // 8, None, None
        out.append(h / Raw(data[off:off + size]))
    return out


def _fragments6_exact(pkt, size, ident, overlap=0):
    pkt = IPv6(bytes(pkt))
    data = bytes(pkt[IPv6].payload)
    return [IPv6(src=pkt.src, dst=pkt.dst) / IPv6ExtHdrFragment(
        nh=pkt.nh, offset=off // 8, m=int(off + size < len(data)), id=ident)
        / Raw(data[off:off + size]) for off in _offsets(len(data), size, overlap)]


def _offsets(length, size, overlap):
    """Fragment offsets covering ``length`` bytes in ``size`` pieces, each starting
    ``overlap`` bytes before the previous one's end."""
    out, off = [], 0
    while True:
        out.append(off)
        if off + size >= length:
            return out
        off += size - overlap


def random_pings(r, n):
    """Frames and times (ns) of ``n`` echo exchanges: both IP versions, small and large
    (fragmented) payloads, inside every tunnel kind, some replies lost or duplicated."""
    frames, times = [], []
    t = T0 * 10**9
    for k in range(n):
        v6 = r.random() < 0.4
        kind = r.choice(["none", "none", "ipip", "ip6ip", "gre", "nvgre", "vxlan", "geneve"])
        a, b = ("2001:db8::1", f"2001:db8::{2 + k % 3:x}") if v6 else ("10.0.0.1",
                                                                       f"10.0.0.{2 + k % 3}")
        size = r.choice([56, 56, 1400, 3000])
        ident, seq = 0x4000 + k % 5, k
        if v6:
            req = IPv6(src=a, dst=b) / ICMPv6EchoRequest(id=ident, seq=seq, data=b"q" * size)
            rep = IPv6(src=b, dst=a) / ICMPv6EchoReply(id=ident, seq=seq, data=b"q" * size)
        else:
            req = IP(src=a, dst=b, id=r.randrange(65536)) / ICMP(type=8, id=ident, seq=seq) \
                / Raw(b"q" * size)
            rep = IP(src=b, dst=a, id=r.randrange(65536)) / ICMP(type=0, id=ident, seq=seq) \
                / Raw(b"q" * size)
        copies = r.choice([1, 1, 1, 1, 0, 2])  # lost, or a duplicate reply
        for part in _ping_fragments(r, req):
            t += r.randrange(1, 50_000)
            frames.append(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                                / _wrap(r, kind, part)))
            times.append(t)
        for _ in range(copies):
            for part in _ping_fragments(r, rep):
                t += r.randrange(1, 5_000_000)
                frames.append(bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                                    / _wrap(r, kind, part)))
                times.append(t)
        t += r.randrange(1_000_000, 20_000_000)
    return frames, times


def random_conversation(r, isn_c, isn_s):
    """A TCP exchange script for tests.test_capture_tcprtt._conv: data both ways with
    retransmissions, reordering, dup acks, window updates and SACK blocks."""
    script = [("c", "S", 0, 0, 0), ("s", "SA", 0, 1, 0), ("c", "A", 1, 1, 0)]
    sent = {"c": 1, "s": 1}
    acked = {"c": 1, "s": 1}  # what each side has acknowledged of the other
    history = {"c": [], "s": []}
    for _ in range(r.randrange(5, 40)):
        who = "c" if r.random() < 0.7 else "s"
        other = "s" if who == "c" else "c"
        k = r.random()
        if k < 0.45:  # new data
            size = r.choice([1, 100, 536, 1448])
            script.append((who, "PA", sent[who], sent[other], size))
            history[who].append((sent[who], size))
            sent[who] += size
        elif k < 0.55 and history[who]:  # retransmission of an earlier segment
            seq, size = r.choice(history[who])
            script.append((who, "PA", seq, sent[other], size))
        elif k < 0.85:  # the other side acks (cumulative, partial or a duplicate)
            upto = r.choice([sent[who], acked[other]] + [s for s, _ in history[who][-3:]])
            acked[other] = max(acked[other], upto)
            script.append((other, "A", sent[other], upto, 0))
        else:  # a window update / keep-alive style pure ACK repeating the last ack
            script.append((other, "A", sent[other], acked[other], 0))
    if r.random() < 0.7:
        script += [("c", "FA", sent["c"], sent["s"], 0), ("s", "FA", sent["s"], sent["c"] + 1, 0),
                   ("c", "A", sent["c"] + 1, sent["s"] + 1, 0)]
    return script


def _with_options(r, frame):
    """``frame`` (a TCP segment) with a SACK block or timestamps added."""
    pkt = Ether(frame)
    tcp = pkt[TCP]
    seq, ack = tcp.seq, tcp.ack
    tcp.options = r.choice([[("NOP", None), ("NOP", None),
                             ("SAck", ((ack + 1000) % 2**32, (ack + 2448) % 2**32))],
                            [("NOP", None), ("NOP", None), ("Timestamp", (seq, ack))]])
    tcp.dataofs = tcp.chksum = None
    ip = pkt[IP] if IP in pkt else pkt[IPv6]
    if IP in pkt:
        ip.len = ip.chksum = None
    else:
        ip.plen = None
    return bytes(pkt)


def rtt_differential(n_pings, n_conversations, seed=0, folder=None):
    """echo_rtts vs icmp.resptime and tcp_rtts vs tcp.analysis.ack_rtt on random crafted
    exchanges; returns ({check: mismatches}, {check: compared})."""
    from qoslab.capture import echo_rtts, read_capture, tcp_rtts
    from tests.test_capture_tcprtt import _conv, tshark_ack_rtts
    from tests.test_capture_tshark import write_pcap

    from .conftest import need_tool

    r = random.Random(seed)
    bad, seen = collections.Counter(), collections.Counter()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        frames, times = random_pings(r, n_pings)
        path = write_pcap(Path(tmp) / "pings.pcap", frames, nano=True, times=times)
        import subprocess

        out = subprocess.run([need_tool("tshark"), "-n", "-r", str(path), "-T", "fields",
                              "-e", "icmp.resptime", "-e", "icmpv6.resptime"],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        ref = {i: float(a or b) / 1000 for i, line in enumerate(out.splitlines())
               for a, b in [line.split("\t")] if a or b}
        probes = echo_rtts(read_capture(path))
        ok = probes[probes["status"] == "ok"]
        got = dict(zip(ok["reply_row"].astype(int), ok["rtt_ms"] / 1000, strict=True))
        seen["echo"] = len(ref)
        bad["echo"] = len(ref.keys() ^ got.keys()) + sum(
            abs(got[k] - ref[k]) > 1e-9 for k in ref.keys() & got.keys())
        frames, times, t = [], [], T0 * 10**9
        for c in range(n_conversations):
            v6 = r.random() < 0.3
            a, b = ("2001:db8::1", "2001:db8::2") if v6 else ("10.0.0.1", "10.0.0.2")
            script = random_conversation(r, 0, 0)
            conv = _conv(a, b, 40000 + c, 5201, r.getrandbits(32), r.getrandbits(32), script,
                         ip=IPv6 if v6 else IP)
            for f in conv:
                if r.random() < 0.2:  # options: SACK blocks, timestamps
                    f = _with_options(r, f)
                t += r.choice([0, 1000, r.randrange(1, 30_000_000)])
                frames.append(f)
                times.append(t)
        path = write_pcap(Path(tmp) / "tcp.pcap", frames, nano=True, times=times)
        ref = tshark_ack_rtts(path)
        rtt = tcp_rtts(read_capture(path))
        got = {int(a): (x / 1000, int(s)) for a, x, s in
               zip(rtt["ack_row"], rtt["rtt_ms"], rtt["segment_row"], strict=True)}
        seen["tcp"] = len(ref)
        bad["tcp"] = len(ref.keys() ^ got.keys()) + sum(
            got[k][1] != ref[k][1] or abs(got[k][0] - ref[k][0]) > 1e-9
            for k in ref.keys() & got.keys())
    return bad, seen


def test_random_round_trips_equal_tshark_resptime_and_ack_rtt(tmp_path):
    pings, conversations = max(20, PACKETS // 8), max(5, PACKETS // 50)
    bad, seen = rtt_differential(pings, conversations, seed=18, folder=tmp_path)
    assert seen["echo"] >= pings // 2 and seen["tcp"] >= conversations * 3
    assert not +bad, (dict(bad), dict(seen))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    total, counts, examples = differential(n, seed)
    print(f"{total} frames compared; mismatching cells per column:")
    for col, c in counts.most_common():
        print(f"  {col:22s} {c:6d}  e.g. {examples[col][:3]}")
    total, counts, examples = corrupted_differential(n // 2, seed)
    print(f"{total} corrupted frames compared; findings:")
    for what, c in counts.most_common():
        print(f"  {what:22s} {c:6d}  e.g. {examples[what][:3]}")
    bad, seen = rtt_differential(n // 8, n // 50, seed)
    for check in seen:
        print(f"{check}: {seen[check]} tshark round trips, {bad[check]} differ")


def test_reassembly_rounds_equal_the_fragment_by_fragment_walk(tmp_path, monkeypatch):
    """Datagrams sharing a key (duplicates, overlapping pieces, out of order): the vectorized
    rounds and the walk that takes over after MAX_ROUNDS pair the same."""
    from qoslab.capture import echo, echo_rtts, read_capture
    from tests.test_capture_tshark import write_pcap

    frames, times = random_pings(random.Random(5), 150)
    path = write_pcap(tmp_path / "p.pcap", frames, nano=True, times=times)
    packets = read_capture(path)
    rounds = echo_rtts(packets)
    monkeypatch.setattr(echo, "MAX_ROUNDS", 0)
    walked = echo_rtts(packets)
    assert (rounds["status"] == "duplicate").any() and rounds.equals(walked)
