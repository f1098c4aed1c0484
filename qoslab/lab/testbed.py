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

from .. import schema
from ..errors import KernelFeatureMissing
from ..outputs import OutputError
from ..runs import Run, RunJournal
from .loads import Load, start_tcp_bulk, start_udp_flood
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
    run_cmd,
)
from .observe import Capture, TcSampler, tc_snapshot
from .pings import PingProcess, PingTarget
from .probe import require_features
from .tc import Shaping, tree_facts
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
        self._samplers: list[Any] = []
        self._old_handlers: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._event_lock = threading.Lock()
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

    def __exit__(self, exc_type: type | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is not None and self._open and self.t0 is not None:
            self.event("note", f"aborted by {exc_type.__name__}: {exc}".rstrip(": "))
        self.close()

    def _build(self) -> None:
        if self.ipv6 and not os.path.isdir("/proc/sys/net/ipv6"):
            raise KernelFeatureMissing("this kernel has no IPv6 (no /proc/sys/net/ipv6): build "
                                       "the bed with Testbed(ipv6=False)")
        left = remove_leftovers() if self.clean_leftovers else []
        for ns in self.namespaces.values():
            create_namespace(ns.name, log=self.commands)
            self._open = True
            if self.ipv6:
                # no duplicate-address detection: link-local addresses usable at once,
                # so neighbour discovery (and forwarding) works from the first packet
                for key in ("net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.accept_dad"):
                    ns.run(["sysctl", "-q", "-w", f"{key}=0"], log=self.commands)
        for link in self.links:
            add_veth(self.ns(link.left_role).name, self.ifname(link.left_if),
                     self.ns(link.right_role).name, self.ifname(link.right_if),
                     txqueuelen=self.txqueuelen, log=self.commands)
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
        router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], log=self.commands)
        if self.ipv6:
            router.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"],
                       log=self.commands)
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
            "sysctls": self._sysctls(client),
            "iproute2": run_cmd(["tc", "-V"], check=False).stdout.strip(),
            "started_unix": self.t0_unix,
            "leftovers_removed": leftovers,
        }

    @staticmethod
    def _sysctls(ns: Namespace) -> dict[str, str]:
        """SYSCTLS as ``ns`` sees them; the few that exist only in the initial namespace
        (``net.core.default_qdisc``) are read there (read only)."""
        out = {}
        for key in SYSCTLS:
            value = ns.sysctl(key)
            if not value:
                value = run_cmd(["sysctl", "-n", key], check=False).stdout.strip()
            out[key] = value
        return out

    def close(self) -> None:
        """Stop everything started in the bed and delete its namespaces (idempotent)."""
        with self._lock:
            ignore = {}
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    ignore[sig] = signal.signal(sig, signal.SIG_IGN)
            try:
                was_up = self._open and self.t0 is not None
                while self._closers:
                    closer = self._closers.pop()
                    with suppress(Exception):
                        closer()
                if was_up:
                    self.event("run_stop", f"testbed {self.runid} down")
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
        with self._event_lock:  # scheduled changes record from timer threads
            self.events.append(row)
            if self.journal is not None:
                self.journal.add_event(**row)

    def _ip(self, ns: Namespace, *args: str) -> None:
        ns.ip(*args, log=self.commands)

    @property
    def pid(self) -> int:
        """Id of the process that owns the bed (part of every namespace name)."""
        return os.getpid()

    # ------------------------------------------------------------------------ shaping
    def apply(self, shaping: Shaping | Any, at: str = "client") -> list[list[str]]:
        """Replace the qdisc tree of attachment point ``at`` with ``shaping`` (a
        :class:`~qoslab.lab.tc.Shaping` or a qdisc spec of :mod:`qoslab.qdiscs`).

        The kernel is probed first: a tree needing a qdisc or classifier it lacks raises
        :class:`~qoslab.errors.KernelFeatureMissing` before anything changes. The ``tc``
        commands run are returned, recorded in ``meta["shaping"][at]`` and, after the start,
        as a ``config_change`` EVENT.
        """
        qdiscs, filters, description, doc = tree_facts(shaping)
        require_features(qdiscs=qdiscs, filters=filters,
                         what=f"shaping {description} at {at}".replace("  ", " "))
        ns, dev = self.point(at)
        run_cmd(["tc", "qdisc", "del", "dev", dev, "root"], ns=ns.name, check=False)
        argvs = [["tc", *a] for a in shaping.commands(dev)]
        for argv in argvs:
            run_cmd(argv, ns=ns.name, log=self.commands)
        entry = {"tree": doc, "namespace": ns.name, "dev": dev,
                 "commands": [" ".join(a) for a in argvs], "t": round(self.now(), 4)}
        self.meta.setdefault("shaping", {}).setdefault(at, []).append(entry)
        self.event("config_change", f"{at} ({dev}): {description or 'new qdisc tree'}")
        return argvs

    def tc(self, at: str, *args: str, detail: str | None = None) -> list[str]:
        """Run one ``tc`` command on attachment point ``at`` (``DEV`` in ``args`` is replaced
        by its interface), record it and a ``config_change`` EVENT; return the argv."""
        ns, dev = self.point(at)
        argv = ["tc", *[dev if a == "DEV" else a for a in args]]
        run_cmd(argv, ns=ns.name, log=self.commands)
        self.meta.setdefault("tc_changes", []).append(
            {"t": round(self.now(), 4), "at": at, "command": " ".join(argv)})
        self.event("config_change", detail or f"{at}: {' '.join(argv)}")
        return argv

    def at_time(self, t: float, action: Any, detail: str = "") -> threading.Timer:
        """Run ``action()`` (e.g. a :meth:`tc` call) ``t`` seconds after the bed's start."""
        def fire() -> None:
            if self._open:
                try:
                    action()
                except OutputError:
                    pass  # the journal cannot be written (disk full): the run's own writes
                    # raise this error again and end it; a timer thread must not print it
                except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                    with suppress(OutputError):
                        self.event("note", f"scheduled change failed: {exc}")
        timer = threading.Timer(max(0.0, t - self.now()), fire)
        timer.daemon = True
        timer.start()
        self.on_close(timer.cancel)
        return timer

    def snapshot(self, label: str, at: str = "client") -> dict[str, Any]:
        """Record ``tc -s`` statistics of ``at`` into ``meta["tc_snapshots"]``; return them."""
        ns, dev = self.point(at)
        snap = {"label": label, "t": round(self.now(), 4), "at": at, "dev": dev,
                **tc_snapshot(ns, dev)}
        self.meta.setdefault("tc_snapshots", []).append(snap)
        return snap

    def sample(self, at: str = "client", period: float = 0.25) -> TcSampler:
        """Poll qdisc statistics of ``at`` every ``period`` s until the bed closes; the rows go
        to ``meta["tc_samples"]`` (columns)."""
        ns, dev = self.point(at)
        sampler = TcSampler(ns, dev, self.now, period)

        def stop() -> None:
            sampler.stop()
            self.meta.setdefault("tc_samples", {})[at] = sampler.columns()
        self.on_close(stop)
        self._samplers.append((at, sampler, stop))
        return sampler

    # -------------------------------------------------------------------------- loads
    def track_load(self, load: Load, what: str) -> Load:
        """Record a started :class:`~qoslab.lab.loads.Load` (``load_start`` EVENT now,
        ``load_stop`` and its counts in ``meta["loads"]`` when ``load.finish()`` is called or
        the bed closes)."""
        load.started = self.now()
        self.event("load_start", what)

        def stop() -> None:
            if load.stopped is None:
                load.stop()
                load.stopped = self.now()
                self.event("load_stop", what)
                self.meta.setdefault("loads", []).append(
                    {"kind": load.kind, **load.params, "started": round(load.started, 4),
                     "stopped": round(load.stopped, 4), **load.summary})
        load.finish = stop  # type: ignore[attr-defined]
        self.on_close(stop)
        return load

    def udp_flood(self, rate: str | float, *, size: int = 1000, tos: int = 0,
                  duration: float = 10.0, src: str = "client", dst: str = "server",
                  family: int = 4, port: int = 9000, prefill: int = 0,
                  jitter: float = 0.5) -> Load:
        """Start a CBR UDP flood (``rate`` in tc units, ``size`` = IP packet bytes) from
        ``src`` to ``dst``; it ends by itself after ``duration`` s. ``prefill`` packets are sent
        at once first (to fill a long queue quickly); ``jitter``: see
        :func:`~qoslab.lab.loads.start_udp_flood`. ``load.finish()`` stops it early and
        records the sender's and sink's counts in ``meta["loads"]``."""
        load = start_udp_flood(self.ns(src), self.ns(dst), self.addr(dst, family), rate=rate,
                               size=size, tos=tos, duration=duration, port=port,
                               prefill=prefill, jitter=jitter)
        return self.track_load(load, f"udp flood {src}->{dst} {load.params['rate_bps']:.0f} "
                                        f"bit/s size={size} tos=0x{tos:02x}")

    def tcp_bulk(self, *, duration: float = 10.0, tos: int = 0, src: str = "client",
                 dst: str = "server", family: int = 4, port: int = 5201,
                 backend: str = "auto") -> Load:
        """Start a TCP bulk upload from ``src`` to ``dst`` for ``duration`` s (built-in sender
        or iperf3, see :func:`qoslab.lab.loads.start_tcp_bulk`)."""
        load = start_tcp_bulk(self.ns(src), self.ns(dst), self.addr(dst, family), tos=tos,
                              duration=duration, port=port, backend=backend)
        return self.track_load(load, f"tcp bulk {src}->{dst} tos=0x{tos:02x} "
                                        f"({load.params['backend']})")

    # ---------------------------------------------------------------- observations
    def capture(self, path: str | os.PathLike, at: str | None = None, *,
                bpf: str | None = "icmp or icmp6", snaplen: int = 192,
                force: bool = False) -> Capture:
        """Start ``tcpdump`` on attachment point ``at`` writing ``path``; it stops (and the
        file is complete) when the bed closes or on ``capture.stop()``.

        The default point is ``router-in`` with a router (it sees the client's packets before
        the bottleneck queue, so echo pairs there time the whole queueing delay) and
        ``client`` without (there the capture sees requests after the client's qdisc)."""
        at = at or ("router-in" if self.router else "client")
        ns, dev = self.point(at)
        cap = Capture(ns, dev, path, bpf=bpf, snaplen=snaplen, force=force)
        self.meta.setdefault("captures", []).append(
            {"at": at, "namespace": ns.name, "dev": dev, "path": str(path), "filter": bpf,
             "snaplen": snaplen, "t": round(self.now(), 4)})
        self.on_close(cap.stop)
        return cap

    def start_ping(self, targets: list[PingTarget], *, interval: float, count: int,
                   path: str | os.PathLike, timeout: float | None = None,
                   src: str = "client") -> PingProcess:
        """Start qoslab's ping runner inside ``src``; ``.result(t0_unix=bed.t0_unix)`` waits."""
        proc = PingProcess(self.ns(src), targets, interval=interval, count=count, path=path,
                           timeout=timeout)
        self.on_close(lambda: proc.process.stop())
        return proc

    def ping_targets(self, tos: list[int], dst: str = "server", family: int = 4,
                     size: int | None = None) -> list[PingTarget]:
        """One :class:`PingTarget` per TOS value to ``dst``, ids like ``tos10``."""
        return [PingTarget(f"tos{t:02x}", self.addr(dst, family), t, size) for t in tos]

    def result(self, pings: Run | None = None) -> Run:
        """The experiment as a RUN: the pings' PROBES, the bed's EVENTS, and META (the bed's
        facts under ``lab``, the ping runner's META otherwise)."""
        meta = dict(pings.meta) if pings is not None else {}
        meta["source"] = "qoslab-lab"
        meta["lab"] = dict(self.meta)
        meta["lab"]["commands"] = [" ".join(c) for c in self.commands]
        events = schema.conform({k: [e[k] for e in self.events] for k in ("t", "kind", "detail")},
                                "events")
        probes = pings.probes if pings is not None else schema.empty_probes()
        return Run(probes, events.sort_values("t", kind="stable").reset_index(drop=True), meta)
