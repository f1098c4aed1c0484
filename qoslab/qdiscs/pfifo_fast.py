"""pfifo_fast (``net/sched/sch_generic.c``): the default qdisc, three FIFO bands.

The band is ``prio2band[skb->priority & 15]``; ``skb->priority`` comes from the TOS byte through
the kernel era's ``ip_tos2prio`` table (:func:`qoslab.hashing.skb_priority`, one source of
truth), so an ECN-capable flow lands in band 2 with the old table and band 1 with the new one.
Band 0 is always served first. The limit is the device's ``txqueuelen``, counted over all
bands up to 4.15 and per band since (``KernelProfile.pfifo_fast_limit``); pfifo_fast takes no
``tc`` options.
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

__all__ = ["PfifoFast", "bands_of"]


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

    __slots__ = ("bands", "limit", "band_of", "per_band")

    def __init__(self, spec: PfifoFast, ctx: BuildContext, handle: str | None = None
                 ) -> None:
        super().__init__("pfifo_fast")
        self.bands = (deque(), deque(), deque())
        self.limit = ctx.txqueuelen
        self.per_band = get_profile(spec.profile).pfifo_fast_limit == "per-band"
        self.band_of = ctx.flows.answer(("pfifo_fast", spec.profile),
                                        lambda f: bands_of(f, spec.profile))

    def enqueue(self, pkt: list, now: float) -> None:
        band = self.band_of[pkt[FID]]
        pkt[CLS] = band
        q = self.bands[band]
        if (len(q) if self.per_band else self.qlen) >= self.limit:
            self.drop(pkt, now)
            return
        q.append(pkt)
        self.qlen += 1

    def dequeue(self, now: float):
        if not self.qlen:
            return None
        for q in self.bands:
            if q:
                self.qlen -= 1
                return q.popleft()
        return None  # pragma: no cover - qlen and bands agree

    def snapshot(self):
        for i, q in enumerate(self.bands):
            if q:
                yield i, list(q)

    def stats(self) -> dict:
        return {**super().stats(), "limit": self.limit,
                "limit_counts": "per band" if self.per_band else "all bands"}
