"""``Testbed``: a real-kernel experiment in throw-away network namespaces.

A ``Testbed`` creates a client and a server namespace (and optionally a router between them),
joins them with veth pairs, gives every end an IPv4 and an IPv6 address, and removes all of it
again on normal exit, on an exception, on SIGINT and on SIGTERM. Everything it does is recorded:
the ``ip``/``tc`` commands, EVENTS (config changes, load start/stop) with times in seconds from
the bed's start, and META (kernel release, sysctls, the address plan).
"""

from __future__ import annotations

import os
import platform
import signal
import threading
import time
from contextlib import suppress
from typing import Any

from ..runs import RunJournal
from .netns import (
    REGISTRY,
    Namespace,
    add_veth,
    create_namespace,
    delete_namespace,
    namespace_name,
    new_runid,
    remove_leftovers,
    require_lab,
)
from .topology import POINTS, ROLE_LETTER, links_for

__all__ = ["Testbed", "SYSCTLS"]

#: Sysctls recorded into META (as the client namespace sees them; ``net.core.*`` are global).
SYSCTLS: tuple[str, ...] = (
    "net.core.default_qdisc",
    "net.core.wmem_max",
    "net.core.rmem_max",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_ecn",
    "net.ipv4.icmp_ratelimit",
    "net.ipv4.icmp_msgs_per_sec",
    "net.ipv4.ping_group_range",
)


class Testbed:
    """Client, server and optional router namespaces joined by veth pairs; a context manager.

    Parameters
    ----------
    router
        Put a router namespace between client and server (forwarding on); then the router's
        interfaces are attachment points too (see :data:`qoslab.lab.topology.POINTS`).
    ipv6
        Also configure IPv6 addresses and routes (without duplicate-address detection).
    txqueuelen
        ``txqueuelen`` of every veth (the default limit of ``pfifo_fast`` and ``pfifo``).
    journal
        A :class:`~qoslab.runs.RunJournal` that receives every EVENT and META entry as it
        happens (so a crash keeps them).
    clean_leftovers
        First delete lab namespaces left by earlier runs whose process is dead.

    Examples
    --------
    >>> from qoslab.lab import Testbed
    >>> with Testbed() as tb:                                    # doctest: +SKIP
    ...     tb.ns("client").run(["ping", "-c1", tb.addr("server")]).returncode
    0
    """

    def __init__(self, *, router: bool = False, ipv6: bool = True,
                 txqueuelen: int | None = None, journal: RunJournal | None = None,
                 clean_leftovers: bool = True) -> None:
        self.router = bool(router)
        self.ipv6 = bool(ipv6)
        self.txqueuelen = txqueuelen
        self.journal = journal
        self.clean_leftovers = clean_leftovers
        self.runid = new_runid()
        self.topology = "routed" if self.router else "direct"
        self.links = links_for(self.router)
        roles = ["client", "router", "server"] if self.router else ["client", "server"]
        self.namespaces: dict[str, Namespace] = {
            r: Namespace(namespace_name(ROLE_LETTER[r], self.runid), r) for r in roles}
        self.commands: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self.meta: dict[str, Any] = {}
        self.t0: float | None = None
        self.t0_unix: float | None = None
        self._closers: list[Any] = []
        self._old_handlers: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._open = False

    # ----------------------------------------------------------------- set-up / tear-down
    def __enter__(self) -> Testbed:
        require_lab()
        self._install_signal_handlers()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        left = remove_leftovers() if self.clean_leftovers else []
        for ns in self.namespaces.values():
            create_namespace(ns.name)
            self._open = True
            if self.ipv6:
                # no duplicate-address detection: link-local addresses usable at once,
                # so neighbour discovery (and forwarding) works from the first packet
                ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
                ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
        for link in self.links:
            add_veth(self.ns(link.left_role).name, self.ifname(link.left_if),
                     self.ns(link.right_role).name, self.ifname(link.right_if),
                     txqueuelen=self.txqueuelen)
            for role, ifx, v4, v6 in ((link.left_role, link.left_if, link.left_v4, link.left_v6),
                                      (link.right_role, link.right_if, link.right_v4,
                                       link.right_v6)):
                ns = self.ns(role)
                self._ip(ns, "addr", "add", f"{v4}/24", "dev", self.ifname(ifx))
                if self.ipv6:
                    self._ip(ns, "-6", "addr", "add", f"{v6}/64", "dev", self.ifname(ifx),
                             "nodad")
        if self.router:
            self._route_through_router()
        self.t0 = time.monotonic()
        self.t0_unix = time.time()
        self.meta.update(self._describe(left))
        if self.journal is not None:
            self.journal.update_meta(lab=self.meta)
        self.event("run_start", f"testbed {self.runid} up ({self.topology})")

    def _route_through_router(self) -> None:
        router = self.ns("router")
        router.sysctl("net.ipv4.ip_forward", 1)
        if self.ipv6:
            router.sysctl("net.ipv6.conf.all.forwarding", 1)
        (cr, rs) = self.links
        self._ip(self.ns("client"), "route", "add", "default", "via", cr.right_v4)
        self._ip(self.ns("server"), "route", "add", "default", "via", rs.left_v4)
        if self.ipv6:
            self._ip(self.ns("client"), "-6", "route", "add", "default", "via", cr.right_v6)
            self._ip(self.ns("server"), "-6", "route", "add", "default", "via", rs.left_v6)

    def _describe(self, leftovers: list[str]) -> dict[str, Any]:
        client = self.ns("client")
        return {
            "runid": self.runid,
            "topology": self.topology,
            "namespaces": {r: ns.name for r, ns in self.namespaces.items()},
            "addresses": {r: {"ipv4": self.addr(r, 4), **({"ipv6": self.addr(r, 6)}
                                                         if self.ipv6 else {})}
                          for r in self.namespaces},
            "links": [{"name": ln.name, ln.left_role: self.ifname(ln.left_if),
                       ln.right_role: self.ifname(ln.right_if)} for ln in self.links],
            "txqueuelen": self.txqueuelen,
            "kernel_release": platform.release(),
            "kernel_version": platform.version(),
            "sysctls": {k: client.sysctl(k) for k in SYSCTLS},
            "started_unix": self.t0_unix,
            "leftovers_removed": leftovers,
        }

    def close(self) -> None:
        """Stop everything started in the bed and delete its namespaces (idempotent)."""
        with self._lock:
            ignore = {}
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    ignore[sig] = signal.signal(sig, signal.SIG_IGN)
            try:
                if self._open and self.t0 is not None:
                    self.event("run_stop", f"testbed {self.runid} down")
                while self._closers:
                    closer = self._closers.pop()
                    with suppress(Exception):
                        closer()
                for ns in reversed(list(self.namespaces.values())):
                    if ns.name in REGISTRY.names:
                        delete_namespace(ns.name)
                self._open = False
            finally:
                for sig, handler in ignore.items():
                    signal.signal(sig, handler)
                self._restore_signal_handlers()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        self._old_handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            self._old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT,
                                                              signal.default_int_handler)

    def _restore_signal_handlers(self) -> None:
        while self._old_handlers:
            sig, handler = self._old_handlers.popitem()
            signal.signal(sig, handler)

    def on_close(self, closer: Any) -> None:
        """Register a callable run (last registered first) when the bed closes."""
        self._closers.append(closer)

    # ----------------------------------------------------------------------------- facts
    def ifname(self, suffix: str) -> str:
        """Interface name of ``suffix`` (``c0``, ``r1`` …) in this run, e.g. ``qla1b2-c0``."""
        return f"ql{self.runid}-{suffix}"

    def ns(self, role: str) -> Namespace:
        """The namespace playing ``role`` (``client``, ``server``, ``router``)."""
        try:
            return self.namespaces[role]
        except KeyError:
            raise ValueError(f"no {role!r} namespace in this bed (has: "
                             f"{', '.join(self.namespaces)})") from None

    def addr(self, role: str, family: int = 4) -> str:
        """The address of ``role`` other hosts use (IPv4 or IPv6), e.g. ``'10.71.0.2'``."""
        if family not in (4, 6):
            raise ValueError(f"family must be 4 or 6, not {family!r}")
        if family == 6 and not self.ipv6:
            raise ValueError("this bed was built with ipv6=False")
        self.ns(role)
        for link in self.links:
            # the server and client are addressed on their only link; the router on the
            # client-side link (the address the client reaches first)
            for side in ("left", "right"):
                if getattr(link, f"{side}_role") == role:
                    return getattr(link, f"{side}_v{family}")
        raise AssertionError(role)

    def point(self, name: str) -> tuple[Namespace, str]:
        """Return ``(namespace, interface)`` of attachment point ``name`` (see POINTS)."""
        table = POINTS[self.topology]
        if name not in table:
            raise ValueError(f"no attachment point {name!r} in a {self.topology} bed "
                             f"(has: {', '.join(table)})")
        role, suffix = table[name]
        return self.ns(role), self.ifname(suffix)

    def now(self) -> float:
        """Seconds since the bed came up."""
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    def event(self, kind: str, detail: str = "", t: float | None = None) -> None:
        """Record an EVENT (``t`` defaults to now) and journal it."""
        row = {"t": self.now() if t is None else float(t), "kind": kind, "detail": detail}
        self.events.append(row)
        if self.journal is not None:
            self.journal.add_event(**row)

    def _ip(self, ns: Namespace, *args: str) -> None:
        ns.ip(*args, log=self.commands)

    @property
    def pid(self) -> int:
        """Id of the process that owns the bed (part of every namespace name)."""
        return os.getpid()
