"""pfifo_fast (``net/sched/sch_generic.c``): the default qdisc, three FIFO bands.

The band is ``prio2band[skb->priority & 15]``; ``skb->priority`` comes from the TOS byte through
the kernel era's ``ip_tos2prio`` table (:func:`qoslab.hashing.skb_priority`, one source of
truth), so an ECN-capable flow lands in band 2 with the old table and band 1 with the new one.
Band 0 is always served first. The limit is the device's ``txqueuelen``, counted over all
bands up to 4.15 and per band since (``KernelProfile.pfifo_fast_limit``); pfifo_fast takes no
``tc`` options.

Per band (4.16+), each band is a ``ptr_ring`` of ``txqueuelen`` slots (``skb_array``), and the
ring frees the slots its consumer has read in batches (``__ptr_ring_discard_one``: a batch of
:data:`RING_BATCH` slots, or up to the ring's end, is zeroed at once; a ring of fewer than
2 × :data:`RING_BATCH` slots frees each at once). A producer finds a slot still holding a
dequeued packet's pointer full: a full band holds between ``txqueuelen - RING_BATCH + 1`` and
``txqueuelen`` packets, not always ``txqueuelen`` — under a flood, band 1 of a 100-packet
device holds 85–100 packets, and its queueing delay is ~8 % below a plain 100-packet FIFO's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from ..hashing.pfifo_fast import PRIO2BAND, skb_priority
from ..hashing.profiles import get_profile
from ..tcspec import QdiscSpec
from .runtime import CLS, FID, BuildContext, Runtime, runtime_for

__all__ = ["PfifoFast", "bands_of", "RING_BATCH"]

#: Slots a ``ptr_ring`` consumer frees at once: ``SMP_CACHE_BYTES * 2 / sizeof(void *)``
#: (include/linux/ptr_ring.h ``__ptr_ring_set_size``; 64-byte cache lines, x86-64), 1 when
#: that exceeds half the ring.
RING_BATCH = 64 * 2 // 8


@dataclass(frozen=True)
class PfifoFast(QdiscSpec):
    """``pfifo_fast``; ``profile`` picks the era's TOS → priority table.

    Examples
    --------
    >>> PfifoFast(profile="classic-2.6.3x").to_tc()
    'pfifo_fast'
    >>> PfifoFast.from_tc("pfifo_fast", profile="5.18+") == PfifoFast(profile="5.18+")
    True
    """

    kind: ClassVar[str] = "pfifo_fast"
    uses_profile: ClassVar[bool] = True
    profile: str = "5.18+"

    def __post_init__(self) -> None:
        get_profile(self.profile)  # a clear error for an unknown profile

    def options(self) -> list[str]:
        return []

    @classmethod
    def parse_options(cls, words: Sequence[str], profile: str = "5.18+", **context
                      ) -> PfifoFast:
        if words:
            raise ConfigError(f"pfifo_fast takes no options, got {' '.join(words)!r}")
        return cls(profile=profile)


def bands_of(flows, profile: str, bands: int = 3, priomap=None) -> list[int]:
    """Band of every flow: ``priomap[skb->priority & 15]`` (default map: pfifo_fast's)."""
    prio = np.asarray(skb_priority(flows, profile), dtype=np.int64) & 15
    table = PRIO2BAND if priomap is None else np.asarray(priomap, dtype=np.int64)
    return np.minimum(table[prio], bands - 1).tolist()


@runtime_for(PfifoFast)
class PfifoFastRuntime(Runtime):
    """Three bands, strict priority, ``txqueuelen`` packets in all."""

    __slots__ = ("bands", "limit", "band_of", "per_band", "batch", "head", "tail")

    def __init__(self, spec: PfifoFast, ctx: BuildContext, handle: str | None = None
                 ) -> None:
        super().__init__("pfifo_fast")
        self.bands = (deque(), deque(), deque())
        self.limit = ctx.txqueuelen
        self.per_band = get_profile(spec.profile).pfifo_fast_limit == "per-band"
        self.band_of = ctx.flows.answer(("pfifo_fast", spec.profile),
                                        lambda f: bands_of(f, spec.profile))
        # per band's ring: consumer head and the first slot not yet freed (module docstring)
        self.batch = RING_BATCH if RING_BATCH <= self.limit // 2 else 1
        self.head = [0, 0, 0]
        self.tail = [0, 0, 0]

    def enqueue(self, pkt: list, now: float) -> None:
        band = self.band_of[pkt[FID]]
        pkt[CLS] = band
        q = self.bands[band]
        if self.per_band:  # the ring's slots: queued packets and read ones not yet freed
            full = len(q) + self.head[band] - self.tail[band] >= self.limit
        else:
            full = self.qlen >= self.limit
        if full:
            self.drop(pkt, now)
            return
        q.append(pkt)
        self.qlen += 1

    def dequeue(self, now: float):
        if not self.qlen:
            return None
        for band, q in enumerate(self.bands):
            if q:
                self.qlen -= 1
                if self.per_band:
                    self._consumed(band)
                return q.popleft()
        return None  # pragma: no cover - qlen and bands agree

    def _consumed(self, band: int) -> None:
        """``__ptr_ring_discard_one``: free the read slots a batch at a time, and at the end
        of the ring."""
        head = self.head[band] + 1
        if head - self.tail[band] >= self.batch or head >= self.limit:
            self.tail[band] = head
        if head >= self.limit:
            head = self.tail[band] = 0
        self.head[band] = head

    def snapshot(self):
        for i, q in enumerate(self.bands):
            if q:
                yield i, list(q)

    def stats(self) -> dict:
        return {**super().stats(), "limit": self.limit,
                "limit_counts": "per band" if self.per_band else "all bands"}
