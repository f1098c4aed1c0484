"""pfifo and bfifo (``net/sched/sch_fifo.c``): one tail-drop FIFO, limited in packets or bytes.

Without ``limit`` the kernel uses the device: ``txqueuelen`` packets (pfifo) or
``txqueuelen × MTU`` bytes (bfifo); a ``limit`` of 0 is allowed and drops everything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from ..tcspec import QdiscSpec, Words
from ..units import format_size, parse_size
from .runtime import SIZE, BuildContext, Runtime, runtime_for

__all__ = ["Pfifo", "Bfifo"]


def _limit(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or not 0 <= int(value) <= 0xFFFFFFFF:
        raise ConfigError(f"{what}: limit {value!r}: expected 0 … 4294967295")
    return int(value)


@dataclass(frozen=True)
class Pfifo(QdiscSpec):
    """``pfifo [limit PACKETS]``.

    Examples
    --------
    >>> Pfifo(limit=50).to_tc()
    'pfifo limit 50'
    >>> Pfifo.from_tc("tc qdisc add dev eth0 root pfifo limit 50") == Pfifo(limit=50)
    True
    """

    kind: ClassVar[str] = "pfifo"
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _limit(self.limit, "pfifo"))

    def options(self) -> list[str]:
        return [] if self.limit is None else ["limit", str(self.limit)]

    @classmethod
    def parse_options(cls, words: Sequence[str], **context) -> Pfifo:
        w = Words(words, "pfifo")
        limit = None
        for word in w:
            if word == "limit":
                limit = w.number("limit")
            else:
                raise w.unknown(word)
        return cls(limit=limit)

    def packets(self, ctx: BuildContext) -> int:
        """The effective limit in packets."""
        return ctx.txqueuelen if self.limit is None else self.limit


@dataclass(frozen=True)
class Bfifo(QdiscSpec):
    """``bfifo [limit BYTES]``.

    Examples
    --------
    >>> Bfifo(limit=30 * 1024).to_tc()
    'bfifo limit 30kb'
    >>> Bfifo.from_tc("bfifo limit 30kb").limit
    30720
    """

    kind: ClassVar[str] = "bfifo"
    limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _limit(self.limit, "bfifo"))

    def options(self) -> list[str]:
        return [] if self.limit is None else ["limit", format_size(self.limit)]

    @classmethod
    def parse_options(cls, words: Sequence[str], **context) -> Bfifo:
        w = Words(words, "bfifo")
        limit = None
        for word in w:
            if word == "limit":
                limit = parse_size(w.value("limit"), "bfifo limit")
            else:
                raise w.unknown(word)
        return cls(limit=limit)

    def bytes(self, ctx: BuildContext) -> int:
        """The effective limit in bytes (``txqueuelen × psched_mtu`` when not given)."""
        return ctx.txqueuelen * ctx.mtu_bytes if self.limit is None else self.limit


@runtime_for(Pfifo)
class PfifoRuntime(Runtime):
    """Tail drop beyond ``limit`` packets."""

    __slots__ = ("q", "limit")

    def __init__(self, spec: Pfifo, ctx: BuildContext, handle: str | None = None) -> None:
        super().__init__("pfifo")
        self.q: deque = deque()
        self.limit = spec.packets(ctx)

    def enqueue(self, pkt: list, now: float) -> None:
        if self.qlen >= self.limit:
            self.drop(pkt, now)
            return
        self.q.append(pkt)
        self.qlen += 1

    def dequeue(self, now: float):
        if self.qlen:
            self.qlen -= 1
            return self.q.popleft()
        return None

    def snapshot(self):
        if self.q:
            yield 0, list(self.q)

    def stats(self) -> dict:
        return {**super().stats(), "limit": self.limit}


@runtime_for(Bfifo)
class BfifoRuntime(Runtime):
    """Tail drop when the packet would take the backlog beyond ``limit`` bytes."""

    __slots__ = ("q", "limit", "backlog")

    def __init__(self, spec: Bfifo, ctx: BuildContext, handle: str | None = None) -> None:
        super().__init__("bfifo")
        self.q: deque = deque()
        self.limit = spec.bytes(ctx)
        self.backlog = 0

    def enqueue(self, pkt: list, now: float) -> None:
        if self.backlog + pkt[SIZE] > self.limit:
            self.drop(pkt, now)
            return
        self.q.append(pkt)
        self.qlen += 1
        self.backlog += pkt[SIZE]

    def dequeue(self, now: float):
        if self.qlen:
            self.qlen -= 1
            pkt = self.q.popleft()
            self.backlog -= pkt[SIZE]
            return pkt
        return None

    def snapshot(self):
        if self.q:
            yield 0, list(self.q)

    def stats(self) -> dict:
        return {**super().stats(), "limit_bytes": self.limit, "backlog_bytes": self.backlog}
