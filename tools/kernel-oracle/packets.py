"""Random Ethernet frames for the kernel oracle: every header qoslab decodes, both directions.

:func:`random_frames` draws IPv4 and IPv6 packets (options, fragments, IPv6 extension
headers, flow labels), with an 802.1Q tag (random PCP, DEI, id) on some, carrying TCP, UDP,
UDP-Lite, SCTP, DCCP, ICMP/ICMPv6, ESP, AH or a tunnel — IP-in-IP (4in4, 6in4, 4in6, 6in6),
GRE version 0 (checksum, key, sequence flags at random), NVGRE, VXLAN or Geneve (with and
without an option, Ethernet or IP payload) — whose inner packet carries one of the same
transports. Addresses and ports come from small
pools, so flows repeat, collide and sometimes have equal addresses or ports; a share of the
packets are the reverse direction of an earlier one. :func:`write_pcap` writes them.
"""

from __future__ import annotations

import struct

import numpy as np

TCP, UDP, UDPLITE, SCTP, DCCP, ICMP, ICMPV6, ESP, AH = 6, 17, 136, 132, 33, 1, 58, 50, 51
IPIP, IPV6, GRE = 4, 41, 47
ETH_P_TEB = 0x6558
INNER_MAC = bytes.fromhex("0a0000000002") + bytes.fromhex("0a0000000001")
#: Tunnel kinds drawn (one level deep), with their weights.
TUNNEL_WEIGHTS = {"ipip": 0.45, "gre": 0.25, "nvgre": 0.1, "vxlan": 0.1, "geneve": 0.1}
TRANSPORTS = (TCP, UDP, UDPLITE, SCTP, DCCP, "icmp", ESP, AH)
MAC = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")


def _addr(rng, version: int) -> bytes:
    if version == 4:
        # last octets both small and large: a raw (__force u32) load on a little-endian host
        # puts the last octet in the top byte, so signed and unsigned compares of two
        # addresses differ when one is >= 128 and the other is not
        pools = (b"\x0a\x00\x00", b"\xc0\xa8\x01", b"\x80\x00\x00", b"\xff\xff\xff")
        last = rng.integers(1, 6) if rng.random() < 0.7 else rng.choice([127, 128, 200, 254])
        return pools[rng.integers(len(pools))] + bytes([last])
    pools = (bytes.fromhex("20010db8000000000000000000000000"),
             bytes.fromhex("fe800000000000000000000000000000"),
             bytes.fromhex("fd00abcd00000000ffffffff00000000"))
    base = bytearray(pools[rng.integers(len(pools))])
    base[15] = rng.integers(1, 6)
    if rng.random() < 0.3:
        base[rng.integers(8, 15)] = rng.integers(256)
    return bytes(base)


def _port(rng) -> int:
    return int(rng.choice([80, 443, 53, 12345, 40000, 65535, 1, int(rng.integers(1, 65536))]))


class Flow:
    """One direction of a flow: what the header builders need."""

    def __init__(self, rng, depth: int = 0):
        self.version = 4 if rng.random() < 0.55 else 6
        self.src, self.dst = _addr(rng, self.version), _addr(rng, self.version)
        if rng.random() < 0.05:
            self.dst = self.src
        self.sport, self.dport = _port(rng), _port(rng)
        if rng.random() < 0.05:
            self.dport = self.sport
        self.spi = int(rng.choice([1, 0x100, 0xdeadbeef, int(rng.integers(1, 2**32))]))
        tunnel_ok = depth == 0 and rng.random() < 0.25
        self.tunnel = None
        if tunnel_ok:
            kinds = list(TUNNEL_WEIGHTS)
            self.tunnel = kinds[rng.choice(len(kinds), p=list(TUNNEL_WEIGHTS.values()))]
            inner_v4 = rng.random() < 0.5
            if self.tunnel == "ipip":
                self.proto = IPIP if inner_v4 else IPV6
            elif self.tunnel in ("gre", "nvgre"):
                self.proto = GRE
            else:
                self.proto = UDP
                self.dport = 4789 if self.tunnel == "vxlan" else 6081
            # GRE: checksum / key / sequence flags at random (NVGRE: the key alone);
            # Geneve: Ethernet or IP payload, with or without an option
            self.gre_flags = 0x2000 if self.tunnel == "nvgre" else int(
                rng.choice([0, 0x8000, 0x2000, 0x1000, 0xA000, 0x3000, 0xB000]))
            self.key = int(rng.choice([1, 0x100, 0xDEADBEEF, int(rng.integers(1, 2**32))]))
            if self.tunnel == "nvgre":
                self.key = (int(rng.integers(1, 1 << 24)) << 8) | int(rng.integers(256))
            self.vni = int(rng.integers(1, 1 << 24))
            self.geneve_eth = rng.random() < 0.5
            self.geneve_opt = rng.random() < 0.3
            self.inner = Flow(rng, 1)
            self.inner.version = 4 if inner_v4 else 6
            self.inner.src = _addr(rng, self.inner.version)
            self.inner.dst = _addr(rng, self.inner.version)
        else:
            t = TRANSPORTS[rng.integers(len(TRANSPORTS))]
            self.proto = (ICMP if self.version == 4 else ICMPV6) if t == "icmp" else t
            self.inner = None
        self.icmp_type = int(rng.choice([8, 0, 3, 11] if self.version == 4 else [128, 129, 1, 3]))
        self.label = 0 if rng.random() < 0.5 else int(rng.integers(1, 1 << 20))
        self.tos = int(rng.integers(256))

    def reverse(self) -> Flow:
        r = object.__new__(Flow)
        r.__dict__.update(self.__dict__)
        r.src, r.dst, r.sport, r.dport = self.dst, self.src, self.dport, self.sport
        if self.inner is not None:
            r.inner = self.inner.reverse()
        if self.tunnel in ("vxlan", "geneve"):  # replies go to the tunnel's port too
            r.sport, r.dport = self.sport, self.dport
        return r


def _l4(rng, f: Flow) -> tuple[int, bytes]:
    """(protocol number, transport bytes) of flow ``f``."""
    p = f.proto
    if f.inner is not None:
        inner = _ip(rng, f.inner, frag=False)
        etype = 0x0800 if f.inner.version == 4 else 0x86DD
        if f.tunnel == "ipip":
            return p, inner
        if f.tunnel in ("gre", "nvgre"):
            ptype = ETH_P_TEB if f.tunnel == "nvgre" else etype
            hdr = struct.pack(">HH", f.gre_flags, ptype)
            if f.gre_flags & 0x8000:
                hdr += b"\0\0\0\0"  # checksum (not checked) and reserved1
            if f.gre_flags & 0x2000:
                hdr += struct.pack(">I", f.key)
            if f.gre_flags & 0x1000:
                hdr += struct.pack(">I", 7)
            if f.tunnel == "nvgre":
                inner = INNER_MAC + struct.pack(">H", etype) + inner
            return p, hdr + inner
        eth = INNER_MAC + struct.pack(">H", etype) + inner
        if f.tunnel == "vxlan":
            body = struct.pack(">II", 0x08000000, f.vni << 8) + eth
        else:
            opt = struct.pack(">HBBI", 0x0102, 0x03, 1, 0xCAFE) if f.geneve_opt else b""
            ptype = ETH_P_TEB if f.geneve_eth else etype
            body = struct.pack(">BBHI", len(opt) // 4, 0, ptype, f.vni << 8) + opt + (
                eth if f.geneve_eth else inner)
        return p, struct.pack(">HHHH", f.sport, f.dport, 8 + len(body), 0) + body
    if p == TCP:
        return p, struct.pack(">HHIIBBHHH", f.sport, f.dport, 1, 0, 0x50, 0x18, 512, 0, 0) + b"x" * 8
    if p in (UDP, UDPLITE):
        return p, struct.pack(">HHHH", f.sport, f.dport, 16, 0) + b"u" * 8
    if p == SCTP:
        return p, struct.pack(">HHII", f.sport, f.dport, 7, 0) + b"s" * 8
    if p == DCCP:
        return p, struct.pack(">HHBBHHHI", f.sport, f.dport, 4, 0, 0, 0, 0, 0) + b"d" * 4
    if p in (ICMP, ICMPV6):
        return p, struct.pack(">BBHHH", f.icmp_type, 0, 0, f.sport, 7) + b"i" * 8
    if p == ESP:
        return p, struct.pack(">II", f.spi, 1) + b"e" * 16
    if p == AH:
        return p, struct.pack(">BBHII", 59, 1, 0, f.spi, 1) + b"a" * 8
    raise AssertionError(p)


def _ip(rng, f: Flow, frag: bool = True) -> bytes:
    proto, payload = _l4(rng, f)
    if f.version == 4:
        opts = b""
        if rng.random() < 0.2:
            opts = b"\x01" * (4 * int(rng.integers(1, 4)))
        ff = 0
        if frag and rng.random() < 0.1:
            ff = 0x2000 if rng.random() < 0.5 else int(rng.integers(1, 0x1FFF)) | (
                0x2000 if rng.random() < 0.5 else 0)
        hl = 20 + len(opts)
        head = struct.pack(">BBHHHBBH4s4s", 0x40 | (hl // 4), f.tos, hl + len(payload), 1, ff,
                           64, proto, 0, f.src, f.dst)
        return head + opts + payload
    exts = []
    if rng.random() < 0.25:
        exts = [int(rng.choice([0, 60, 43])) for _ in range(int(rng.integers(1, 3)))]
        if 0 in exts:  # hop-by-hop only first
            exts = [0] + [e for e in exts if e != 0]
    fragment = frag and rng.random() < 0.1
    chain = exts + ([44] if fragment else [])
    body = b""
    nxt = proto
    for kind in reversed(chain):
        if kind == 44:
            off = 0 if rng.random() < 0.5 else int(rng.integers(1, 8191))
            more = 1 if off == 0 or rng.random() < 0.5 else 0
            body = struct.pack(">BBHI", nxt, 0, (off << 3) | more, 77) + body
        elif kind == 43:
            body = struct.pack(">BBBB", nxt, 0, 0, 0) + b"\0" * 4 + body
        else:
            body = struct.pack(">BB", nxt, 0) + b"\x01\x04\0\0\0\0" + body
        nxt = kind
    payload = body + payload
    vtf = (6 << 28) | (f.tos << 20) | f.label
    return struct.pack(">IHBB16s16s", vtf, len(payload), nxt, 64, f.src, f.dst) + payload


def random_frames(n: int, seed: int = 0) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """``n`` frames plus per-frame ``priority`` and ``mark`` (what skb holds at the qdisc)."""
    rng = np.random.default_rng(seed)
    flows: list[Flow] = []
    frames = []
    for _ in range(n):
        if flows and rng.random() < 0.3:
            f = flows[rng.integers(len(flows))].reverse()
        else:
            f = Flow(rng)
            flows.append(f)
        ip = _ip(rng, f)
        ethertype = 0x0800 if f.version == 4 else 0x86DD
        if rng.random() < 0.25:
            tci = (int(rng.integers(8)) << 13) | (int(rng.integers(2)) << 12) | int(
                rng.integers(1, 4095))
            frame = MAC + struct.pack(">HHH", 0x8100, tci, ethertype) + ip
        else:
            frame = MAC + struct.pack(">H", ethertype) + ip
        frames.append(frame)
    override = rng.random(n) < 0.2
    priority = np.where(override, 0x10000 | rng.integers(1, 1100, n), rng.integers(0, 16, n))
    mark = rng.integers(0, 2**32, n, dtype=np.uint64)
    return frames, priority.astype(np.uint32), mark.astype(np.uint32)


def write_pcap(path, frames: list[bytes]) -> None:
    """A little-endian microsecond pcap, Ethernet link type, one frame per millisecond."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            fh.write(struct.pack("<IIII", 1_700_000_000, i * 1000, len(fr), len(fr)))
            fh.write(fr)
