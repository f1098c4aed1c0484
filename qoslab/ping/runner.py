"""``qoslab.ping(...)``: run the experiment matrix with the best back-end available -> RUN."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .. import schema
from .._version import __version__
from ..errors import BackendUnavailableError, ConfigError
from ..runs import Run, RunJournal
from .engine import MIN_INTERVAL, SocketEngine
from .recorder import ProbeRecorder
from .sockets import SOCKET_KINDS, socket_kind_status
from .system_ping import SystemPing, find_ping, ping_version
from .targets import DEFAULT_SIZE, Stream, Target, build_streams

__all__ = ["ping", "select_backend", "BACKENDS", "DEFAULT_TIMEOUT"]

#: Back-end names: ``auto`` tries them in this order.
BACKENDS = ("raw", "dgram", "system")
#: Seconds to wait for an answer before a probe counts as lost (a later answer -> ``late``).
DEFAULT_TIMEOUT = 2.0
#: Seconds a stopped run still waits for answers in flight (capped by the timeout).
STOP_GRACE = 1.0
#: iputils' shortest interval for users who are not root.
_SYSTEM_USER_MIN_INTERVAL = 0.002


def _min_interval(name: str) -> float:
    if name == "system":
        return 0.0 if os.geteuid() == 0 else _SYSTEM_USER_MIN_INTERVAL
    return MIN_INTERVAL[name]


def select_backend(backend: str = "auto", families: Iterable[int] = (socket.AF_INET,),
                   interval: float = 0.2) -> tuple[str, dict[str, str]]:
    """Choose the probe back-end by trying it, never by guessing.

    Parameters
    ----------
    backend
        ``"auto"``, ``"raw"``, ``"dgram"`` or ``"system"``.
    families
        Address families the streams need.
    interval
        Seconds between probes of a stream; a back-end that cannot send that often is skipped.

    Returns
    -------
    (name, refused)
        The back-end chosen and, for each one tried before it, why it was not usable.

    Raises
    ------
    BackendUnavailableError
        When none can be used; the message lists each reason.
    ConfigError
        For an unknown name, or an interval below what the (only) usable back-end can do.

    Examples
    --------
    >>> name, refused = select_backend("auto")
    >>> name in BACKENDS
    True
    """
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend {backend!r}: expected auto, {', '.join(BACKENDS)}")
    families = sorted(set(families))
    candidates = BACKENDS if backend == "auto" else (backend,)
    refused: dict[str, str] = {}
    too_fast: list[str] = []
    for name in candidates:
        if name in SOCKET_KINDS:
            reason = next((r for r in (socket_kind_status(name, f) for f in families) if r), None)
        else:
            try:
                ping_version(find_ping())
                reason = None
            except BackendUnavailableError as exc:
                reason = str(exc)
        if reason is None and interval < _min_interval(name):
            reason = (f"interval {interval:g} s is below what the {name} backend can do "
                      f"(at least {_min_interval(name):g} s)")
            too_fast.append(reason)
        if reason is None:
            return name, refused
        refused[name] = reason
    if too_fast and len(refused) == len(too_fast) or backend != "auto" and too_fast:
        raise ConfigError(too_fast[0])
    raise BackendUnavailableError(
        "no probe backend can be used: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
        + (f" ({too_fast[0]})" if too_fast else ""))


def ping(targets: str | Target | Iterable[str | Target], tos: int | Sequence[int] = 0,
         sizes: int | Sequence[int] = DEFAULT_SIZE, interval: float = 0.2,
         count: int | None = 400, deadline: float | None = None, timeout: float | None = None,
         family: int | None = None, backend: str = "auto", progress: Any = None,
         path: str | os.PathLike | None = None, *, realtime: bool | None = None,
         force: bool = False, live: Any = None, stop: threading.Event | None = None) -> Run:
    """Ping every destination x TOS x size stream concurrently and return the RUN.

    Parameters
    ----------
    targets
        Host(s) as names or literals, ping-exp ``"ID,HOST,TOS[,SIZE]"`` strings or
        :class:`~qoslab.ping.targets.Target` objects.
    tos, sizes
        TOS byte(s) and ICMP payload size(s) crossed with every target that does not fix its own.
    interval
        Seconds between probes of one stream (ping-exp default 0.2).
    count
        Probes per stream (``None``: until ``deadline``, SIGINT or SIGTERM).
    deadline
        Seconds after the start when sending stops (answers in flight are still awaited).
    timeout
        Seconds to wait for an answer before a probe is ``lost`` (default 2; an answer coming
        later turns it into ``late`` with its RTT).
    family
        ``4`` or ``6`` to force an address family for names.
    backend
        ``"auto"`` (raw socket, else ICMP datagram socket, else system ``ping``), or one name.
    progress
        ``True`` for a progress bar, a callable ``f(done, total)``, or ``None``.
    path
        Save the RUN here; while running, probes stream to ``path + ".partial"``. The folder
        must exist; an existing file (or an earlier run's journal) is refused unless ``force``.
    realtime
        Socket back-ends: run the probe loop under ``SCHED_FIFO`` so busy neighbours cannot
        delay sends (``None``: when permitted, e.g. as root; ``True``: required; ``False``:
        never). ``meta["scheduling"]`` says what was granted.
    force
        Replace an existing file at ``path`` (an earlier journal is kept under a new name).
    live
        A callable ``f(rows)`` receiving the PROBES rows as they are recorded, at least four
        times a second (see :class:`~qoslab.ping.recorder.ProbeRecorder`): for live views.
    stop
        A :class:`threading.Event`; setting it stops the run as SIGINT does (no new probe,
        answers in flight awaited for up to a second): every probe sent is in the RUN,
        ``meta["stop_reason"]`` is ``"stopped"``.

    Returns
    -------
    Run
        PROBES with the extra columns ``send_late_ms``, ``reordered`` and ``detail``; META with
        the back-end used (``backend``) and why the others were not (``backends_refused``).
        SIGINT or SIGTERM stops the run early: every probe sent is in the result
        (``meta["stop_reason"]`` names the signal).

    Raises
    ------
    ConfigError
        Unresolvable names, bad TOS/size/interval/count.
    BackendUnavailableError
        When no back-end can be used, with each reason.

    Examples
    --------
    >>> import qoslab
    >>> run = qoslab.ping("127.0.0.1", tos=[0, 0x10], interval=0.01, count=3)
    >>> run.probes.groupby("stream")["status"].apply(list).to_dict()
    {'127.0.0.1 tos=0x00 size=56': ['ok', 'ok', 'ok'], '127.0.0.1 tos=0x10 size=56': ['ok', 'ok', 'ok']}
    """
    interval = _positive(interval, "interval")
    if count is not None and (not isinstance(count, (int, np.integer)) or count < 0):
        raise ConfigError(f"count {count!r}: expected a non-negative integer or None")
    deadline = None if deadline is None else _positive(deadline, "deadline")
    timeout = DEFAULT_TIMEOUT if timeout is None else _positive(timeout, "timeout")
    streams = build_streams(targets, tos, sizes, family)
    name, refused = select_backend(backend, {s.family for s in streams}, interval)
    total = None if count is None else int(count) * len(streams)
    start = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "tool": f"qoslab {__version__}", "source": "qoslab-ping", "start_time": start.isoformat(),
        "interval": interval, "count": count, "deadline": deadline, "timeout": timeout,
        "backend": name, "backends_refused": refused,
        "targets": [s.as_meta() for s in streams], "kernel_release": os.uname().release,
        "hostname": socket.gethostname(), "pid": os.getpid(),
    }
    journal = (RunJournal(path, meta, background_sync=True, force=force)
               if path is not None else None)
    recorder = ProbeRecorder(journal, total, progress, live=live)
    if name == "system":
        engine: SocketEngine | SystemPing = SystemPing(streams, interval, count, deadline,
                                                       timeout, recorder)
        meta["backend_detail"] = engine.version
    else:
        engine = SocketEngine(streams, name, interval, count, deadline, timeout, recorder,
                              realtime=realtime)
        meta["stagger"] = "stream i of N starts i*interval/N after the first"
    t0 = time.monotonic()
    try:
        _drive(engine, min(timeout, STOP_GRACE), stop)
    except BaseException:
        recorder.close()
        if journal is not None:
            journal.close()
            if not recorder.rows:
                journal.journal_path.unlink(missing_ok=True)
        raise
    recorder.close()
    run = _build_run(engine, recorder, meta, time.monotonic() - t0, streams)
    if journal is not None:
        journal.finish(run)
    return run


def _positive(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r}: expected a number of seconds") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{what} {value!r}: expected a positive number of seconds")
    return v


def _build_run(engine, recorder: ProbeRecorder, meta: dict, elapsed: float,
               streams: list[Stream]) -> Run:
    probes = recorder.frame()
    late = probes["send_late_ms"].dropna().to_numpy()
    meta.update({
        "end_time": dt.datetime.now(dt.UTC).isoformat(),
        "duration": round(elapsed, 6),
        "stop_reason": engine.stop_reason or "complete",
        "interrupted": engine.stop_reason in ("SIGINT", "SIGTERM"),
        "probes_sent": int((probes["status"] != "duplicate").sum()),
    })
    if isinstance(engine, SocketEngine):
        meta["backend_detail"] = f"{engine.kind} ICMP sockets, SO_TIMESTAMPNS, {engine.timer_kind}"
        meta["scheduling"] = engine.scheduling
        meta["start_time"] = dt.datetime.fromtimestamp(engine.start_real / 1e9, dt.UTC).isoformat()
    if len(late):
        meta["send_late_ms"] = {"p50": float(np.percentile(late, 50)),
                                "p99": float(np.percentile(late, 99)),
                                "max": float(late.max())}
    end = float(probes["t_sent"].max()) if len(probes) else 0.0
    events = schema.conform({"t": [0.0, end], "kind": ["run_start", "run_stop"],
                             "detail": [f"{len(streams)} streams, backend {meta['backend']}",
                                        meta["stop_reason"]]}, "events")
    return Run(probes, events, meta)


def _drive(engine, grace: float, stop: threading.Event | None = None) -> None:
    """Run the engine's coroutine to completion, stopping it cleanly on SIGINT/SIGTERM or when
    ``stop`` is set."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop and threading.current_thread() is threading.main_thread():
        asyncio.run(_with_signals(engine, grace, stop))
        return
    # inside a running loop (a notebook): run in a worker thread with its own loop
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    def work() -> None:
        try:
            loop.run_until_complete(engine.run())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            loop.close()

    worker = threading.Thread(target=work, name="qoslab-ping", daemon=True)
    worker.start()
    stopped = False
    try:
        while worker.is_alive():
            worker.join(0.05 if stop is not None else 0.2)
            if stop is not None and stop.is_set() and not stopped and worker.is_alive():
                stopped = True
                try:
                    loop.call_soon_threadsafe(engine.stop, "stopped")
                    loop.call_soon_threadsafe(loop.call_later, grace, engine.abort)
                except RuntimeError:  # the loop closed in between: the run is over anyway
                    pass
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(engine.stop, "SIGINT")
        loop.call_soon_threadsafe(loop.call_later, grace, engine.abort)
        worker.join()
    if "error" in box:
        raise box["error"]


async def _with_signals(engine, grace: float, stop: threading.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async def watch_stop() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
        engine.stop("stopped")
        loop.call_later(grace, engine.abort)

    def on_signal(signame: str) -> None:
        seen.append(signame)
        if len(seen) == 1:
            engine.stop(signame)
            loop.call_later(grace, engine.abort)
        else:
            engine.abort()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (ValueError, RuntimeError, NotImplementedError):
            pass
    watcher = asyncio.ensure_future(watch_stop()) if stop is not None else None
    try:
        await engine.run()
    finally:
        if watcher is not None:
            watcher.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)


