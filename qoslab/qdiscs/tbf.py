"""TBF (``net/sched/sch_tbf.c``): a token bucket in front of a child qdisc (bfifo by default).

A packet leaves only when the bucket holds all its bytes; like the kernel
(``qdisc_peek_dequeued``) the head packet is taken out of the child and held meanwhile. Tokens
refill at ``rate`` up to ``burst`` bytes; a packet larger than ``burst`` can never leave and is
dropped at enqueue (``max_size``). Without a child, the child is ``bfifo limit LIMIT``;
``latency`` is turned into that limit as tc does (``rate × latency + burst``). ``peakrate`` is
not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import ConfigError
from ..tcspec import QdiscSpec, Words, parse_handle
from ..units import format_rate, format_size, format_time, parse_rate, parse_size, parse_time
from .fifo import Bfifo
from .runtime import SIZE, BuildContext, Runtime, build, runtime_for

__all__ = ["Tbf", "Bucket", "MIN_WAIT"]

#: Waits shorter than this (seconds) are not scheduled: float time cannot resolve them late
#: in a run, and a nanosecond of credit changes nothing measurable.
MIN_WAIT = 1e-9


@dataclass(frozen=True)
class Tbf(QdiscSpec):
    """``tbf rate RATE burst BYTES (limit BYTES | latency TIME)`` with an optional child.

    Examples
    --------
    >>> t = Tbf(rate=1e6, burst=10 * 1024, limit=50 * 1024)
    >>> t.to_tc()
    'tbf rate 1mbit burst 10kb limit 50kb'
    >>> Tbf.from_tc(t.to_tc()) == t
    True
    >>> Tbf(rate=1e6, burst=10 * 1024, latency=0.05).limit_bytes()
    16490
    """

    kind: ClassVar[str] = "tbf"
    rate: float = 1e6
    burst: int = 10 * 1024
    limit: int | None = None
    latency: float | None = None
    child: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", parse_rate(self.rate, "tbf rate"))
        object.__setattr__(self, "burst", parse_size(self.burst, "tbf burst"))
        if self.burst <= 0:
            raise ConfigError("tbf: burst must be > 0 bytes")
        if (self.limit is None) == (self.latency is None):
            raise ConfigError("tbf: give exactly one of limit (bytes) or latency (seconds), "
                              "as tc requires")
        if self.limit is not None:
            object.__setattr__(self, "limit", parse_size(self.limit, "tbf limit"))
        if self.latency is not None:
            object.__setattr__(self, "latency", parse_time(self.latency, "tbf latency"))

    def limit_bytes(self) -> int:
        """The child bfifo's limit: ``limit``, or tc's ``rate × latency + burst``."""
        if self.limit is not None:
            return self.limit
        return int(self.rate / 8 * self.latency + self.burst)

    def options(self) -> list[str]:
        out = ["rate", format_rate(self.rate), "burst", format_size(self.burst)]
        if self.limit is not None:
            out += ["limit", format_size(self.limit)]
        else:
            out += ["latency", format_time(self.latency)]
        return out

    @classmethod
    def parse_options(cls, words: Sequence[str], **context) -> Tbf:
        w = Words(words, "tbf")
        kw: dict[str, Any] = {}
        for word in w:
            if word == "rate":
                kw["rate"] = parse_rate(w.value(word), "tbf rate")
            elif word in ("burst", "buffer", "maxburst"):
                kw["burst"] = parse_size(w.value(word).split("/")[0], "tbf burst")
            elif word == "limit":
                kw["limit"] = parse_size(w.value(word), "tbf limit")
            elif word == "latency":
                kw["latency"] = parse_time(w.value(word), "tbf latency")
            else:
                raise w.unknown(word)
        if "rate" not in kw or "burst" not in kw:
            raise ConfigError("tbf: 'rate' and 'burst' are required")
        return cls(**kw)

    def graft(self, children: dict[str, Any], filters: list, handle: str) -> Tbf:
        """This TBF with the child qdisc found under ``MAJOR:1`` (see :mod:`.tree`)."""
        child = children.get(f"{handle.split(':')[0]}:1")
        return self if child is None else replace(self, child=child)

    def commands(self, dev: str, parent: str = "root", handle: str | None = None
                 ) -> list[list[str]]:
        handle = handle or "1:"
        out = super().commands(dev, parent, handle)
        if self.child is not None:
            major = handle.split(":")[0]
            out += self.child.commands(dev, f"{major}:1", "10:")
        return out

    def child_specs(self) -> tuple:
        return (self.child,) if self.child is not None else ()


class Bucket:
    """A token bucket in bytes: ``rate`` bytes/s up to ``burst``; may be driven negative."""

    __slots__ = ("rate", "burst", "tokens", "t")

    def __init__(self, rate_bps: float, burst: float) -> None:
        self.rate = rate_bps / 8.0
        self.burst = float(burst)
        self.tokens = float(burst)
        self.t = -math.inf  # full since ever (a replay's clock may start below 0)

    def update(self, now: float) -> float:
        """Refill up to ``now``; return the tokens."""
        tok = self.tokens + (now - self.t) * self.rate
        self.tokens = tok if tok < self.burst else self.burst
        self.t = now
        return self.tokens

    def wait_for(self, need: float) -> float:
        """Seconds until the bucket holds ``need`` bytes (0 if it does)."""
        return max(0.0, (need - self.tokens) / self.rate)


@runtime_for(Tbf)
class TbfRuntime(Runtime):
    """Token bucket holding the head packet until it fits (see the module docstring)."""

    __slots__ = ("child", "bucket", "held", "max_size")

    def __init__(self, spec: Tbf, ctx: BuildContext, handle: str | None = None) -> None:
        self.child = build(spec.child if spec.child is not None
                           else Bfifo(limit=spec.limit_bytes()), ctx, "10:")
        super().__init__(f"tbf+{self.child.name}")
        self.bucket = Bucket(spec.rate, spec.burst)
        self.held: list | None = None
        self.max_size = spec.burst

    def enqueue(self, pkt: list, now: float) -> None:
        if pkt[SIZE] > self.max_size:
            self.drop(pkt, now)
            return
        before = self.child.qlen
        self.child.enqueue(pkt, now)
        self.qlen += self.child.qlen - before

    def dequeue(self, now: float):
        held = self.held
        if held is None:
            if not self.child.qlen:
                self.next_wake = math.inf
                return None
            held = self.held = self.child.dequeue(now)
            if held is None:
                self.qlen = self.child.qlen
                self.next_wake = math.inf
                return None
            self.qlen = self.child.qlen + 1  # the held packet still counts, as in the kernel
        bucket = self.bucket
        bucket.update(now)
        need = float(held[SIZE])
        if bucket.tokens < need:
            wait = bucket.wait_for(need)
            if wait > MIN_WAIT:
                self.next_wake = now + wait
                return None
        self.held = None
        bucket.tokens -= need
        self.qlen = self.child.qlen
        return held

    def children(self) -> list:
        return [self.child]

    def replace_child(self, parent: str | None, spec: Any, ctx: BuildContext, now: float
                      ) -> bool:
        if parent is not None and parse_handle(parent) & 0xFFFF == 1:
            old = self.child
            self.child = build(spec, ctx, "10:")
            self.purge(old, now)
            self.qlen = self.child.qlen + (self.held is not None)
            return True
        return super().replace_child(parent, spec, ctx, now)

    def on_hash_change(self, seed_index: int, now: float) -> None:
        self.child.on_hash_change(seed_index, now)

    def set_filter(self, classifier: Any, now: float) -> bool:
        return self.child.set_filter(classifier, now)

    def snapshot(self):
        return self.child.snapshot()  # the held head packet is in the shaper, not queued

    def stats(self) -> dict:
        return {**self.child.stats(), "shaper": "tbf"}
