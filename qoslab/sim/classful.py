"""Class splits for "latency-sensitive traffic first": ``prio`` bands and an HTB tree.

Flows are sorted into classes by matching their outer header fields (``proto``, ``tos``,
``dport`` …, first match wins, the last class is the default), like ``u32`` filters would.

HTB (simplified, per ``sch_htb.c``'s modes): every class has a token bucket at ``rate`` and
one at ``ceil``; the parent has one at the parent rate. A backlogged class whose rate tokens
and ceil tokens are both >= 0 may send (``HTB_CAN_SEND``); otherwise, with ceil tokens >= 0
and parent tokens >= 0, it may borrow (``HTB_MAY_BORROW``). Among the classes of one mode the
lowest ``prio`` goes first, round robin within a prio. A packet charges its class's two
buckets and the parent's. DRR quanta within a prio and multi-level trees are not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ._qdisc import BuildContext, RuntimeQdisc
from .fifo import Pfifo

__all__ = ["HtbClass", "HtbTree", "Prio", "match_flows"]


def match_flows(flows: pd.DataFrame, match: dict) -> np.ndarray:
    """Boolean per flow: every ``column: value`` of ``match`` holds (a tuple: any of them).

    ``tos`` compares the TOS bits without ECN (``tos & 0xfc``) unless the value has ECN bits.

    >>> f = pd.DataFrame({"proto": [1, 6], "tos": [0x10, 0x02]})
    >>> match_flows(f, {"proto": 1}).tolist(), match_flows(f, {"tos": 0}).tolist()
    ([True, False], [False, True])
    """
    ok = np.ones(len(flows), dtype=bool)
    for col, want in match.items():
        if col not in flows.columns:
            raise ConfigError(f"class match: no flow column {col!r}; have {list(flows.columns)}")
        values = flows[col].astype("object").to_numpy()
        wants = want if isinstance(want, (tuple, list, set)) else (want,)
        if col == "tos" and all(isinstance(w, int) and w & 3 == 0 for w in wants):
            values = np.array([None if v is None or pd.isna(v) else int(v) & 0xFC for v in values],
                              dtype=object)
        ok &= np.array([v in wants for v in values], dtype=bool)
    return ok


def _classes_of(flows: pd.DataFrame, matches: list[dict | None]) -> list[int]:
    out = np.full(len(flows), len(matches) - 1, dtype=np.int64)
    assigned = np.zeros(len(flows), dtype=bool)
    for i, m in enumerate(matches):
        if m is None:
            continue
        hit = match_flows(flows, m) & ~assigned
        out[hit] = i
        assigned |= hit
    return out.tolist()


@dataclass(frozen=True)
class HtbClass:
    """One HTB leaf class: ``rate``/``ceil`` in bit/s, ``prio`` (0 first), a leaf qdisc and a
    ``match`` (``None`` for the default class)."""

    name: str
    rate: float
    ceil: float | None = None
    prio: int = 0
    qdisc: object = field(default_factory=lambda: Pfifo(limit=1000))
    match: dict | None = None
    burst: int | None = None


@dataclass(frozen=True)
class HtbTree:
    """An HTB root class at ``rate`` with leaf classes (the last one is the default).

    Examples
    --------
    >>> t = HtbTree(rate=900_000, classes=(HtbClass("ping", 300_000, 900_000, 0, match={"proto": 1}),
    ...                                    HtbClass("bulk", 600_000, 900_000, 1)))
    >>> print(t.to_tc())
    htb root rate 900000bit
      class ping: rate 300000bit ceil 900000bit prio 0 match {'proto': 1} leaf pfifo limit 1000
      class bulk: rate 600000bit ceil 900000bit prio 1 match default leaf pfifo limit 1000
    """

    rate: float
    classes: tuple[HtbClass, ...]
    burst: int | None = None

    def __post_init__(self) -> None:
        if not self.classes:
            raise ConfigError("htb: at least one class is needed")
        if not self.rate > 0 or any(not c.rate > 0 for c in self.classes):
            raise ConfigError("htb: every rate must be > 0 bit/s")

    def to_tc(self) -> str:
        lines = [f"htb root rate {self.rate:g}bit"]
        lines += [f"  class {c.name}: rate {c.rate:g}bit ceil {(c.ceil or c.rate):g}bit "
                  f"prio {c.prio} match {c.match or 'default'} leaf {c.qdisc.to_tc()}"
                  for c in self.classes]
        return "\n".join(lines)

    def build(self, ctx: BuildContext) -> _HtbRuntime:
        return _HtbRuntime(self, ctx)


class _Bucket:
    __slots__ = ("rate", "burst", "tokens", "t")

    def __init__(self, rate_bps: float, burst: float) -> None:
        self.rate = rate_bps / 8.0
        self.burst = burst
        self.tokens = burst
        self.t = 0.0

    def update(self, now: float) -> float:
        tok = self.tokens + (now - self.t) * self.rate
        self.tokens = tok if tok < self.burst else self.burst
        self.t = now
        return self.tokens

    def ready_at(self, now: float) -> float:
        return now if self.tokens >= 0 else now + max((-self.tokens) / self.rate, 1e-6)


def _default_burst(rate: float, mtu: int) -> float:
    return rate / 8 / 1000 + mtu + 14


class _HtbRuntime(RuntimeQdisc):
    __slots__ = ("spec", "leaves", "rate_b", "ceil_b", "parent", "prio", "class_of", "rr")

    def __init__(self, spec: HtbTree, ctx: BuildContext) -> None:
        super().__init__("htb")
        self.spec = spec
        self.leaves = [c.qdisc.build(ctx) for c in spec.classes]
        mtu = ctx.mtu_bytes - 14
        self.rate_b = [_Bucket(c.rate, c.burst or _default_burst(c.rate, mtu))
                       for c in spec.classes]
        self.ceil_b = [_Bucket(c.ceil or c.rate, c.burst or _default_burst(c.ceil or c.rate, mtu))
                       for c in spec.classes]
        self.parent = _Bucket(spec.rate, spec.burst or _default_burst(spec.rate, mtu))
        self.prio = [c.prio for c in spec.classes]
        self.class_of = _classes_of(ctx.flows, [c.match for c in spec.classes])
        self.rr = 0

    def enqueue(self, pkt, t: float) -> None:
        leaf = self.leaves[self.class_of[pkt[0]]]
        before = leaf.qlen
        leaf.enqueue(pkt, t)
        self.qlen += leaf.qlen - before

    def drop(self, pkt, t: float) -> None:  # leaves drop themselves
        super().drop(pkt, t)

    def _pick(self, candidates: list[int]) -> int:
        best = min(self.prio[i] for i in candidates)
        same = [i for i in candidates if self.prio[i] == best]
        n = len(self.leaves)
        for k in range(n):
            i = (self.rr + k) % n
            if i in same:
                self.rr = (i + 1) % n
                return i
        return same[0]  # pragma: no cover

    def dequeue(self, t: float):
        if not self.qlen:
            self.next_wake = math.inf
            return None
        parent_tok = self.parent.update(t)
        backlogged = [i for i, leaf in enumerate(self.leaves) if leaf.qlen]
        can, borrow = [], []
        for i in backlogged:
            r = self.rate_b[i].update(t)
            c = self.ceil_b[i].update(t)
            if c >= 0 and r >= 0:
                can.append(i)
            elif c >= 0 and parent_tok >= 0:
                borrow.append(i)
        chosen = can or borrow
        while chosen:
            i = self._pick(chosen)
            leaf = self.leaves[i]
            pkt = leaf.dequeue(t)
            if pkt is None:  # e.g. fq_codel dropped the rest
                chosen.remove(i)
                continue
            size = pkt[1]
            self.rate_b[i].tokens -= size
            self.ceil_b[i].tokens -= size
            self.parent.tokens -= size
            self._resync()
            return pkt
        self._resync()
        wake = math.inf
        for i in backlogged:
            own = max(self.rate_b[i].ready_at(t), self.ceil_b[i].ready_at(t))
            lend = max(self.ceil_b[i].ready_at(t), self.parent.ready_at(t))
            wake = min(wake, own, lend)
        self.next_wake = wake if wake > t + 1e-9 else t + 1e-6
        return None

    def _resync(self) -> None:
        self.qlen = sum(leaf.qlen for leaf in self.leaves)

    def on_hash_change(self, seed_index: int, t: float) -> None:
        for leaf in self.leaves:
            leaf.on_hash_change(seed_index, t)

    def snapshot(self):
        for i, leaf in enumerate(self.leaves):
            for _, pkts in leaf.snapshot():
                yield i, pkts

    def stats(self) -> dict:
        out = super().stats()
        out["drops"] = sum(leaf.drops for leaf in self.leaves)
        out["classes"] = [dict(name=c.name, **leaf.stats())
                          for c, leaf in zip(self.spec.classes, self.leaves, strict=True)]
        return out


@dataclass(frozen=True)
class Prio:
    """``prio``: strict priority bands (band 0 first), each with its own child qdisc.

    ``matches`` sorts flows into bands (first match wins, the last band is the default);
    with ``matches=None`` the band comes from the TOS byte through the default priomap
    (:func:`qoslab.hashing.pfifo_fast_band`, ``table`` old/new).
    """

    children: tuple = (Pfifo(), Pfifo(), Pfifo())
    matches: tuple | None = None
    table: str = "new"

    def to_tc(self) -> str:
        return f"prio bands {len(self.children)}: " + "; ".join(c.to_tc() for c in self.children)

    def build(self, ctx: BuildContext) -> _PrioRuntime:
        if self.matches is None:
            from ..hashing import pfifo_fast_band

            tos = ctx.flows["tos"].astype("int64").to_numpy()
            bands = np.minimum(np.asarray(pfifo_fast_band(tos, table=self.table)),
                               len(self.children) - 1).tolist()
        else:
            bands = _classes_of(ctx.flows, list(self.matches))
        return _PrioRuntime([c.build(ctx) for c in self.children], bands)


class _PrioRuntime(RuntimeQdisc):
    __slots__ = ("children", "band_of")

    def __init__(self, children: list, band_of: list[int]) -> None:
        super().__init__("prio")
        self.children = children
        self.band_of = band_of

    def enqueue(self, pkt, t: float) -> None:
        child = self.children[self.band_of[pkt[0]]]
        before = child.qlen
        child.enqueue(pkt, t)
        self.qlen += child.qlen - before

    def dequeue(self, t: float):
        for child in self.children:
            if child.qlen:
                before = child.qlen
                pkt = child.dequeue(t)
                self.qlen -= before - child.qlen
                if pkt is not None:
                    return pkt
        return None

    def on_hash_change(self, seed_index: int, t: float) -> None:
        for child in self.children:
            child.on_hash_change(seed_index, t)

    def snapshot(self):
        for i, child in enumerate(self.children):
            for _, pkts in child.snapshot():
                yield i, pkts

    def stats(self) -> dict:
        out = super().stats()
        out["drops"] = sum(c.drops for c in self.children)
        out["bands"] = [c.stats() for c in self.children]
        return out
