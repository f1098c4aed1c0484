"""Tunnels qoslab looks through: one table of kinds, and their encapsulation headers.

Decoding goes **one tunnel level deep**: the outer IP header fills the plain columns, the
encapsulation names the ``tunnel`` kind (and its key or VNI in ``tunnel_id``), and the first
tunnelled header fills the ``inner_*`` columns (an inner Ethernet frame gives
``inner_l2_proto`` and ``inner_vlan``, then its IP header and transport). A tunnel inside the
tunnel (IP-in-IP in VXLAN, VXLAN in GRE …) is not opened: the row is flagged
``nested_tunnel`` and the ``inner_*`` columns describe the inner tunnel's own outer header.

UDP tunnels are recognised by their UDP *destination* port (what the receiving kernel
dispatches on): 4789 for VXLAN and 6081 for Geneve by default (:data:`UDP_TUNNEL_PORTS`); pass
other ports to :func:`qoslab.read_capture` (``udp_tunnels={8472: "vxlan"}`` for Linux's old
default VXLAN port).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ._bytes import be16, be32

__all__ = ["TunnelKind", "TUNNEL_KINDS", "TUNNELS", "UDP_TUNNEL_PORTS", "udp_tunnel_ports",
           "Encapsulation", "parse_gre", "parse_udp_tunnel", "ETH_P_TEB"]

#: GRE / Geneve protocol type of an Ethernet payload (Transparent Ethernet Bridging).
ETH_P_TEB = 0x6558


@dataclass(frozen=True)
class TunnelKind:
    """One value of the ``tunnel`` column."""

    name: str
    carrier: str  #: how it is recognised: IP protocol number or UDP destination port
    payload: str  #: what it carries
    tunnel_id: str  #: what ``tunnel_id`` holds for it
    spec: str  #: its definition


#: Every tunnel kind, in the order of the ``tunnel`` categories.
TUNNEL_KINDS: tuple[TunnelKind, ...] = (
    TunnelKind("none", "-", "-", "NA", "-"),
    TunnelKind("4in4", "IPv4 protocol 4", "IPv4", "NA", "RFC 2003"),
    TunnelKind("6in4", "IPv4 protocol 41", "IPv6", "NA", "RFC 4213"),
    TunnelKind("4in6", "IPv6 next header 4", "IPv4", "NA", "RFC 2473"),
    TunnelKind("6in6", "IPv6 next header 41", "IPv6", "NA", "RFC 2473"),
    TunnelKind("gre", "IP protocol 47 (IPv4 or IPv6)",
               "by protocol type: IPv4, IPv6, Ethernet (0x6558); others not opened",
               "the GRE key when the K bit is set", "RFC 2784, RFC 2890"),
    TunnelKind("nvgre", "IP protocol 47 with only the K bit set and protocol type 0x6558",
               "Ethernet", "the key: VSID << 8 | FlowID", "RFC 7637"),
    TunnelKind("vxlan", "UDP destination port 4789 (configurable)", "Ethernet", "the VNI",
               "RFC 7348"),
    TunnelKind("geneve", "UDP destination port 6081 (configurable)",
               "by protocol type: Ethernet, IPv4, IPv6", "the VNI", "RFC 8926"),
)
#: Values of the ``tunnel`` column.
TUNNELS: tuple[str, ...] = tuple(k.name for k in TUNNEL_KINDS)
#: UDP destination ports decoded as tunnels by default.
UDP_TUNNEL_PORTS: dict[int, str] = {4789: "vxlan", 6081: "geneve"}
_UDP_KINDS = ("vxlan", "geneve")


def udp_tunnel_ports(ports: Mapping[int, str] | None) -> dict[int, int]:
    """Validate a ``{port: kind}`` mapping; return ``{port: tunnel code}``.

    >>> udp_tunnel_ports({8472: "vxlan"}) == {8472: TUNNELS.index("vxlan")}
    True
    """
    ports = UDP_TUNNEL_PORTS if ports is None else ports
    out = {}
    for port, kind in dict(ports).items():
        if kind not in _UDP_KINDS:
            raise ConfigError(f"udp_tunnels: {kind!r} is not a UDP tunnel kind "
                              f"({', '.join(_UDP_KINDS)})")
        if not 0 <= int(port) <= 0xFFFF:
            raise ConfigError(f"udp_tunnels: port {port} is not a UDP port (0-65535)")
        out[int(port)] = TUNNELS.index(kind)
    return out


@dataclass
class Encapsulation:
    """What the encapsulation headers of some rows say (arrays of equal length)."""

    rows: np.ndarray  #: frame numbers
    kind: np.ndarray  #: tunnel code (index into TUNNELS)
    tunnel_id: np.ndarray  #: int64 key / VNI, -1 when there is none
    inner_pos: np.ndarray  #: file offset of the payload
    inner_avail: np.ndarray  #: captured bytes of the payload
    payload: np.ndarray  #: EtherType of the payload (0x6558: Ethernet), -1 unknown
    cut: np.ndarray  #: bool, the encapsulation header itself is cut by the snap length
    unopened: np.ndarray | None = None  #: bool, a header qoslab names but does not open


_GRE_C, _GRE_R, _GRE_K, _GRE_S, _GRE_A = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080


def parse_gre(src, rows, pos, avail) -> Encapsulation:
    """GRE headers at ``pos``: version 0 (RFC 2784 / 2890: checksum, key, sequence number)
    and version 1 (enhanced GRE of PPTP, RFC 2637: key, sequence and acknowledgement).

    A version 0 header with the routing bit (RFC 1701 source routes) or an unknown version
    is named but not opened (``unopened``: Linux drops such packets; Wireshark reads the
    payload of a version 2-7 header by its protocol type).
    """
    m = src.rows(pos, 16, rows=rows)
    flags, ptype = be16(m, 0), be16(m, 2)
    version = flags & 7
    v0 = version == 0
    c_or_r = (flags & (_GRE_C | _GRE_R)) != 0
    has_k, has_s = (flags & _GRE_K) != 0, (flags & _GRE_S) != 0
    hlen = np.where(v0, 4 + 4 * c_or_r + 4 * has_k + 4 * has_s,
                    4 + 4 + 4 * has_s + 4 * ((flags & _GRE_A) != 0))
    key_at = 4 + 4 * c_or_r
    key = np.where(key_at == 4, be32(m, 4), be32(m, 8))
    tunnel_id = np.where(v0 & has_k & (avail >= key_at + 4), key, -1)
    nvgre = v0 & has_k & ~c_or_r & ~has_s & (ptype == ETH_P_TEB)
    kind = np.where(nvgre, TUNNELS.index("nvgre"), TUNNELS.index("gre"))
    cut = avail < np.where(avail >= 4, hlen, 4)
    readable = (v0 & ((flags & _GRE_R) == 0)) | (version == 1)
    payload = np.where(readable & (avail >= 4), ptype, -1)
    return Encapsulation(rows, kind.astype(np.int8), tunnel_id, pos + hlen, avail - hlen,
                         payload, cut, ~readable & (avail >= 2))


def parse_udp_tunnel(src, rows, pos, avail, kind) -> Encapsulation:
    """VXLAN / Geneve headers after the UDP header at ``pos`` (``kind``: tunnel codes)."""
    m = src.rows(pos + 8, 8, rows=rows)
    hdr = pos + 8
    room = avail - 8
    vni = (be32(m, 4) >> 8) & 0xFFFFFF
    geneve = kind == TUNNELS.index("geneve")
    optlen = (m[:, 0] & 0x3F).astype(np.int64) * 4
    hlen = np.where(geneve, 8 + optlen, 8)
    ptype = np.where(geneve, be16(m, 2), ETH_P_TEB)
    cut = room < np.where(room >= 8, hlen, 8)  # any Geneve version is read as 0 (Wireshark)
    return Encapsulation(rows, kind.astype(np.int8), np.where(room >= 7, vni, -1),
                         hdr + hlen, room - hlen, np.where(room >= 4, ptype, -1), cut)


#: EtherTypes of payloads carried behind a label stack or a PPP header.
ETH_P_MPLS = (0x8847, 0x8848)
ETH_P_PPP = 0x880B
#: MPLS labels skipped at most; a deeper stack is not opened.
MAX_MPLS_LABELS = 8
_PPP_IP = {0x0021: 0x0800, 0x0057: 0x86DD}


def skip_mpls(src, rows, pos, avail):
    """Walk MPLS label stacks (RFC 3032) at ``pos`` to the bottom of stack; the payload's
    IP version is its first nibble, as Wireshark guesses it. Returns ``(pos, avail,
    EtherType of the payload or -1)``."""
    pos, avail = pos.copy(), avail.copy()
    alive = avail >= 4
    done = np.zeros(len(pos), bool)
    for _ in range(MAX_MPLS_LABELS):
        at = np.flatnonzero(alive & ~done)
        if not len(at):
            break
        m = src.rows(pos[at], 4, rows=rows[at])
        bottom = (m[:, 2] & 1) == 1
        pos[at] += 4
        avail[at] -= 4
        done[at[bottom]] = True
        alive[at] = avail[at] >= 4
    first = src.rows(pos, 1, rows=rows)[:, 0] >> 4
    ethertype = np.select([first == 4, first == 6], [0x0800, 0x86DD], -1)
    return pos, avail, np.where(done & (avail >= 1), ethertype, -1)


def skip_ppp(src, rows, pos, avail):
    """A PPP header (RFC 1661; address/control and protocol possibly compressed) at ``pos``
    as enhanced GRE carries it. Returns ``(pos, avail, EtherType of the payload or -1)``."""
    m = src.rows(pos, 4, rows=rows)
    acf = (m[:, 0] == 0xFF) & (m[:, 1] == 0x03)
    at = np.where(acf, 2, 0)
    b0 = m[np.arange(len(m)), at].astype(np.int64)
    b1 = m[np.arange(len(m)), at + 1].astype(np.int64)
    short = (b0 & 1) == 1  # a compressed (one-byte) protocol field
    proto = np.where(short, b0, (b0 << 8) | b1)
    hlen = at + np.where(short, 1, 2)
    ethertype = np.select([proto == 0x21, proto == 0x57], [0x0800, 0x86DD], -1)
    return pos + hlen, avail - hlen, np.where(avail >= hlen, ethertype, -1)
