"""The discrete-event core: one egress device, its root qdisc, and the sources feeding it.

Design for speed (hundreds of thousands of packets a second in CPython):

* the event queue is a ``heapq`` of plain tuples ``(time, seq, kind, a, b)``; ``seq`` breaks
  ties in insertion order, so a run is deterministic;
* a packet is a small list ``[fid, size, t_enqueued, seq, ce, source]``: the flow index looks
  up precomputed per-flow facts (bucket for the current seed, band, ECN capability), ``ce``
  is set when a qdisc marks it, ``source`` gets the callbacks;
* the link is not an event source: the loop keeps the time the link is free (or a shaper
  allows the next packet) and dequeues there whenever that comes before the next event; the
  packet's source learns at dequeue time when its last bit will leave (``on_sent(pkt,
  t_end)``), so no per-packet "transmission done" event exists; after any event at which the
  link is idle or throttled, it is offered a packet again (a new arrival may be sendable);
* sources enqueue through :meth:`Engine.enqueue`: a packet arriving at an idle link is offered
  to it at once, before the next packet of the same burst arrives — as the kernel runs the
  qdisc after each enqueue (``__dev_xmit_skb`` → ``__qdisc_run``), and as replay and the
  userspace datapath do. (Enqueueing a whole burst first would let it fill a queue the link
  was draining, and would change a fair queue's first round);
* PROBES are built at the end from per-source lists, never row by row in pandas.

Event kinds: ``ACK`` (a reply or ACK reaches its source: ``a.on_ack(b, t)``), ``TIMER``
(``a.on_timer(t, b)``), ``CALL`` (``a(t)``: hash changes, config changes, load start/stop), ``SAMPLE``
(record queue occupancy), ``LOSS`` (a source learns of a drop: ``a.on_loss(b, t)``).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

__all__ = ["Engine", "ACK", "TIMER", "CALL", "SAMPLE", "LOSS"]

ACK, TIMER, CALL, SAMPLE, LOSS = range(5)


class Engine:
    """Run sources through a root qdisc onto a link of ``link_rate`` bit/s.

    Parameters
    ----------
    root
        Runtime root qdisc: ``enqueue(pkt, t)``, ``dequeue(t) -> pkt | None``,
        ``next_wake`` (float, ``inf`` unless throttled), ``snapshot()`` yielding
        ``(queue_index, packets)`` of non-empty queues.
    link_rate
        Line rate in bit/s (serialisation time of each packet).
    overhead
        Extra bytes per packet on the wire (framing, ATM/PPP overhead), for serialisation.
    duration
        Simulated seconds (a ``CALL`` event may lower it: the run then ends sooner).
    sample_interval
        Seconds between occupancy samples; 0 disables sampling.
    n_flows
        Number of flows (packet ``fid`` values), for the per-flow reordering counters:
        a packet leaving after a packet of its flow with a higher sequence number is
        counted in ``reordered[fid]`` (what a classic SFQ perturbation does to a flow whose
        old slot still holds packets).
    """

    __slots__ = ("root", "link_rate", "overhead", "duration", "sample_interval", "heap",
                 "seq", "samples", "events_processed", "packets_sent", "bytes_sent", "now",
                 "max_seq", "reordered", "tx_end", "next_try")

    def __init__(self, root, *, link_rate: float, overhead: int = 0, duration: float,
                 sample_interval: float = 0.1, n_flows: int = 0) -> None:
        self.root = root
        self.link_rate = float(link_rate)
        self.overhead = int(overhead)
        self.duration = float(duration)
        self.sample_interval = float(sample_interval)
        self.heap: list[tuple] = []
        self.seq = itertools.count()
        self.samples: list[tuple[float, int, int, int, int]] = []
        self.events_processed = 0
        self.packets_sent = 0
        self.bytes_sent = 0
        self.now = 0.0
        #: per flow: highest sequence number sent so far, and packets sent after a later one
        self.max_seq = [-1] * n_flows
        self.reordered = [0] * n_flows
        #: the link is sending until ``tx_end``; it is offered a packet at ``next_try`` (both
        #: current while an event runs, for :meth:`enqueue`)
        self.tx_end = 0.0
        self.next_try = math.inf

    def enqueue(self, pkt: list, t: float) -> None:
        """A source's packet arrives at the root qdisc; an idle link takes a packet at once."""
        root = self.root
        root.enqueue(pkt, t)
        if t >= self.tx_end:
            sent = root.dequeue(t)
            if sent is None:
                self.next_try = root.next_wake
            else:
                self.tx_end = self.next_try = self._transmit(sent, t)

    def _transmit(self, pkt: list, t: float) -> float:
        """Count ``pkt`` as sent at ``t``; tell its source; return when its last bit left."""
        fid = pkt[0]
        if pkt[3] > self.max_seq[fid]:
            self.max_seq[fid] = pkt[3]
        else:
            self.reordered[fid] += 1
        self.packets_sent += 1
        self.bytes_sent += pkt[1]
        tx_end = t + (pkt[1] + self.overhead) * 8.0 / self.link_rate
        pkt[5].on_sent(pkt, tx_end)
        return tx_end

    def push(self, t: float, kind: int, a=None, b=None) -> None:
        """Schedule an event."""
        heapq.heappush(self.heap, (t, next(self.seq), kind, a, b))

    def call_at(self, t: float, fn: Callable[[float], None]) -> None:
        """Schedule ``fn(t)``."""
        self.push(t, CALL, fn)

    def run(self) -> None:
        """Process events until ``duration``."""
        heap = self.heap
        pop = heapq.heappop
        push = heapq.heappush
        seq = self.seq
        root = self.root
        dequeue = root.dequeue
        bits_per_s = self.link_rate
        overhead = self.overhead
        end = self.duration
        inf = math.inf
        max_seq = self.max_seq
        reordered = self.reordered
        tx_end = self.tx_end  # the link is sending until then
        next_try = self.next_try  # when to offer the link a packet (free, or a shaper wakes)
        if self.sample_interval > 0:
            push(heap, (0.0, next(seq), SAMPLE, None, None))
        n_events = 0
        n_sent = 0
        n_bytes = 0
        t = 0.0
        while True:
            if next_try <= (heap[0][0] if heap else inf):
                # The link frees up (or the shaper allows) before the next event: dequeue.
                t = next_try
                if t > end:
                    break
                pkt = dequeue(t)
                if pkt is not None:
                    fid = pkt[0]
                    if pkt[3] > max_seq[fid]:
                        max_seq[fid] = pkt[3]
                    else:
                        reordered[fid] += 1
                    size = pkt[1]
                    n_sent += 1
                    n_bytes += size
                    tx_end = next_try = t + (size + overhead) * 8.0 / bits_per_s
                    pkt[5].on_sent(pkt, tx_end)
                else:
                    next_try = root.next_wake
                continue
            if not heap:
                break
            t, _, kind, a, b = pop(heap)
            if t > end:
                break
            n_events += 1
            self.tx_end, self.next_try = tx_end, next_try  # for enqueues during the event
            if kind == ACK:
                a.on_ack(b, t)
            elif kind == TIMER:
                a.on_timer(t, b)
            elif kind == LOSS:
                a.on_loss(b, t)
            elif kind == CALL:
                a(t)
                end = self.duration  # a call may end the run sooner (see simulate)
            elif kind == SAMPLE:
                self._sample(t)
                push(heap, (t + self.sample_interval, next(seq), SAMPLE, None, None))
            tx_end, next_try = self.tx_end, self.next_try
            if t >= tx_end and next_try > t:
                next_try = t  # the link is idle (or throttled): offer it a packet now
        self.now = min(t, end)
        self.tx_end, self.next_try = tx_end, next_try
        self.packets_sent += n_sent  # (plus those sent at once by enqueue)
        self.bytes_sent += n_bytes
        self.events_processed = n_events + self.packets_sent  # heap events + transmissions

    def _sample(self, t: float) -> None:
        counts: dict[tuple[int, int], list[int]] = {}
        for qidx, packets in self.root.snapshot():
            for p in packets:
                key = (p[0], qidx)
                c = counts.get(key)
                if c is None:
                    counts[key] = [1, p[1]]
                else:
                    c[0] += 1
                    c[1] += p[1]
        append = self.samples.append
        for (fid, qidx), (n, nbytes) in sorted(counts.items()):
            append((t, fid, qidx, n, nbytes))
