"""PACKETS from crafted captures compared, row by row and column by column, with tshark.

Wireshark is the independent reference decoder: every packet set below is written to a file
(classic pcap in both byte orders and both time units, pcapng with several interfaces) and
decoded by both. Where the two may legitimately differ the comparison says why.
"""

from __future__ import annotations

import struct
import subprocess
from decimal import Decimal
from functools import cache, lru_cache

import numpy as np
import pandas as pd
import pytest
from scapy.all import (
    AH,
    ARP,
    ESP,
    ICMP,
    IP,
    LLC,
    TCP,
    UDP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Dot3,
    Ether,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPOption_Router_Alert,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
    fragment,
)

from qoslab.capture import read_capture
from tests.conftest import need_tool

T0 = 1_700_000_000  # seconds; every crafted capture starts here


# ---------------------------------------------------------------- writers (independent of qoslab)
def write_pcap(path, frames, linktype=1, *, order="<", nano=False, snaplen=262144, times=None):
    """Write a classic pcap; ``frames`` are bytes, cut to ``snaplen`` like libpcap would."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    unit = 10**9 if nano else 10**6
    for i, f in enumerate(frames):
        t = times[i] if times is not None else T0 * 10**9 + i * 1_234_567
        sec, frac = divmod(t, 10**9)
        frac = frac if nano else frac // 1000
        cap = f[:snaplen]
        assert frac < unit
        out.append(struct.pack(order + "IIII", sec, frac, len(cap), len(f)) + cap)
    path.write_bytes(b"".join(out))
    return path


def _block(order, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def write_pcapng(path, interfaces, packets, *, order="<", extra_blocks=True):
    """Write a pcapng. ``interfaces``: [(linktype, snaplen, tsresol byte or None[,
    tsoffset seconds])]; ``packets``: [(kind "epb"|"spb"|"opb", iface, ticks, frame bytes[,
    EPB options [(code, value bytes)]])]."""
    path.write_bytes(pcapng_bytes(interfaces, packets, order=order, extra_blocks=extra_blocks))
    return path


def pcapng_bytes(interfaces, packets, *, order="<", extra_blocks=True, version=(1, 0)):
    """One pcapng section as bytes (see :func:`write_pcapng`)."""
    out = [_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, *version, -1))]
    for linktype, snaplen, tsresol, *tsoffset in interfaces:
        opts = b""
        if tsresol is not None:
            opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
        if tsoffset:
            opts += struct.pack(order + "HHq", 14, 8, tsoffset[0])
        if opts:
            opts += struct.pack(order + "HH", 0, 0)
        out.append(_block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts))
    if extra_blocks:  # an unknown block type and a custom block: both are skipped
        out.append(_block(order, 0x0BAD, b"unknown block body"))
        out.append(_block(order, 0x40000BAD, b"\0\0\0\0custom"))
    for kind, iface, ticks, frame, *options in packets:
        snap = interfaces[iface][1]
        cap = frame[:snap] if snap else frame
        if kind == "epb":  # options: [(code, value bytes)], e.g. epb_flags, opt_comment
            body = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF,
                               len(cap), len(frame)) + cap
            body += b"\0" * (-len(body) % 4)
            for code, value in options[0] if options else ():
                body += struct.pack(order + "HH", code, len(value)) + value
                body += b"\0" * (-len(value) % 4)
            if options and options[0]:
                body += struct.pack(order + "HH", 0, 0)
            out.append(_block(order, 6, body))
        elif kind == "opb":
            body = struct.pack(order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF,
                               len(cap), len(frame)) + cap
            out.append(_block(order, 2, body))
        else:
            out.append(_block(order, 3, struct.pack(order + "I", len(frame)) + cap))
    return b"".join(out)


# ---------------------------------------------------------------- crafted traffic
A4, B4, C4, D4 = "10.0.0.1", "10.0.0.2", "192.0.2.1", "198.51.100.7"
A6, B6, C6, D6 = "2001:db8::1", "2001:db8::2", "2001:db8:1::a", "fd00::7"


ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # explicit: no ARP lookups


@lru_cache(maxsize=1)
def ip_packets():
    """Network-layer packets (no link header) covering every decoded header."""
    big = IP(src=A4, dst=B4, id=77) / UDP(sport=4000, dport=5000) / Raw(b"z" * 1600)
    frags = fragment(big, fragsize=600)
    v6frag = [
        IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=0, m=1, id=9, nh=17)
        / UDP(sport=7, dport=8) / Raw(b"a" * 48),
        IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=7, m=0, id=9, nh=17) / Raw(b"b" * 40),
    ]
    return tuple([
        IP(src=A4, dst=B4, tos=0x10, ttl=61) / TCP(sport=40000, dport=22) / Raw(b"x" * 200),
        IP(src=B4, dst=A4, tos=0x00) / TCP(sport=22, dport=40000, flags="A"),
        IP(src=A4, dst=C4, tos=0x08) / UDP(sport=5353, dport=53) / Raw(b"q" * 30),
        IP(src=A4, dst=C4, tos=0xB9) / ICMP(type=8, id=0x1234, seq=1) / Raw(b"p" * 56),
        IP(src=C4, dst=A4, tos=0x10) / ICMP(type=0, id=0x1234, seq=1) / Raw(b"p" * 56),
        IP(src=A4, dst=C4) / ICMP(type=3, code=1) / Raw(b"\0" * 4),
        IP(src=A4, dst=B4, options=[IPOption_Router_Alert()]) / UDP(sport=1, dport=2),
        *frags,
        IP(src=A4, dst=D4, proto=50) / ESP(spi=0xDEADBEEF, seq=1) / Raw(b"e" * 20),
        IP(src=A4, dst=D4) / AH(spi=0x1001, nh=59, payloadlen=4) / Raw(b"\0" * 16),
        IPv6(src=A6, dst=B6, tc=0x28, fl=0xABCDE, hlim=9) / TCP(sport=1, dport=443),
        IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=5, seq=6) / Raw(b"d" * 8),
        IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=5, seq=6) / Raw(b"d" * 8),
        IPv6(src=A6, dst=C6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting(addresses=[D6])
        / IPv6ExtHdrDestOpt() / UDP(sport=546, dport=547),
        *v6frag,
        # tunnels
        IP(src=C4, dst=D4) / IP(src=A4, dst=B4, tos=0x10) / TCP(sport=50000, dport=22),
        IP(src=C4, dst=D4) / IP(src=A4, dst=B4) / ICMP(type=8, id=3, seq=4),
        IP(src=C4, dst=D4) / IPv6(src=A6, dst=B6, tc=0x20) / UDP(sport=9, dport=10),
        IPv6(src=C6, dst=D6) / IP(src=A4, dst=B4, tos=0x08) / UDP(sport=11, dport=12),
        IPv6(src=C6, dst=D6) / IPv6(src=A6, dst=B6, fl=0x12345) / ICMPv6EchoRequest(id=1, seq=2),
        IPv6(src=C6, dst=D6) / IPv6ExtHdrDestOpt() / IP(src=A4, dst=B4) / TCP(sport=5, dport=6),
        IP(src=C4, dst=D4) / IP(src=A4, dst=B4, proto=50) / ESP(spi=0x0BADCAFE, seq=2)
        / Raw(b"e" * 12),
        IPv6(src=C6, dst=D6) / IPv6(src=A6, dst=B6) / AH(spi=0x2002, nh=59, payloadlen=4)
        / Raw(b"\0" * 16),
    ])


@cache
def link_frames(linktype):
    """Frames of one link type wrapping :func:`ip_packets` (plus link-specific extras)."""
    return list(_link_frames(linktype))


@cache
def _link_frames(linktype):
    pk = ip_packets()
    if linktype == 1:
        e = [ETH / p for p in pk]
        e += [ETH / Dot1Q(vlan=42, prio=5) / pk[0],
              ETH / Dot1AD(vlan=100, prio=3, dei=1) / Dot1Q(vlan=200) / pk[3],
              ETH / Dot1Q(vlan=7, dei=1) / pk[-2],
              ETH / ARP(pdst=B4, hwdst="00:00:00:00:00:00"),
              Dot3(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / LLC() / Raw(b"\0" * 40)]
        return tuple(bytes(f) for f in e)
    if linktype == 113:
        return tuple(bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6,
                                  proto=0x86DD if p.version == 6 else 0x0800) / p) for p in pk)
    if linktype == 276:
        return tuple(bytes(CookedLinuxV2(proto=0x86DD if p.version == 6 else 0x0800, ifindex=3,
                                         lladdrtype=1, lladdrlen=6) / p) for p in pk)
    if linktype == 101:
        return tuple(bytes(p) for p in pk)
    if linktype == 228:
        return tuple(bytes(p) for p in pk if p.version == 4)
    if linktype == 229:
        return tuple(bytes(p) for p in pk if p.version == 6)
    if linktype == 0:  # BSD null: family in the writer's (here little-endian) byte order
        return tuple(struct.pack("<I", 30 if p.version == 6 else 2) + bytes(p) for p in pk)
    if linktype == 108:  # OpenBSD loop: family in network byte order
        return tuple(struct.pack(">I", 24 if p.version == 6 else 2) + bytes(p) for p in pk)
    raise AssertionError(linktype)


# ---------------------------------------------------------------- tshark reference
# The field map: which tshark fields each compared PACKETS column is (expected_row walks
# them layer by layer). Where Wireshark 4.0 and qoslab differ on purpose, the crafted
# captures avoid the case and say so here:
# * UDP: Wireshark tries the lower port's dissector first, so a tunnel whose *source* port
#   is a lower registered port (3130 ICP …) is not shown as VXLAN/Geneve; qoslab, like the
#   receiving kernel, dispatches on the destination port (crafted tunnels use ephemeral
#   source ports).
# * pcapng epb_flags with an FCS length (and if_fcslen): Wireshark strips that many trailing
#   bytes as the Ethernet FCS; qoslab reads no FCS — it lies after the IP datagram, where
#   no column reads (crafted flags have FCS length 0).
# * Two 802.1ad tags in a row are one Wireshark layer with ieee8021ad.svid/cvid instead of
#   ieee8021ad.id; 802.1ad has no EtherType field (the next layer's name gives it).
# * Rows Wireshark cannot fully read: see the exceptions in disagreements().
FIELDS = [
    "frame.time_epoch", "frame.len", "frame.cap_len", "frame.interface_id", "frame.protocols",
    "frame.section_number", "eth.type", "sll.etype", "vlan.id", "vlan.priority", "vlan.dei", "vlan.etype", "ieee8021ad.id",
    "ieee8021ad.priority", "ieee8021ad.dei", "ieee8021ad.svid", "ieee8021ad.cvid", "ip.src", "ip.dst", "ip.proto", "ip.dsfield",
    "ip.ttl", "ip.flags.mf", "ip.frag_offset", "ip.id", "ip.version", "ipv6.version", "ipv6.src", "ipv6.dst", "ipv6.nxt",
    "ipv6.tclass", "ipv6.hlim", "ipv6.flow", "ipv6.hopopts.nxt", "ipv6.routing.nxt",
    "ipv6.fraghdr.nxt", "ipv6.dstopts.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
    "ipv6.fraghdr.ident", "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw",
    "tcp.ack_raw", "tcp.len", "udp.srcport", "udp.dstport", "udp.length", "sctp.srcport",
    "sctp.dstport", "dccp.srcport", "dccp.dstport", "icmp.type",
    "icmp.code", "icmp.ident", "icmp.seq", "icmpv6.type", "icmpv6.code",
    "icmpv6.echo.identifier", "icmpv6.echo.sequence_number", "esp.spi", "ah.spi",
    "gre.flags_and_version", "gre.proto", "gre.key", "vxlan.vni", "geneve.vni",
    "geneve.proto_type",
]
_EXT = {"ipv6.hopopts": "ipv6.hopopts.nxt", "ipv6.routing": "ipv6.routing.nxt",
        "ipv6.fraghdr": "ipv6.fraghdr.nxt", "ipv6.dstopts": "ipv6.dstopts.nxt"}


def tshark_rows(path, udp_tunnels=None):
    """tshark's fields of every frame; ``udp_tunnels`` ({port: kind}) become decode-as rules."""
    exe = need_tool("tshark")
    cmd = [exe, "-n", "-r", str(path), "-o", "ip.defragment:FALSE", "-o",
           "ipv6.defragment:FALSE", "-o", "ip.check_checksum:FALSE", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=;"]
    for port, kind in (udp_tunnels or {}).items():
        cmd += ["-d", f"udp.port=={port},{kind}"]
    for f in FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    rows = []
    for line in res.stdout.splitlines():
        vals = line.split("\t")
        row = {f: (v.split(";") if v else []) for f, v in zip(FIELDS, vals, strict=True)}
        if not row["frame.time_epoch"] and not row["frame.interface_id"]:
            continue  # Wireshark lists unknown pcapng blocks as records; they are not packets
        rows.append(row)
    return rows


def _int(v):
    if v is None:
        return None
    return int(v, 0) if v.startswith("0x") else int(v)


#: Every PACKETS column the comparison checks (besides time and lengths).
COMPARED = ("l2_proto", "vlan", "vlan_pcp", "vlan_dei", "ip_version", "src", "dst", "proto", "ipv6_nexthdr",
            "tos", "ttl", "flow_label", "frag", "frag_offset", "frag_more", "ip_id", "sport",
            "dport", "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "spi", "tcp_flags",
            "tcp_seq", "tcp_ack", "tcp_len", "tunnel", "tunnel_id", "inner_l2_proto",
            "inner_vlan", "inner_ip_version", "inner_src", "inner_dst", "inner_proto",
            "inner_tos", "inner_frag_offset", "inner_frag_more", "inner_ip_id",
            "inner_sport", "inner_dport", "inner_icmp_type", "inner_icmp_id", "inner_icmp_seq",
            "inner_spi", "inner_flow_label", "inner_ipv6_nexthdr")
_IP_FIELDS = ("ip_version", "src", "dst", "proto", "tos", "flow_label", "ipv6_nexthdr",
              "frag_offset", "frag_more", "ip_id")
_TRUE = ("1", "True")


def expected_row(r):
    """Our PACKETS fields as Wireshark decoded them (None = not present).

    Walks ``frame.protocols`` layer by layer, taking each field's occurrences in order: the
    link and its VLAN tags, the outer IP header, an encapsulation (IP-in-IP, GRE, VXLAN,
    Geneve), an inner Ethernet frame and its tags, the inner IP header, then the first
    transport. A third IP header (a tunnel inside the tunnel) ends the walk.
    """
    e = dict.fromkeys(COMPARED)
    e["tunnel"] = "none"  # also for frames without IP
    stamp = r["frame.time_epoch"]  # Simple Packet Blocks have none: ours is NaT
    e["time_ns"] = int(Decimal(stamp[0]) * 10**9) if stamp else None
    e["wire_len"] = int(r["frame.len"][0])
    e["cap_len"] = int(r["frame.cap_len"][0])
    e["ifindex"] = int(r["frame.interface_id"][0]) if r["frame.interface_id"] else 0
    # pcapng sections: tshark numbers them from 1 (none for classic pcap)
    e["section"] = int(r["frame.section_number"][0]) - 1 if r["frame.section_number"] else 0
    protos = r["frame.protocols"][0].split(":") if r["frame.protocols"] else []  # none: a
    # raw IP link whose version nibble is neither 4 nor 6
    used = dict.fromkeys(FIELDS, 0)

    def take(field):
        vals = r[field]
        i = used[field]
        used[field] += 1
        return vals[i] if i < len(vals) else None

    ips = []  # one dict per IP header
    tags = ([], [])  # (id, pcp, dei) of the outer link / of an inner Ethernet frame
    ethertype = [None, None]
    enc = None  # the encapsulation: kind, tunnel_id, payload
    transport = None
    i = 0
    while i < len(protos) and transport is None:  # an ICMP error's quoted header is no layer
        tok = protos[i]
        nxt = protos[i + 1] if i + 1 < len(protos) else None
        level = 1 if ips else 0
        if tok == "eth":
            ethertype[level] = take("eth.type")
        elif tok == "sll":
            ethertype[level] = take("sll.etype")
        elif tok == "ieee8021ad" and level == 0 and r["ieee8021ad.svid"]:
            # two 802.1ad tags in a row: Wireshark shows them as one layer (S-VID, C-VID).
            # The occurrences of the two forms cannot be told apart in one frame: the
            # crafted frames have such a pair on the outer link only, and no other 802.1ad
            # layer there.
            for vid in ("svid", "cvid"):
                tags[level].append((take(f"ieee8021ad.{vid}"), take("ieee8021ad.priority"),
                                    take("ieee8021ad.dei")))
        elif tok in ("vlan", "ieee8021ad"):
            tags[level].append((take(f"{tok}.id"), take(f"{tok}.priority"),
                                take(f"{tok}.dei")))
            if tok == "vlan":
                ethertype[level] = take("vlan.etype")
            else:  # 802.1ad has no EtherType field: the next layer's name says it
                ethertype[level] = "behind 802.1ad"
        elif tok in ("ip", "ipv6"):
            if ethertype[level] == "behind 802.1ad":
                ethertype[level] = "0x0800" if tok == "ip" else "0x86dd"
            if len(ips) == 2:
                break  # nested: not opened
            if ips and enc is None:
                enc = {"kind": f"{4 if tok == 'ip' else 6}in{_int(ips[0]['ip_version'])}"}
            h = _ip_layer(tok, take, protos, i)
            i = h.pop("_last")
            ips.append(h)
        elif tok == "gre":
            if len(ips) == 2:
                break
            flags = _int(take("gre.flags_and_version")) or 0
            payload = _int(take("gre.proto"))
            key = _int(take("gre.key")) if flags & 0x2007 == 0x2000 else None
            nvgre = (flags & 0xF007) == 0x2000 and payload == 0x6558
            enc = {"kind": "nvgre" if nvgre else "gre", "tunnel_id": key, "payload": payload}
        elif tok == "udp" and nxt in ("vxlan", "geneve") and len(ips) == 1:
            sport, dport, _ = take("udp.srcport"), take("udp.dstport"), take("udp.length")
            e["sport"], e["dport"] = sport, dport  # the carrier's ports (outer level)
        elif tok == "vxlan":
            enc = {"kind": "vxlan", "tunnel_id": take("vxlan.vni"), "payload": 0x6558}
        elif tok == "geneve":
            vni, payload = take("geneve.vni"), _int(take("geneve.proto_type"))
            enc = {"kind": "geneve", "tunnel_id": vni, "payload": payload}
        elif tok in ("tcp", "udp"):
            transport = {"sport": take(f"{tok}.srcport"), "dport": take(f"{tok}.dstport")}
            if tok == "udp":  # the UDP length field: header + data, what l4_len states
                transport["l4_len"] = take("udp.length")
            else:
                transport.update(tcp_flags=take("tcp.flags"), tcp_seq=take("tcp.seq_raw"),
                                 tcp_ack=take("tcp.ack_raw"), tcp_len=take("tcp.len"))
        elif tok in ("sctp", "dccp", "udplite"):  # UDP-Lite: the UDP dissector's fields
            f = "udp" if tok == "udplite" else tok
            transport = {"sport": take(f"{f}.srcport"), "dport": take(f"{f}.dstport")}
            if tok == "udplite":
                take("udp.length")  # its checksum coverage, not a length
        elif tok in ("icmp", "icmpv6"):
            transport = {"icmp_type": take(f"{tok}.type"), "icmp_code": take(f"{tok}.code")}
            if tok == "icmp":
                transport["icmp_id"], transport["icmp_seq"] = take("icmp.ident"), take("icmp.seq")
            else:
                transport["icmp_id"] = take("icmpv6.echo.identifier")
                transport["icmp_seq"] = take("icmpv6.echo.sequence_number")
        elif tok in ("esp", "ah"):
            transport = {"spi": take(f"{tok}.spi")}
        i += 1
    # behind an 802.1ad tag followed by a layer tshark does not name, the EtherType is not
    # in its output (802.1ad has no etype field): the marker stays, and is not compared
    ethertype = [BEHIND_8021AD if t == "behind 802.1ad" else t for t in ethertype]
    e["l2_proto"] = ethertype[0]  # after the outer VLAN tags; None on raw IP / BSD links
    if tags[0]:
        vid, pcp, dei = tags[0][0]
        e["vlan"], e["vlan_pcp"], e["vlan_dei"] = vid, pcp, int(dei in _TRUE)
    if ips:
        e.update({k: v for k, v in ips[0].items() if k in _IP_FIELDS or k in ("ttl", "frag")})
    if enc is not None:
        e["tunnel"] = enc["kind"]
        e["tunnel_id"] = enc.get("tunnel_id")
        payload = enc.get("payload")
        if "payload" not in enc:  # IP-in-IP
            payload = 0x0800 if ips[1]["layer"] == "ip" else 0x86DD
        elif payload == 0x6558:  # an Ethernet frame: its EtherType after its tags
            payload = ethertype[1]
            if tags[1]:
                e["inner_vlan"] = tags[1][0][0]
        e["inner_l2_proto"] = payload
    if len(ips) > 1:
        inner = ips[1]
        tok_inner = inner["layer"]
        for k in ("ip_version", "src", "dst", "proto", "tos", "frag_offset", "frag_more",
                  "ip_id"):
            e["inner_" + k] = inner[k]
        if tok_inner == "ipv6":
            e["inner_flow_label"] = inner["flow_label"]
            e["inner_ipv6_nexthdr"] = inner["ipv6_nexthdr"]
    if transport:
        pre = "inner_" if len(ips) > 1 else ""
        for k, val in transport.items():
            if pre and k == "icmp_code":
                continue
            e[k if k in ("l4_len", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_len")
              else pre + k] = val
    for k, val in list(e.items()):
        if isinstance(val, str) and val != BEHIND_8021AD and \
                k not in ("src", "dst", "inner_src", "inner_dst", "tunnel"):
            e[k] = _int(val)
    return e


#: An EtherType tshark's fields do not give (see expected_row).
BEHIND_8021AD = "behind 802.1ad"


def _ip_layer(tok, take, protos, i):
    """One IP header (and, for IPv6, its extension headers) as our column values."""
    if tok == "ip":
        h = {"ip_version": take("ip.version"), "src": take("ip.src"), "dst": take("ip.dst"),
             "proto": take("ip.proto"), "tos": take("ip.dsfield"), "ttl": take("ip.ttl"),
             "ip_id": take("ip.id"), "flow_label": None, "ipv6_nexthdr": None}
        mf, off = take("ip.flags.mf"), take("ip.frag_offset")
        h["frag_offset"] = None if off is None else _int(off)  # 8-byte units
        h["frag_more"] = None if mf is None else mf in _TRUE
        h["frag"] = None if mf is None else (h["frag_more"] or h["frag_offset"] != 0)
        h["_last"], h["layer"] = i, tok
        return h
    take("ip.version")  # the IPv6 dissector adds a hidden ip.version too
    h = {"ip_version": take("ipv6.version"), "src": take("ipv6.src"), "dst": take("ipv6.dst"),
         "proto": take("ipv6.nxt"), "tos": take("ipv6.tclass"), "ttl": take("ipv6.hlim"),
         "flow_label": take("ipv6.flow"), "frag": False, "frag_offset": 0, "frag_more": False,
         "ip_id": None}
    h["ipv6_nexthdr"] = h["proto"]  # the fixed header's next header
    while i + 1 < len(protos) and protos[i + 1] in _EXT:
        i += 1
        h["proto"] = take(_EXT[protos[i]])
        if protos[i] == "ipv6.fraghdr":
            off, more = take("ipv6.fraghdr.offset"), take("ipv6.fraghdr.more")
            h["frag_offset"] = _int(off) if off else 0
            h["frag_more"] = more in _TRUE
            h["frag"] = h["frag_more"] or h["frag_offset"] != 0
            h["ip_id"] = take("ipv6.fraghdr.ident")
    if h["dst"] is None:  # a cut header: no extension header can be known
        h["frag"] = h["frag_offset"] = h["frag_more"] = None
    h["_last"], h["layer"] = i, tok
    return h


def compare(path, expect_rows=None, skip=(), udp_tunnels=None):
    """Assert read_capture(path) equals tshark's decoding (but the columns in ``skip``);
    return our frame."""
    ours, bad = disagreements(path, skip, udp_tunnels)
    if expect_rows is not None:
        assert len(ours) == expect_rows
    assert not bad, f"{len(bad)} disagreements with tshark, first: {bad[:8]}"
    return ours


def disagreements(path, skip=(), udp_tunnels=None, flagged_both_decode=False):
    """read_capture(path) and tshark's decoding side by side: ``(our frame, [(row, column,
    ours, tshark's, tunnel kind)])`` for every cell that differs (but the columns in
    ``skip``), after the differences the two may legitimately have (see the comments).

    ``flagged_both_decode``: on rows qoslab flags (``problem`` set), compare only the cells
    both decoders fill: past a malformed header Wireshark stops at an exception where qoslab
    keeps what it could read, or carries on where qoslab stops (the flag says the row is not
    to be trusted)."""
    ours = read_capture(path, udp_tunnels=udp_tunnels)
    ref = [expected_row(r) for r in tshark_rows(path, udp_tunnels)]
    assert len(ours) == len(ref), (len(ours), len(ref))
    ns = [None if pd.isna(v) else v.value for v in ours["time"]]
    cols = {c: [None if pd.isna(v) else v for v in ours[c].astype(object)]
            for c in set().union(*ref) - {"time_ns"}}
    problems = ours["problem"].astype(str).tolist()
    frags = (ours["frag"] | ours["inner_frag_more"]
             | (ours["inner_frag_offset"].fillna(0) > 0)).tolist()
    bad = []
    for i, e in enumerate(ref):
        if ns[i] != e["time_ns"]:
            bad.append((i, "time", ns[i], e["time_ns"], e.get("tunnel")))
        for col, want in e.items():
            if col == "time_ns" or col in skip or want == BEHIND_8021AD:
                continue
            got = cols[col][i]
            if isinstance(got, np.bool_ | bool):
                got = bool(got)
            elif got is not None and not isinstance(got, str):
                got = int(got)
            if col in ("frag", "frag_more", "inner_frag_more") and want is None and not got:
                continue  # no such header: a plain bool column reads False, Wireshark nothing
            if col == "tcp_ack" and want is None and got is not None:
                continue  # Wireshark hides the acknowledgement number without the ACK flag
            if col == "l2_proto" and want is None and got in (0x0800, 0x86DD):
                continue  # raw IP and BSD loopback links: the EtherType qoslab implies
            if col == "l4_len" and frags[i]:
                continue  # UDP's length is the whole datagram's; l4_len this fragment's share
            if col == "l4_len" and got is not None and want is not None and want > got:
                continue  # a UDP length beyond the IP payload (Wireshark: "bogus"); l4_len
                # is what the IP header states
            if want is None and got is not None and problems[i] == "truncated":
                # Wireshark drops every field of a header it cannot read to the end (IPv6,
                # fragment header); ours keeps each field whose bytes were captured.
                continue
            if flagged_both_decode and problems[i] and (got is None or want is None):
                continue
            if got != want:
                bad.append((i, col, got, want, e.get("tunnel")))
    return ours, bad


# ---------------------------------------------------------------- tests
LINKTYPES = (1, 113, 276, 101, 228, 229, 0, 108)
#: if_tsresol per interface above: default (µs), ns, 2^-20 s, ms, 10^-7 s, 2^-10 s, s, ns
TSRESOL = (None, 9, 0x80 | 20, 3, 7, 0x80 | 10, 0, 9)


def test_every_link_type_in_one_pcapng_matches_tshark(tmp_path):
    """Eight interfaces, one per link type, each with its own timestamp resolution."""
    interfaces = [(lt, 0, r) for lt, r in zip(LINKTYPES, TSRESOL, strict=True)]
    packets = []
    for iface, (lt, r) in enumerate(zip(LINKTYPES, TSRESOL, strict=True)):
        units = 10**6 if r is None else (1 << (r & 0x7F)) if r & 0x80 else 10**r
        for k, frame in enumerate(link_frames(lt)):
            ticks = (T0 + 3 * k) * units + (units // 4) * (iface % 4)
            packets.append(("epb", iface, ticks, frame))
    path = write_pcapng(tmp_path / "links.pcapng", interfaces, packets)
    df = compare(path, len(packets))
    assert (df["problem"] == "").all()
    assert df["ifindex"].tolist() == [p[1] for p in packets]
    for iface, lt in enumerate(LINKTYPES):
        mine = df[df["ifindex"] == iface]
        outer = {228: "4", 229: "6"}.get(lt, "46")
        assert set(mine["tunnel"]) == {"none"} | {f"{i}in{o}" for i in "46" for o in outer}
    assert (df["vlan"] == 200).sum() == 0 and (df["vlan"] == 100).sum() == 1  # QinQ: outer tag


def test_classic_pcap_byte_orders_and_time_units(tmp_path):
    frames = link_frames(1)
    times = [T0 * 10**9 + 123_456_789 + i * 1_000_001_001 for i in range(len(frames))]
    frames_us = [t // 1000 * 1000 for t in times]
    variants = {}
    for order in "<>":
        for nano in (False, True):
            path = write_pcap(tmp_path / f"{order == '<'}{nano}.pcap", frames, order=order,
                              nano=nano, times=times if nano else frames_us)
            variants[order, nano] = path
    # Two variants against tshark (each byte order, each unit) ...
    le_us = compare(variants["<", False])
    be_ns = compare(variants[">", True])
    assert be_ns["time"].astype("int64").tolist() == times
    assert le_us["time"].astype("int64").tolist() == frames_us
    # ... and the other two must decode identically to those.
    pd.testing.assert_frame_equal(read_capture(variants[">", False]), le_us)
    pd.testing.assert_frame_equal(read_capture(variants["<", True]), be_ns)
    assert be_ns["t"].iloc[-1] == pytest.approx((times[-1] - times[0]) / 1e9)


def test_snaplen_truncation_matches_tshark(tmp_path):
    frames = link_frames(1)
    df = compare(write_pcap(tmp_path / "snap.pcap", frames, snaplen=60))
    cut = df["cap_len"] < df["wire_len"]
    assert cut.any() and (df["cap_len"] <= 60).all()
    # Header bytes lost to the snap length are flagged; payload-only cuts are clean.
    assert (df.loc[df["problem"] == "truncated", "cap_len"] == 60).all()
    ipv6_tcp = df[(df["ip_version"] == 6) & (df["proto"] == 6) & (df["tunnel"] == "none")]
    assert (ipv6_tcp["problem"] == "truncated").all()  # 14 + 40 + 20 > 60
    assert (df.loc[~cut, "problem"] == "").all()


def test_big_endian_pcapng_with_opb_spb_and_snaplen(tmp_path):
    eth, raw, sll2 = link_frames(1), link_frames(101), link_frames(276)
    interfaces = [(1, 0, None), (101, 128, 0x80 | 20), (276, 0, 9)]
    packets = [("spb", 0, 0, eth[0]), ("spb", 0, 0, eth[3])]
    for i in range(len(raw)):
        packets.append(("epb", 0, T0 * 10**6 + i * 1500, eth[i]))
        packets.append(("opb", 1, (T0 << 20) + i * 3 * (1 << 18), raw[i]))
        packets.append(("epb", 2, T0 * 10**9 + i * 1_500_123, sll2[i]))
    path = write_pcapng(tmp_path / "be.pcapng", interfaces, packets, order=">")
    df = compare(path, len(packets))
    assert df["ifindex"].tolist() == [p[1] for p in packets]
    assert ((df["ifindex"] == 1) & (df["cap_len"] < df["wire_len"])).any()  # snaplen 128
    assert df["time"].iloc[:2].isna().all() and df["t"].iloc[:2].isna().all()  # SPBs: no time
    assert (df["problem"].iloc[:2] == "no_timestamp").all()
    assert df["t"].iloc[2] == 0.0  # t counts from the first time-stamped packet


def test_pcapng_sections_of_both_byte_orders_and_tsoffset(tmp_path):
    """Two sections (little- then big-endian); interface ids count across sections; the
    second interface of section one has if_tsoffset."""
    first = write_pcapng(tmp_path / "a.pcapng", [(1, 0, None), (101, 0, 9)],
                         [("epb", i % 2, (T0 * 10**6 + i) if i % 2 == 0 else i * 1000, f)
                          for i, f in enumerate(link_frames(1)[:8])], extra_blocks=False)
    data = bytearray(first.read_bytes())
    # give interface 1 an if_tsoffset of T0 seconds: rewrite its IDB with the option
    idb = struct.pack("<HHI", 101, 0, 0) + struct.pack("<HH", 9, 1) + bytes([9, 0, 0, 0]) \
        + struct.pack("<HHq", 14, 8, T0) + struct.pack("<HH", 0, 0)
    shb_len = 28
    first_idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    old = shb_len + first_idb_len
    old_len = struct.unpack_from("<I", data, old + 4)[0]
    data[old:old + old_len] = _block("<", 1, idb)
    second = write_pcapng(tmp_path / "b.pcapng", [(113, 0, None)],
                          [("epb", 0, T0 * 10**6 + 10**6 + i, f)
                           for i, f in enumerate(link_frames(113)[:6])], order=">",
                          extra_blocks=False)
    path = tmp_path / "sections.pcapng"
    path.write_bytes(bytes(data) + second.read_bytes())
    # interfaces are numbered per section, as tshark numbers them; the section tells them apart
    df = compare(path, 14)
    assert df["ifindex"].tolist() == [0, 1] * 4 + [0] * 6
    assert df["section"].tolist() == [0] * 8 + [1] * 6
    assert (df["time"].dt.year == 2023).all()  # the if_tsoffset moved interface 1 to T0


def test_kuznetsov_modified_pcap(tmp_path):
    """The 'modified' libpcap format (magic 0xa1b2cd34): 24-byte record headers."""
    frames = link_frames(1)[:8]
    out = [struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIIIiHBB", T0 + i, 250_000, len(f), len(f), 2, 0x0800, 0, 0)
                   + f)
    path = tmp_path / "modified.pcap"
    path.write_bytes(b"".join(out))
    df = compare(path, len(frames))
    assert df["t"].tolist() == [float(i) for i in range(len(frames))]


# ---------------------------------------------------------------- tunnels
def _geneve(vni, ptype, options=b"", version=0):
    """A Geneve header (RFC 8926) built byte by byte: scapy's layer is not needed."""
    assert len(options) % 4 == 0
    return (bytes([(version << 6) | (len(options) // 4), 0]) + struct.pack(">H", ptype)
            + struct.pack(">I", vni << 8) + options)


@lru_cache(maxsize=1)
def tunnel_frames():
    """Ethernet frames of every tunnel kind, payload and option, nested ones and odd ones."""
    from scapy.all import GRE, GRE_PPTP, PPP
    from scapy.contrib.mpls import MPLS
    from scapy.layers.vxlan import VXLAN

    inner4 = IP(src=A4, dst=B4, tos=0x10, id=4321) / TCP(sport=40000, dport=22, seq=1000,
                                                         ack=2000, flags="PA") / Raw(b"s" * 30)
    inner6 = IPv6(src=A6, dst=B6, tc=0x20, fl=0x12345) / UDP(sport=5353, dport=53) / Raw(b"q")
    ping = IP(src=A4, dst=C4) / ICMP(type=8, id=9, seq=3) / Raw(b"p" * 40)
    ie = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    o4 = IP(src=C4, dst=D4, id=7)
    o6 = IPv6(src=C6, dst=D6)

    def vx(payload, vni=5000, sport=40001):
        return o4 / UDP(sport=sport, dport=4789) / VXLAN(vni=vni) / payload

    frags = fragment(IP(src=A4, dst=B4, id=99) / ICMP(type=8, id=5, seq=1) / Raw(b"f" * 2000),
                     fragsize=1000)
    gen_opts = struct.pack(">HBB", 0x0102, 0x80, 1) + b"\x11\x22\x33\x44"  # one 4-byte option
    pkts = [
        o4 / GRE() / inner4,
        o4 / GRE(chksum_present=1, key_present=1, key=0x1234, seqnum_present=1,
                 sequence_number=7) / inner4,
        o4 / GRE(seqnum_present=1, sequence_number=1) / inner6,
        o6 / GRE(key_present=1, key=99) / inner6,
        o6 / GRE() / inner4,
        o4 / GRE(proto=0x6558) / ie / inner4,  # transparent Ethernet bridging, no key
        o4 / GRE(proto=0x6558, key_present=1, key=(0xABCDE << 8) | 0x42) / ie
        / Dot1Q(vlan=77, prio=3) / inner4,  # NVGRE with a VLAN inside
        o6 / GRE(proto=0x6558, key_present=1, key=0x100) / ie / inner6,  # NVGRE over IPv6
        o4 / GRE(proto=0x6558, key_present=1, key=5, seqnum_present=1) / ie / inner4,  # not NVGRE
        o4 / GRE(proto=0x8847) / MPLS(label=100, s=1) / inner4,  # MPLS: named, not opened
        o4 / GRE_PPTP(seqnum_present=1, sequence_number=3, call_id=7) / PPP() / inner4,
        vx(ie / inner4),
        vx(ie / Dot1Q(vlan=10) / Dot1Q(vlan=20) / inner6, vni=0xFFFFFF),
        vx(ie / ARP(pdst=B4, hwdst="00:00:00:00:00:00")),
        vx(ie / ping),
        *[vx(ie / f) for f in frags],  # inner fragments
        o6 / UDP(sport=40002, dport=4789) / VXLAN(vni=6) / ie / inner4,
        o4 / UDP(sport=40003, dport=6081) / Raw(_geneve(6000, 0x6558)) / ie / inner4,
        o4 / UDP(sport=40003, dport=6081) / Raw(_geneve(6001, 0x0800, gen_opts)) / inner4,
        o6 / UDP(sport=40003, dport=6081) / Raw(_geneve(6002, 0x86DD)) / inner6,
        o4 / UDP(sport=40003, dport=6081) / Raw(_geneve(6003, 0x0800, version=1)) / inner4,
        o4 / UDP(sport=4789, dport=53) / Raw(b"not a tunnel: the source port is 4789"),
        # nested: not opened, flagged
        vx(ie / IP(src=A4, dst=B4) / IP(src=C4, dst=D4) / ICMP()),
        o4 / GRE() / IP(src=A4, dst=B4) / GRE() / inner4,
        o4 / GRE() / IP(src=A4, dst=B4) / UDP(sport=1, dport=4789) / VXLAN(vni=1) / ie / inner4,
        vx(ie / IP(src=A4, dst=B4) / UDP(sport=2, dport=6081) / Raw(_geneve(1, 0x0800))
           / inner4),
    ]
    return tuple(bytes(ETH / p) for p in pkts)


def test_tunnels_match_tshark_cell_by_cell(tmp_path):
    frames = tunnel_frames()
    df = compare(write_pcap(tmp_path / "tunnels.pcap", frames), len(frames))
    kinds = df["tunnel"].astype(str).tolist()
    assert {"gre", "nvgre", "vxlan", "geneve"} <= set(kinds)
    assert kinds.count("nvgre") == 2 and kinds[8] == "gre"  # a sequence number: not NVGRE
    nvgre = df[df["tunnel"] == "nvgre"]
    assert nvgre["tunnel_id"].tolist() == [(0xABCDE << 8) | 0x42, 0x100]
    assert nvgre["inner_vlan"].tolist()[0] == 77
    assert (df.loc[df["tunnel"] == "vxlan", "inner_l2_proto"].dropna() != 0x6558).all()
    nested = df["problem"] == "nested_tunnel"
    assert nested.sum() == 4 and (df.loc[nested, "inner_proto"].tolist() == [4, 47, 17, 17])
    clean = df[~nested & (df["problem"] == "")]
    tcp = clean[clean["inner_proto"] == 6]
    assert (tcp["tcp_seq"] == 1000).all() and (tcp["tcp_ack"] == 2000).all()
    assert (tcp["tcp_len"] == 30).all() and (tcp["tcp_flags"] == 0x018).all()
    frags = df[df["inner_frag_more"] | (df["inner_frag_offset"].fillna(0) > 0)]
    assert frags["inner_ip_id"].tolist() == [99] * 3
    assert frags["inner_frag_more"].tolist() == [True, True, False]
    assert frags["inner_frag_offset"].tolist() == [0, 125, 250]
    assert df["tunnel"].iloc[-5] == "none"  # UDP *from* port 4789 is not VXLAN


def test_tunnel_headers_cut_by_the_snap_length(tmp_path):
    frames = tunnel_frames()
    for snaplen in (40, 50, 60, 70, 80):
        df = compare(write_pcap(tmp_path / f"cut{snaplen}.pcap", frames, snaplen=snaplen))
        assert (df.loc[df["cap_len"] < 60, "inner_src"].isna()).all()


def test_udp_tunnel_ports_are_configurable(tmp_path):
    """Linux VXLAN devices made without dstport use 8472; Geneve may move too."""
    from scapy.layers.vxlan import VXLAN

    ie = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    inner = IP(src=A4, dst=B4) / UDP(sport=1, dport=2)
    frames = [bytes(ETH / IP(src=C4, dst=D4) / UDP(sport=40000, dport=port) / VXLAN(vni=9)
                    / ie / inner) for port in (8472, 4789)]
    frames.append(bytes(ETH / IP(src=C4, dst=D4) / UDP(sport=40000, dport=7000)
                        / Raw(_geneve(4, 0x0800)) / inner))
    path = write_pcap(tmp_path / "ports.pcap", frames)
    assert read_capture(path)["tunnel"].tolist() == ["none", "vxlan", "none"]
    from qoslab.capture.tunnels import UDP_TUNNEL_PORTS

    df = compare(path, 3, udp_tunnels={**UDP_TUNNEL_PORTS, 8472: "vxlan", 7000: "geneve"})
    assert df["tunnel"].tolist() == ["vxlan", "vxlan", "geneve"]
    only = read_capture(path, udp_tunnels={8472: "vxlan"})  # the mapping replaces the default
    assert only["tunnel"].tolist() == ["vxlan", "none", "none"]
    from qoslab import ConfigError

    with pytest.raises(ConfigError, match="udp_tunnels"):
        read_capture(path, udp_tunnels={4789: "gre"})


# ---------------------------------------------------------------- found by the differential run
def test_ipv6_later_fragment_carries_data_not_extension_headers(tmp_path):
    """A non-first fragment whose fragment header names an extension header: what follows
    is data (the rest of the datagram), never walked as that header."""
    frames = [bytes(ETH / IPv6(src=A6, dst=B6)
                    / IPv6ExtHdrFragment(nh=nh, offset=off, m=m, id=5) / Raw(data))
              for nh, off, m, data in ((60, 6, 1, b"\x6d\xd9\0\0\1\1\5\x0a"),
                                       (0, 1, 1, b"\x01\x02\x31\xe0\0\0\0\0"),
                                       (43, 2, 0, bytes(range(16))))]
    df = compare(write_pcap(tmp_path / "v6frag.pcap", frames), 3)
    assert df["proto"].tolist() == [60, 0, 43]
    assert (df["problem"] == "").all() and df["frag"].all()
    assert df["l4_len"].tolist() == [8, 8, 16]


def test_tcp_in_a_first_fragment_has_no_segment_length(tmp_path):
    """Wireshark shows no tcp.len for a fragment it did not reassemble; tcp_len is NA."""
    seg = IP(src=A4, dst=B4, id=3) / TCP(sport=1, dport=2, flags="A") / Raw(b"x" * 100)
    first = fragment(seg, fragsize=64)[0]
    six = (IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=8)
           / TCP(sport=3, dport=4, flags="A") / Raw(b"y" * 16))
    df = compare(write_pcap(tmp_path / "first.pcap", [bytes(ETH / first), bytes(ETH / six)]))
    assert df["tcp_len"].isna().all() and df["tcp_seq"].notna().all()


def test_vlan_tag_cut_after_its_tci_keeps_the_vlan(tmp_path):
    """The snap length cuts a tag after its TCI: the id, PCP and DEI were captured."""
    frame = bytes(ETH / Dot1Q(vlan=1702, prio=5, dei=1) / IP(src=A4, dst=B4) / UDP())
    df = compare(write_pcap(tmp_path / "tci.pcap", [frame], snaplen=16))
    assert df[["vlan", "vlan_pcp", "vlan_dei"]].iloc[0].tolist() == [1702, 5, 1]
    assert df["problem"].iloc[0] == "truncated" and pd.isna(df["l2_proto"].iloc[0])


def test_udp_tunnel_port_without_a_captured_tunnel_header(tmp_path):
    """UDP to 6081 cut right after its header: no Geneve byte seen, no tunnel named; the UDP
    length stays the datagram's."""
    frame = bytes(ETH / IP(src=C4, dst=D4) / UDP(sport=50000, dport=6081)
                  / Raw(_geneve(7, 0x0800)) / IP(src=A4, dst=B4) / UDP())
    df = compare(write_pcap(tmp_path / "cut.pcap", [frame], snaplen=14 + 20 + 8))
    assert df["tunnel"].tolist() == ["none"] and df["l4_len"].tolist() == [8 + 8 + 28]
    df = compare(write_pcap(tmp_path / "cut1.pcap", [frame], snaplen=14 + 20 + 9))
    assert df["tunnel"].tolist() == ["geneve"] and df["problem"].tolist() == ["truncated"]


def test_bsd_loopback_families_are_the_linktype_values(tmp_path):
    """LINKTYPE_NULL: 2 is IPv4; 24, 28, 30 are IPv6; Linux's AF_INET6 (10) is not."""
    six = bytes(IPv6(src=A6, dst=B6) / UDP())
    frames = [struct.pack("<I", fam) + six for fam in (24, 28, 30, 10)]
    df = compare(write_pcap(tmp_path / "null.pcap", frames, linktype=0), 4)
    assert df["ip_version"].tolist()[:3] == [6, 6, 6] and pd.isna(df["ip_version"].iloc[3])


def test_a_completed_datagram_leaves_the_reassembly(tmp_path):
    """A fragmented reply duplicated on the way (same identification), and the same
    identification reused 10 s later for a bigger datagram: each completed datagram leaves
    the reassembly and later fragments start a new one — pairs as icmp.resptime pairs."""
    from qoslab.capture import echo_rtts

    def ping(seq, size, kind):
        src, dst = (A4, B4) if kind == 8 else (B4, A4)
        return fragment(IP(src=src, dst=dst, id=500) / ICMP(type=kind, id=1, seq=seq)
                        / Raw(b"p" * size), fragsize=512)

    frames = [*ping(1, 1400, 8), *ping(1, 1400, 0), *ping(1, 1400, 0),  # a DUP! reply
              *ping(2, 3000, 8), *ping(2, 3000, 0)]
    times = [T0 * 10**9 + i * 1_000_000 + (10**10 if i >= 9 else 0)
             for i in range(len(frames))]
    path = write_pcap(tmp_path / "dup.pcap", [bytes(ETH / f) for f in frames], nano=True,
                      times=times)
    exe = need_tool("tshark")
    out = subprocess.run([exe, "-n", "-r", str(path), "-T", "fields", "-e", "icmp.resptime"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    ref = {i: float(v) for i, v in enumerate(out.splitlines()) if v}
    probes = echo_rtts(read_capture(path))
    ok = probes[probes["status"] == "ok"]
    assert dict(zip(ok["reply_row"].astype(int), ok["rtt_ms"], strict=True)) == \
        pytest.approx(ref)
    assert ok["size"].tolist() == [1400, 3000] and ok["seq"].tolist() == [1, 2]
    assert (probes["status"] == "duplicate").sum() == 1


def test_overlapping_and_refragmented_pieces_complete_when_every_byte_is_seen(tmp_path):
    """A reply whose first copy lost a piece, resent cut differently (overlapping the
    first): complete when every byte was seen, not when the lengths add up."""
    from qoslab.capture import echo_rtts

    def frags(kind, size, skip=()):
        src, dst = (A4, B4) if kind == 8 else (B4, A4)
        pkt = IP(bytes(IP(src=src, dst=dst, id=900) / ICMP(type=kind, id=2, seq=7)
                       / Raw(b"r" * 2400)))
        return [f for i, f in enumerate(fragment(pkt, fragsize=size)) if i not in skip]

    frames = frags(8, 800) + frags(0, 512, skip={3}) + frags(0, 1000)
    path = write_pcap(tmp_path / "overlap.pcap", [bytes(ETH / f) for f in frames], nano=True,
                      times=[T0 * 10**9 + i * 1_000_000 for i in range(len(frames))])
    out = subprocess.run([need_tool("tshark"), "-n", "-r", str(path), "-T", "fields", "-e",
                          "icmp.resptime"], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    ref = {i: float(v) for i, v in enumerate(out.splitlines()) if v}
    ok = echo_rtts(read_capture(path)).query("status == 'ok'")
    assert dict(zip(ok["reply_row"].astype(int), ok["rtt_ms"], strict=True)) == \
        pytest.approx(ref)
    assert ok["size"].tolist() == [2400]


def test_a_udp_length_beyond_the_ip_payload_is_not_the_l4_length(tmp_path):
    """l4_len is what the IP header states; a UDP length field claiming more is bogus."""
    frame = bytearray(bytes(ETH / IP(src=A4, dst=B4) / UDP(sport=1, dport=2) / Raw(b"u" * 8)))
    frame[14 + 20 + 4:14 + 20 + 6] = struct.pack(">H", 30069)
    df = compare(write_pcap(tmp_path / "bogus.pcap", [bytes(frame)]), 1)
    assert df["l4_len"].tolist() == [16] and df["sport"].tolist() == [1]


def _expert_messages(path):
    """tshark's expert messages per frame (a set of strings each)."""
    out = subprocess.run([need_tool("tshark"), "-n", "-r", str(path), "-T", "fields", "-e",
                          "_ws.expert.message", "-E", "occurrence=a", "-E", "aggregator=\t"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [set(line.split("\t")) - {""} for line in out.splitlines()]


#: (captured, original) lengths of records around whole frames ("full": the frame's length).
_CAP_WIRE = [("full", "full"), ("full", 40), ("full", 0), ("full", 60), (50, 40), (30, 20),
             (20, 20), ("full", 2000)]


def _cap_wire_records():
    frames = [bytes(ETH / IP(src=A4, dst=B4) / TCP(sport=1, dport=2, flags="PA")
                    / Raw(b"x" * 20)),
              bytes(ETH / IPv6(src=A6, dst=B6) / UDP(sport=3, dport=4) / Raw(b"y" * 30)),
              bytes(ETH / IP(src=A4, dst=B4, len=0) / TCP(sport=5, dport=6) / Raw(b"z" * 9))]
    out = []
    for frame in frames:
        for cap, wire in _CAP_WIRE:
            cap = len(frame) if cap == "full" else cap
            out.append((frame[:cap], len(frame) if wire == "full" else wire))
    return out


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_more_captured_than_original_bytes_is_flagged_as_tshark_flags_it(tmp_path, fmt):
    """A record whose captured length exceeds its original length: both lengths read as the
    file states them (tshark's frame.cap_len / frame.len), every captured byte decoded (the
    frame ends at the larger length, as Wireshark's reported length), and the row flagged
    where tshark warns "Frame length is less than captured length"."""
    records = _cap_wire_records()
    path = tmp_path / f"capwire.{fmt}"
    if fmt == "pcap":
        body = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        body += [struct.pack("<IIII", T0 + i, 0, len(cap), wire) + cap
                 for i, (cap, wire) in enumerate(records)]
    else:
        body = [_block(">", 0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1)),
                _block(">", 1, struct.pack(">HHI", 1, 0, 0))]
        for i, (cap, wire) in enumerate(records):
            ticks = (T0 + i) * 10**6
            if i % 2:  # the obsolete Packet Block too
                body.append(_block(">", 2, struct.pack(">HHIIII", 0, 0, ticks >> 32,
                                                       ticks & 0xFFFFFFFF, len(cap), wire)
                                   + cap))
            else:
                body.append(_block(">", 6, struct.pack(">IIIII", 0, ticks >> 32,
                                                       ticks & 0xFFFFFFFF, len(cap), wire)
                                   + cap))
    path.write_bytes(b"".join(body))
    df = compare(path, len(records))
    assert df["cap_len"].tolist() == [len(c) for c, _ in records]
    assert df["wire_len"].tolist() == [w for _, w in records]
    warned = ["Frame length is less than captured length" in m for m in _expert_messages(path)]
    flagged = (df["problem"] == "cap_len_exceeds_wire_len").tolist()
    assert flagged == warned and sum(flagged) == 15
    # the other rows keep their own problem: a cut header is still "truncated"
    assert set(df.loc[~df["problem"].isin(["cap_len_exceeds_wire_len"]), "problem"]) == \
        {"", "truncated"}


def test_pcapng_fcs_length_ends_the_decoded_frame_as_in_tshark(tmp_path):
    """Ethernet frames ending in a 4-byte FCS on interfaces without if_fcslen, with
    if_fcslen 4 and with 0: the lengths stay the record's; where the IP header gives no
    length (TSO: total length 0) the payload ends before the FCS only where if_fcslen says
    there is one, as tshark reads it."""
    fcs = b"\xde\xad\xbe\xef"
    frames = [bytes(ETH / IP(src=A4, dst=B4, len=0) / TCP(sport=1, dport=2, flags="PA")
                    / Raw(b"x" * 20)) + fcs,
              bytes(ETH / IP(src=A4, dst=B4) / TCP(sport=3, dport=4, flags="PA")
                    / Raw(b"y" * 9)) + fcs]
    order = "<"
    body = [_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for fcs_len in (None, 4, 0):
        opts = b"" if fcs_len is None else (struct.pack(order + "HHB3x", 13, 1, fcs_len)
                                            + struct.pack(order + "HH", 0, 0))
        body.append(_block(order, 1, struct.pack(order + "HHI", 1, 0, 0) + opts))
    for iface in range(3):
        for k, frame in enumerate(frames):
            ticks = (T0 + 3 * iface + k) * 10**6
            body.append(_block(order, 6, struct.pack(order + "IIIII", iface, ticks >> 32,
                                                     ticks & 0xFFFFFFFF, len(frame),
                                                     len(frame)) + frame))
    # epb_flags (after a comment): an FCS length of 4 on the interface without if_fcslen
    # counts; 0 on the if_fcslen 4 interface leaves the interface's
    for iface, flags in ((0, 4 << 5 | 1), (1, 2)):
        frame = frames[0]
        ticks = (T0 + 9) * 10**6
        data = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                           len(frame)) \
            + frame
        data += b"\0" * (-len(data) % 4)
        data += struct.pack(order + "HH", 1, 3) + b"abc\0" + struct.pack(
            order + "HHI", 2, 4, flags) + struct.pack(order + "HH", 0, 0)
        body.append(_block(order, 6, data))
    path = tmp_path / "fcs.pcapng"
    path.write_bytes(b"".join(body))
    df = compare(path, 8)
    assert (df["wire_len"] == df["cap_len"]).all()
    assert df["wire_len"].tolist() == [len(f) for f in frames] * 3 + [len(frames[0])] * 2
    assert df["tcp_len"].tolist() == [24, 9, 20, 9, 24, 9, 20, 20]
    assert (df["problem"] == "").all()
