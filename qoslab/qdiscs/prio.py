"""prio (``net/sched/sch_prio.c``): strict-priority bands, each with its own child qdisc.

``prio_classify``: a u32 filter's class ``H:n`` sends a packet to band ``n - 1``; without a
matching filter the band is ``priomap[skb->priority & 15]`` (``skb->priority`` from the TOS byte
through the era's table, :func:`qoslab.hashing.skb_priority`). Band 0 is always served first.
Children default to pfifo (limit ``txqueuelen``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import ConfigError
from ..tcspec import QdiscSpec, Words, format_handle, parse_handle
from .fifo import Pfifo
from .pfifo_fast import bands_of
from .runtime import CLS, FID, BuildContext, Runtime, build, runtime_for
from .u32 import U32Filter, classify_flows

__all__ = ["Prio", "DEFAULT_PRIOMAP"]

#: ``prio``'s default priomap (the same table as pfifo_fast's ``prio2band``).
DEFAULT_PRIOMAP = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)


@dataclass(frozen=True)
class Prio(QdiscSpec):
    """``prio [bands N] [priomap P0 … P15]`` with children under ``H:1`` … ``H:N`` and
    u32 filters.

    Examples
    --------
    >>> Prio().to_tc()
    'prio bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1'
    >>> p = Prio(children=(Pfifo(limit=10), None, None))
    >>> Prio.from_tc(p.to_tc()) == p
    True
    """

    kind: ClassVar[str] = "prio"
    uses_profile: ClassVar[bool] = True
    bands: int = 3
    priomap: tuple[int, ...] = DEFAULT_PRIOMAP
    children: tuple = ()
    filters: tuple = ()
    profile: str = "5.18+"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", int(self.bands))
        if not 2 <= self.bands <= 16:
            raise ConfigError(f"prio: bands {self.bands}: expected 2 … 16")
        object.__setattr__(self, "priomap", tuple(int(p) for p in self.priomap))
        kids = tuple(self.children)
        object.__setattr__(self, "children", kids + (None,) * (self.bands - len(kids)))
        object.__setattr__(self, "filters", tuple(self.filters))
        if len(self.priomap) != 16 or not all(0 <= p < self.bands for p in self.priomap):
            raise ConfigError(f"prio: priomap needs 16 bands each below {self.bands}")
        if len(self.children) != self.bands:
            raise ConfigError(f"prio: {len(kids)} children for {self.bands} bands")

    def options(self) -> list[str]:
        return ["bands", str(self.bands), "priomap", *map(str, self.priomap)]

    @classmethod
    def parse_options(cls, words: Sequence[str], profile: str = "5.18+", **context) -> Prio:
        w = Words(words, "prio")
        bands, priomap = 3, None
        for word in w:
            if word == "bands":
                bands = w.number(word)
            elif word == "priomap":
                priomap = [w.number(word) for _ in range(16)]
            else:
                raise w.unknown(word)
        return cls(bands, tuple(priomap) if priomap else DEFAULT_PRIOMAP, profile=profile)

    def graft(self, children: dict[str, Any], filters: list, handle: str) -> Prio:
        major = parse_handle(handle) & 0xFFFF0000
        kids = [children.pop(format_handle(major | (b + 1)), None) for b in range(self.bands)]
        if children:
            raise ConfigError(f"prio {handle}: no band {', '.join(children)}")
        if any(not isinstance(f, U32Filter) for f in filters):
            raise ConfigError("prio: only u32 filters select bands in the model")
        return replace(self, children=tuple(kids), filters=tuple(filters))

    def commands(self, dev: str, parent: str = "root", handle: str | None = None
                 ) -> list[list[str]]:
        handle = handle or "1:"
        out = super().commands(dev, parent, handle)
        major = parse_handle(handle) & 0xFFFF0000
        for b, child in enumerate(self.children):
            if child is not None:
                out += child.commands(dev, format_handle(major | (b + 1)),
                                      f"{(b + 1) * 0x10:x}:")
        for f in self.filters:
            out += replace(f, parent=format_handle(major, qdisc=True)).commands(dev)
        return out

    def child_specs(self) -> tuple:
        return tuple(c for c in self.children if c is not None)

    def filter_specs(self) -> tuple:
        return self.filters

    def check(self, profile: Any = None) -> None:
        for child in self.child_specs():
            child.check(profile)


@runtime_for(Prio)
class PrioRuntime(Runtime):
    """Strict priority over the bands' children."""

    __slots__ = ("bands", "band_of")

    def __init__(self, spec: Prio, ctx: BuildContext, handle: str | None = "1:") -> None:
        super().__init__("prio")
        self.bands = [build(c if c is not None else Pfifo(), ctx, f"{(b + 1) * 0x10:x}:")
                      for b, c in enumerate(spec.children)]
        major = parse_handle(handle or "1:") & 0xFFFF0000
        index = {format_handle(major | (b + 1)): b for b in range(spec.bands)}

        def band(frame):
            by_map = bands_of(frame, spec.profile, spec.bands, spec.priomap)
            by_filter = classify_flows(frame, list(spec.filters), None)
            return [index.get(f, m) if f is not None else m
                    for f, m in zip(by_filter, by_map, strict=True)]

        self.band_of = ctx.flows.answer(("prio", self.uid), band)

    def enqueue(self, pkt: list, now: float) -> None:
        b = self.band_of[pkt[FID]]
        pkt[CLS] = b
        child = self.bands[b]
        before = child.qlen
        child.enqueue(pkt, now)
        self.qlen += child.qlen - before

    def dequeue(self, now: float):
        for child in self.bands:
            if child.qlen:
                before = child.qlen
                pkt = child.dequeue(now)
                self.qlen -= before - child.qlen
                if pkt is not None:
                    return pkt
        return None

    def on_hash_change(self, seed_index: int, now: float) -> None:
        for child in self.bands:
            child.on_hash_change(seed_index, now)
        self.qlen = sum(c.qlen for c in self.bands)

    def set_filter(self, classifier: Any, now: float) -> bool:
        taken = any([c.set_filter(classifier, now) for c in self.bands])
        self.qlen = sum(c.qlen for c in self.bands)
        return taken

    def children(self) -> list:
        return list(self.bands)

    def replace_child(self, parent: str | None, spec: Any, ctx: BuildContext, now: float
                      ) -> bool:
        if parent is not None:
            value = parse_handle(parent)
            b = (value & 0xFFFF) - 1
            if value & 0xFFFF0000 == parse_handle(self.handle or "1:") and \
                    0 <= b < len(self.bands):
                old = self.bands[b]
                self.bands[b] = build(spec, ctx, f"{(b + 1) * 0x10:x}:")
                self.purge(old, now)
                self.qlen = sum(c.qlen for c in self.bands)
                return True
        return super().replace_child(parent, spec, ctx, now)

    def snapshot(self):
        for i, child in enumerate(self.bands):
            for _, pkts in child.snapshot():
                yield i, pkts

    def stats(self) -> dict:
        out = super().stats()
        out["drops"] = self.drops + sum(c.drops for c in self.bands)
        out["bands"] = [c.stats() for c in self.bands]
        return out
