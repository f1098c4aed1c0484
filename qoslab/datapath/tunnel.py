"""IP-in-IP in userspace: what ``ipip``/``sit``/``ip6tnl`` do to a packet, for kernels without
them.

:class:`Encapsulator` wraps the packets bound for a tunnelled destination in an outer IPv4
header (protocol 4 for an IPv4 packet — 4in4 —, 41 for IPv6 — 6in4) or an outer IPv6 header
(4in6, 6in6) from the tunnel's local to its remote address, as the kernel's tunnel drivers do:
TTL 64, the outer TOS / traffic class copied from the inner one (``tos inherit``) or set with
the inner ECN bits kept (``ip_tunnel_ecn_encap``), DF set on an IPv4 outer header
(``pmtudisc``, the default), one identification number per packet. :func:`decapsulate` strips
the outer header again at the far end.

The router's datapath encapsulates *before* its qdisc, so the classifier and the capture on the
bottleneck link see real tunnel packets; the server's side of the tunnel is a second, small
qoslab process (``qoslab datapath`` in its decapsulating role) on a TUN device the tunnel's
remote address is routed to. Why not decapsulate inside the router's datapath, after the link:
then no packet on any wire would be encapsulated, and the capture of the bottleneck link would
show what no tunnel ever carries.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = ["Encapsulator", "TunnelEnd", "decapsulate", "ipv4_checksum", "TUNNEL_OVERHEAD"]

#: Bytes an outer header adds: by outer IP version.
TUNNEL_OVERHEAD = {4: 20, 6: 40}
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")


def ipv4_checksum(header: bytes) -> int:
    """The Internet checksum of an IPv4 header (its checksum field zero).

    Examples
    --------
    >>> h = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    >>> hex(ipv4_checksum(h))
    '0xb861'
    """
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class TunnelEnd:
    """One tunnel: ``local`` → ``remote`` (addresses), ``tos`` ``"inherit"`` or a byte."""

    local: str
    remote: str
    tos: int | str = "inherit"


class Encapsulator:
    """Encapsulate packets by their (inner) destination address.

    Parameters
    ----------
    routes
        Inner destination address → :class:`TunnelEnd`.

    Examples
    --------
    >>> enc = Encapsulator({"10.0.9.1": TunnelEnd("192.0.2.1", "198.51.100.1")})
    >>> inner = bytes([0x45, 0x08]) + struct.pack("!HHHBBH", 40, 7, 0x4000, 64, 6, 0) + \\
    ...     bytes([10, 71, 1, 2, 10, 0, 9, 1]) + bytes(20)
    >>> outer = enc.wrap(inner)
    >>> len(outer) - len(inner), outer[9], outer[1], ipv4_checksum(outer[:20])
    (20, 4, 8, 0)
    >>> decapsulate(outer) == inner
    True
    >>> enc.wrap(inner.replace(bytes([10, 0, 9, 1]), bytes([10, 0, 9, 2]))) is None
    True
    """

    def __init__(self, routes: dict[str, TunnelEnd]) -> None:
        self.routes: dict[bytes, tuple[int, bytes, bytes, int | str]] = {}
        for dst, end in routes.items():
            local, remote = ipaddress.ip_address(end.local), ipaddress.ip_address(end.remote)
            if local.version != remote.version:
                raise ValueError(f"tunnel {end.local} -> {end.remote}: mixed address families")
            self.routes[ipaddress.ip_address(dst).packed] = (remote.version, local.packed,
                                                              remote.packed, end.tos)
        self.ident = 0

    def wrap(self, pkt: bytes) -> bytes | None:
        """The encapsulated packet, or ``None`` when its destination is not tunnelled."""
        v = pkt[0] >> 4
        if v == 4:
            dst, inner_tos, proto = pkt[16:20], pkt[1], 4
        elif v == 6:
            dst, inner_tos, proto = pkt[24:40], ((pkt[0] & 0xF) << 4) | (pkt[1] >> 4), 41
        else:
            return None
        route = self.routes.get(dst)
        if route is None:
            return None
        outer_v, local, remote, tos = route
        outer_tos = inner_tos if tos == "inherit" else (int(tos) & 0xFC) | (inner_tos & 3)
        if outer_v == 4:
            self.ident = (self.ident + 1) & 0xFFFF
            head = _IPV4.pack(0x45, outer_tos, 20 + len(pkt), self.ident, 0x4000, 64, proto, 0,
                              local, remote)
            csum = ipv4_checksum(head)
            return head[:10] + struct.pack("!H", csum) + head[12:] + pkt
        return _IPV6.pack((6 << 28) | (outer_tos << 20), len(pkt), proto, 64, local,
                          remote) + pkt


def decapsulate(pkt: bytes) -> bytes | None:
    """The inner packet of an IP-in-IP packet (4in4, 6in4, 4in6, 6in6), else ``None``.

    Examples
    --------
    >>> decapsulate(bytes([0x45, 0]) + struct.pack("!HHHBBH", 48, 0, 0, 64, 17, 0) + bytes(28))
    """
    if not pkt:
        return None
    v = pkt[0] >> 4
    if v == 4 and len(pkt) >= 20:
        ihl = (pkt[0] & 15) * 4
        if pkt[9] in (4, 41) and not (pkt[6] & 0x3F or pkt[7]) and len(pkt) > ihl:
            return pkt[ihl:]
    elif v == 6 and len(pkt) > 40 and pkt[6] in (4, 41):
        return pkt[40:]
    return None
