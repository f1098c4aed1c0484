"""What every runtime qdisc shares: the packet record, the flow table, the drop path.

A runtime qdisc is driven by something it does not know about — the simulator's event loop,
the userspace datapath's wall clock, a capture being replayed. The driver calls
``enqueue(pkt, now)`` and ``dequeue(now)``, tells it when a hash seed changes
(``on_hash_change(index, now)``) and learns from ``next_wake`` when a throttled qdisc (a
shaper) can send again. Times are seconds (floats) on the driver's clock.

**The packet record** is a small list (fast in CPython), indexed by the constants below:
``[fid, size, t_enqueued, seq, ce, owner, cls, queue]``. ``fid`` is the packet's flow in the
:class:`FlowTable`; ``size`` the bytes the qdisc accounts (``skb->len``: L2 header included);
``owner`` gets ``owner.on_drop(pkt, now)`` when the packet is dropped; ``cls`` and ``queue`` are
written by the qdiscs the packet passes (band or class index; SFQ bucket or fq_codel flow
index), for the decision log.

**The flow table** holds the flows seen so far as rows of a PACKETS-like frame, and caches every
per-flow answer a qdisc needs (a bucket per seed, a band, a class): one vectorised call into
:mod:`qoslab.hashing` per answer, extended in one call when new flows arrive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["FID", "SIZE", "T_ENQ", "SEQ", "CE", "OWNER", "CLS", "QUEUE", "new_packet",
           "FlowTable", "BuildContext", "Runtime", "Device", "RUNTIMES", "runtime_for", "build"]

FID, SIZE, T_ENQ, SEQ, CE, OWNER, CLS, QUEUE = range(8)


def new_packet(fid: int, size: int, t: float, seq: int, owner: Any) -> list:
    """A packet record (see the module docstring).

    Examples
    --------
    >>> new_packet(3, 1514, 0.5, 7, None)
    [3, 1514, 0.5, 7, 0, None, -1, -1]
    """
    return [fid, size, t, seq, 0, owner, -1, -1]


class FlowTable:
    """The flows a qdisc tree sees, and the per-flow answers its qdiscs need.

    Parameters
    ----------
    frame
        Initial flows: a PACKETS-like frame, one row per flow (row ``i`` is flow ``i``).

    Examples
    --------
    >>> t = FlowTable(pd.DataFrame({"tos": [0, 0x10]}))
    >>> band = t.answer("band", lambda f: (f["tos"] > 0).astype(int).to_numpy())
    >>> band
    [0, 1]
    >>> t.add(pd.DataFrame({"tos": [0x10]}))
    [2]
    >>> band      # the cached answer grew with the table
    [0, 1, 1]
    """

    def __init__(self, frame: pd.DataFrame | None = None) -> None:
        self._parts: list[pd.DataFrame] = []
        self._frame: pd.DataFrame | None = None
        self._n = 0
        self._answers: dict[Hashable, tuple[Callable, list]] = {}
        if frame is not None and len(frame):
            self.add(frame)

    def __len__(self) -> int:
        return self._n

    @property
    def frame(self) -> pd.DataFrame:
        """Every flow so far (row ``i`` = flow ``i``)."""
        if self._frame is None:
            self._frame = (pd.concat(self._parts, ignore_index=True) if len(self._parts) > 1
                           else self._parts[0].reset_index(drop=True) if self._parts
                           else pd.DataFrame())
            self._parts = [self._frame] if self._parts else []
        return self._frame

    def add(self, rows: pd.DataFrame) -> list[int]:
        """Append flows; return their flow ids. Cached answers are extended for them."""
        rows = rows.reset_index(drop=True)
        first = self._n
        self._parts.append(rows)
        self._frame = None
        self._n += len(rows)
        for fn, values in self._answers.values():
            values.extend(_as_list(fn(rows), len(rows)))
        return list(range(first, self._n))

    def answer(self, key: Hashable, fn: Callable[[pd.DataFrame], Sequence]) -> list:
        """``fn(frame)`` per flow, cached under ``key`` (a list indexed by flow id, extended
        in place when flows are added)."""
        hit = self._answers.get(key)
        if hit is not None:
            return hit[1]
        values = _as_list(fn(self.frame), self._n) if self._n else []
        self._answers[key] = (fn, values)
        return values

    def forget(self, key: Hashable) -> None:
        """Drop a cached answer (a seed no longer in force)."""
        self._answers.pop(key, None)


def _as_list(values: Sequence, n: int) -> list:
    out = values.tolist() if isinstance(values, (np.ndarray, pd.Series)) else list(values)
    if len(out) != n:
        raise ValueError(f"a per-flow answer has {len(out)} values for {n} flows")
    return out


@dataclass
class BuildContext:
    """What a qdisc spec needs to build its runtime.

    Attributes
    ----------
    flows
        The :class:`FlowTable`.
    mtu_bytes
        ``psched_mtu``: device MTU plus the hard header (default SFQ / fq_codel quantum).
    seeds
        Every hash seed of the run in order (index 0 in force at the start). A live driver
        appends to this list as perturbations happen.
    txqueuelen
        The device's ``txqueuelen`` (pfifo_fast's limit, pfifo's default limit).
    """

    flows: FlowTable
    mtu_bytes: int = 1514
    seeds: list = field(default_factory=lambda: [0])
    txqueuelen: int = 1000

    def ect(self) -> list[bool]:
        """Per flow: ECN-capable transport (ECT bits in the outer TOS byte)."""
        return self.flows.answer("ect", lambda f: (f["tos"].astype("Int64").fillna(0)
                                                   .astype("int64") & 3 != 0).to_numpy())


_RUNTIME_UIDS = itertools.count(1)


class Runtime:
    """Base of runtime qdiscs: counters, the drop path, hooks a driver calls.

    Subclasses implement ``enqueue(pkt, now)``, ``dequeue(now)`` and ``snapshot()``
    (``(queue_index, packets)`` of every non-empty queue).
    """

    __slots__ = ("qlen", "next_wake", "drops", "marks", "name", "handle", "uid")

    def __init__(self, name: str) -> None:
        # the key of this runtime's answers in a FlowTable: unique for the process's life
        # (an id() could be reused by a later runtime while the table keeps the old answer)
        self.uid = next(_RUNTIME_UIDS)
        self.qlen = 0
        self.next_wake = math.inf
        self.drops = 0
        self.marks = 0
        self.name = name
        self.handle: str | None = None

    def drop(self, pkt: list, now: float) -> None:
        """Drop ``pkt`` (already unlinked from any queue) and tell its owner."""
        self.drops += 1
        pkt[OWNER].on_drop(pkt, now)

    def on_hash_change(self, seed_index: int, now: float) -> None:
        """A perturbation timer fired: seed number ``seed_index`` is now in force."""

    def prepare_seed(self, seed_index: int) -> None:
        """Compute now what seed ``seed_index`` will need (a bucket per flow), so that its
        :meth:`on_hash_change` does no hashing: a live driver calls this in advance, and the
        change itself then costs microseconds instead of a vectorised hashing call."""
        for child in self.children():
            child.prepare_seed(seed_index)

    def set_filter(self, classifier: Any, now: float) -> bool:
        """Replace an attached filter (``tc filter replace``); return True if one was taken."""
        return False

    def children(self) -> list:
        """Runtime child qdiscs (classful qdiscs)."""
        return []

    def replace_child(self, parent: str | None, spec: Any, ctx: BuildContext, now: float
                      ) -> bool:
        """``tc qdisc replace … parent PARENT …``: swap the qdisc under class ``parent`` (in
        this runtime or below) for a new one built from ``spec``; the old one's queued
        packets are dropped (``qdisc_destroy``). Return True if the class was found."""
        return any(child.replace_child(parent, spec, ctx, now) for child in self.children())

    def purge(self, old: Runtime, now: float) -> None:
        """Drop every packet queued in ``old`` (a qdisc being replaced), counting them here."""
        for _, packets in list(old.snapshot()):
            for pkt in packets:
                self.drop(pkt, now)

    def snapshot(self):
        """Yield ``(queue_index, packets)`` for every non-empty queue."""
        return ()

    def stats(self) -> dict:
        """Counters for META (``tc -s`` style)."""
        return {"qdisc": self.name, "drops": self.drops, "marks": self.marks,
                "backlog_packets": self.qlen}

    def walk(self):
        """This runtime and every descendant."""
        yield self
        for child in self.children():
            yield from child.walk()


class Device(Runtime):
    """A device's root: the root qdisc, which ``tc qdisc replace … root …`` can swap
    (:meth:`replace_child` with parent ``None`` or ``"root"``); a driver wraps a tree in it
    when a change replaces the root."""

    __slots__ = ("root",)

    def __init__(self, root: Runtime) -> None:
        super().__init__("device")
        self.root = root

    @property
    def qlen(self) -> int:  # type: ignore[override]
        return self.root.qlen

    @qlen.setter
    def qlen(self, value: int) -> None:
        pass

    @property
    def next_wake(self) -> float:  # type: ignore[override]
        return self.root.next_wake

    @next_wake.setter
    def next_wake(self, value: float) -> None:
        pass

    def enqueue(self, pkt: list, now: float) -> None:
        self.root.enqueue(pkt, now)

    def dequeue(self, now: float):
        return self.root.dequeue(now)

    def on_hash_change(self, seed_index: int, now: float) -> None:
        self.root.on_hash_change(seed_index, now)

    def set_filter(self, classifier: Any, now: float) -> bool:
        return self.root.set_filter(classifier, now)

    def replace_child(self, parent: str | None, spec: Any, ctx: BuildContext, now: float
                      ) -> bool:
        if parent in (None, "root"):
            old = self.root
            self.root = build(spec, ctx)
            self.purge(old, now)
            return True
        return self.root.replace_child(parent, spec, ctx, now)

    def children(self) -> list:
        return [self.root]

    def snapshot(self):
        return self.root.snapshot()

    def stats(self) -> dict:
        return self.root.stats()


#: spec class -> runtime class.
RUNTIMES: dict[type, type] = {}


def runtime_for(spec_class: type) -> Callable[[type], type]:
    """Class decorator: register the runtime of a spec class."""
    def register(runtime_class: type) -> type:
        RUNTIMES[spec_class] = runtime_class
        return runtime_class
    return register


def build(spec: Any, ctx: BuildContext, handle: str | None = "1:") -> Runtime:
    """The runtime of ``spec`` (any registered qdisc spec) for flows ``ctx.flows``; ``handle``
    is the qdisc's handle in its tree (the ``skb->priority`` override and filters use it)."""
    cls = RUNTIMES.get(type(spec))
    if cls is None:
        raise ConfigError(f"no runtime model for {type(spec).__name__} "
                          f"({getattr(spec, 'kind', '?')})")
    runtime = cls(spec, ctx, handle)
    runtime.handle = handle
    return runtime
