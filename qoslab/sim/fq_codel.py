"""fq_codel (``sch_fq_codel.c`` + ``codel_impl.h``): flow queues, DRR with new/old lists, CoDel.

Per flow queue, CoDel watches the sojourn time of the packet at the head: once it stayed
above ``target`` for a whole ``interval`` (and more than one MTU is queued in the qdisc), the
flow enters the dropping state and drops — or, for ECN-capable packets with ``ecn`` on, marks
CE — one packet, then the next after ``interval / sqrt(count)`` (the control law; exact
square root instead of the kernel's Newton step). Re-entering soon after leaving resumes at
the previous drop rate (``count - lastcount``). The flow index of each flow comes from
:func:`qoslab.hashing.fq_codel_index`. On overflow of ``limit`` packets, up to
``drop_batch`` packets are dropped from the head of the fattest flow (bytes), until half of
its backlog is gone.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ._qdisc import BuildContext, RuntimeQdisc

__all__ = ["FqCodel"]


@dataclass(frozen=True)
class FqCodel:
    """``tc qdisc add ... fq_codel [limit N] [flows N] [target T] [interval T] [quantum B] [ecn]``.

    Times in seconds.

    Examples
    --------
    >>> FqCodel().to_tc()
    'fq_codel limit 10240 flows 1024 target 5ms interval 100ms ecn'
    """

    limit: int = 10240
    flows: int = 1024
    target: float = 0.005
    interval: float = 0.100
    quantum: int | None = None
    ecn: bool = True
    drop_batch: int = 64
    profile: str = "5.18+"

    def __post_init__(self) -> None:
        if self.limit < 1 or self.flows < 1 or self.flows > 65536:
            raise ConfigError("fq_codel: limit must be >= 1 and flows within 1..65536")
        if not (self.target > 0 and self.interval > 0):
            raise ConfigError("fq_codel: target and interval must be > 0 seconds")

    def to_tc(self) -> str:
        s = (f"fq_codel limit {self.limit} flows {self.flows} target {self.target * 1e3:g}ms "
             f"interval {self.interval * 1e3:g}ms")
        if self.quantum:
            s += f" quantum {self.quantum}"
        return s + (" ecn" if self.ecn else " noecn")

    def build(self, ctx: BuildContext) -> _FqCodelRuntime:
        from ..hashing import fq_codel_index

        idx = np.asarray(fq_codel_index(ctx.flows, flows=self.flows, hashrnd=ctx.seeds[0],
                                        profile=self.profile), dtype=np.int64)
        return _FqCodelRuntime(self, idx.tolist(), list(ctx.ect), int(self.quantum or ctx.mtu_bytes),
                               ctx.mtu_bytes)


class _Flow:
    __slots__ = ("q", "deficit", "backlog", "listed", "count", "lastcount", "dropping",
                 "first_above", "drop_next", "idx")

    def __init__(self, idx: int) -> None:
        self.q: deque = deque()
        self.deficit = 0
        self.backlog = 0
        self.listed = False
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self.first_above = 0.0
        self.drop_next = 0.0
        self.idx = idx


class _FqCodelRuntime(RuntimeQdisc):
    __slots__ = ("spec", "flow_of", "ect", "quantum", "mtu", "flows", "new_flows", "old_flows",
                 "backlog", "target", "interval", "limit", "ecn", "drop_batch")

    def __init__(self, spec: FqCodel, flow_of: list[int], ect: list[bool], quantum: int,
                 mtu: int) -> None:
        super().__init__("fq_codel")
        self.spec = spec
        self.flow_of = flow_of
        self.ect = ect
        self.quantum = quantum
        self.mtu = mtu
        self.flows: dict[int, _Flow] = {}
        self.new_flows: deque = deque()
        self.old_flows: deque = deque()
        self.backlog = 0
        self.target = spec.target
        self.interval = spec.interval
        self.limit = spec.limit
        self.ecn = spec.ecn
        self.drop_batch = spec.drop_batch

    def enqueue(self, pkt, t: float) -> None:
        idx = self.flow_of[pkt[0]]
        if idx < 0:
            self.drop(pkt, t)
            return
        flow = self.flows.get(idx)
        if flow is None:
            flow = self.flows[idx] = _Flow(idx)
        flow.q.append(pkt)
        flow.backlog += pkt[1]
        self.backlog += pkt[1]
        if not flow.listed:
            flow.listed = True
            self.new_flows.append(flow)
            flow.deficit = self.quantum
        self.qlen += 1
        if self.qlen > self.limit:
            self._drop_fattest(t)

    def _drop_fattest(self, t: float) -> None:
        fat = max(self.flows.values(), key=lambda f: (f.backlog, -f.idx))
        threshold = fat.backlog >> 1
        dropped = 0
        for _ in range(self.drop_batch):
            if not fat.q:
                break
            pkt = fat.q.popleft()
            dropped += pkt[1]
            self._account_out(fat, pkt)
            self.drop(pkt, t)
            if dropped >= threshold:
                break

    def _account_out(self, flow: _Flow, pkt) -> None:
        flow.backlog -= pkt[1]
        self.backlog -= pkt[1]
        self.qlen -= 1

    def _pop(self, flow: _Flow):
        if not flow.q:
            return None
        pkt = flow.q.popleft()
        self._account_out(flow, pkt)
        return pkt

    def _should_drop(self, flow: _Flow, pkt, now: float) -> bool:
        if pkt is None:
            flow.first_above = 0.0
            return False
        if now - pkt[2] < self.target or self.backlog <= self.mtu:
            flow.first_above = 0.0
            return False
        if flow.first_above == 0.0:
            flow.first_above = now + self.interval
            return False
        return now > flow.first_above

    def _mark(self, pkt) -> bool:
        if self.ecn and self.ect[pkt[0]]:
            pkt[4] = 1
            self.marks += 1
            return True
        return False

    def _codel_dequeue(self, flow: _Flow, now: float):
        q = flow.q
        if not q:
            flow.dropping = False
            return None
        pkt = q.popleft()
        size = pkt[1]
        flow.backlog -= size
        self.backlog -= size
        self.qlen -= 1
        if not flow.dropping and (now - pkt[2] < self.target or self.backlog <= self.mtu):
            flow.first_above = 0.0  # the common case: below target, nothing to do
            return pkt
        return self._codel_control(flow, pkt, now)

    def _codel_control(self, flow: _Flow, pkt, now: float):
        """``codel_dequeue`` after the head packet was taken: the CoDel state machine."""
        drop = self._should_drop(flow, pkt, now)
        interval = self.interval
        if flow.dropping:
            if not drop:
                flow.dropping = False
            elif now >= flow.drop_next:
                while flow.dropping and now >= flow.drop_next:
                    flow.count += 1
                    if self._mark(pkt):
                        flow.drop_next += interval / math.sqrt(flow.count)
                        return pkt
                    self.drop(pkt, now)
                    pkt = self._pop(flow)
                    if not self._should_drop(flow, pkt, now):
                        flow.dropping = False
                    else:
                        flow.drop_next += interval / math.sqrt(flow.count)
        elif drop:
            if not self._mark(pkt):
                self.drop(pkt, now)
                pkt = self._pop(flow)
                self._should_drop(flow, pkt, now)
            flow.dropping = True
            delta = flow.count - flow.lastcount
            if delta > 1 and now - flow.drop_next < 16 * interval:
                flow.count = delta
            else:
                flow.count = 1
            flow.lastcount = flow.count
            flow.drop_next = now + interval / math.sqrt(flow.count)
        return pkt

    def dequeue(self, t: float):
        new_flows, old_flows = self.new_flows, self.old_flows
        while True:
            if new_flows:
                head, flow = new_flows, new_flows[0]
            elif old_flows:
                head, flow = old_flows, old_flows[0]
            else:
                return None
            if flow.deficit <= 0:
                flow.deficit += self.quantum
                head.popleft()
                old_flows.append(flow)
                continue
            q = flow.q
            if q and not flow.dropping:
                # inline fast path of _codel_dequeue: head below target, nothing to do
                pkt = q[0]
                size = pkt[1]
                if t - pkt[2] < self.target or self.backlog - size <= self.mtu:
                    q.popleft()
                    flow.backlog -= size
                    self.backlog -= size
                    self.qlen -= 1
                    flow.first_above = 0.0
                    flow.deficit -= size
                    return pkt
            pkt = self._codel_dequeue(flow, t)
            if pkt is None:
                head.popleft()
                if head is new_flows and old_flows:
                    old_flows.append(flow)
                else:
                    flow.listed = False
                continue
            flow.deficit -= pkt[1]
            return pkt

    def snapshot(self):
        for idx in sorted(self.flows):
            q = self.flows[idx].q
            if q:
                yield idx, list(q)

    def stats(self) -> dict:
        out = super().stats()
        out.update(limit=self.limit, flows=self.spec.flows, quantum=self.quantum,
                   target=self.target, interval=self.interval, ecn=self.ecn)
        return out
