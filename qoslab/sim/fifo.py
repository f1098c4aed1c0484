"""pfifo (one tail-drop FIFO) and pfifo_fast (three FIFOs selected by TOS, strict priority).

pfifo_fast picks the band from ``skb->priority`` as set from the TOS byte; the TOS → band
table (old and new ``ip_tos2prio``) is :func:`qoslab.hashing.pfifo_fast_band` — one source
of truth — so an ECN-capable flow lands in band 2 with the old table and band 1 with the new.
Its limit is the device ``txqueuelen`` counted over all bands (``sch_generic.c``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ConfigError
from ._qdisc import BuildContext, RuntimeQdisc

__all__ = ["Pfifo", "PfifoFast"]


@dataclass(frozen=True)
class Pfifo:
    """``tc qdisc add ... pfifo limit N``: tail drop beyond ``limit`` packets.

    Examples
    --------
    >>> Pfifo(limit=50).to_tc()
    'pfifo limit 50'
    """

    limit: int = 1000

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ConfigError(f"pfifo: limit must be >= 1, got {self.limit}")

    def to_tc(self) -> str:
        return f"pfifo limit {self.limit}"

    def build(self, ctx: BuildContext) -> _PfifoRuntime:
        return _PfifoRuntime(self.limit)


class _PfifoRuntime(RuntimeQdisc):
    __slots__ = ("q", "limit")

    def __init__(self, limit: int) -> None:
        super().__init__("pfifo")
        self.q: deque = deque()
        self.limit = limit

    def enqueue(self, pkt, t: float) -> None:
        if self.qlen >= self.limit:
            self.drop(pkt, t)
            return
        self.q.append(pkt)
        self.qlen += 1

    def dequeue(self, t: float):
        if self.qlen:
            self.qlen -= 1
            return self.q.popleft()
        return None

    def snapshot(self):
        if self.q:
            yield 0, list(self.q)


@dataclass(frozen=True)
class PfifoFast:
    """The default Linux qdisc: bands 0, 1, 2 by TOS, band 0 served first.

    Parameters
    ----------
    txqueuelen
        Packets over all bands (the device's ``txqueuelen``).
    table
        ``"new"`` (fixed ``ip_tos2prio``, ECT(0) → best effort) or ``"old"`` (2.6.x up to
        ~2.6.38: ECT(0) → filler → band 2).
    profile
        A kernel profile name: its TOS table (``KernelProfile.tos2prio``) replaces ``table``.

    Examples
    --------
    >>> PfifoFast(table="old").to_tc()
    'pfifo_fast (txqueuelen 1000, old TOS table)'
    """

    txqueuelen: int = 1000
    table: Literal["new", "old"] = "new"
    profile: str | None = None

    def __post_init__(self) -> None:
        if self.profile is not None:
            from ..hashing import get_profile

            object.__setattr__(self, "table", get_profile(self.profile).tos2prio)
        if self.table not in ("new", "old"):
            raise ConfigError(f"pfifo_fast: table must be 'new' or 'old', got {self.table!r}")
        if self.txqueuelen < 1:
            raise ConfigError(f"pfifo_fast: txqueuelen must be >= 1, got {self.txqueuelen}")

    def to_tc(self) -> str:
        return f"pfifo_fast (txqueuelen {self.txqueuelen}, {self.table} TOS table)"

    def bands(self, ctx: BuildContext) -> np.ndarray:
        """Band of every flow (from the outer TOS byte)."""
        from ..hashing import pfifo_fast_band

        tos = ctx.flows["tos"].astype("int64").to_numpy()
        return np.asarray(pfifo_fast_band(tos, table=self.table), dtype=np.int64)

    def build(self, ctx: BuildContext) -> _PfifoFastRuntime:
        return _PfifoFastRuntime(self.txqueuelen, self.bands(ctx).tolist())


class _PfifoFastRuntime(RuntimeQdisc):
    __slots__ = ("bands", "limit", "band_of")

    def __init__(self, limit: int, band_of: list[int]) -> None:
        super().__init__("pfifo_fast")
        self.bands = (deque(), deque(), deque())
        self.limit = limit
        self.band_of = band_of

    def enqueue(self, pkt, t: float) -> None:
        if self.qlen >= self.limit:
            self.drop(pkt, t)
            return
        self.bands[self.band_of[pkt[0]]].append(pkt)
        self.qlen += 1

    def dequeue(self, t: float):
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
