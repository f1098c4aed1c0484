"""What every runtime qdisc shares: the drop path, the build context, the statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["BuildContext", "RuntimeQdisc"]


@dataclass
class BuildContext:
    """What a qdisc spec needs to build its runtime object.

    Attributes
    ----------
    flows
        PACKETS-like frame, one row per flow (:func:`qoslab.sim.traffic.flow_frame`).
    ect
        Per flow: the packets are ECN-capable (ECT bits set in the outer TOS byte).
    mtu_bytes
        ``psched_mtu``: device MTU plus the hard header (the default SFQ / fq_codel quantum).
    seeds
        Every seed of the run in order (index 0 in force at t = 0), for qdiscs that hash.
    """

    flows: pd.DataFrame
    ect: list[bool]
    mtu_bytes: int = 1514
    seeds: list[int] = field(default_factory=lambda: [0])


class RuntimeQdisc:
    """Base of runtime qdiscs: counters and the drop path.

    Subclasses implement ``enqueue(pkt, t)``, ``dequeue(t)``, ``snapshot()`` and may react to
    ``on_hash_change(seed_index, t)`` and ``on_config(change, t)``.
    """

    __slots__ = ("qlen", "next_wake", "drops", "marks", "name")

    def __init__(self, name: str) -> None:
        self.qlen = 0
        self.next_wake = math.inf
        self.drops = 0
        self.marks = 0
        self.name = name

    def drop(self, pkt, t: float) -> None:
        """Drop ``pkt`` (already unlinked from any queue) and tell its source."""
        self.drops += 1
        pkt[5].on_drop(pkt, t)

    def on_hash_change(self, seed_index: int, t: float) -> None:
        """A perturbation timer fired: seed number ``seed_index`` is now in force."""

    def snapshot(self):
        """Yield ``(queue_index, packets)`` for every non-empty queue."""
        return ()

    def stats(self) -> dict:
        """Counters for META (``tc -s`` style)."""
        return {"qdisc": self.name, "drops": self.drops, "marks": self.marks,
                "backlog_packets": self.qlen}
