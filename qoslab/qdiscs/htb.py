"""HTB (``net/sched/sch_htb.c``): classes with a guaranteed rate, a ceiling, priorities.

Model (documented simplifications of ``sch_htb.c``):

* Every class has a token bucket at ``rate`` (depth ``burst``) and one at ``ceil`` (depth
  ``cburst``); tokens are bytes, refilled continuously, charged after a packet is sent (a class
  may go one packet negative, as HTB's do).
* A backlogged leaf whose rate and ceil buckets are both ≥ 0 may send (``HTB_CAN_SEND``);
  otherwise, with ceil ≥ 0 and its parent class's rate bucket ≥ 0, it may borrow
  (``HTB_MAY_BORROW``; a class directly under the root has no parent to borrow from).
  Sending classes go first, then borrowing ones; within a mode the lowest ``prio`` wins, and
  classes of one prio share by deficit round robin with their ``quantum`` (``rate / r2q``
  bytes unless given, clamped to 1000 … 200000 as the kernel does).
* A packet charges its leaf's two buckets and its parent's.
* Trees have leaves under the root, or under inner classes that hang from the root (two
  levels); deeper trees are refused. Packets no filter sends anywhere go to the ``default``
  class (a missing default class would send them through unshaped: refused here).
* Burst defaults are tc's on a high-resolution-timer kernel: 1600 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import ConfigError
from ..tcspec import QdiscSpec, Words, format_handle, parse_handle
from ..units import format_rate, format_size, parse_rate, parse_size
from .fifo import Pfifo
from .runtime import CLS, FID, SIZE, BuildContext, Runtime, build, runtime_for
from .tbf import MIN_WAIT, Bucket
from .u32 import U32Filter, classify_flows

__all__ = ["Htb", "HtbClass", "TC_DEFAULT_BURST", "child_handle"]

#: tc's default HTB burst/cburst on kernels with high-resolution timers (``rate / HZ + 1600``
#: with HZ = 10⁹ in ``/proc/net/psched``): 1600 bytes.
TC_DEFAULT_BURST = 1600
_QUANTUM_MIN, _QUANTUM_MAX = 1000, 200000


def child_handle(classid: str) -> str:
    """The handle qoslab gives the qdisc under a class: ``1:10`` → ``10:``, ``1:2`` → ``20:``.

    Examples
    --------
    >>> child_handle("1:10"), child_handle("1:2"), child_handle("10:1")
    ('10:', '20:', '110:')
    """
    value = parse_handle(classid)
    major, minor = value >> 16, value & 0xFFFF
    h = minor if minor >= 0x10 else minor * 0x10
    if h == major:
        h += 0x100
    return f"{h:x}:"


@dataclass(frozen=True)
class HtbClass:
    """``tc class add dev DEV parent P classid C htb rate R [ceil] [burst] [cburst] [prio]
    [quantum]`` and the qdisc under it (``leaf``; the kernel's default is pfifo).

    Rates in bit/s, bursts in bytes. ``name`` is a label for tables and figures (tc has none):
    it is not part of the tc text and not compared.
    """

    classid: str
    rate: float
    ceil: float | None = None
    burst: int | None = None
    cburst: int | None = None
    prio: int = 0
    quantum: int | None = None
    parent: str = "1:"
    leaf: Any = None
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        parse_handle(self.classid)
        parse_handle(self.parent)
        object.__setattr__(self, "rate", parse_rate(self.rate, f"htb class {self.classid} rate"))
        if self.ceil is not None:
            object.__setattr__(self, "ceil", parse_rate(self.ceil, f"htb class {self.classid} "
                                                        "ceil"))
        for name in ("burst", "cburst", "quantum"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, parse_size(v, f"htb class {self.classid} {name}"))
        if not 0 <= self.prio <= 7:
            raise ConfigError(f"htb class {self.classid}: prio {self.prio}: expected 0 … 7")

    @property
    def effective_ceil(self) -> float:
        return self.ceil if self.ceil is not None else self.rate

    def options(self) -> list[str]:
        out = ["rate", format_rate(self.rate)]
        if self.ceil is not None:
            out += ["ceil", format_rate(self.ceil)]
        if self.burst is not None:
            out += ["burst", format_size(self.burst)]
        if self.cburst is not None:
            out += ["cburst", format_size(self.cburst)]
        if self.prio:
            out += ["prio", str(self.prio)]
        if self.quantum is not None:
            out += ["quantum", str(self.quantum)]
        return out

    @classmethod
    def parse(cls, classid: str, parent: str, words: Sequence[str]) -> HtbClass:
        w = Words(words, f"htb class {classid}")
        kw: dict[str, Any] = {}
        for word in w:
            if word == "rate":
                kw["rate"] = parse_rate(w.value(word))
            elif word == "ceil":
                kw["ceil"] = parse_rate(w.value(word))
            elif word in ("burst", "buffer", "maxburst", "cburst", "cbuffer"):
                key = "cburst" if word.startswith("c") else "burst"
                kw[key] = parse_size(w.value(word).split("/")[0])
            elif word == "prio":
                kw["prio"] = w.number(word)
            elif word == "quantum":
                kw["quantum"] = w.number(word)
            else:
                raise w.unknown(word)
        if "rate" not in kw:
            raise ConfigError(f"htb class {classid}: 'rate' is required")
        return cls(classid, parent=parent, **kw)


@dataclass(frozen=True)
class Htb(QdiscSpec):
    """``htb [default MINOR] [r2q N]`` with its classes and u32 filters.

    Examples
    --------
    >>> tree = Htb(classes=(HtbClass("1:10", 2e6, leaf=Pfifo(limit=10)),), default=0x10)
    >>> print(tree.to_tc())
    tc qdisc add dev DEV root handle 1: htb default 10
    tc class add dev DEV parent 1: classid 1:10 htb rate 2mbit
    tc qdisc add dev DEV parent 1:10 handle 10: pfifo limit 10
    >>> Htb.from_tc(tree.to_tc()) == tree
    True
    """

    kind: ClassVar[str] = "htb"
    classes: tuple[HtbClass, ...] = ()
    default: int | None = None
    r2q: int | None = None
    filters: tuple = ()

    def __post_init__(self) -> None:
        ids = [c.classid for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"htb: class ids repeat: {ids}")
        if self.r2q is not None and self.r2q < 1:
            raise ConfigError("htb: r2q must be ≥ 1")

    # ------------------------------------------------------------------ tc text
    def options(self) -> list[str]:
        out = []
        if self.default is not None:
            out += ["default", f"{self.default:x}"]
        if self.r2q is not None:
            out += ["r2q", str(self.r2q)]
        return out

    @classmethod
    def parse_options(cls, words: Sequence[str], **context) -> Htb:
        w = Words(words, "htb")
        kw: dict[str, Any] = {}
        for word in w:
            if word == "default":
                value = w.value(word)
                try:
                    kw["default"] = int(value, 16)
                except ValueError:
                    raise ConfigError(f"htb default {value!r}: expected a class minor in hex, "
                                      "e.g. 20 for class 1:20") from None
            elif word == "r2q":
                kw["r2q"] = w.number(word)
            elif word in ("direct_qlen",):
                w.value(word)
            else:
                raise w.unknown(word)
        return cls(**kw)

    def graft(self, children: dict[str, Any], filters: list, handle: str) -> Htb:
        raise ConfigError("htb: classes come from 'tc class' lines (see parse_tree)")

    def commands(self, dev: str, parent: str = "root", handle: str | None = None
                 ) -> list[list[str]]:
        handle = handle or "1:"
        out = super().commands(dev, parent, handle)
        major = format_handle(parse_handle(handle), qdisc=True)
        for c in self.classes:
            out.append(["class", "add", "dev", dev, "parent", c.parent, "classid", c.classid,
                        "htb", *c.options()])
        for c in self.classes:
            if c.leaf is not None:
                out += c.leaf.commands(dev, c.classid, child_handle(c.classid))
        for f in self.filters:
            out += _filter_commands(f, dev, major)
        return out

    def child_specs(self) -> tuple:
        return tuple(c.leaf for c in self.classes if c.leaf is not None)

    def filter_specs(self) -> tuple:
        return self.filters

    def is_tree(self) -> bool:
        return bool(self.classes or self.filters)

    def check(self, profile: Any = None) -> None:
        for leaf in self.child_specs():
            leaf.check(profile)

    # ------------------------------------------------------------------ structure
    def leaves(self) -> list[HtbClass]:
        """Classes no other class hangs from."""
        parents = {c.parent for c in self.classes}
        return [c for c in self.classes if c.classid not in parents]

    def default_classid(self, handle: str = "1:") -> str | None:
        if self.default is None:
            return None
        return format_handle((parse_handle(handle) & 0xFFFF0000) | self.default)


def _filter_commands(flt: Any, dev: str, parent: str) -> list[list[str]]:
    if isinstance(flt, U32Filter):
        return replace(flt, parent=parent).commands(dev)
    return [["filter", "add", "dev", dev, "parent", parent, "protocol", "all", "prio", "1",
             *flt.to_tc().split()]]


@runtime_for(Htb)
class HtbRuntime(Runtime):
    """The HTB model of the module docstring."""

    __slots__ = ("spec", "leaves", "leaf_specs", "rate_b", "ceil_b", "parent_b", "prio",
                 "quantum", "deficit", "class_of", "rr", "mtu")

    def __init__(self, spec: Htb, ctx: BuildContext, handle: str | None = "1:") -> None:
        super().__init__("htb")
        self.spec = spec
        by_id = {c.classid: c for c in spec.classes}
        handle = handle or "1:"
        root = format_handle(parse_handle(handle), qdisc=True)
        leaves = spec.leaves()
        if not leaves:
            raise ConfigError("htb: at least one class is needed")
        inner_buckets: dict[str, Bucket] = {}
        self.parent_b: list[Bucket | None] = []
        for c in leaves:
            if c.parent == root:
                self.parent_b.append(None)
                continue
            p = by_id.get(c.parent)
            if p is None:
                raise ConfigError(f"htb class {c.classid}: parent {c.parent} does not exist")
            if p.parent != root:
                raise ConfigError(f"htb class {c.classid}: trees deeper than one inner class "
                                  "are not modelled")
            if p.classid not in inner_buckets:
                inner_buckets[p.classid] = Bucket(p.rate, p.burst or TC_DEFAULT_BURST)
            self.parent_b.append(inner_buckets[p.classid])
        self.leaf_specs = leaves
        self.leaves = [build(c.leaf if c.leaf is not None else Pfifo(), ctx,
                             child_handle(c.classid)) for c in leaves]
        self.rate_b = [Bucket(c.rate, c.burst or TC_DEFAULT_BURST) for c in leaves]
        self.ceil_b = [Bucket(c.effective_ceil, c.cburst or TC_DEFAULT_BURST) for c in leaves]
        self.prio = [c.prio for c in leaves]
        r2q = spec.r2q or 10
        self.quantum = [c.quantum or min(max(int(c.rate / 8 / r2q), _QUANTUM_MIN), _QUANTUM_MAX)
                        for c in leaves]
        self.deficit = [0] * len(leaves)
        index = {c.classid: i for i, c in enumerate(leaves)}
        default = spec.default_classid(handle)
        if default is not None and default not in index:
            raise ConfigError(f"htb: default class {default} is not a leaf class")
        u32 = [f for f in spec.filters if isinstance(f, U32Filter)]
        if len(u32) != len(spec.filters):
            raise ConfigError("htb: only u32 filters select classes in the model")

        def classes(frame):
            ids = classify_flows(frame, u32, default)
            missing = sorted({i for i in ids if i is None or i not in index}, key=str)
            if missing:
                raise ConfigError(f"htb: flows reach no leaf class ({missing[0]}); give a "
                                  "default class")
            return [index[i] for i in ids]

        self.class_of = ctx.flows.answer(("htb", self.uid), classes)
        self.rr = 0
        self.mtu = ctx.mtu_bytes

    def enqueue(self, pkt: list, now: float) -> None:
        i = self.class_of[pkt[FID]]
        pkt[CLS] = i
        leaf = self.leaves[i]
        before = leaf.qlen
        leaf.enqueue(pkt, now)
        self.qlen += leaf.qlen - before

    def _pick(self, candidates: list[int]) -> int:
        """Lowest prio; deficit round robin among classes of that prio."""
        best = min(self.prio[i] for i in candidates)
        same = [i for i in candidates if self.prio[i] == best]
        if len(same) == 1:
            return same[0]
        n = len(self.leaves)
        for _ in range(2 * n + 1):
            for k in range(n):
                i = (self.rr + k) % n
                if i in same:
                    if self.deficit[i] > 0:
                        self.rr = i
                        return i
                    self.deficit[i] += self.quantum[i]
        return same[0]  # pragma: no cover - deficits always turn positive

    def dequeue(self, now: float):
        if not self.qlen:
            self.next_wake = math.inf
            return None
        backlogged = [i for i, leaf in enumerate(self.leaves) if leaf.qlen]
        can, borrow = [], []
        for i in backlogged:
            r = self.rate_b[i].update(now)
            c = self.ceil_b[i].update(now)
            p = self.parent_b[i]
            if c >= 0 and r >= 0:
                can.append(i)
            elif c >= 0 and p is not None and p.update(now) >= 0:
                borrow.append(i)  # a class under the root has nobody to borrow from
        chosen = can or borrow
        while chosen:
            i = self._pick(chosen)
            leaf = self.leaves[i]
            before = leaf.qlen
            pkt = leaf.dequeue(now)
            self.qlen -= before - leaf.qlen
            if pkt is None:  # e.g. fq_codel dropped the rest, or a child shaper waits
                chosen.remove(i)
                continue
            size = pkt[SIZE]
            self.rate_b[i].tokens -= size
            self.ceil_b[i].tokens -= size
            self.deficit[i] -= size
            p = self.parent_b[i]
            if p is not None:
                p.update(now)
                p.tokens -= size
            self.next_wake = math.inf
            return pkt
        wake = math.inf
        for i in backlogged:
            r, c, p = self.rate_b[i], self.ceil_b[i], self.parent_b[i]
            own = max(r.wait_for(0.0), c.wait_for(0.0))
            lend = max(c.wait_for(0.0), p.wait_for(0.0)) if p is not None else math.inf
            leaf_wake = self.leaves[i].next_wake  # a shaping child may wait longer
            child = leaf_wake - now if leaf_wake < math.inf else 0.0
            wake = min(wake, max(min(own, lend), child))
        self.next_wake = now + max(wake, MIN_WAIT) if wake < math.inf else math.inf
        return None

    def on_hash_change(self, seed_index: int, now: float) -> None:
        for leaf in self.leaves:
            leaf.on_hash_change(seed_index, now)
        self.qlen = sum(leaf.qlen for leaf in self.leaves)  # a rehash may drop

    def set_filter(self, classifier: Any, now: float) -> bool:
        taken = any([leaf.set_filter(classifier, now) for leaf in self.leaves])
        self.qlen = sum(leaf.qlen for leaf in self.leaves)
        return taken

    def children(self) -> list:
        return list(self.leaves)

    def replace_child(self, parent: str | None, spec: Any, ctx: BuildContext, now: float
                      ) -> bool:
        for i, c in enumerate(self.leaf_specs):
            if parent is not None and parse_handle(c.classid) == parse_handle(parent):
                old = self.leaves[i]
                self.leaves[i] = build(spec, ctx, child_handle(c.classid))
                self.purge(old, now)
                self.qlen = sum(leaf.qlen for leaf in self.leaves)
                return True
        return super().replace_child(parent, spec, ctx, now)

    def snapshot(self):
        """Queues by class index; a one-class shaper shows its leaf's queues (buckets …)."""
        if len(self.leaves) == 1:
            yield from self.leaves[0].snapshot()
            return
        for i, leaf in enumerate(self.leaves):
            for _, pkts in leaf.snapshot():
                yield i, pkts

    def stats(self) -> dict:
        out = super().stats()
        out["drops"] = self.drops + sum(leaf.drops for leaf in self.leaves)
        out["classes"] = [dict(classid=c.classid, name=c.name or c.classid, **leaf.stats())
                          for c, leaf in zip(self.leaf_specs, self.leaves, strict=True)]
        return out
