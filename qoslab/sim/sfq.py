"""SFQ as the kernel runs it: slots, the hash → slot table, round robin with allotments.

Two schedulers, chosen by the kernel profile (:data:`SFQ_SCHEDULER`):

``classic`` (``sch_sfq.c`` up to 2.6.3x; read in the 2.6.32 source)
    128 slots; ``limit`` (≤ 127) caps each slot and the total. A flow that becomes active
    is linked behind the tail **without resetting its slot's allotment**: the allotment a
    slot earned while a previous flow used it carries over. Ping slots empty after every
    packet, so each turn adds a quantum that is never spent; when a perturbation moves a
    saturating flow to a fresh slot, the free list (LIFO) hands it such a recently emptied
    ping slot, and with thousands of bytes of stale allotment it is served alone until
    they are used up — the latency spikes on the perturb grid that the "Linux SFQ
    experimentation" seed measured. There is no rehash: packets queued before a
    perturbation stay in their old slot.
``modern`` (allotment fixed ~2.6.38, "sch_sfq: fix allot handling", **UNVERIFIED** version;
    rehash from 3.3)
    ``flows`` slots, ``depth`` per slot, ``limit`` total, ``headdrop``; a new flow gets one
    quantum; the perturb timer rehashes the queued packets when no filter is attached and
    the profile does (``Sfq.rehash_on_perturb``).

The hash itself is never computed here: the bucket of every flow for each seed comes from
:meth:`qoslab.hashing.Sfq.bucket` (one vectorised call per seed), including the external
classifier override (``-1``: the packet is dropped, as a classid outside ``1..divisor`` is).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ._qdisc import BuildContext, RuntimeQdisc

__all__ = ["SfqQdisc", "SFQ_SCHEDULER", "scheduler_of"]

#: Kernel profile -> SFQ scheduler generation (see the module docstring). Profiles not
#: listed are modern.
SFQ_SCHEDULER: dict[str, str] = {
    "sfq-fold-2.6.2x": "classic",
    "classic-2.6.3x": "classic",
    "tunnel-patch": "classic",
}

#: Compile-time slot count of the classic SFQ (``SFQ_DEPTH``).
CLASSIC_SLOTS = 128


def scheduler_of(profile: str) -> str:
    """Return ``"classic"`` or ``"modern"`` for a kernel profile name.

    >>> scheduler_of("classic-2.6.3x"), scheduler_of("5.18+")
    ('classic', 'modern')
    """
    return SFQ_SCHEDULER.get(profile, "modern")


@dataclass(frozen=True)
class SfqQdisc:
    """``tc qdisc add ... sfq [limit N] [depth N] [divisor N] [perturb S] [quantum B] [headdrop]``.

    Parameters
    ----------
    limit, depth, flows, divisor, quantum, headdrop, perturb
        As ``tc-sfq(8)``; ``quantum=None`` is ``psched_mtu`` (MTU + 14).
    profile
        Kernel profile name (:data:`qoslab.hashing.PROFILES`): selects the hash and the
        scheduler generation.
    classifier
        A :class:`qoslab.FlowClassifier` attached as filter (``tc filter ... flow ...``).
    handle
        The qdisc handle (``"1:"``): a packet whose ``skb->priority`` has this major and a
        minor in ``1..divisor`` goes to bucket ``minor - 1`` (set ``priority`` on a traffic
        spec).

    Examples
    --------
    >>> SfqQdisc(limit=10, perturb=5, profile="classic-2.6.3x").to_tc()
    'sfq limit 10 perturb 5'
    """

    limit: int = 127
    perturb: float = 0
    depth: int = 127
    flows: int = 128
    divisor: int = 1024
    quantum: int | None = None
    headdrop: bool = False
    profile: str = "5.18+"
    classifier: Any = None
    handle: str | None = None

    def __post_init__(self) -> None:
        if self.limit < 2:
            raise ConfigError(f"sfq: limit must be >= 2 (the kernel rejects 1), got {self.limit}")
        if self.perturb < 0:
            raise ConfigError(f"sfq: perturb must be >= 0 seconds, got {self.perturb}")
        if self.divisor < 1 or self.divisor & (self.divisor - 1) or self.divisor > 65536:
            raise ConfigError(f"sfq: divisor must be a power of 2 up to 65536, got {self.divisor}")
        if self.quantum is not None and self.quantum < 1:
            raise ConfigError(f"sfq: quantum must be positive, got {self.quantum}")

    def to_tc(self) -> str:
        parts = ["sfq", f"limit {self.limit}"]
        if self.perturb:
            parts.append(f"perturb {self.perturb:g}")
        if scheduler_of(self.profile) == "modern":
            if self.depth != 127:
                parts.append(f"depth {self.depth}")
            if self.divisor != 1024:
                parts.append(f"divisor {self.divisor}")
            if self.headdrop:
                parts.append("headdrop")
        if self.quantum:
            parts.append(f"quantum {self.quantum}")
        return " ".join(parts)

    def hashing(self):
        """The :class:`qoslab.Sfq` that computes this qdisc's buckets."""
        from ..hashing import Sfq

        return Sfq(divisor=self.divisor, perturb=self.perturb or None, limit=self.limit,
                   depth=self.depth, flows=self.flows, headdrop=self.headdrop,
                   quantum=self.quantum, profile=self.profile, classifier=self.classifier,
                   handle=self.handle)

    def build(self, ctx: BuildContext) -> SfqRuntime:
        return SfqRuntime(self, ctx)


class SfqRuntime(RuntimeQdisc):
    """The runtime SFQ (see the module docstring for the two generations)."""

    __slots__ = ("spec", "hsfq", "frame", "seeds", "classic", "nslots", "limit", "depth",
                 "quantum", "headdrop", "ht", "slots", "slot_hash", "allot", "nxt", "tail",
                 "free", "touch", "tick", "active", "fbucket", "rehash", "seed_index",
                 "reorder_risk", "bucket_cache")

    def __init__(self, spec: SfqQdisc, ctx: BuildContext) -> None:
        super().__init__("sfq")
        self.spec = spec
        self.hsfq = spec.hashing()
        self.frame = ctx.flows
        self.seeds = list(ctx.seeds)
        self.classic = scheduler_of(spec.profile) == "classic"
        # limit, depth and slot count as the profile's kernel normalises them (hashing.Sfq)
        self.limit = int(self.hsfq.limit)
        self.nslots = int(self.hsfq.flows)
        # the classic enqueue compares each slot with the limit itself
        self.depth = self.limit if self.classic else int(self.hsfq.depth)
        self.quantum = int(spec.quantum or ctx.mtu_bytes)
        self.headdrop = bool(spec.headdrop) and not self.classic
        self.rehash = (not self.classic and spec.classifier is None
                       and bool(getattr(self.hsfq, "rehash_on_perturb", True)))
        self.ht: dict[int, int] = {}
        self.slots = [deque() for _ in range(self.nslots)]
        self.slot_hash = [-1] * self.nslots
        self.allot = [0] * self.nslots
        self.nxt = [0] * self.nslots
        self.tail = -1
        # dep[0] is a LIFO: sfq_link puts a slot that reaches length 0 at the list head.
        self.free = list(range(self.nslots))
        self.touch = [0] * self.nslots
        self.tick = 0
        self.active: set[int] = set()
        self.bucket_cache: dict[int, list[int]] = {}
        self.seed_index = 0
        self.fbucket = self._buckets(0)

    # -- hashing ---------------------------------------------------------------------------
    def _buckets(self, index: int) -> list[int]:
        seed = self.seeds[index]
        cached = self.bucket_cache.get(seed)
        if cached is None:
            if self.hsfq.classifier is not None:
                b = self.hsfq.bucket(self.frame, hashrnd=seed)
            else:
                b = self.hsfq.bucket(self.frame, seed=seed)
            b = np.asarray(b, dtype=np.int64)
            cached = b.tolist()
            self.bucket_cache[seed] = cached
        return cached

    def on_hash_change(self, seed_index: int, t: float) -> None:
        self.seed_index = seed_index
        self.fbucket = self._buckets(seed_index)
        if self.rehash and self.qlen:
            self._rehash(t)

    def set_classifier(self, classifier, seeds: list[int] | None = None) -> None:
        """Attach or replace the external classifier (``tc filter replace``); queued packets
        stay where they are."""
        import dataclasses

        self.spec = dataclasses.replace(self.spec, classifier=classifier)
        self.hsfq = self.spec.hashing()
        self.rehash = self.rehash and classifier is None
        if seeds is not None:
            self.seeds = list(seeds)
        self.bucket_cache.clear()
        self.fbucket = self._buckets(self.seed_index)

    # -- slot bookkeeping ------------------------------------------------------------------
    def _link_new_flow(self, x: int) -> None:
        if self.tail < 0:
            self.nxt[x] = x
            self.allot[x] = self.quantum
        else:
            self.nxt[x] = self.nxt[self.tail]
            self.nxt[self.tail] = x
            if not self.classic:
                self.allot[x] = self.quantum
        self.tail = x

    def enqueue(self, pkt, t: float) -> None:
        h = self.fbucket[pkt[0]]
        if h < 0:
            self.drop(pkt, t)
            return
        ht = self.ht
        x = ht.get(h)
        if x is None:
            if not self.free:
                self.drop(pkt, t)
                return
            x = self.free.pop()
            ht[h] = x
            self.slot_hash[x] = h
        q = self.slots[x]
        if len(q) >= self.depth:
            if not self.headdrop:
                self.drop(pkt, t)
                return
            head = q.popleft()
            q.append(pkt)
            self.drop(head, t)
            return
        q.append(pkt)
        self.tick += 1
        self.touch[x] = self.tick
        if len(q) == 1:
            self.active.add(x)
            if self.classic and self.tail < 0:
                self.tail = x
                self.nxt[x] = x
                self.allot[x] = self.quantum
            else:
                self._link_new_flow(x)
        self.qlen += 1
        if self.qlen > self.limit:
            self._drop_longest(t)

    def _drop_longest(self, t: float) -> None:
        best, best_key = -1, (0, 0)
        slots, touch = self.slots, self.touch
        for x in self.active:
            key = (len(slots[x]), touch[x])
            if key > best_key:
                best, best_key = x, key
        if best < 0:
            return
        if best_key[0] > 1:
            q = slots[best]
            pkt = q.popleft() if self.headdrop else q.pop()
            self.tick += 1
            touch[best] = self.tick
        else:
            # "ALL THE SLOTS HAVE LENGTH 1": drop the slot next in the round.
            d = self.nxt[self.tail]
            nd = self.nxt[d]
            if d == self.tail:
                self.tail = -1
            else:
                self.nxt[self.tail] = nd
                if self.classic:
                    self.allot[nd] += self.quantum
            pkt = slots[d].pop()
            self._emptied(d)
        self.qlen -= 1
        self.drop(pkt, t)

    def _emptied(self, x: int) -> None:
        self.active.discard(x)
        del self.ht[self.slot_hash[x]]
        self.free.append(x)

    def dequeue(self, t: float):
        tail = self.tail
        if tail < 0:
            return None
        nxt, allot = self.nxt, self.allot
        a = nxt[tail]
        if not self.classic:
            while allot[a] <= 0:
                tail = self.tail = a
                allot[a] += self.quantum
                a = nxt[a]
        q = self.slots[a]
        pkt = q.popleft()
        self.qlen -= 1
        size = pkt[1]
        if not q:
            self._emptied(a)
            na = nxt[a]
            if na == a:
                self.tail = -1
                return pkt
            nxt[tail] = na
            if self.classic:
                allot[na] += self.quantum
        else:
            self.tick += 1
            self.touch[a] = self.tick
            allot[a] -= size
            if self.classic and allot[a] <= 0:
                self.tail = a
                allot[nxt[a]] += self.quantum
        return pkt

    def _rehash(self, t: float) -> None:
        """``sfq_rehash``: take every queued packet out slot by slot, re-enqueue by new hash."""
        pending = []
        for i in range(self.nslots):
            q = self.slots[i]
            if q:
                pending.extend(q)
                q.clear()
                self.active.discard(i)
                del self.ht[self.slot_hash[i]]
                self.free.append(i)
        self.tail = -1
        self.qlen = 0
        fb = self.fbucket
        for pkt in pending:
            h = fb[pkt[0]]
            x = self.ht.get(h) if h >= 0 else None
            if x is None:
                if h < 0 or not self.free:
                    self.drop(pkt, t)
                    continue
                x = self.free.pop()
                self.ht[h] = x
                self.slot_hash[x] = h
            q = self.slots[x]
            if len(q) >= self.depth:
                self.drop(pkt, t)
                continue
            q.append(pkt)
            self.qlen += 1
            self.tick += 1
            self.touch[x] = self.tick
            if len(q) == 1:
                self.active.add(x)
                self._link_new_flow(x)

    def snapshot(self):
        for x in sorted(self.active):
            yield self.slot_hash[x], list(self.slots[x])

    def stats(self) -> dict:
        out = super().stats()
        out.update(scheduler="classic" if self.classic else "modern", limit=self.limit,
                   depth=self.depth, slots=self.nslots, quantum=self.quantum,
                   rehash_on_perturb=self.rehash)
        return out
