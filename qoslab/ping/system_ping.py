"""The system-``ping`` back-end: one iputils ``ping`` per stream, its output parsed.

This is the fallback when no socket can be opened (and the reference the tests compare the
socket engine with). Every process runs isolated like every child of qoslab
(:mod:`qoslab.children`: working directory ``/``, a minimal environment with ``LC_ALL=C`` —
locales change the decimal separator), with ``-n`` (no reverse lookups) and ``-D`` (a receive timestamp on every line, so
``t_sent`` = timestamp - RTT). Both spellings of the sequence field are accepted:
``icmp_seq=`` (iputils since 2011) and ``icmp_req=`` (iputils s20101006 to s20121221).
Sequence numbers between 1 and the number transmitted that never got an answer become ``lost``
rows. iputils does not say how late a probe left, so ``send_late_ms`` is NaN here.
"""

from __future__ import annotations

import asyncio
import math
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field

from ..children import find_program, isolation
from ..errors import BackendUnavailableError, ConfigError
from .recorder import ProbeRecorder
from .targets import Stream

__all__ = ["find_ping", "parse_line", "PingLine", "SystemPing", "ping_version"]

_TS = r"(?:\[(?P<ts>\d+(?:\.\d+)?)\]\s+)?"
_REPLY = re.compile(_TS + r"(?P<bytes>\d+) bytes from (?P<src>.+?):? "
                    r"icmp_(?:seq|req)=(?P<seq>\d+)(?: ident=\d+)?"
                    r"(?: ttl=(?P<ttl>\d+))?(?: time=(?P<time>[\d.]+) ?ms)?(?P<rest>.*)$")
_ERROR = re.compile(_TS + r"From (?P<src>\S+?)(?: \(\S+\))?:? icmp_(?:seq|req)=(?P<seq>\d+) "
                    r"(?P<what>.+)$")
_SUMMARY = re.compile(r"(?P<tx>\d+) packets transmitted, (?P<rx>\d+) (?:packets )?received")


@dataclass
class PingLine:
    """What one line of iputils ``ping`` output said."""

    kind: str  # "reply", "duplicate", "unreachable", "time_exceeded", "error", "summary"
    seq: int = 0
    ts: float | None = None  # epoch seconds of the line (-D)
    rtt_ms: float = math.nan
    ttl: int | None = None
    detail: str = ""
    transmitted: int = 0
    extra: dict = field(default_factory=dict)


def parse_line(line: str) -> PingLine | None:
    """Parse one line of iputils ``ping`` output (``LC_ALL=C``); ``None`` for other lines.

    Examples
    --------
    >>> parse_line("[1700000000.5] 64 bytes from 10.0.0.2: icmp_seq=3 ttl=63 time=1.25 ms")
    PingLine(kind='reply', seq=3, ts=1700000000.5, rtt_ms=1.25, ttl=63, detail='', \
transmitted=0, extra={})
    >>> parse_line("64 bytes from ::1: icmp_req=2 ttl=64 time=0.04 ms (DUP!)").kind
    'duplicate'
    >>> parse_line("From 10.0.0.1 icmp_seq=7 Destination Host Unreachable").kind
    'unreachable'
    >>> parse_line("5 packets transmitted, 4 received, 20% packet loss, time 4005ms").transmitted
    5
    """
    line = line.rstrip("\n")
    m = _REPLY.match(line)
    if m:
        rest = m["rest"]
        kind = "duplicate" if "DUP!" in rest else "reply"
        detail = "truncated reply" if "truncated" in rest else ""
        return PingLine(kind, int(m["seq"]), float(m["ts"]) if m["ts"] else None,
                        float(m["time"]) if m["time"] else math.nan,
                        int(m["ttl"]) if m["ttl"] else None, detail)
    m = _ERROR.match(line)
    if m:
        what = m["what"].strip()
        low = what.lower()
        if "unreachable" in low or "prohibited" in low:
            kind = "unreachable"
        elif "exceeded" in low:
            kind = "time_exceeded"
        else:
            kind = "error"
        return PingLine(kind, int(m["seq"]), float(m["ts"]) if m["ts"] else None,
                        detail=f"{what} from {m['src']}")
    m = _SUMMARY.search(line)
    if m:
        return PingLine("summary", transmitted=int(m["tx"]))
    return None


def find_ping() -> str:
    """Return the absolute path of iputils ``ping``.

    Only the absolute folders of ``PATH`` are searched: an empty entry, ``.`` or any relative
    folder would run a ``ping`` planted in whatever folder qoslab was started from.

    Raises
    ------
    BackendUnavailableError
        When there is no ``ping`` on ``PATH`` (Debian package ``iputils-ping``).
    """
    path = find_program("ping")
    if path is None:
        raise BackendUnavailableError("system ping backend: no 'ping' program on PATH "
                                      "(install the Debian package iputils-ping)")
    return path


def ping_version(binary: str) -> str:
    """The ``ping -V`` line; raise :class:`BackendUnavailableError` unless it is iputils."""
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=5,
                             **isolation())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailableError(f"system ping backend: cannot run {binary}: {exc}") \
            from None
    text = (out.stdout + out.stderr).strip()
    if "iputils" not in text:
        raise BackendUnavailableError(f"system ping backend: {binary} is not iputils ping "
                                      f"({text.splitlines()[0] if text else 'no version'})")
    return text.splitlines()[0]


@dataclass
class _Proc:
    stream: Stream
    proc: asyncio.subprocess.Process | None = None
    seen: set = field(default_factory=set)
    transmitted: int = 0
    stderr: str = ""
    t_first: float | None = None


class SystemPing:
    """Run one iputils ``ping`` per stream concurrently and record what they print."""

    def __init__(self, streams: list[Stream], interval: float, count: int | None,
                 deadline: float | None, timeout: float, recorder: ProbeRecorder,
                 binary: str | None = None) -> None:
        self.binary = binary or find_ping()
        self.version = ping_version(self.binary)
        self.streams, self.interval, self.count = streams, interval, count
        self.deadline, self.timeout, self.recorder = deadline, timeout, recorder
        self.start_real = 0
        self.stop_reason: str | None = None
        self._procs = [_Proc(s) for s in streams]

    def command(self, s: Stream) -> list[str]:
        """The argument list for one stream."""
        cmd = [self.binary, "-n", "-D", f"-{s.ip_version}", "-i", f"{self.interval:g}",
               "-Q", str(s.tos), "-s", str(s.size), "-W", f"{max(self.timeout, 0.001):g}"]
        if self.count is not None:
            cmd += ["-c", str(self.count)]
        if self.deadline is not None:
            cmd += ["-w", f"{max(1, math.ceil(self.deadline))}"]
        return cmd + [s.address]

    def stop(self, reason: str = "stopped") -> None:
        """Ask every ``ping`` to finish (SIGINT: they print their summary and exit)."""
        self.stop_reason = self.stop_reason or reason
        self._interrupt_children()

    def _interrupt_children(self) -> None:
        for p in self._procs:
            if p.proc is not None and p.proc.returncode is None:
                try:
                    p.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass

    abort = stop

    async def run(self) -> None:
        self.start_real = time.time_ns()
        for p in self._procs:
            p.proc = await asyncio.create_subprocess_exec(
                *self.command(p.stream), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, **isolation())
        flusher = asyncio.ensure_future(self._flush_periodically())
        try:
            await asyncio.gather(*(self._follow(p) for p in self._procs))
        finally:
            flusher.cancel()
            self._interrupt_children()
            self.recorder.flush()
        failed = [p for p in self._procs if p.proc.returncode not in (0, 1) and not p.seen
                  and not p.transmitted and self.stop_reason is None]
        for p in failed:
            lines = p.stderr.strip().splitlines()
            text = lines[-1] if lines else f"exit status {p.proc.returncode}"
            if "interval" in text or "flood" in text:
                raise ConfigError(f"system ping: {text}")
            if len(failed) == len(self._procs) and "connect" not in text:
                raise BackendUnavailableError(
                    f"system ping ({' '.join(self.command(p.stream))}): {text}")
            low = text.lower()
            self._record(p, PingLine("unreachable" if "unreachable" in low or "no route" in low
                                     else "error", 1, detail=f"ping could not start: {text}"))
        for p in self._procs:
            self._record_lost(p)
        self.recorder.flush()

    async def _follow(self, p: _Proc) -> None:
        stderr_task = asyncio.ensure_future(p.proc.stderr.read())
        async for raw in p.proc.stdout:
            parsed = parse_line(raw.decode("utf-8", "replace"))
            if parsed is not None:
                self._record(p, parsed)
        p.stderr = (await stderr_task).decode("utf-8", "replace")
        await p.proc.wait()

    def _t_sent(self, p: _Proc, parsed: PingLine) -> float:
        if parsed.ts is None:
            return (parsed.seq - 1) * self.interval
        rtt = 0.0 if math.isnan(parsed.rtt_ms) else parsed.rtt_ms / 1e3
        t = parsed.ts - rtt - self.start_real / 1e9
        if p.t_first is None and parsed.seq == 1:
            p.t_first = t
        return t

    def _record(self, p: _Proc, parsed: PingLine) -> None:
        s = p.stream
        if parsed.kind == "summary":
            p.transmitted = parsed.transmitted
            return
        row = {"stream": s.label, "host": s.host, "tos": s.tos, "size": s.size,
               "seq": parsed.seq, "t_sent": self._t_sent(p, parsed), "rtt_ms": parsed.rtt_ms,
               "status": "ok" if parsed.kind == "reply" else parsed.kind, "ttl": parsed.ttl,
               "send_late_ms": math.nan, "reordered": False, "detail": parsed.detail or None}
        if parsed.kind == "duplicate":
            self.recorder.add(row)
            return
        if parsed.seq in p.seen:
            return
        p.seen.add(parsed.seq)
        if parsed.kind == "reply":
            row["reordered"] = bool(p.seen) and parsed.seq < max(p.seen)
        else:
            row["rtt_ms"] = math.nan
        self.recorder.add(row)

    def _record_lost(self, p: _Proc) -> None:
        s = p.stream
        sent = p.transmitted or (max(p.seen) if p.seen else 0)
        first = p.t_first if p.t_first is not None else 0.0
        for seq in range(1, sent + 1):
            if seq not in p.seen:
                self.recorder.add({"stream": s.label, "host": s.host, "tos": s.tos,
                                   "size": s.size, "seq": seq,
                                   "t_sent": first + (seq - 1) * self.interval,
                                   "rtt_ms": math.nan, "status": "lost", "ttl": None,
                                   "send_late_ms": math.nan, "reordered": False,
                                   "detail": "no answer (t_sent estimated from the interval)"})

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.recorder.flush()
