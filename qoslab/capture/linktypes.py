"""Link-layer headers: where the IP header starts, its EtherType, and the VLAN id.

One declarative table of the link types read (numbers from
https://www.tcpdump.org/linktypes.html), then one vectorized decoder per header layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._bytes import ByteSource, be16

__all__ = ["LINKTYPES", "LinkResult", "decode_link", "decode_ethernet", "ETH_P_IP",
           "ETH_P_IPV6", "MAX_VLAN_TAGS", "VLAN_TPIDS"]

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
#: EtherTypes of VLAN tags: 802.1Q, 802.1ad (QinQ service tag), the old pre-standard QinQ.
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
#: VLAN tags walked per frame; a frame with more is flagged ``too_many_vlan_tags`` (its
#: EtherType and network headers are left NA). Real stacks use one or two (QinQ).
MAX_VLAN_TAGS = 16

#: LINKTYPE_* number -> (name, header layout).
LINKTYPES: dict[int, tuple[str, str]] = {
    0: ("NULL", "bsd_null"),  # 4-byte address family, host byte order of the writer
    1: ("ETHERNET", "ethernet"),
    101: ("RAW", "raw"),  # IPv4 or IPv6 by the version nibble
    108: ("LOOP", "bsd_loop"),  # 4-byte address family, network byte order
    113: ("LINUX_SLL", "sll"),
    228: ("IPV4", "ipv4"),
    229: ("IPV6", "ipv6"),
    276: ("LINUX_SLL2", "sll2"),
}
#: BSD address families meaning IPv6 (NetBSD/OpenBSD 24; FreeBSD 28; Darwin 30), the values
#: LINKTYPE_NULL / LINKTYPE_LOOP define (Linux's AF_INET6, 10, is none of them: not IPv6 here,
#: as in Wireshark and tcpdump).
_AF_INET = 2
_AF_INET6 = (24, 28, 30)


@dataclass
class LinkResult:
    """Per-packet link-layer facts (arrays of the batch length)."""

    l3_off: np.ndarray  #: int64 absolute file offset of the network header
    l2_proto: np.ndarray  #: int64 EtherType, -1 when there is none
    vlan: np.ndarray  #: int64 outermost VLAN tag control information (TCI), -1 when untagged
    known: np.ndarray  #: bool, the link type is one we read
    truncated: np.ndarray  #: bool, the link header itself is cut
    too_many_tags: np.ndarray  #: bool, more than MAX_VLAN_TAGS VLAN tags
    not_ip: np.ndarray  #: bool, a raw IP link's packet starts with a version neither 4 nor 6


def _ethertype(field: np.ndarray, tagged: np.ndarray) -> np.ndarray:
    """The EtherType a type/length field gives: -1 for an 802.3 length (under 0x600) but a
    0 in the Ethernet header itself (no VLAN tag before it), which Wireshark reads as an
    unknown Ethernet II type (its ETHERTYPE_UNK).

    >>> _ethertype(np.array([0x0800, 46, 0, 0, -1]), np.array([0, 0, 0, 1, 0], bool)).tolist()
    [2048, -1, 0, -1, -1]
    """
    return np.where((field < 0x600) & ((field != 0) | tagged), -1, field)


def _is_tpid(proto: np.ndarray) -> np.ndarray:
    return (proto == 0x8100) | (proto == 0x88A8) | (proto == 0x9100)


def _tags(src, pos, avail, proto, vlan, trunc, base, rows, deep):
    """Walk VLAN tags starting at relative offset ``pos`` (arrays of one group); frames with
    more than :data:`MAX_VLAN_TAGS` tags are marked in ``deep`` and get EtherType -1."""
    for _ in range(MAX_VLAN_TAGS):
        tagged = _is_tpid(proto)
        if not tagged.any():
            return proto
        t = np.flatnonzero(tagged)
        m = src.rows(base[t] + pos[t], 4, rows=rows[t])
        cut = avail[t] - pos[t] < 4
        trunc[t[cut]] = True
        tci = be16(m, 0)
        first = (vlan[t] < 0) & (avail[t] - pos[t] >= 2)  # the TCI was captured
        vlan[t[first]] = tci[first]
        proto[t] = np.where(cut, -1, be16(m, 2))
        pos[t] = pos[t] + 4
    still = _is_tpid(proto)
    deep[still] = True
    proto[still] = -1
    return proto


def decode_link(src: ByteSource, data_off: np.ndarray, cap_len: np.ndarray,
                linktype: np.ndarray, rows: np.ndarray | None = None) -> LinkResult:
    """Decode the link header of every frame, grouped by link type.

    ``rows`` (frame numbers, for :meth:`ByteSource.set_heads`) defaults to ``0..n-1``."""
    n = len(data_off)
    if rows is None:
        rows = np.arange(n)
    l3 = data_off.copy()
    l2 = np.full(n, -1, np.int64)
    vlan = np.full(n, -1, np.int64)
    known = np.zeros(n, bool)
    trunc = np.zeros(n, bool)
    deep = np.zeros(n, bool)
    not_ip = np.zeros(n, bool)
    single = n == 0 or bool((linktype == linktype[0]).all())
    for lt in (linktype[:1] if single else np.unique(linktype)):
        layout = LINKTYPES.get(int(lt), (None, None))[1]
        if layout is None:
            continue
        g = slice(None) if single else np.flatnonzero(linktype == lt)
        known[g] = True
        base, avail, gr = data_off[g], cap_len[g], rows[g]
        if layout in ("ethernet", "sll", "sll2"):
            hlen, at = {"ethernet": (14, 12), "sll": (16, 14), "sll2": (20, 0)}[layout]
            cut = avail < hlen
            proto = src.rows(base + at, 2, rows=gr).view(">u2").reshape(-1).astype(np.int64)
            if cut.any():
                proto[cut] = -1
            pos = np.full(len(base), hlen, np.int64)
            gv = np.full(len(base), -1, np.int64)
            gt = cut.copy()
            gd = np.zeros(len(base), bool)
            proto = _tags(src, pos, avail, proto, gv, gt, base, gr, gd)
            deep[g] = gd
            if layout == "ethernet":
                proto = _ethertype(proto, gv >= 0)
            l2[g], vlan[g], trunc[g], l3[g] = proto, gv, gt, base + pos
        elif layout in ("raw", "ipv4", "ipv6"):
            if layout == "raw":
                m = src.rows(base, 1, rows=gr)
                ver = m[:, 0] >> 4
                proto = np.select([ver == 4, ver == 6], [ETH_P_IP, ETH_P_IPV6], -1)
                proto = np.where(avail < 1, -1, proto)
                trunc[g] = avail < 1
                not_ip[g] = (proto < 0) & (avail >= 1)
            else:
                proto = np.full(len(base), ETH_P_IP if layout == "ipv4" else ETH_P_IPV6)
            l2[g] = proto
        else:  # bsd_null / bsd_loop
            m = src.rows(base, 4, rows=gr)
            if layout == "bsd_loop":
                fam = m[:, 3].astype(np.int64) | (m[:, 2].astype(np.int64) << 8)
                hi = (m[:, 0].astype(np.int64) << 8) | m[:, 1]
                fam = np.where(hi != 0, -1, fam)
            else:
                le = m.view("<u4").reshape(-1).astype(np.int64)
                fam = np.where(le & 0xFFFF0000, m.view(">u4").reshape(-1).astype(np.int64), le)
            proto = np.where(fam == _AF_INET, ETH_P_IP,
                             np.where(np.isin(fam, _AF_INET6), ETH_P_IPV6, -1))
            cut = avail < 4
            l2[g] = np.where(cut, -1, proto)
            trunc[g] = cut
            l3[g] = base + 4
    return LinkResult(l3, l2, vlan, known, trunc, deep, not_ip)


def decode_ethernet(src: ByteSource, pos: np.ndarray, avail: np.ndarray, rows: np.ndarray):
    """An Ethernet header (and its VLAN tags) at file offsets ``pos`` — a frame inside a
    tunnel. Returns ``(network header offset, EtherType or -1, outermost TCI or -1, cut,
    too many tags)``."""
    n = len(pos)
    cut = avail < 14
    proto = src.rows(pos + 12, 2, rows=rows).view(">u2").reshape(-1).astype(np.int64)
    proto[cut] = -1
    at = np.full(n, 14, np.int64)
    tci = np.full(n, -1, np.int64)
    deep = np.zeros(n, bool)
    trunc = cut.copy()
    proto = _tags(src, at, avail, proto, tci, trunc, pos, rows, deep)
    proto = _ethertype(proto, tci >= 0)
    return pos + at, proto, tci, trunc, deep
