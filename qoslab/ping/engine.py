"""The socket probe engine: many streams from one asyncio loop, isochronous sends.

Stream *i* of *N* sends probe *k* at ``start + i*interval/N + k*interval`` (streams are
staggered evenly over one interval so they never queue behind one another in the sender). The
schedule is absolute, so a late wake-up never shifts the probes after it; every probe records
how late it actually left (``send_late_ms``). A probe leaves even when it is late, so the count
and the sequence numbers stay those of the schedule.

Outcomes: ``ok`` with the RTT from the kernel receive timestamp; ``lost`` when nothing came
back within ``timeout`` (an answer arriving later turns the row into ``late`` with its RTT);
``duplicate`` rows for repeated answers; ``unreachable`` / ``time_exceeded`` / ``error`` for ICMP
errors and for sends the kernel refused, with what happened in ``detail``; ``reordered`` marks
answers that arrived after an answer to a later probe of the same stream.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import heapq
import os
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .clock import make_timer
from .recorder import ProbeRecorder
from .sockets import ProbeSocket, Reply
from .targets import Stream

__all__ = ["SocketEngine", "MIN_INTERVAL", "RT_PRIORITY"]

#: ``SCHED_FIFO`` priority of the probe loop when real-time scheduling is allowed (low: above
#: every normal process, below the kernel's own real-time threads).
RT_PRIORITY = 10

#: Shortest per-stream interval the socket engine accepts, per socket kind (seconds).
#: Datagram sockets are the unprivileged path and keep iputils' 2 ms user limit.
MIN_INTERVAL = {"raw": 0.0002, "dgram": 0.002}
_FLUSH_EVERY = 0.25  # seconds between progress updates (the journal is written per probe)
_SEND_SLACK_NS = 20_000  # send probes due within 20 us in the same wake-up


@dataclass
class _Probe:
    k: int
    tx_ns: int  # CLOCK_REALTIME just before sendto
    tx_mono: int
    t_sent: float
    late_ms: float
    state: str = "pending"  # pending | answered | expired | failed


@dataclass
class _StreamState:
    stream: Stream
    sock: ProbeSocket
    offset_ns: int
    sent: int = 0
    probes: dict[int, _Probe] = field(default_factory=dict)  # by 16-bit ICMP seq
    highest_answered: int = -1


class SocketEngine:
    """Run streams over :class:`~qoslab.ping.sockets.ProbeSocket` sockets.

    Parameters
    ----------
    streams
        The matrix from :func:`~qoslab.ping.targets.build_streams`.
    kind
        ``"raw"`` or ``"dgram"``.
    interval, count, deadline, timeout
        Seconds between probes of a stream; probes per stream (``None``: until the deadline
        or a stop); seconds after which no probe is sent; seconds to wait for an answer.
    recorder
        Receives every row.
    realtime
        Run the loop under ``SCHED_FIFO`` (priority :data:`RT_PRIORITY`) so other busy
        processes cannot delay a send: ``None`` when permitted, ``True`` required, ``False``
        never. What was granted is in :attr:`scheduling`.
    """

    def __init__(self, streams: list[Stream], kind: str, interval: float, count: int | None,
                 deadline: float | None, timeout: float, recorder: ProbeRecorder,
                 realtime: bool | None = None) -> None:
        self.streams, self.kind = streams, kind
        self.realtime = realtime
        self.scheduling = ""
        self.interval_ns = int(round(interval * 1e9))
        self.count, self.deadline, self.timeout_ns = count, deadline, int(timeout * 1e9)
        self.recorder = recorder
        self.start_mono = 0
        self.start_real = 0
        self.stop_reason: str | None = None
        self.timer_kind = ""
        self._states: list[_StreamState] = []
        self._heap: list[tuple[int, int]] = []  # (due monotonic ns, stream index)
        self._expiry: deque[tuple[int, int, int]] = deque()  # (expiry ns, stream, seq16)
        self._stopping = False
        self._pending = 0
        self._nonce = os.urandom(8)
        self._finished: asyncio.Event | None = None
        self._fatal: BaseException | None = None

    # ----------------------------------------------------------------- public
    def stop(self, reason: str = "stopped") -> None:
        """Stop sending; outstanding probes still get their answer (or time out)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopping = True
        self._heap.clear()
        self._check_done()

    def abort(self) -> None:
        """Stop now: outstanding probes are recorded as lost."""
        self.stop(self.stop_reason or "aborted")
        now = time.monotonic_ns()
        while self._expiry:
            _, si, seq16 = self._expiry.popleft()
            self._expire(self._states[si], seq16, now, "run stopped before an answer")
        self._check_done()

    async def run(self) -> None:
        """Open the sockets, send and receive until every probe has an outcome."""
        loop = asyncio.get_running_loop()
        self._finished = asyncio.Event()
        restore = self._enter_realtime()
        gc.freeze()  # the heap built so far is never scanned again during the run
        previous = loop.get_exception_handler()
        loop.set_exception_handler(self._on_callback_error)
        try:
            await self._run(loop)
        finally:
            loop.set_exception_handler(previous)
            gc.unfreeze()
            restore()
        if self._fatal is not None:
            raise self._fatal

    def _on_callback_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """An error in a send/receive callback (e.g. the journal's disk is full) ends the run
        with that error instead of being logged while the loop goes on."""
        exc = context.get("exception")
        if exc is None:
            loop.default_exception_handler(context)
            return
        if self._fatal is None:
            self._fatal = exc
        self._heap.clear()
        self._stopping = True
        if self._finished is not None:
            self._finished.set()

    def _enter_realtime(self):
        """Switch this thread to SCHED_FIFO if wanted and allowed; return the undo."""
        def nothing() -> None:
            return None

        if self.realtime is False or not hasattr(os, "sched_setscheduler"):
            self.scheduling = "normal (real-time scheduling not requested)"
            return nothing
        try:
            policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        except OSError as exc:
            if self.realtime:
                raise ConfigError(f"real-time scheduling refused: {exc.strerror} "
                                  "(needs root or CAP_SYS_NICE)") from None
            self.scheduling = f"normal (SCHED_FIFO refused: {exc.strerror})"
            return nothing
        self.scheduling = f"SCHED_FIFO priority {RT_PRIORITY}"

        def restore() -> None:
            try:
                os.sched_setscheduler(0, policy, param)
            except OSError:
                pass

        return restore

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        n = len(self.streams)
        base_ident = (os.getpid() * 7919) & 0xFFFF
        try:
            for i, s in enumerate(self.streams):
                sock = ProbeSocket(self.kind, s.family, s.tos, ident=(base_ident + i) & 0xFFFF)
                st = _StreamState(s, sock, offset_ns=(i * self.interval_ns) // n)
                self._states.append(st)
                loop.add_reader(sock.fileno(), self._readable, i)
            timer = make_timer(loop, self._tick)
            self.timer_kind = type(timer).__name__
            self._timer = timer
            self.start_mono = time.monotonic_ns() + 2_000_000  # 2 ms to settle
            self.start_real = time.time_ns() + (self.start_mono - time.monotonic_ns())
            if self.count != 0:
                for i, st in enumerate(self._states):
                    heapq.heappush(self._heap, (self.start_mono + st.offset_ns, i))
            self._rearm()
            flusher = asyncio.ensure_future(self._flush_periodically())
            try:
                self._check_done()
                await self._finished.wait()
            finally:
                flusher.cancel()
                timer.close()
        finally:
            for st in self._states:
                try:
                    loop.remove_reader(st.sock.fileno())
                except (ValueError, OSError):
                    pass
                st.sock.close()
            self.recorder.flush()

    # ----------------------------------------------------------------- sending
    def _deadline_ns(self) -> int | None:
        if self.deadline is None:
            return None
        return self.start_mono + int(self.deadline * 1e9)

    def _tick(self) -> None:
        now = time.monotonic_ns()
        limit = self._deadline_ns()
        heap = self._heap
        while heap and heap[0][0] <= now + _SEND_SLACK_NS:
            due, i = heapq.heappop(heap)
            if limit is not None and due >= limit:
                heap.clear()
                self.stop_reason = self.stop_reason or "deadline"
                break
            st = self._states[i]
            self._send(i, st, due)
            if self.count is None or st.sent < self.count:
                heapq.heappush(heap, (self.start_mono + st.offset_ns
                                      + st.sent * self.interval_ns, i))
            now = time.monotonic_ns()
        self._expire_due(now)
        self._rearm()
        self._check_done()

    def _send(self, i: int, st: _StreamState, due: int) -> None:
        k = st.sent
        st.sent += 1
        seq16 = (k + 1) & 0xFFFF
        s = st.stream
        payload = _payload(s.size, k, self._nonce)
        old = st.probes.get(seq16)
        if old is not None and old.state == "pending":  # 65536 probes in flight: give up on it
            self._expire(st, seq16, time.monotonic_ns(), "sequence number wrapped")
        try:
            tx_ns = st.sock.send(s.address, seq16, payload)
        except OSError as exc:
            mono = time.monotonic_ns()
            late = (mono - due) / 1e6
            unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL)
            st.probes[seq16] = _Probe(k, time.time_ns(), mono, (mono - self.start_mono) / 1e9,
                                      late, state="failed")
            self.recorder.add(self._row(st, k, (mono - self.start_mono) / 1e9, late,
                                        "unreachable" if unreachable else "error",
                                        detail=f"send failed: {exc.strerror or exc}"))
            return
        mono = time.monotonic_ns()
        # the send instant is the clock read before sendto, on the monotonic scale
        mono_tx = mono - max(0, time.time_ns() - tx_ns)
        late = (mono_tx - due) / 1e6
        st.probes[seq16] = _Probe(k, tx_ns, mono_tx, (mono_tx - self.start_mono) / 1e9, late)
        self._expiry.append((mono_tx + self.timeout_ns, i, seq16))
        self._pending += 1

    def _rearm(self) -> None:
        nxt = []
        if self._heap:
            nxt.append(self._heap[0][0])
        if self._expiry:
            nxt.append(self._expiry[0][0])
        if nxt:
            self._timer.arm(min(nxt))

    # ---------------------------------------------------------------- receiving
    def _readable(self, i: int) -> None:
        st = self._states[i]
        for rep in st.sock.receive():
            self._answer(st, rep)
        self._check_done()

    def _answer(self, st: _StreamState, rep: Reply) -> None:
        p = st.probes.get(rep.seq)
        if p is None or p.state == "failed":
            return  # not ours, or older than the sequence window
        if rep.kind == "reply" and not _carries(rep.head, p.k, self._nonce):
            return  # an echo of another pinger that happened to use our identifier
        is_reply = rep.kind == "reply"
        rtt = (rep.rx_ns - p.tx_ns) / 1e6 if is_reply else float("nan")
        if is_reply and rtt < 0:
            rtt = 0.0
        if p.state == "pending":
            p.state = "answered"
            self._pending -= 1
            reordered = is_reply and p.k < st.highest_answered
            if is_reply:
                st.highest_answered = max(st.highest_answered, p.k)
            self.recorder.add(self._row(st, p.k, p.t_sent, p.late_ms,
                                        "ok" if is_reply else rep.kind, rtt, rep.ttl,
                                        reordered=reordered, detail=rep.detail or None))
        elif p.state == "answered":
            if is_reply:
                self.recorder.add(self._row(st, p.k, p.t_sent, p.late_ms, "duplicate", rtt,
                                            rep.ttl, detail="duplicate answer"))
        elif p.state == "expired":
            p.state = "answered"
            self.recorder.replace(self._row(
                st, p.k, p.t_sent, p.late_ms, "late" if is_reply else rep.kind, rtt, rep.ttl,
                detail=("answer after the timeout" if is_reply else rep.detail) or None))

    def _expire_due(self, now: int) -> None:
        exp = self._expiry
        while exp and exp[0][0] <= now:
            _, si, seq16 = exp.popleft()
            self._expire(self._states[si], seq16, now, None)

    def _expire(self, st: _StreamState, seq16: int, now: int, detail: str | None) -> None:
        p = st.probes.get(seq16)
        if p is None or p.state != "pending":
            return
        p.state = "expired"
        self._pending -= 1
        self.recorder.add(self._row(st, p.k, p.t_sent, p.late_ms, "lost", detail=detail))

    # ------------------------------------------------------------------ helpers
    def _row(self, st: _StreamState, k: int, t_sent: float, late_ms: float, status: str,
             rtt: float = float("nan"), ttl: int | None = None, *, reordered: bool = False,
             detail: str | None = None) -> dict:
        s = st.stream
        return {"stream": s.label, "host": s.host, "tos": s.tos, "size": s.size, "seq": k + 1,
                "t_sent": round(t_sent, 9), "rtt_ms": rtt, "status": status, "ttl": ttl,
                "send_late_ms": round(late_ms, 6), "reordered": reordered, "detail": detail}

    def _check_done(self) -> None:
        if self._finished is None or self._finished.is_set():
            return
        if self._heap and not self._stopping:
            return
        if self._pending > 0:
            return
        self._finished.set()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            self.recorder.flush()

    def send_lateness_ms(self) -> np.ndarray:
        """``send_late_ms`` of every probe sent so far."""
        return np.array([p.late_ms for st in self._states for p in st.probes.values()])


_PATTERN = bytes(j & 0xFF for j in range(65536 + 16))  # byte i holds i, as iputils fills


def _payload(size: int, k: int, nonce: bytes) -> bytes:
    """``size`` bytes: probe index (8 bytes), run nonce (8), then byte i = i (iputils' fill).

    >>> _payload(20, 1, b"ABCDEFGH").hex()
    '0000000000000001414243444546474810111213'
    """
    return (k.to_bytes(8, "big") + nonce)[:size] + _PATTERN[16:max(16, size)]


def _carries(head: bytes, k: int, nonce: bytes) -> bool:
    """Whether a reply's first payload bytes are those probe ``k`` of this run sent."""
    mine = (k.to_bytes(8, "big") + nonce)[:len(head)]
    return head == mine
