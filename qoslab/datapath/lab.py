"""The datapath in a lab bed: policy routing sends the client's packets through it.

:func:`route_into` is what the userspace backend (and the datapath benchmark) does to a
routed :class:`~qoslab.lab.Testbed` once the datapath processes hold their TUN devices: the
router looks up table :data:`ROUTE_TABLE` for every packet arriving from the client side
(``ip rule iif <r0>``), whose default route is the datapath's TUN; what the datapath writes
back arrives on the TUN, misses the rule and is routed on by the main table. The return
path never meets the rule. For a userspace tunnel, the tunnel's remote address is routed to
the server and, there, into the decapsulating TUN; the client's routes to tunnelled
destinations get the tunnel's MTU.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

__all__ = ["route_into", "next_hop", "ROUTE_TABLE", "PREFERENCE"]

#: Policy-routing table whose default route is the datapath's TUN device.
ROUTE_TABLE = "100"
#: Preference of the rule that sends the client's packets there (after the local table's).
PREFERENCE = "100"


def next_hop(tb: Any, src: str, via: str, version: int) -> str:
    """The address of ``via`` on the link it shares with ``src`` (roles of the bed)."""
    for link in tb.links:
        ends = {link.left_role, link.right_role}
        if src in ends and via in ends:
            side = "left" if link.left_role == via else "right"
            return getattr(link, f"{side}_v{version}")
    raise ValueError(f"no link between {src} and {via} in this bed")


def _prefix(address: str) -> tuple[str, str]:
    addr = ipaddress.ip_address(address)
    return (f"{address}/128", "-6") if addr.version == 6 else (f"{address}/32", "-4")


def route_into(tb: Any, tun: str, *, decap_tun: str | None = None,
               tunnels: Mapping[str, Any] | None = None, mtu: int = 1500) -> None:
    """Route the client's packets through the datapath on ``tun`` (see the module docstring).

    ``tunnels`` maps inner destinations to their :class:`~qoslab.sim.traffic.Tunnel` (its
    ``remote`` is routed to ``decap_tun`` on the server).
    """
    router, client, server = tb.ns("router"), tb.ns("client"), tb.ns("server")
    for ns, dev in ((router, tun), (server, decap_tun)):
        if dev is None:
            continue
        # no link-local address: the kernel sends nothing of its own into the datapath
        ns.ip("link", "set", "dev", dev, "addrgenmode", "none", log=tb.commands)
        ns.ip("link", "set", "dev", dev, "up", log=tb.commands)
        for key in ("all", "default", dev):  # packets come back on another interface
            ns.sysctl(f"net.ipv4.conf.{key}.rp_filter", 0)
    for fam in ("-4", "-6"):
        router.ip(fam, "route", "add", "default", "dev", tun, "table", ROUTE_TABLE,
                  log=tb.commands)
        router.ip(fam, "rule", "add", "iif", tb.ifname("r0"), "lookup", ROUTE_TABLE, "pref",
                  PREFERENCE, log=tb.commands)
    router.sysctl("net.ipv4.conf.all.send_redirects", 0)
    tunnels = dict(tunnels or {})
    remotes = sorted({t.remote for t in tunnels.values()})
    if remotes:  # the server routes the tunnel's packets into its decapsulating TUN
        server.sysctl("net.ipv4.ip_forward", 1)
        server.sysctl("net.ipv6.conf.all.forwarding", 1)
    for remote in remotes:
        prefix, fam = _prefix(remote)
        version = 6 if fam == "-6" else 4
        router.ip(fam, "route", "add", prefix, "via", next_hop(tb, "router", "server", version),
                  log=tb.commands)
        server.ip(fam, "route", "add", prefix, "dev", decap_tun, log=tb.commands)
    for dst, t in tunnels.items():  # the tunnel's MTU on the client's routes
        prefix, fam = _prefix(dst)
        version = 6 if fam == "-6" else 4
        inner_mtu = mtu - (40 if ":" in t.remote else 20)
        client.ip(fam, "route", "change", prefix, "via",
                  next_hop(tb, "client", "router", version), "mtu", str(inner_mtu),
                  log=tb.commands)
