"""Runtime sources: the objects that put packets into the root qdisc during a run.

Each source owns one flow (``fid``) and receives callbacks from the engine:
``on_timer(t, token)``, ``on_sent(pkt, t)`` (the link took ``pkt``; its last bit leaves at
``t``, which may be later than the engine's current time),
``on_ack(pkt, t)`` (its reply / ACK came back), ``on_drop(pkt, t)`` (a qdisc dropped it),
``on_loss(pkt, t)`` (the sender learns of that drop). The return path is not congested: a
reply or ACK arrives ``base_rtt`` after the request left the link.

Ping streams measure as qoslab's ping runner (:mod:`qoslab.ping`) does on the kernel and
userspace backends: one :class:`PingRunner` waits ``timeout`` seconds for each probe's answer
(``ok``), records it ``lost`` when none came by then, turns it ``late`` when the answer comes
after its timeout but while the runner still waits for others, and is done once the run's
sending time is over and every probe has its answer or timed out — an answer after that is
never seen (``lost``).
"""

from __future__ import annotations

import math
import random
from heapq import heappush

from ..qdiscs import new_packet
from .engine import ACK, LOSS, TIMER
from .traffic import BulkFlow, PingFlood, PingStream, UdpFlood

__all__ = ["PingRunner", "PingSource", "FloodSource", "CbrSource", "BulkSource",
           "make_source", "PENDING", "OK", "LOST", "LATE", "STATUS"]

#: What a probe is waiting for, or what became of it (its PROBES status: ``STATUS[state]``).
PENDING, OK, LOST, LATE = range(4)
STATUS = ("lost", "ok", "lost", "late")  # a probe still pending when the run ends: lost


class _Source:
    __slots__ = ("spec", "fid", "size", "base_rtt", "engine", "enqueue", "t_start", "t_stop",
                 "sent", "dropped", "delivered", "heap", "seq")

    def __init__(self, spec, fid: int, size: int, base_rtt: float, engine, enqueue) -> None:
        self.spec = spec
        self.fid = fid
        self.size = size
        self.base_rtt = base_rtt
        self.engine = engine
        self.heap = engine.heap
        self.seq = engine.seq
        self.enqueue = enqueue
        self.t_start = float(spec.start)
        self.t_stop = math.inf if spec.stop is None else float(spec.stop)
        self.sent = 0
        self.dropped = 0
        self.delivered = 0

    def start(self) -> None:
        self.engine.push(self.t_start, TIMER, self, 0)

    def on_sent(self, pkt, t: float) -> None:
        self.delivered += 1

    def on_drop(self, pkt, t: float) -> None:
        self.dropped += 1

    def on_ack(self, pkt, t: float) -> None:  # pragma: no cover - overridden where used
        pass

    def on_loss(self, pkt, t: float) -> None:  # pragma: no cover - overridden where used
        pass


class PingRunner:
    """The ping runner's bookkeeping over every ping stream of a run (see the module
    docstring): how many streams still send, how many probes wait for an answer, and when
    it was done (``done_at``), at which moment ``on_done(t)`` is called once.

    The run's own sending time counts as one more stream (:meth:`start` / :meth:`stop_sending`
    at its end), so the runner is never done before the run's duration.
    """

    __slots__ = ("timeout", "sending", "pending", "done_at", "on_done")

    def __init__(self, timeout: float, on_done) -> None:
        self.timeout = float(timeout)
        self.sending = 0
        self.pending = 0
        self.done_at: float | None = None
        self.on_done = on_done

    def start(self) -> None:
        """One more stream sends."""
        self.sending += 1

    def stop_sending(self, t: float) -> None:
        """A stream sent its last probe."""
        self.sending -= 1
        self._check(t)

    def resolved(self, t: float) -> None:
        """A probe got its answer or timed out."""
        self.pending -= 1
        self._check(t)

    def _check(self, t: float) -> None:
        if self.sending == 0 and self.pending == 0 and self.done_at is None:
            self.done_at = t
            self.on_done(t)


class PingSource(_Source):
    """A ping stream: one request per interval; its reply reaches the runner ``base_rtt`` after
    the request left the link (``ok``), or not before the timeout (``lost``, later ``late``)."""

    __slots__ = ("interval", "t_sent", "rtt_ms", "state", "runner")

    def __init__(self, spec: PingStream, *args, runner: PingRunner) -> None:
        super().__init__(spec, *args)
        self.interval = float(spec.interval)
        self.t_sent: list[float] = []
        self.rtt_ms: list[float] = []
        self.state: list[int] = []
        self.runner = runner

    def start(self) -> None:
        self.runner.start()
        super().start()

    def on_timer(self, t: float, token) -> None:
        if token:  # probe token - 1 timed out
            seq = token - 1
            if self.state[seq] == PENDING:
                self.state[seq] = LOST
                self.runner.resolved(t)
            return
        if t >= self.t_stop:
            self.runner.stop_sending(t)
            return
        seq = self.sent
        self.sent = seq + 1
        self.t_sent.append(t)
        self.rtt_ms.append(math.nan)
        self.state.append(PENDING)
        self.runner.pending += 1
        self.enqueue(new_packet(self.fid, self.size, t, seq, self), t)
        self.engine.push(t + self.runner.timeout, TIMER, self, seq + 1)
        self.engine.push(t + self.interval, TIMER, self, 0)

    def on_sent(self, pkt, t: float) -> None:
        self.delivered += 1
        self.engine.push(t + self.base_rtt, ACK, self, pkt)

    def on_ack(self, pkt, t: float) -> None:
        seq = pkt[3]
        state = self.state[seq]
        if state == PENDING:
            self.state[seq] = OK
            self.rtt_ms[seq] = (t - pkt[2]) * 1000.0
            self.runner.resolved(t)
        elif state == LOST and self.runner.done_at is None:  # after its timeout: late
            self.state[seq] = LATE
            self.rtt_ms[seq] = (t - pkt[2]) * 1000.0


class FloodSource(_Source):
    """``ping -f``: send on every reply, and whenever ``min_interval`` passed without a send."""

    __slots__ = ("min_interval",)

    def __init__(self, spec: PingFlood, *args) -> None:
        super().__init__(spec, *args)
        self.min_interval = float(spec.min_interval)

    def _send(self, t: float) -> None:
        seq = self.sent
        self.sent = seq + 1
        self.enqueue(new_packet(self.fid, self.size, t, seq, self), t)
        self.engine.push(t + self.min_interval, TIMER, self, seq + 1)

    def on_timer(self, t: float, token) -> None:
        if t < self.t_stop and token == self.sent:
            self._send(t)

    def on_sent(self, pkt, t: float) -> None:
        self.delivered += 1
        self.engine.push(t + self.base_rtt, ACK, self, pkt)

    def on_ack(self, pkt, t: float) -> None:
        if t < self.t_stop:
            self._send(t)


class CbrSource(_Source):
    """Constant bit rate: ``prefill`` packets at once, then packet ``k`` at
    ``start + (k + u_k × jitter) × gap`` (see :class:`~qoslab.sim.traffic.UdpFlood`)."""

    __slots__ = ("gap", "prefill", "jitter", "rng", "paced")

    def __init__(self, spec: UdpFlood, *args) -> None:
        super().__init__(spec, *args)
        self.gap = self.size * 8.0 / float(spec.rate)
        self.prefill = int(spec.prefill)
        self.jitter = float(spec.jitter)
        self.rng = random.Random(self.fid)  # deterministic: one stream per flow
        self.paced = 0

    def start(self) -> None:
        self.engine.push(self.t_start + self.rng.random() * self.jitter * self.gap, TIMER,
                         self, 0)

    def on_timer(self, t: float, token) -> None:
        if t >= self.t_stop:
            return
        for _ in range(1 + self.prefill):
            seq = self.sent
            self.sent = seq + 1
            self.enqueue(new_packet(self.fid, self.size, t, seq, self), t)
        self.prefill = 0
        self.paced += 1
        due = self.t_start + (self.paced + self.rng.random() * self.jitter) * self.gap
        self.engine.push(max(due, t), TIMER, self, 0)


class BulkSource(_Source):
    """A greedy Reno-like sender clocked by ACKs (see :class:`~qoslab.sim.traffic.BulkFlow`)."""

    __slots__ = ("cwnd", "ssthresh", "inflight", "srtt", "recover_until", "ecn", "max_cwnd",
                 "reductions", "ce_marks")

    def __init__(self, spec: BulkFlow, *args) -> None:
        super().__init__(spec, *args)
        self.cwnd = float(spec.init_cwnd)
        self.ssthresh = math.inf
        self.inflight = 0
        self.srtt = self.base_rtt
        self.recover_until = -math.inf
        self.ecn = bool(spec.ecn)
        self.max_cwnd = float(spec.max_cwnd)
        self.reductions = 0
        self.ce_marks = 0

    def on_timer(self, t: float, token) -> None:
        self._fill(t)

    def _fill(self, t: float) -> None:
        if t >= self.t_stop:
            return
        n = int(self.cwnd) - self.inflight
        if n <= 0:
            return
        enqueue = self.enqueue
        fid, size = self.fid, self.size
        seq = self.sent
        self.inflight += n
        for s in range(seq, seq + n):
            enqueue(new_packet(fid, size, t, s, self), t)
        self.sent = seq + n

    def on_sent(self, pkt, t: float) -> None:
        self.delivered += 1
        heappush(self.heap, (t + self.base_rtt, next(self.seq), ACK, self, pkt))

    def on_ack(self, pkt, t: float) -> None:
        self.inflight -= 1
        self.srtt += ((t - pkt[2]) - self.srtt) * 0.125
        cwnd = self.cwnd
        if pkt[4] and self.ecn:
            self.ce_marks += 1
            self._reduce(t)
        elif cwnd < self.ssthresh:
            self.cwnd = cwnd + 1.0
        elif cwnd < self.max_cwnd:
            self.cwnd = cwnd + 1.0 / cwnd
        n = int(self.cwnd) - self.inflight
        if n == 1 and t < self.t_stop:  # the common case: one ACK releases one segment
            seq = self.sent
            self.sent = seq + 1
            self.inflight += 1
            self.enqueue(new_packet(self.fid, self.size, t, seq, self), t)
        elif n > 0:
            self._fill(t)

    def on_drop(self, pkt, t: float) -> None:
        self.dropped += 1
        self.engine.push(t + self.srtt, LOSS, self, pkt)

    def on_loss(self, pkt, t: float) -> None:
        self.inflight -= 1
        self._reduce(t)
        self._fill(t)

    def _reduce(self, t: float) -> None:
        if t >= self.recover_until:
            self.reductions += 1
            self.ssthresh = max(self.cwnd * 0.5, 2.0)
            self.cwnd = self.ssthresh
            self.recover_until = t + self.srtt


_KINDS = {PingStream: PingSource, PingFlood: FloodSource, UdpFlood: CbrSource,
          BulkFlow: BulkSource}


def make_source(spec, fid: int, size: int, base_rtt: float, engine, enqueue, *,
                runner: PingRunner | None = None) -> _Source:
    """Return the runtime source for a traffic spec (a ping stream reports to ``runner``)."""
    if isinstance(spec, PingStream):
        if runner is None:
            raise ValueError("make_source: a ping stream needs its PingRunner")
        return PingSource(spec, fid, size, base_rtt, engine, enqueue, runner=runner)
    return _KINDS[type(spec)](spec, fid, size, base_rtt, engine, enqueue)
