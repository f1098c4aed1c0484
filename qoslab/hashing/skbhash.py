"""The kernel's flow hash of a packet (``skb_get_hash``, ``skb_get_hash_perturb``).

* ``rxhash-2.6`` (2.6.37–3.1, ``__skb_get_rxhash`` in ``net/core/dev.c``; ``rxhash-3.2``
  looks through IPIP from an IPv4 header, 4in4, and GRE): the outer header
  only (IPv6: last address word), ``ip_proto`` 0 for fragments, ports via
  ``proto_ports_offset``; the two raw 16-bit ports and the two raw addresses are each put in
  ascending order on their own, then ``jhash_3words(lower addr, higher addr, ports)``; 0 → 1;
  0 for non-IP.
* ``rxhash`` era (3.3–4.1): ``jhash_3words(dst, src, ports, hashrnd)`` of the dissected
  addresses (IPv6: ``ipv6_addr_hash``) and raw ports word, after ordering the direction
  (swap when raw dst < raw src, or equal addresses and raw dport < raw sport); 0 for non-IP.
* ``flow-keys`` era (4.2+): ``struct flow_keys`` is zeroed, filled by the dissector with
  ``FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL``, made direction-independent by
  ``__flow_hash_consistentify``, and hashed from ``FLOW_KEYS_HASH_OFFSET`` for the length
  ``flow_keys_hash_length`` gives: ``jhash2`` over u32 words with a u32 seed (4.2–5.3) or
  ``siphash`` with a 128-bit key (5.4+). A hash of 0 becomes 1.

:data:`FLOW_KEYS_LAYOUTS` is the one table of struct layouts (offsets relative to the hash
offset; ``include/net/flow_dissector.h`` of each era).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import KernelFeatureMissing
from ._packets import check_frame, column, header, present, raw16, raw32, tunnel_kinds
from .dissect import Flow, addr32, direct_read, dissect, read_ports
from .jhash import jhash2, jhash_3words
from .perturb import apply_seeds
from .profiles import DEFAULT_PROFILE, KernelProfile, get_profile
from .siphash import siphash

__all__ = ["FLOW_KEYS_LAYOUTS", "FlowKeysLayout", "skb_hash", "flow_hash", "flow_keys_bytes",
           "consistentify", "raw_ports", "rxhash_direct", "hash_flow_bytes"]


@dataclass(frozen=True)
class FlowKeysLayout:
    """``struct flow_keys`` byte offsets after ``FLOW_KEYS_HASH_OFFSET``."""

    name: str
    vlan: int  # offset of the vlan key (-1: none; 4.2's vlan_id shares the tags word)
    vlan_size: int  # 4 or 8 (8: with eth_type)
    vlan_tpid: bool
    keyid: int
    ports: int
    addrs: int
    sizeof: int  # sizeof(struct flow_keys), control and tail padding included
    hash_offset: int = 8  # FLOW_KEYS_HASH_OFFSET: sizeof the control key (4 in 4.2-4.5)
    label_shift: int = 0  # where the flow label sits in its u32 (4.2: above vlan_id:12)

    def length(self, version: np.ndarray) -> np.ndarray:
        """``flow_keys_hash_length``: bytes hashed, by address type."""
        base = self.sizeof - self.hash_offset - 32  # no addresses
        return np.where(version == 4, base + 8, np.where(version == 6, base + 32, base))


FLOW_KEYS_LAYOUTS: dict[str, FlowKeysLayout] = {lay.name: lay for lay in (
    FlowKeysLayout("4.2", -1, 0, False, 8, 12, 16, 52, hash_offset=4, label_shift=12),
    # 4.2-4.3: 4-byte control, tags = vlan_id:12 | flow_label:20: 6 / 12 words
    FlowKeysLayout("4.4", -1, 0, False, 8, 12, 16, 56, label_shift=12),
    # 4.4-4.5: 8-byte control (flags), the same tags word: 6 / 12 words
    FlowKeysLayout("4.6", 8, 4, False, 12, 16, 20, 60),     # 4.6–4.17: 7 / 13 words
    FlowKeysLayout("4.18", 8, 4, True, 16, 20, 24, 64),     # + cvlan at 12: 8 / 14 words
    FlowKeysLayout("5.4", 8, 4, True, 16, 20, 24, 64),      # siphash, basic __aligned(8)
    FlowKeysLayout("5.4.y", 8, 8, True, 24, 28, 32, 72),    # 4.19.y/5.4.y stable: 8-byte vlan
    FlowKeysLayout("5.5", 8, 4, True, 16, 20, 28, 72),      # + icmp at 24 (never filled)
    FlowKeysLayout("5.18", 8, 8, True, 24, 28, 36, 80),     # 8-byte vlan/cvlan with eth_type
)}


def raw_ports(sport: np.ndarray, dport: np.ndarray, endianness: str = "little") -> np.ndarray:
    """``ports.ports``: the u32 load of (be16 sport, be16 dport) on this host.

    Examples
    --------
    >>> hex(int(raw_ports(np.array([12345]), np.array([80]))[0]))
    '0x50003930'
    """
    s = np.asarray(sport, dtype=np.uint32)
    d = np.asarray(dport, dtype=np.uint32)
    if endianness == "little":
        return (raw16(s) | (raw16(d) << 16)).astype(np.uint32)
    return ((s << 16) | (d & 0xFFFF)).astype(np.uint32)


def consistentify(flow: Flow, rule: str = "signed", endianness: str = "little") -> Flow:
    """``__flow_hash_consistentify``: put both directions of a flow in one order.

    Rules (profile field ``consistentify``):

    * ``"signed"`` (4.2–5.13): IPv4 swaps when ``(s32)(dst - src) < 0`` of the raw
      (``__force u32``) addresses, IPv6 when ``memcmp(dst, src) < 0``; equal addresses compare
      the raw ports; a swap exchanges addresses and ports together.
    * ``"unsigned"`` (3.3–4.1 rxhash): as ``"signed"`` with the unsigned ``dst < src``.
    * ``"signed-ports-apart"`` (5.14–5.19) / ``"unsigned-ports-apart"`` (6.0+): the addresses
      are ordered (signed / unsigned IPv4 compare, memcmp for IPv6) and, independently, the
      raw ports (``dst < src`` swaps them).
    """
    rs, rd = raw32(flow.src[:, 3], endianness), raw32(flow.dst[:, 3], endianness)
    if rule.startswith("signed"):
        diff4 = (rd - rs).astype(np.uint32).view(np.int32).astype(np.int64)
    else:
        diff4 = rd.astype(np.int64) - rs.astype(np.int64)
    # memcmp of big-endian bytes == lexicographic compare of host-order words
    d6 = np.zeros(len(rs), dtype=np.int64)
    for w in range(3, -1, -1):
        a, b = flow.dst[:, w].astype(np.int64), flow.src[:, w].astype(np.int64)
        d6 = np.where(a != b, np.sign(a - b), d6)
    ip = (flow.version == 4) | (flow.version == 6)
    diff = np.where(flow.version == 4, np.sign(diff4), np.where(flow.version == 6, d6, 1))
    pd_, ps = raw16(flow.dport, endianness), raw16(flow.sport, endianness)
    if rule.endswith("ports-apart"):
        swap = diff < 0
        swap_ports = ip & (pd_ < ps)
    else:
        swap = (diff < 0) | ((diff == 0) & (pd_ < ps))
        swap_ports = swap
    s2 = swap[:, None]
    return replace(flow, src=np.where(s2, flow.dst, flow.src),
                   dst=np.where(s2, flow.src, flow.dst),
                   sport=np.where(swap_ports, flow.dport, flow.sport),
                   dport=np.where(swap_ports, flow.sport, flow.dport))


def _put(buf: np.ndarray, off: int, values: np.ndarray, size: int, order: str) -> None:
    v = np.asarray(values, dtype=np.uint64)
    for i in range(size):
        shift = 8 * (size - 1 - i) if order == "big" else 8 * i
        buf[:, off + i] = ((v >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.uint8)


def vlan_key(flow: Flow, vlan_bits: int = 0x0FFF, prio_bit: int = 13) -> np.ndarray:
    """The first 16 bits of the dissector's VLAN key (host order).

    ``vlan_bits`` says which TCI fields the dissector fills (the profile's
    ``vlan_tci_hashed``, in TCI positions: id 0x0FFF, DEI 0x1000, PCP 0xE000); ``prio_bit``
    where the key keeps the priority: 13 (``vlan_id:12, vlan_dei:1, vlan_priority:3``) or
    12 (``vlan_id:12, vlan_priority:3`` before the DEI member).
    """
    tci = (flow.vlan if flow.vlan_tci is None else flow.vlan_tci).astype(np.uint32)
    key = tci & (vlan_bits & 0x1FFF)
    return (key | (((tci & vlan_bits) >> 13) << prio_bit)).astype(np.uint32)


def flow_keys_bytes(flow: Flow, layout: FlowKeysLayout | str, endianness: str = "little",
                    vlan_bits: int = 0x0FFF, vlan_prio_bit: int = 13
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The hashed part of ``struct flow_keys`` per packet: ``(bytes (N, max), lengths (N,))``.

    ``vlan_bits`` and ``vlan_prio_bit`` place the VLAN TCI in the key (see :func:`vlan_key`;
    the profile's ``vlan_tci_hashed`` and ``vlan_prio_bit``).

    Examples
    --------
    >>> import pandas as pd
    >>> from qoslab.hashing.profiles import get_profile
    >>> pk = pd.DataFrame({"ip_version": [4], "src": ["192.168.1.10"], "dst": ["10.0.0.1"],
    ...     "proto": [6], "sport": [12345], "dport": [80], "tos": [0], "frag": [False],
    ...     "tunnel": ["none"], "inner_src": [None], "inner_dst": [None], "inner_proto": [None],
    ...     "inner_sport": [None], "inner_dport": [None]})
    >>> f = consistentify(dissect(pk, get_profile("5.18+"), stop_at_flow_label=True))
    >>> buf, n = flow_keys_bytes(f, "5.18")
    >>> bytes(buf[0, :n[0]]).hex()
    '0800060000000000000000000000000000000000000000000000000000503039000000000a000001c0a8010a00000000'
    """
    lay = FLOW_KEYS_LAYOUTS[layout] if isinstance(layout, str) else layout
    host = "little" if endianness == "little" else "big"
    n = len(flow.version)
    buf = np.zeros((n, lay.sizeof - lay.hash_offset), dtype=np.uint8)
    _put(buf, 0, flow.n_proto, 2, "big")
    _put(buf, 2, flow.ip_proto, 1, "big")
    _put(buf, 4, (flow.flow_label.astype(np.uint64) << np.uint64(lay.label_shift)) & 0xFFFFFFFF,
         4, host)
    tagged = flow.has_vlan & (lay.vlan >= 0)
    if tagged.any():
        rows = np.flatnonzero(tagged)
        sub = buf[rows]
        _put(sub, lay.vlan, vlan_key(flow, vlan_bits, vlan_prio_bit)[rows], 2, host)
        if lay.vlan_tpid:
            _put(sub, lay.vlan + 2, np.full(len(rows), 0x8100), 2, "big")
        if lay.vlan_size == 8:
            _put(sub, lay.vlan + 4, flow.l2_proto[rows], 2, "big")
        buf[rows] = sub
    if flow.keyid is not None:
        _put(buf, lay.keyid, flow.keyid, 4, "big")
    _put(buf, lay.ports, flow.sport, 2, "big")
    _put(buf, lay.ports + 2, flow.dport, 2, "big")
    v4, v6 = flow.version == 4, flow.version == 6
    if flow.residue is not None:  # 4in6: the outer IPv6 addresses stay in the address union
        for w in range(8):
            off = lay.addrs + 4 * w
            if off + 4 <= buf.shape[1]:
                tmp = np.zeros((n, 4), dtype=np.uint8)
                _put(tmp, 0, flow.residue[:, w], 4, "big")
                buf[v4, off:off + 4] = tmp[v4]
    for base, words in ((lay.addrs, flow.src), (None, flow.dst)):
        for w in range(4):
            if base is not None:  # source: v4 at addrs, v6 at addrs
                col6 = lay.addrs + 4 * w
            else:
                col6 = lay.addrs + 16 + 4 * w
            tmp = np.zeros((n, 4), dtype=np.uint8)
            _put(tmp, 0, words[:, w], 4, "big")
            buf[v6, col6:col6 + 4] = tmp[v6]
        tmp = np.zeros((n, 4), dtype=np.uint8)
        _put(tmp, 0, words[:, 3], 4, "big")
        off4 = lay.addrs if base is not None else lay.addrs + 4
        buf[v4, off4:off4 + 4] = tmp[v4]
    return buf, lay.length(flow.version).astype(np.int64)


def flow_hash(flow: Flow, seed, profile: KernelProfile, endianness: str = "little",
              *, consistent: bool = True) -> np.ndarray:
    """``__flow_hash_from_keys`` (4.2+) of already-dissected flows; 0 → 1."""
    if profile.flow_hash is None:
        raise KernelFeatureMissing(f"profile {profile.name!r} has no flow_keys hash")
    f = consistentify(flow, profile.consistentify, endianness) if consistent else flow
    buf, lengths = flow_keys_bytes(f, profile.flow_keys_layout, endianness,
                                   profile.vlan_tci_hashed, profile.vlan_prio_bit)
    return hash_flow_bytes(buf, lengths, seed, profile, endianness)


def hash_flow_bytes(buf: np.ndarray, lengths: np.ndarray, seed, profile: KernelProfile,
                    endianness: str = "little") -> np.ndarray:
    """Hash prepared ``flow_keys`` bytes (see :func:`flow_keys_bytes`) with one seed; 0 → 1."""
    out = np.empty(len(lengths), dtype=np.uint32)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        data = np.ascontiguousarray(buf[rows, :length])
        if profile.flow_hash == "siphash":
            h = (siphash(data, seed) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        else:
            words = data.view("<u4" if endianness == "little" else ">u4").astype(np.uint32)
            h = jhash2(words.reshape(len(rows), -1), int(seed) & 0xFFFFFFFF,
                       algo=profile.jhash)
        out[rows] = h
    out[out == 0] = 1
    return out


def rxhash(flow: Flow, seed, profile: KernelProfile, endianness: str = "little") -> np.ndarray:
    """3.3–4.1 ``skb_get_rxhash``: ``jhash_3words(dst, src, ports)`` made direction-free;
    0 for non-IP.

    The dissector keeps 32-bit addresses (:func:`~.dissect.addr32`), so the direction is
    ordered on those words. Profile field ``rxhash_order``: ``"canonical"`` (3.4+: swap
    addresses and ports together when raw ``dst < src``, or equal addresses and raw dport <
    sport) or ``"apart"`` (3.3: the raw ports are sorted on their own, then the addresses).
    """
    d = raw32(addr32(flow.dst, flow.version, profile.ipv6_addr), endianness)
    s = raw32(addr32(flow.src, flow.version, profile.ipv6_addr), endianness)
    pd_, ps = raw16(flow.dport, endianness), raw16(flow.sport, endianness)
    if profile.rxhash_order == "apart":
        swap, swap_ports = d < s, pd_ < ps
    else:
        swap = (d < s) | ((d == s) & (pd_ < ps))
        swap_ports = swap
    d, s = np.where(swap, s, d), np.where(swap, d, s)
    sport = np.where(swap_ports, flow.dport, flow.sport)
    dport = np.where(swap_ports, flow.sport, flow.dport)
    h = np.asarray(jhash_3words(d, s, raw_ports(sport, dport, endianness),
                                int(seed) & 0xFFFFFFFF, algo=profile.jhash), dtype=np.uint32)
    h = np.where(h == 0, 1, h).astype(np.uint32)
    ok = flow.version > 0
    if flow.failed is not None:  # the dissector gave up: skb->rxhash stays 0
        ok &= ~flow.failed
    return np.where(ok, h, 0).astype(np.uint32)


def rxhash_direct(packets: pd.DataFrame, seed, profile: KernelProfile,
                  endianness: str = "little") -> np.ndarray:
    """2.6.37–3.2 ``__skb_get_rxhash`` (see module docstring)."""
    f = direct_read(packets, profile)
    ip = f.version > 0
    frag = column(packets, "frag", 0, bool)
    dead = np.zeros(len(packets), bool)
    if profile.skb_hash == "rxhash-3.2":  # IPPROTO_IPIP: the inner IPv4 header (4in4); GRE
        kinds = tunnel_kinds(packets)
        inner = header(packets, "inner", kinds=("4in4", "gre", "nvgre"))
        gre = (kinds == "gre") | (kinds == "nvgre")
        follow = ~frag & (inner.version > 0) & (
            ((kinds == "4in4") & (f.version == 4) & (f.ip_proto == 4))
            | (gre & (f.ip_proto == 47)))
        dead = follow & (kinds == "nvgre")  # an Ethernet payload: 'goto done', hash 0
        follow &= ~dead
        if follow.any():
            i_sport, i_dport = read_ports(inner, column(packets, "inner_spi"),
                                          "proto_ports_offset")
            # an inner IPv6 header: its fixed header's next header, no extension header walk
            i_first = np.where(present(packets, "inner_ipv6_nexthdr"),
                               column(packets, "inner_ipv6_nexthdr"), inner.proto)
            i_ext = (inner.version == 6) & (i_first != inner.proto)
            inner = replace(inner, proto=np.where(inner.version == 6, i_first, inner.proto))
            i_sport, i_dport = np.where(i_ext, 0, i_sport), np.where(i_ext, 0, i_dport)
            f2 = follow[:, None]
            f = replace(f, version=np.where(follow, inner.version, f.version).astype(np.uint8),
                        src=np.where(f2, inner.src, f.src), dst=np.where(f2, inner.dst, f.dst),
                        ip_proto=np.where(follow, inner.proto, f.ip_proto),
                        sport=np.where(follow, i_sport, f.sport),
                        dport=np.where(follow, i_dport, f.dport), tunnelled=follow)
    has_ports = ip & ~frag & ((f.sport | f.dport) != 0)
    p0 = raw16(f.sport, endianness)
    p1 = raw16(f.dport, endianness)
    lo, hi = np.minimum(p0, p1), np.maximum(p0, p1)
    if endianness == "little":  # ports.v16[0] is the low half of the u32 load
        ports = (lo | (hi << 16)).astype(np.uint32)
    else:
        ports = ((lo << 16) | hi).astype(np.uint32)
    ports = np.where(has_ports, ports, 0).astype(np.uint32)
    a1, a2 = raw32(f.src[:, 3], endianness), raw32(f.dst[:, 3], endianness)
    h = np.asarray(jhash_3words(np.minimum(a1, a2), np.maximum(a1, a2), ports,
                                int(seed) & 0xFFFFFFFF, algo=profile.jhash), dtype=np.uint32)
    h = np.where(h == 0, 1, h)
    return np.where(ip & ~dead, h, 0).astype(np.uint32)


def skb_hash(packets: pd.DataFrame, hashrnd=0, profile: str | KernelProfile = DEFAULT_PROFILE,
             *, at=None, endianness: str = "little") -> np.ndarray:
    """``skb_get_hash`` computed from the headers (uint32 per packet).

    Valid when nothing set ``skb->hash`` earlier (no NIC RSS hash, no socket ``sk_txhash`` on
    locally generated traffic); those hashes are random and cannot be predicted.

    Parameters
    ----------
    hashrnd
        The global seed: u32 (jhash eras) or a SipHash key (5.4+; 16 bytes, ``(k0, k1)`` or an
        int); a sequence of seeds with ``at`` for a schedule.

    Examples
    --------
    >>> import pandas as pd
    >>> pk = pd.DataFrame({"ip_version": [4, 4], "src": ["192.168.1.10", "10.0.0.1"],
    ...     "dst": ["10.0.0.1", "192.168.1.10"], "proto": [6, 6], "sport": [12345, 80],
    ...     "dport": [80, 12345], "tos": [0, 0], "frag": [False, False],
    ...     "tunnel": ["none"] * 2, "inner_src": [None] * 2, "inner_dst": [None] * 2,
    ...     "inner_proto": [None] * 2, "inner_sport": [None] * 2, "inner_dport": [None] * 2})
    >>> [hex(h) for h in skb_hash(pk, bytes(range(16)), "5.18+")]
    ['0xaa09f22d', '0xaa09f22d']
    """
    prof = get_profile(profile)
    check_frame(packets)
    if prof.skb_hash is None:
        raise KernelFeatureMissing(f"profile {prof.name!r}: no flow-dissector skb hash "
                                   "(RPS rxhash arrives in 2.6.35; profiles from 2.6.37-3.2)")
    if prof.skb_hash in ("rxhash-2.6", "rxhash-3.2"):
        out = np.empty(len(packets), dtype=np.uint32)
        return apply_seeds(packets, hashrnd, at, out, lambda seed, rows: rxhash_direct(
            packets if isinstance(rows, slice) else packets.iloc[rows], seed, prof,
            endianness))
    if prof.skb_hash == "rxhash":
        flow = dissect(packets, prof)
        fn = rxhash
    else:
        flow = dissect(packets, prof, stop_at_flow_label=prof.flow_label_stop)
        fn = flow_hash
    out = np.empty(len(packets), dtype=np.uint32)
    return apply_seeds(packets, hashrnd, at, out,
                       lambda seed, rows: fn(select_rows(flow, rows), seed, prof, endianness))


def select_rows(flow: Flow, rows) -> Flow:
    return flow.rows(rows)
