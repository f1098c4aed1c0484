"""The lab's address plan: which namespaces exist, how veth pairs join them, which addresses.

A table, not logic: a two-host bed (client <-> server) and a three-host bed with a router in the
middle (client <-> router <-> server, as the seed's Linux gateway). The addresses live only
inside the lab's own namespaces, so they cannot clash with anything on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Link", "LINKS", "ROLE_LETTER", "POINTS", "links_for"]

#: Namespace role -> the letter in its name (``qlab-PID-RUNID-c``).
ROLE_LETTER: dict[str, str] = {"client": "c", "router": "r", "server": "s"}


@dataclass(frozen=True)
class Link:
    """One veth pair: ``left`` end in namespace ``left_role``, ``right`` end in ``right_role``.

    ``*_v4`` / ``*_v6`` are the addresses of each end (prefix lengths 24 and 64).
    """

    name: str
    left_role: str
    left_if: str
    left_v4: str
    left_v6: str
    right_role: str
    right_if: str
    right_v4: str
    right_v6: str


#: topology name -> its links, in creation order. Interface names get the run id prepended.
LINKS: dict[str, tuple[Link, ...]] = {
    "direct": (
        Link("client-server", "client", "c0", "10.71.0.1", "fd71::1",
             "server", "s0", "10.71.0.2", "fd71::2"),
    ),
    "routed": (
        Link("client-router", "client", "c0", "10.71.1.2", "fd71:1::2",
             "router", "r0", "10.71.1.1", "fd71:1::1"),
        Link("router-server", "router", "r1", "10.71.2.1", "fd71:2::1",
             "server", "s0", "10.71.2.2", "fd71:2::2"),
    ),
}

#: Attachment point (where a qdisc tree or a capture goes) -> (role, interface suffix) per
#: topology. ``client``: the client's uplink; ``server``: the server's downlink;
#: ``router``/``router-out``: the router's interface toward the server (the upload bottleneck
#: of a gateway); ``router-in``: the router's interface toward the client (sees the client's
#: packets *before* the bottleneck queue, the place to capture).
POINTS: dict[str, dict[str, tuple[str, str]]] = {
    "direct": {"client": ("client", "c0"), "server": ("server", "s0")},
    "routed": {"client": ("client", "c0"), "server": ("server", "s0"),
               "router": ("router", "r1"), "router-out": ("router", "r1"),
               "router-in": ("router", "r0")},
}


def links_for(router: bool) -> tuple[Link, ...]:
    """Return the links of the two-host (``router=False``) or three-host bed.

    >>> [link.name for link in links_for(True)]
    ['client-router', 'router-server']
    """
    return LINKS["routed" if router else "direct"]
