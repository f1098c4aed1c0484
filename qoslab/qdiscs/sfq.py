"""SFQ (``net/sched/sch_sfq.c``): the qdisc spec and its scheduler, generation by generation.

The scheduler is a line-by-line port of ``sfq_enqueue``, ``sfq_dequeue``, ``sfq_drop`` (and
``sfq_rehash``) of each generation, with the kernel's integer widths (``allot`` is a 16-bit
``short`` and wraps) and its list discipline (the free-slot list and the per-depth lists are
LIFO, so *which* slot a new flow gets and *which* slot loses a packet are the kernel's).
:attr:`KernelProfile.sfq_scheduler <qoslab.hashing.KernelProfile>` picks the generation:

``classic`` (2.6.32's file; ≤ 2.6.36)
    128 slots, ``limit`` ≤ 127 caps each slot and the total. A new flow is linked behind the
    tail **without resetting its slot's allotment**: the unscaled 16-bit allotment a slot
    earned while another flow used it carries over (each turn of an emptied slot adds a
    quantum that is never spent). When a perturbation moves a backlogged flow, the LIFO free
    list hands it such a slot, and it is served alone until the stale allotment is spent —
    the latency spikes on the perturb grid of the "Linux SFQ experimentation" seed.
``2.6.37`` (aa3e219997e "fix allot handling")
    The same structure; a new flow starts with one quantum.
``2.6.38`` (eeaeb068f13 "allow big packets and be fair"; to 3.2)
    Slots with no allotment left are skipped (each skip adds a quantum); allotments are
    counted in units of 8 bytes (``SFQ_ALLOT_SIZE``).
``3.3`` (and every later kernel)
    ``flows`` slots (up to 65408), ``depth`` packets per slot, ``limit`` in all,
    ``headdrop``; the perturb timer rehashes the queued packets when no filter is attached
    (``sfq_rehash``). RED options are not modelled.

The hash is never computed here: the bucket of every flow for every seed comes from
:mod:`qoslab.hashing` (:class:`qoslab.hashing.SfqHash`, built by :meth:`Sfq.selector`),
including the ``skb->priority`` and
filter overrides (bucket ``-1``: the classifier drops the packet).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, ClassVar

from ..engines.dispatch import dask_aware
from ..errors import ConfigError
from ..hashing.profiles import get_profile
from ..hashing.sfq import SfqHash
from ..tcspec import FilteredQdiscSpec, Words
from .runtime import FID, QUEUE, SIZE, BuildContext, Runtime, runtime_for

__all__ = ["Sfq", "SfqRuntime", "ClassicSfqRuntime", "GENERATIONS", "short"]

#: generation -> facts of its sch_sfq.c (see the module docstring).
GENERATIONS: dict[str, dict[str, Any]] = {
    "classic": dict(stale_allot=True, scaled=False, skip_empty_allot=False, options3_3=False),
    "2.6.37": dict(stale_allot=False, scaled=False, skip_empty_allot=False, options3_3=False),
    "2.6.38": dict(stale_allot=False, scaled=True, skip_empty_allot=True, options3_3=False),
    "3.3": dict(stale_allot=False, scaled=True, skip_empty_allot=True, options3_3=True),
}
_OLD_SLOTS = 128  # SFQ_DEPTH / SFQ_SLOTS before 3.3
SFQ_MAX_DEPTH = 127
SFQ_MAX_FLOWS = 0x10000 - SFQ_MAX_DEPTH - 1
SFQ_DEFAULT_FLOWS = 128
SFQ_ALLOT_SHIFT = 3


def short(x: int) -> int:
    """C ``short`` (16-bit two's complement) of an integer.

    Examples
    --------
    >>> short(32767 + 1), short(-32768 - 1), short(1514)
    (-32768, 32767, 1514)
    """
    return ((x + 0x8000) & 0xFFFF) - 0x8000


def _allot_size(nbytes: int) -> int:
    """``SFQ_ALLOT_SIZE``: bytes in units of 8, rounded up."""
    return (nbytes + (1 << SFQ_ALLOT_SHIFT) - 1) >> SFQ_ALLOT_SHIFT


@dataclass(frozen=True)
class Sfq(FilteredQdiscSpec):
    """``sfq [limit N] [depth N] [flows N] [divisor N] [perturb SECS] [quantum BYTES]
    [headdrop]`` for a kernel ``profile``, with an optional attached ``flow`` filter.

    Options not given keep the kernel's defaults (``None``); :meth:`selector` normalises them
    as the profile's kernel does.

    Examples
    --------
    >>> s = Sfq(limit=10, perturb=5, profile="classic-2.6.3x")
    >>> s.to_tc()
    'sfq limit 10 perturb 5'
    >>> Sfq.from_tc("tc qdisc add dev eth0 parent 1:10 handle 10: sfq limit 10 perturb 5",
    ...             profile="classic-2.6.3x") == s
    True
    >>> Sfq(depth=20, profile="classic-2.6.3x")
    Traceback (most recent call last):
    ...
    qoslab.errors.ConfigError: sfq depth: the SFQ of profile 'classic-2.6.3x' (2.6.25–2.6.35) has no depth/flows/headdrop options (Linux 3.3 added them)
    """

    kind: ClassVar[str] = "sfq"
    uses_profile: ClassVar[bool] = True
    limit: int | None = None
    depth: int | None = None
    flows: int | None = None
    divisor: int | None = None
    perturb: int = 0
    quantum: int | None = None
    headdrop: bool = False
    profile: str = "5.18+"
    classifier: Any = None
    endianness: str = "little"

    def __post_init__(self) -> None:
        for name in ("limit", "depth", "flows", "divisor", "quantum"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 0):
                raise ConfigError(f"sfq {name} {v!r}: expected a non-negative integer")
        if isinstance(self.perturb, bool) or self.perturb < 0 or int(self.perturb) != \
                self.perturb:
            raise ConfigError(f"sfq perturb {self.perturb!r}: expected whole seconds ≥ 0 (tc "
                              "and the kernel take an integer)")
        object.__setattr__(self, "perturb", int(self.perturb))
        self.check()

    # ------------------------------------------------------------------ era and hashing
    @property
    def kernel(self):
        return get_profile(self.profile)

    @property
    def generation(self) -> str:
        """The scheduler generation of the profile (see the module docstring)."""
        return self.kernel.sfq_scheduler

    def check(self, profile: Any = None) -> None:
        prof = get_profile(self.profile if profile is None else profile)
        if not GENERATIONS[prof.sfq_scheduler]["options3_3"]:
            for name in ("depth", "flows", "headdrop"):
                if getattr(self, name):
                    raise ConfigError(f"sfq {name}: the SFQ of profile {prof.name!r} "
                                      f"({prof.era}) has no depth/flows/headdrop options "
                                      "(Linux 3.3 added them)")
        if self.limit == 1:
            raise ConfigError("sfq limit 1: the kernel rejects it")
        self._selector_for(prof)  # divisor and other per-era checks of qoslab.hashing

    def _selector_for(self, prof, handle: str | None = None):
        opts = dict(divisor=1024 if self.divisor is None else self.divisor,
                    perturb=self.perturb or None, limit=self.limit,
                    headdrop=self.headdrop, quantum=self.quantum, profile=prof,
                    classifier=self.classifier, endianness=self.endianness, handle=handle)
        if self.depth is not None:
            opts["depth"] = self.depth
        if self.flows is not None:
            opts["flows"] = self.flows
        return SfqHash(**opts)

    def selector(self, handle: str | int | None = None):
        """The :class:`qoslab.hashing.SfqHash` that computes this qdisc's buckets (``handle``,
        e.g. ``"1:"``, enables the ``skb->priority`` override)."""
        if handle is None:
            return self._default_selector
        return self._selector_for(self.kernel, handle)

    @cached_property
    def _default_selector(self):
        return self._selector_for(self.kernel)

    def effective(self, name: str) -> Any:
        """An option's value in force in this era (given, defaulted or capped as
        ``sfq_change`` does).

        >>> Sfq(limit=500, profile="classic-2.6.3x").effective("limit")
        127
        """
        if name not in ("limit", "depth", "flows", "divisor", "perturb", "quantum", "headdrop"):
            raise ConfigError(f"sfq has no option {name!r}")
        if name in ("quantum", "perturb", "headdrop"):
            return getattr(self, name)
        return getattr(self.selector(), name)

    @property
    def rehash_on_perturb(self) -> bool:
        """Queued packets move to their new buckets when the seed changes (3.3+, no filter)."""
        return self.selector().rehash_on_perturb

    def with_classifier(self, classifier: Any) -> Sfq:
        """This SFQ with another attached filter (``tc filter replace``)."""
        return replace(self, classifier=classifier)

    def hash_inputs(self, packets):
        """What the seeded hash reads (see :meth:`qoslab.hashing.SfqHash.hash_inputs`):
        packets whose inputs are equal share a bucket for every seed."""
        return self.selector().hash_inputs(packets)

    def hash_buckets(self, inputs, seed):
        """Buckets from :meth:`hash_inputs` for one seed."""
        return self.selector().hash_buckets(inputs, seed)

    @dask_aware("bucket")
    def bucket(self, packets, seed=0, at=None, *, handle: str | int | None = None,
               hashrnd=0, classifier_at=None):
        """Bucket index per packet (int64), ``-1`` where the attached filter drops it.

        Parameters
        ----------
        packets
            PACKETS-like frame, or a Dask one (:func:`qoslab.read_captures`,
            ``engine="dask"``): then a lazy Dask Series ``bucket``, partition by partition.
        seed
            The qdisc's perturbation (u32 up to 5.3, SipHash key from 5.4), or a sequence
            with ``at`` = change times (column ``t`` picks the seed per packet).
        handle
            The qdisc's handle (``"1:"``): ``skb->priority`` of that major picks a bucket.
        hashrnd, classifier_at
            Seed(s) and change times of the attached filter.

        Examples
        --------
        Four IP-in-IP packets of two inner flows (UDP, ICMP) in one tunnel: the classic SFQ
        hashes the outer header (one bucket), a modern kernel's dissector looks inside (two).

        >>> import qoslab
        >>> pk = qoslab.read_capture(qoslab.data_path("captures/tunnel_uploads.pcap")).head(4)
        >>> Sfq(profile="classic-2.6.3x").bucket(pk, seed=0).tolist()
        [427, 427, 427, 427]
        >>> Sfq(profile="5.18+").bucket(pk, seed=bytes(range(16))).tolist()
        [79, 79, 936, 936]
        """
        return self.selector(handle).bucket(packets, seed, at, hashrnd=hashrnd,
                                            classifier_at=classifier_at)

    # ------------------------------------------------------------------ tc text
    def options(self) -> list[str]:
        out: list[str] = []
        for name in ("limit", "depth", "flows", "divisor"):
            v = getattr(self, name)
            if v is not None:
                out += [name, str(v)]
        if self.perturb:
            out += ["perturb", str(self.perturb)]
        if self.quantum is not None:
            out += ["quantum", str(self.quantum)]
        if self.headdrop:
            out.append("headdrop")
        return out

    @classmethod
    def parse_options(cls, words: Sequence[str], profile: str = "5.18+", **context) -> Sfq:
        w = Words(words, "sfq")
        kw: dict[str, Any] = {}
        for word in w:
            if word in ("limit", "depth", "flows", "divisor", "perturb", "quantum"):
                kw[word] = w.number(word)
            elif word == "headdrop":
                kw["headdrop"] = True
            elif word == "noheaddrop":
                kw["headdrop"] = False
            else:
                raise w.unknown(word)
        return cls(profile=profile, **kw, **{k: v for k, v in context.items()
                                              if k in ("classifier", "endianness")})


# ---------------------------------------------------------------------------- runtimes
class _SfqBase(Runtime):
    """What every generation shares: buckets per flow and seed, filter replacement."""

    __slots__ = ("spec", "ctx", "seed_index", "bucket_of", "quantum", "limit", "gen")

    def __init__(self, spec: Sfq, ctx: BuildContext, handle: str | None) -> None:
        super().__init__("sfq")
        self.spec = spec
        self.ctx = ctx
        self.gen = GENERATIONS[spec.generation]
        self.seed_index = 0
        self.handle = handle
        self.quantum = int(spec.quantum or ctx.mtu_bytes)
        self.bucket_of = self._buckets(0)

    def _buckets(self, index: int) -> list:
        spec, seeds = self.spec, self.ctx.seeds
        seed = seeds[index] if index < len(seeds) else seeds[-1]
        selector = spec.selector(self.handle)

        def compute(frame):
            if spec.classifier is not None:
                return selector.bucket(frame, hashrnd=seed)
            return selector.bucket(frame, seed=seed)

        key = ("sfq", self.uid, spec.classifier is not None and id(spec.classifier), index)
        return self.ctx.flows.answer(key, compute)

    def on_hash_change(self, seed_index: int, now: float) -> None:
        old = self.seed_index
        self.seed_index = seed_index
        self.bucket_of = self._buckets(seed_index)
        self.ctx.flows.forget(("sfq", self.uid, self.spec.classifier is not None
                               and id(self.spec.classifier), old))
        if self.rehashes and self.qlen:
            self._rehash(now)

    def prepare_seed(self, seed_index: int) -> None:
        self._buckets(seed_index)  # cached in the flow table; extended as flows arrive

    @property
    def rehashes(self) -> bool:
        """``sfq_rehash`` on perturbation: 3.3+, only without an attached filter."""
        return self.gen["options3_3"] and self.spec.classifier is None

    def set_filter(self, classifier: Any, now: float) -> bool:
        """``tc filter replace``: new packets are classified by ``classifier``; queued packets
        stay in their slots."""
        self.spec = self.spec.with_classifier(classifier)
        self.bucket_of = self._buckets(self.seed_index)
        return True

    def _rehash(self, now: float) -> None:  # pragma: no cover - only the 3.3 runtime
        raise NotImplementedError


class ClassicSfqRuntime(_SfqBase):
    """``classic`` and ``2.6.37``: 128 slots indexed by ``unsigned char``, unscaled ``short``
    allotments (2.6.32's ``sfq_sched_data``)."""

    __slots__ = ("qs", "ht", "nxt", "allot", "hash", "dep_next", "dep_prev", "max_depth",
                 "tail", "stale")

    NONE = _OLD_SLOTS  # SFQ_DEPTH: "no slot"

    def __init__(self, spec: Sfq, ctx: BuildContext, handle: str | None = None) -> None:
        super().__init__(spec, ctx, handle)
        n = _OLD_SLOTS
        self.limit = min(int(spec.limit), n - 1) if spec.limit else n - 1
        self.stale = self.gen["stale_allot"]
        self.qs = [deque() for _ in range(n)]
        self.ht: dict[int, int] = {}
        self.nxt = [0] * n
        self.allot = [0] * n
        self.hash = [0] * n
        self.dep_next = [0] * (2 * n)
        self.dep_prev = [0] * (2 * n)
        for i in range(n):
            self.dep_next[i + n] = self.dep_prev[i + n] = i + n
        self.max_depth = 0
        self.tail = self.NONE
        for i in range(n):
            self._link(i)

    # the dep[] lists: slot x sits in the list of its depth, newest first
    def _link(self, x: int) -> None:
        d = len(self.qs[x]) + _OLD_SLOTS
        n = self.dep_next[d]
        self.dep_next[x] = n
        self.dep_prev[x] = d
        self.dep_next[d] = x
        self.dep_prev[n] = x

    def _unlink(self, x: int) -> tuple[int, int]:
        n, p = self.dep_next[x], self.dep_prev[x]
        self.dep_next[p] = n
        self.dep_prev[n] = p
        return n, p

    def _dec(self, x: int) -> None:
        n, p = self._unlink(x)
        if n == p and self.max_depth == len(self.qs[x]) + 1:
            self.max_depth -= 1
        self._link(x)

    def _inc(self, x: int) -> None:
        self._unlink(x)
        d = len(self.qs[x])
        if self.max_depth < d:
            self.max_depth = d
        self._link(x)

    def enqueue(self, pkt: list, now: float) -> None:
        h = self.bucket_of[pkt[FID]]
        pkt[QUEUE] = h
        if h < 0:  # the classifier gave no class in range: the kernel drops it
            self.drop(pkt, now)
            return
        x = self.ht.get(h, _OLD_SLOTS)
        if x == _OLD_SLOTS:
            x = self.dep_next[_OLD_SLOTS]  # a free slot: head of the depth-0 list
            self.ht[h] = x
            self.hash[x] = h
        q = self.qs[x]
        if len(q) >= self.limit:
            self.drop(pkt, now)
            return
        q.append(pkt)
        # sfq_inc (inlined: this runs for every packet): x moves to the list of its depth
        dn, dp = self.dep_next, self.dep_prev
        n, p = dn[x], dp[x]
        dn[p] = n
        dp[n] = p
        d = len(q)
        if self.max_depth < d:
            self.max_depth = d
        head = d + _OLD_SLOTS
        n = dn[head]
        dn[x] = n
        dp[x] = head
        dn[head] = x
        dp[n] = x
        if d == 1:  # the flow is new
            tail = self.tail
            if self.stale:
                if tail == _OLD_SLOTS:  # the first flow
                    self.tail = x
                    self.nxt[x] = x
                    self.allot[x] = short(self.quantum)
                else:
                    self.nxt[x] = self.nxt[tail]
                    self.nxt[tail] = x
                    self.tail = x
            else:
                if tail == _OLD_SLOTS:
                    self.nxt[x] = x
                else:
                    self.nxt[x] = self.nxt[tail]
                    self.nxt[tail] = x
                self.tail = x
                self.allot[x] = short(self.quantum)
        self.qlen += 1
        if self.qlen <= self.limit:
            return
        self._drop_one(now)

    def _drop_one(self, now: float) -> None:
        """``sfq_drop``: the tail packet of the longest slot."""
        d = self.max_depth
        if d > 1:
            x = self.dep_next[d + _OLD_SLOTS]
            pkt = self.qs[x].pop()
            self._dec(x)
        elif d == 1:  # "ALL THE SLOTS HAVE LENGTH 1"
            x = self.nxt[self.tail]
            self.nxt[self.tail] = self.nxt[x]
            if self.stale:
                nx = self.nxt[x]
                self.allot[nx] = short(self.allot[nx] + self.quantum)
            pkt = self.qs[x].pop()
            self._dec(x)
            self.ht.pop(self.hash[x], None)
        else:  # pragma: no cover - never called with an empty qdisc
            return
        self.qlen -= 1
        self.drop(pkt, now)

    def dequeue(self, now: float):
        tail = self.tail
        if tail == _OLD_SLOTS:
            return None
        nxt, allot = self.nxt, self.allot
        a = nxt[tail]
        q = self.qs[a]
        pkt = q.popleft()
        # sfq_dec (inlined): a moves to the list of its new depth
        dn, dp = self.dep_next, self.dep_prev
        n, p = dn[a], dp[a]
        dn[p] = n
        dp[n] = p
        d = len(q)
        if n == p and self.max_depth == d + 1:
            self.max_depth = d
        head = d + _OLD_SLOTS
        n = dn[head]
        dn[a] = n
        dp[a] = head
        dn[head] = a
        dp[n] = a
        self.qlen -= 1
        if not d:
            self.ht.pop(self.hash[a], None)
            na = nxt[a]
            if na == a:
                self.tail = _OLD_SLOTS
                return pkt
            nxt[tail] = na
            if self.stale:
                v = allot[na] + self.quantum
                allot[na] = ((v + 0x8000) & 0xFFFF) - 0x8000  # short()
        else:
            v = allot[a] - pkt[SIZE]
            v = allot[a] = ((v + 0x8000) & 0xFFFF) - 0x8000
            if v <= 0:
                if self.stale:
                    self.tail = a
                    na = nxt[a]
                    v = allot[na] + self.quantum
                    allot[na] = ((v + 0x8000) & 0xFFFF) - 0x8000
                else:
                    allot[a] = short(v + self.quantum)
                    self.tail = a
        return pkt

    def snapshot(self):
        for x in range(_OLD_SLOTS):
            if self.qs[x]:
                yield self.hash[x], list(self.qs[x])

    def stats(self) -> dict:
        return {**super().stats(), "scheduler": self.spec.generation, "limit": self.limit,
                "slots": _OLD_SLOTS, "quantum": self.quantum, "rehash_on_perturb": False}


class SfqRuntime(_SfqBase):
    """``2.6.38`` (to 3.2) and ``3.3``+: ``struct sfq_slot`` with scaled allotments."""

    __slots__ = ("slots", "depth", "qs", "ht", "nxt", "allot", "hash", "dep_next", "dep_prev",
                 "cur_depth", "tail", "scaled_quantum", "headdrop", "new")

    def __init__(self, spec: Sfq, ctx: BuildContext, handle: str | None = None) -> None:
        super().__init__(spec, ctx, handle)
        if self.gen["options3_3"]:
            flows = min(spec.flows or SFQ_DEFAULT_FLOWS, SFQ_MAX_FLOWS)
            divisor = spec.divisor or 1024
            flows = min(flows, divisor)
            self.depth = min(spec.depth or SFQ_MAX_DEPTH, SFQ_MAX_DEPTH)
            self.limit = SFQ_MAX_DEPTH
            if spec.limit:
                self.limit = min(spec.limit, self.depth * flows)
                flows = min(flows, self.limit)
            self.headdrop = bool(spec.headdrop)
        else:
            flows = _OLD_SLOTS
            self.limit = min(spec.limit, _OLD_SLOTS - 1) if spec.limit else _OLD_SLOTS - 1
            self.depth = self.limit  # the per-slot cap of 2.6.38–3.2 is the limit itself
            self.headdrop = False
        self.slots = flows
        self.scaled_quantum = _allot_size(self.quantum)
        self.qs = [deque() for _ in range(flows)]
        self.ht: dict[int, int] = {}
        self.nxt = [0] * flows
        self.allot = [0] * flows
        self.hash = [0] * flows
        heads = SFQ_MAX_DEPTH + 1
        self.dep_next = [0] * (flows + heads)
        self.dep_prev = [0] * (flows + heads)
        for i in range(heads):
            self.dep_next[flows + i] = self.dep_prev[flows + i] = flows + i
        self.cur_depth = 0
        self.tail = -1
        for i in range(flows):
            self._link(i)

    def _link(self, x: int) -> None:
        p = len(self.qs[x]) + self.slots
        n = self.dep_next[p]
        self.dep_next[x] = n
        self.dep_prev[x] = p
        self.dep_next[p] = x
        self.dep_prev[n] = x

    def _unlink(self, x: int) -> tuple[int, int]:
        n, p = self.dep_next[x], self.dep_prev[x]
        self.dep_next[p] = n
        self.dep_prev[n] = p
        return n, p

    def _dec(self, x: int) -> None:
        n, p = self._unlink(x)
        d = len(self.qs[x]) + 1  # the caller already took the packet out
        if n == p and self.cur_depth == d:
            self.cur_depth -= 1
        self._link(x)

    def _inc(self, x: int) -> None:
        self._unlink(x)
        d = len(self.qs[x])
        if self.cur_depth < d:
            self.cur_depth = d
        self._link(x)

    def _new_flow(self, x: int) -> None:
        if self.tail < 0:
            self.nxt[x] = x
        else:
            self.nxt[x] = self.nxt[self.tail]
            self.nxt[self.tail] = x
        self.tail = x
        self.allot[x] = short(self.scaled_quantum)

    def enqueue(self, pkt: list, now: float) -> None:
        h = self.bucket_of[pkt[FID]]
        pkt[QUEUE] = h
        if h < 0:
            self.drop(pkt, now)
            return
        x = self.ht.get(h, -1)
        if x < 0:
            x = self.dep_next[self.slots]  # get a free slot
            if x >= self.slots:  # none left (3.3+)
                self.drop(pkt, now)
                return
            self.ht[h] = x
            self.hash[x] = h
        q = self.qs[x]
        if len(q) >= self.depth:
            if not self.headdrop:
                self.drop(pkt, now)
                return
            head = q.popleft()
            q.append(pkt)
            self.drop(head, now)
            return
        q.append(pkt)
        # sfq_inc (inlined: this runs for every packet)
        dn, dp = self.dep_next, self.dep_prev
        n, p = dn[x], dp[x]
        dn[p] = n
        dp[n] = p
        d = len(q)
        if self.cur_depth < d:
            self.cur_depth = d
        head = d + self.slots
        n = dn[head]
        dn[x] = n
        dp[x] = head
        dn[head] = x
        dp[n] = x
        if d == 1:
            self._new_flow(x)
        self.qlen += 1
        if self.qlen <= self.limit:
            return
        self._drop_one(now)

    def _drop_one(self, now: float) -> None:
        d = self.cur_depth
        if d > 1:
            x = self.dep_next[self.slots + d]
        elif d == 1:  # "ALL THE SLOTS HAVE LENGTH 1"
            x = self.nxt[self.tail]
            self.nxt[self.tail] = self.nxt[x]
            self.ht.pop(self.hash[x], None)
        else:  # pragma: no cover
            return
        q = self.qs[x]
        pkt = q.popleft() if self.headdrop else q.pop()
        self._dec(x)
        self.qlen -= 1
        self.drop(pkt, now)

    def dequeue(self, now: float):
        if self.tail < 0:
            return None
        nxt, allot = self.nxt, self.allot
        while True:
            a = nxt[self.tail]
            if allot[a] <= 0:
                self.tail = a
                allot[a] = short(allot[a] + self.scaled_quantum)
                continue
            break
        q = self.qs[a]
        pkt = q.popleft()
        # sfq_dec (inlined)
        dn, dp = self.dep_next, self.dep_prev
        n, p = dn[a], dp[a]
        dn[p] = n
        dp[n] = p
        d = len(q)
        if n == p and self.cur_depth == d + 1:
            self.cur_depth = d
        head = d + self.slots
        n = dn[head]
        dn[a] = n
        dp[a] = head
        dn[head] = a
        dp[n] = a
        self.qlen -= 1
        if not d:
            self.ht.pop(self.hash[a], None)
            na = nxt[a]
            if a == na:
                self.tail = -1
                return pkt
            nxt[self.tail] = na
        else:
            v = allot[a] - ((pkt[SIZE] + 7) >> SFQ_ALLOT_SHIFT)  # SFQ_ALLOT_SIZE
            allot[a] = ((v + 0x8000) & 0xFFFF) - 0x8000  # short()
        return pkt

    def _rehash(self, now: float) -> None:
        """``sfq_rehash``: every queued packet, slot by slot, re-enqueued by its new bucket."""
        pending = []
        for i in range(self.slots):
            q = self.qs[i]
            if not q:
                continue
            while q:
                pending.append(q.popleft())
                self._dec(i)
            self.ht.pop(self.hash[i], None)
        self.tail = -1
        dropped = []
        for pkt in pending:
            h = self.bucket_of[pkt[FID]]
            pkt[QUEUE] = h
            x = self.ht.get(h, -1) if h >= 0 else -1
            if x < 0:
                x = self.dep_next[self.slots] if h >= 0 else self.slots
                if x >= self.slots:
                    dropped.append(pkt)
                    continue
                self.ht[h] = x
                self.hash[x] = h
            q = self.qs[x]
            if len(q) >= self.depth:
                dropped.append(pkt)
                continue
            q.append(pkt)
            self._inc(x)
            if len(q) == 1:
                self._new_flow(x)
        self.qlen -= len(dropped)
        for pkt in dropped:
            self.drop(pkt, now)

    def snapshot(self):
        for x in range(self.slots):
            if self.qs[x]:
                yield self.hash[x], list(self.qs[x])

    def stats(self) -> dict:
        return {**super().stats(), "scheduler": self.spec.generation, "limit": self.limit,
                "depth": self.depth, "slots": self.slots, "quantum": self.quantum,
                "headdrop": self.headdrop, "rehash_on_perturb": self.rehashes}


@runtime_for(Sfq)
def sfq_runtime(spec: Sfq, ctx: BuildContext, handle: str | None = None) -> Runtime:
    """The runtime of the spec's scheduler generation."""
    if spec.generation in ("classic", "2.6.37"):
        return ClassicSfqRuntime(spec, ctx, handle)
    return SfqRuntime(spec, ctx, handle)
