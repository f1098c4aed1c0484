"""The datapath's loop: live packets through the runtime qdiscs on the wall clock.

The router's datapath reads every packet the kernel routes into its TUN device, gives it to
the same runtime qdisc tree the simulator and replay drive (:mod:`qoslab.qdiscs`), and writes
each packet back when the emulated link has sent it and the path's delay has passed; the
kernel then routes it on. One thread, no locks; per packet a read, a flow lookup
(:mod:`.packets`), an ``enqueue``, a ``dequeue`` and a write.

Time. The loop runs on ``CLOCK_MONOTONIC``: integer nanoseconds for its timers, and for the
qdiscs and the decision log float seconds since its own start (``origin_ns``), so that a replay
of its input capture from that origin computes with the very same numbers. A packet's arrival
is the instant it was read. The link is emulated exactly as the simulator's and replay's: it takes one packet
at a time, ``(size + overhead) × 8 / rate`` seconds each, and the tree is asked for the next
packet at the instant the link frees up — in the link's own (virtual) time, even when the
process wakes a little late, so the rate is exact and the decisions are those replay computes
from the same arrival times. Every dequeue due before an arrival happens before that arrival
is enqueued. A packet leaves the process ``delay`` seconds after the link sent its last bit.

Scenario time. The parent says when scenario time 0 is (``{"t0_ns": …}`` on stdin). Before
that the tree runs with the first seed and no change is due; after it, seed changes (the
perturb timers of :func:`~qoslab.qdiscs.seeds.perturbation_plan`, with the seeds of the
schedule) and config changes happen at their scenario times, and each is reported on stdout
as an EVENT.

Output. ``{"ready": …}`` once the TUN device exists; ``{"event": …}`` per hash or config change;
at the end the decision log (``.npz``, no pickles), the flow table (JSON) and a summary line.
``{"stop": true}`` or the end of stdin (the parent is gone) ends the loop: it stops reading,
lets the tree and the delay line drain for at most :data:`DRAIN_S` seconds, writes its files
and exits.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import deque
from typing import Any

import numpy as np

from ..qdiscs import BuildContext, apply_change, build
from ..qdiscs.changes import for_changes
from ..qdiscs.decisions import DecisionLog
from ..runs import jsonable
from .clock import Waker
from .packets import PacketFlows
from .pcapfile import ETH_HEADER
from .plan import Plan
from .tun import read_batch
from .tunnel import Encapsulator, decapsulate

__all__ = ["Router", "Decapsulator", "DRAIN_S", "SLACK_NS"]

#: Longest drain at the end (seconds).
DRAIN_S = 5.0
#: A packet due within this many ns is written now rather than after another wake-up.
SLACK_NS = 30_000
#: Packets read per wake-up before the clock-driven work runs again.
BATCH = 64
#: A packet written this much after its due time is counted as late (META).
LATE_NS = 2_000_000


class _Owner:
    """Owner of every live packet: a drop marks the log and frees the bytes."""

    __slots__ = ("dropped",)

    def __init__(self, dropped: list) -> None:
        self.dropped = dropped

    def on_drop(self, pkt: list, now: float) -> None:
        self.dropped[pkt[3]] = 1
        pkt[8] = None


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Router:
    """The bottleneck's datapath (see the module docstring)."""

    def __init__(self, plan: Plan, tun: int, control: int, *, report=None) -> None:
        self.plan = plan
        self.tun, self.control = tun, control
        self.report = report or emit  #: where EVENTS go (JSON lines on stdout by default)
        self.tree = plan.qdisc_tree()
        self.flows = PacketFlows()
        link = plan.link
        self.ctx = BuildContext(self.flows.index.table, mtu_bytes=int(link["mtu"]) + ETH_HEADER,
                                seeds=plan.seed_values(),
                                txqueuelen=int(link["txqueuelen"]))
        self.changes = plan.config_changes()
        self.root = for_changes(build(self.tree, self.ctx), self.changes)
        self.encap = Encapsulator(plan.tunnel_ends()) if plan.tunnels else None
        self.k = 8.0 / float(link["rate"])
        self.overhead = int(link.get("overhead", 0))
        self.delay_ns = int(round(plan.delay * 1e9))
        # the decision log, one entry per packet
        self.log = DecisionLog()
        self.owner = _Owner(self.log.dropped)
        # the link and the delay line (monotonic seconds / ns)
        self.next_try = math.inf
        self.tx_end = 0.0
        self.line: deque = deque()
        # scenario clock
        self.t0_ns: int | None = None
        self.controls: list[tuple[int, str, int]] = []
        self.next_ctrl_ns = math.inf
        self.ctrl_i = 0
        self.seed_index = 0
        self.unix_offset_ns = time.time_ns() - time.monotonic_ns()
        #: the loop's clock: seconds since ``origin_ns`` (monotonic), so a replay of its input
        #: capture from the same origin computes with the very same float values
        self.origin_ns = time.monotonic_ns()
        self.capture = None
        self.written = 0
        self.stopping = False
        self.extra_wake: int | None = None  #: a pipe signals write to (wakes the loop)
        self.local_multicast = 0
        self.late: list[tuple[float, float]] = []

    # ------------------------------------------------------------------ control
    def go(self, t0_ns: int) -> None:
        """Scenario time 0 is monotonic ``t0_ns``: schedule seed and config changes, and the
        hashing each seed needs halfway before it comes (:meth:`Runtime.prepare_seed
        <qoslab.qdiscs.runtime.Runtime.prepare_seed>`), so a change itself never stalls the
        packets on the hashing layer."""
        self.t0_ns = int(t0_ns)
        times = [0.0, *self.plan.seed_times]
        ctl = [(self.t0_ns + int(round(t * 1e9)), "hash_change", i)
               for i, t in enumerate(self.plan.seed_times, start=1)]
        ctl += [(self.t0_ns + int(round((times[i - 1] + times[i]) / 2 * 1e9)), "prepare", i)
                for i in range(1, len(times))]
        ctl += [(self.t0_ns + int(round(c.t * 1e9)), "config_change", i)
                for i, c in enumerate(self.changes)]
        ctl.sort(key=lambda c: (c[0], ("hash_change", "config_change", "prepare").index(c[1])))
        self.controls = ctl
        self.ctrl_i = 0
        self.next_ctrl_ns = ctl[0][0] if ctl else math.inf

    def _controls_due(self, now_ns: int) -> None:
        while self.next_ctrl_ns <= now_ns:
            at_ns, kind, i = self.controls[self.ctrl_i]
            self.ctrl_i += 1
            self.next_ctrl_ns = self.controls[self.ctrl_i][0] \
                if self.ctrl_i < len(self.controls) else math.inf
            if kind == "prepare":  # no decision: nothing the link or the log sees
                self.root.prepare_seed(i)
                continue
            at = (at_ns - self.origin_ns) / 1e9
            if self.next_try <= at:  # a dequeue due first, as in replay
                self._service(at)
            t = (at_ns - self.t0_ns) / 1e9
            if kind == "hash_change":
                self.seed_index = i
                self.root.on_hash_change(i, at)
                self.report({"event": {"t": t, "kind": "hash_change",
                                       "detail": self.plan.seed_details[i - 1]}})
            else:
                change = self.changes[i]
                apply_change(self.root, change, self.ctx, at)
                self.report({"event": {"t": t, "kind": "config_change",
                                       "detail": change.detail}})
            if at >= self.tx_end and self.next_try > at:
                self.next_try = at

    def _command(self) -> None:
        try:
            data = os.read(self.control, 4096)
        except BlockingIOError:
            return
        if not data:
            self.stopping = True  # the parent is gone
            return
        for line in data.decode(errors="replace").splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "t0_ns" in msg:
                self.go(int(msg["t0_ns"]))
            if msg.get("stop"):
                self.stopping = True

    # ------------------------------------------------------------------ packets
    def _receive(self, packets: list[bytes]) -> None:
        root, flows, log = self.root, self.flows, self.log
        log_dep = log.t_departure
        monotonic_ns = time.monotonic_ns
        for data in packets:
            if data[0] >> 4 == 6 and len(data) > 25 and data[24] == 0xFF and \
                    data[25] & 0x0F <= 2:
                self.local_multicast += 1  # the router's own MLD/ND toward the TUN device:
                continue  # link-local scope, never the client's traffic, never forwarded
            if self.encap is not None:
                wrapped = self.encap.wrap(data)
                if wrapped is not None:
                    data = wrapped
            now_ns = monotonic_ns()
            if now_ns >= self.next_ctrl_ns:
                self._controls_due(now_ns)
            now = (now_ns - self.origin_ns) / 1e9
            if self.next_try <= now:
                self._service(now)
            i = len(log_dep)
            size = len(data) + ETH_HEADER
            fid = flows.fid(data)
            log.packet.append(i)
            log.fid.append(fid)
            log.size.append(size)
            log.t_arrival.append(now)
            log_dep.append(math.nan)
            log.dropped.append(0)
            log.seed_index.append(self.seed_index)
            if self.capture is not None:
                self.capture.write(data, now_ns + self.unix_offset_ns)
            pkt = [fid, size, now, i, 0, self.owner, -1, -1, data]
            root.enqueue(pkt, now)
            log.cls.append(pkt[6])
            log.queue.append(pkt[7])
            if self.next_try > now and now >= self.tx_end:
                self.next_try = now

    def _service(self, now: float) -> None:
        """Dequeue at every instant the link frees up until ``now`` (virtual time)."""
        root, dep, line = self.root, self.log.t_departure, self.line
        next_try, tx_end = self.next_try, self.tx_end
        k, ovh, delay, origin = self.k, self.overhead, self.delay_ns, self.origin_ns
        while next_try <= now:
            pkt = root.dequeue(next_try)
            if pkt is None:
                next_try = root.next_wake
                continue
            dep[pkt[3]] = next_try
            tx_end = next_try = next_try + (pkt[1] + ovh) * k
            line.append((origin + int(tx_end * 1e9) + delay, pkt[8]))
            pkt[8] = None
        self.next_try, self.tx_end = next_try, tx_end

    def _release(self, now_ns: int) -> None:
        line, write, tun = self.line, os.write, self.tun
        due = now_ns + SLACK_NS
        while line and line[0][0] <= due:
            at, data = line.popleft()
            try:
                write(tun, data)
                self.written += 1
            except OSError:  # the kernel refused it (e.g. no route yet): as lost on the wire
                continue
            late = now_ns - at
            if late > LATE_NS:  # the process woke late: the packet left late (kept for META)
                self.late.append((round((at - self.origin_ns) / 1e9, 6), round(late / 1e6, 3)))

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        waker = Waker(_fds(self))
        drain_until = None
        try:
            while True:
                now_ns = time.monotonic_ns()
                if now_ns >= self.next_ctrl_ns:
                    self._controls_due(now_ns)
                if self.next_try * 1e9 + self.origin_ns <= now_ns:
                    self._service((now_ns - self.origin_ns) / 1e9)
                self._release(now_ns)
                if self.stopping:
                    if drain_until is None:
                        drain_until = now_ns + int(DRAIN_S * 1e9)
                    if (not self.root.qlen and not self.line) or now_ns >= drain_until:
                        break
                deadline = min(self.next_try * 1e9 + self.origin_ns, self.next_ctrl_ns,
                               self.line[0][0] if self.line else math.inf)
                if self.stopping:
                    deadline = min(deadline, drain_until)
                wake = None if deadline == math.inf else int(deadline)
                for fd in waker.wait(wake):
                    if fd == self.tun:
                        if not self.stopping:
                            self._receive(read_batch(self.tun, BATCH))
                        else:
                            read_batch(self.tun, BATCH)  # stopped: no longer forwarded
                    elif fd == self.control:
                        self._command()
                    else:
                        _drain(fd)
        finally:
            waker.close()

    # ------------------------------------------------------------------ results
    def save(self) -> dict[str, Any]:
        """Write the decision log and the flow table; return a summary."""
        plan = self.plan
        if plan.log:
            with open(plan.log, "wb") as fh:  # noqa: PTH123 - a file in the parent's work dir
                np.savez(fh, **self.log.columns())
        if plan.flows:
            frame = self.flows.index.table.frame
            doc = {"labels": self.flows.index.labels,
                   "flows": jsonable(frame.astype(object).where(frame.notna(), None)
                                     .to_dict("list")) if len(frame) else {}}
            with open(plan.flows, "w") as fh:  # noqa: PTH123
                json.dump(doc, fh)
        return {"packets": len(self.log), "dropped": int(sum(self.log.dropped)),
                "cpu_s": round(time.process_time(), 3),
                "written": self.written, "flows": len(self.flows.index),
                "decoded": self.flows.decoded, "still_queued": int(self.root.qlen),
                "local_multicast_ignored": self.local_multicast,
                "late_writes": len(self.late),
                "late_writes_worst": sorted(self.late, key=lambda x: -x[1])[:20],
                "t0_ns": self.t0_ns, "unix_offset_ns": self.unix_offset_ns,
                "origin_ns": self.origin_ns,
                "qdisc_stats": self.root.stats()}


def _fds(role) -> list[int]:
    return [role.tun, role.control] + ([role.extra_wake] if role.extra_wake is not None
                                       else [])


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


class Decapsulator:
    """The far end of the userspace tunnel: outer headers off, inner packets back in."""

    def __init__(self, plan: Plan, tun: int, control: int) -> None:
        self.tun, self.control = tun, control
        self.packets = self.stripped = 0
        self.stopping = False
        self.extra_wake: int | None = None

    def run(self) -> None:
        waker = Waker(_fds(self))
        try:
            while not self.stopping:
                fds = waker.wait(None)
                if self.extra_wake in fds:
                    _drain(self.extra_wake)
                if self.control in fds:
                    try:
                        data = os.read(self.control, 4096)
                    except BlockingIOError:
                        data = b"x"
                    if not data or b'"stop"' in data:
                        return
                if self.tun in fds:
                    for pkt in read_batch(self.tun, BATCH):
                        self.packets += 1
                        inner = decapsulate(pkt)
                        if inner is not None:
                            self.stripped += 1
                            try:
                                os.write(self.tun, inner)
                            except OSError:
                                pass
        finally:
            waker.close()

    def save(self) -> dict[str, Any]:
        return {"packets": self.packets, "decapsulated": self.stripped}
