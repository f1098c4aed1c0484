"""Pings inside a lab namespace, through qoslab's own ping runner.

The runner runs as a separate process inside the namespace (its sockets must live there):
``ip netns exec NS python -m qoslab ping -t ID,ADDR,TOS[,SIZE] … -i I -c N -W T -w FILE``.
The RUN it writes is loaded with :func:`qoslab.load` and its probe times are shifted onto the
bed's clock (seconds since the bed came up), so PROBES and the bed's EVENTS share one time axis.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..children import display_argv, qoslab_argv
from ..io import load
from ..runs import Run
from .loads import LabProcess
from .netns import LabCommandError, Namespace

__all__ = ["PingTarget", "ping_argv", "PingProcess", "on_bed_clock", "FOLLOW_POLL"]

#: Seconds between two looks at the runner's journal when following it (see
#: :meth:`PingProcess.follow`).
FOLLOW_POLL = 0.02


@dataclass(frozen=True)
class PingTarget:
    """One ping stream: an id (label prefix), a destination address, a TOS byte, a size."""

    id: str
    addr: str
    tos: int = 0
    size: int | None = None

    def spec(self) -> str:
        """The ping-exp style ``ID,HOST,TOS[,SIZE]`` of ``qoslab ping -t``.

        >>> PingTarget("be", "10.71.0.2", 0x10).spec()
        'be,10.71.0.2,0x10'
        """
        if "," in self.id:
            raise ValueError(f"ping target id {self.id!r} must not contain a comma")
        size = f",{int(self.size)}" if self.size is not None else ""
        return f"{self.id},{self.addr},0x{int(self.tos):02x}{size}"


def ping_argv(targets: Sequence[PingTarget], *, interval: float, count: int, path: str | Path,
              timeout: float | None = None, python: str | None = None) -> list[str]:
    """Command line of the ping runner for ``targets`` (run inside a namespace).

    The runner is started isolated from the caller's folder and environment
    (:func:`qoslab.children.qoslab_argv`); ``path`` should be absolute (it runs in ``/``).

    >>> ping_argv([PingTarget("a", "10.71.0.2", 0)], interval=0.1, count=5, path="/r.json.gz",
    ...           python="python3")[-8:]
    ['-t', 'a,10.71.0.2,0x00', '-i', '0.1', '-c', '5', '-w', '/r.json.gz']
    """
    argv = qoslab_argv("ping", "--no-plot", "-q", "--no-progress", python=python)
    for t in targets:
        argv += ["-t", t.spec()]
    argv += ["-i", f"{interval:g}", "-c", str(int(count))]
    if timeout is not None:
        argv += ["-W", f"{timeout:g}"]
    argv += ["-w", str(path)]
    return argv


class PingProcess:
    """A running ping-runner process; :meth:`result` waits for it and returns its RUN.

    Parameters
    ----------
    ns
        Namespace to ping from.
    targets
        Streams.
    interval, count, timeout
        As ``qoslab ping -i/-c/-W``.
    path
        Where the runner writes its RUN file.
    """

    def __init__(self, ns: Namespace, targets: Iterable[PingTarget], *, interval: float,
                 count: int, path: str | Path, timeout: float | None = None) -> None:
        self.targets = list(targets)
        self.path = Path(path).resolve()
        self.interval, self.count, self.timeout = interval, count, timeout
        self.argv = ping_argv(self.targets, interval=interval, count=count, path=self.path,
                              timeout=timeout)
        self.process = LabProcess(ns, self.argv, f"qoslab ping in {ns.role}")
        self._follower: threading.Thread | None = None
        self._follow_error: OSError | None = None

    def follow(self, journal, reshape: Callable[[dict, dict], dict],
               poll: float = FOLLOW_POLL) -> None:
        """Copy every probe the runner journals into ``journal`` (the experiment's own) as it
        appears, through ``reshape(row, runner_meta)`` (e.g. onto the experiment's clock), so
        a run killed with SIGKILL keeps its probes at its ``-w`` path. The copy trails the
        runner by at most ``poll`` seconds (what such a kill can lose, besides probes in
        flight). If ``journal`` cannot be written (disk full), the runner is stopped at once
        and :meth:`result` raises that error; the journal keeps what was written. Call after
        :meth:`wait_started`."""
        partial = self.path.with_name(self.path.name + ".partial")

        def tail() -> None:
            try:
                fh = open(partial, encoding="utf-8")  # noqa: SIM115 - read while it grows
            except OSError:
                return
            meta: dict = {}
            pending = ""
            with fh:
                while True:
                    running = self.process.proc.poll() is None
                    chunk = fh.read()
                    pending += chunk
                    *lines, pending = pending.split("\n")
                    try:
                        for line in lines:
                            _forward(line, journal, reshape, meta)
                    except OSError as exc:  # OutputError included: disk full, I/O error
                        self._follow_error = exc
                        self.process.proc.send_signal(signal.SIGINT)  # ends it as Ctrl-C does
                        return
                    if not running and not chunk:
                        return
                    if not chunk:
                        time.sleep(poll)

        self._follower = threading.Thread(target=tail, daemon=True, name="qoslab-ping-follow")
        self._follower.start()

    def wait_started(self, timeout: float = 30.0) -> float:
        """Block until the runner has opened its journal (it is about to send the first
        probe); return ``time.monotonic()`` then."""
        partial = self.path.with_name(self.path.name + ".partial")
        deadline = time.monotonic() + timeout
        while not (partial.exists() or self.path.exists()):
            if self.process.proc.poll() is not None or time.monotonic() > deadline:
                raise LabCommandError(f"qoslab ping did not start: {display_argv(self.argv)}: "
                                      f"{self.process.proc.returncode}")
            time.sleep(0.02)
        return time.monotonic()

    def expected_seconds(self) -> float:
        """How long the runner should take: ``count × interval`` plus the reply timeout."""
        return self.count * self.interval + (self.timeout or 2.0)

    def result(self, *, t0_unix: float | None = None, grace: float = 30.0) -> Run:
        """Wait for the runner, load its RUN, and put ``t_sent`` on the bed's clock.

        ``t0_unix`` is the bed's start (``Testbed.t0_unix``); the offset applied is recorded
        as ``meta["ping_offset_s"]``.
        """
        code = self.process.wait(timeout=self.expected_seconds() + grace)
        if self._follower is not None:
            self._follower.join(timeout=10)
        if self._follow_error is not None:
            raise self._follow_error
        if not self.path.exists():
            partial = self.path.with_name(self.path.name + ".partial")
            if partial.exists():
                run = load(partial)
            else:
                raise LabCommandError(
                    f"qoslab ping exited with {code} and wrote no RUN file: "
                    f"{display_argv(self.argv)}: {self.process.stderr.strip()[-400:]}")
        else:
            run = load(self.path)
        run = on_bed_clock(run, t0_unix)
        run.meta["ping_command"] = display_argv(self.argv).split(" ")
        run.meta["ping_exit_status"] = code
        return run


def _forward(line: str, journal, reshape, meta: dict) -> None:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return
    if not isinstance(rec, dict):
        return
    if "format" in rec:
        meta.update(rec.get("meta") or {})
    elif "meta" in rec and isinstance(rec["meta"], dict):
        meta.update(rec["meta"])
    elif isinstance(rec.get("probe"), dict):
        journal.add_probe(**reshape(rec["probe"], meta))
    elif isinstance(rec.get("probe_update"), dict):
        journal.update_probe(**reshape(rec["probe_update"], meta))


def on_bed_clock(run: Run, t0_unix: float | None) -> Run:
    """Shift a ping RUN's ``t_sent`` from its own start (``meta["start_time"]``) onto a bed's
    clock (seconds since ``t0_unix``); record the offset as ``meta["ping_offset_s"]``.

    >>> r = Run(probes={"stream": ["s"], "host": ["h"], "tos": [0], "size": [56], "seq": [1],
    ...                 "t_sent": [0.5], "rtt_ms": [1.0], "status": ["ok"], "ttl": [64]},
    ...         meta={"start_time": "2026-01-01T00:00:10+00:00"})
    >>> t0 = dt.datetime(2026, 1, 1, 0, 0, 8, tzinfo=dt.UTC).timestamp()
    >>> on_bed_clock(r, t0).probes["t_sent"].tolist()
    [2.5]
    """
    offset = 0.0
    start = run.meta.get("start_time")
    if t0_unix is not None and start:
        try:
            offset = dt.datetime.fromisoformat(str(start)).timestamp() - t0_unix
        except ValueError:
            offset = 0.0
    probes = run.probes.copy()
    probes["t_sent"] = probes["t_sent"] + offset
    return Run(probes, run.events.iloc[0:0], {**run.meta, "ping_offset_s": offset})
