"""fq_codel (``net/sched/sch_fq_codel.c`` + ``include/net/codel_impl.h``): the spec and its
runtime.

Flow queues served by deficit round robin with a new and an old list; per queue, CoDel watches
the sojourn time of the head packet: once it stayed above ``target`` for a whole ``interval``
(and more than one MTU is queued), the queue enters the dropping state and drops — or, for
ECN-capable packets with ``ecn``, marks CE — one packet, then the next after
``interval / sqrt(count)`` (the control law; exact square root where the kernel uses a Newton
step). Re-entering soon after leaving resumes at the previous drop rate
(``count - lastcount``). On overflow of ``limit`` packets, up to ``drop_batch`` packets are
dropped from the head of the fattest queue (bytes), until half of its backlog is gone
(``fq_codel_drop``). The queue index of each flow comes from :mod:`qoslab.hashing`
(:class:`qoslab.hashing.FqCodelHash`, built by :meth:`FqCodel.selector`). ``memory_limit``
and ``ce_threshold`` are not modelled.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..errors import ConfigError, KernelFeatureMissing
from ..hashing.fq_codel import FqCodelHash
from ..hashing.profiles import get_profile
from ..tcspec import FilteredQdiscSpec, Words
from ..units import format_time, parse_time
from .runtime import QUEUE, BuildContext, Runtime, runtime_for

__all__ = ["FqCodel", "FqCodelRuntime", "FQ_CODEL_DEFAULTS"]

#: ``fq_codel_init`` defaults.
FQ_CODEL_DEFAULTS: dict[str, Any] = dict(limit=10240, flows=1024, target=0.005,
                                         interval=0.100, ecn=True, drop_batch=64)


@dataclass(frozen=True)
class FqCodel(FilteredQdiscSpec):
    """``fq_codel [limit PACKETS] [flows N] [target TIME] [interval TIME] [quantum BYTES]
    [ecn|noecn] [drop_batch N]`` for a kernel ``profile``, with an optional attached filter.

    Options not given are ``None`` (the kernel's defaults, :data:`FQ_CODEL_DEFAULTS`);
    times in seconds.

    Examples
    --------
    >>> FqCodel(limit=1000, target=0.005).to_tc()
    'fq_codel limit 1000 target 5ms'
    >>> FqCodel.from_tc("fq_codel limit 1000 target 5ms") == FqCodel(limit=1000, target=0.005)
    True
    >>> FqCodel(profile="classic-2.6.3x")
    Traceback (most recent call last):
    ...
    qoslab.errors.KernelFeatureMissing: fq_codel does not exist in profile 'classic-2.6.3x' (it arrives with 3.5)
    """

    kind: ClassVar[str] = "fq_codel"
    uses_profile: ClassVar[bool] = True
    limit: int | None = None
    flows: int | None = None
    target: float | None = None
    interval: float | None = None
    quantum: int | None = None
    ecn: bool | None = None
    drop_batch: int | None = None
    profile: str = "5.18+"
    classifier: Any = None
    endianness: str = "little"

    def __post_init__(self) -> None:
        for name in ("limit", "flows", "quantum", "drop_batch"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
                raise ConfigError(f"fq_codel {name} {v!r}: expected a positive integer")
        if self.flows is not None and self.flows > 65536:
            raise ConfigError(f"fq_codel flows {self.flows}: expected 1 … 65536")
        for name in ("target", "interval"):
            v = getattr(self, name)
            if v is not None:
                v = parse_time(v, f"fq_codel {name}")
                if not v > 0:
                    raise ConfigError(f"fq_codel {name}: expected a time > 0")
                object.__setattr__(self, name, v)
        self.check()

    def effective(self, name: str) -> Any:
        """An option's value in force (given, or the kernel's default)."""
        v = getattr(self, name)
        return FQ_CODEL_DEFAULTS[name] if v is None else v

    def check(self, profile: Any = None) -> None:
        prof = get_profile(self.profile if profile is None else profile)
        if prof.fq_codel is None:
            raise KernelFeatureMissing(f"fq_codel does not exist in profile {prof.name!r} "
                                       "(it arrives with 3.5)")

    def selector(self, handle: str | int | None = None):
        """The :class:`qoslab.hashing.FqCodelHash` that computes this qdisc's queue indexes
        (``handle``, e.g. ``"1:"``, enables the ``skb->priority`` override)."""
        return FqCodelHash(self.effective("flows"), self.profile, classifier=self.classifier,
                           handle=handle, endianness=self.endianness)

    def index(self, packets, seed=0, at=None, *, handle: str | int | None = None, hashrnd=0,
              classifier_at=None):
        """Flow-queue index per packet (0-based, int64; ``-1`` where the attached filter
        drops it). ``seed`` is the global flow-hash seed (4.11+; SipHash key from 5.4) or the
        qdisc's own perturbation (3.5–4.10), a sequence with ``at`` for a schedule;
        ``hashrnd``/``classifier_at`` are the attached filter's.

        >>> import pandas as pd
        >>> pk = pd.DataFrame({"ip_version": [4], "src": ["192.168.1.10"], "dst": ["10.0.0.1"],
        ...     "proto": [6], "sport": [12345], "dport": [80], "tos": [0], "frag": [False],
        ...     "tunnel": ["none"], "inner_src": [None], "inner_dst": [None], "inner_proto": [None],
        ...     "inner_sport": [None], "inner_dport": [None]})
        >>> FqCodel().index(pk, seed=bytes(range(16))).tolist()
        [680]
        """
        return self.selector(handle).index(packets, seed, at, hashrnd=hashrnd,
                                           classifier_at=classifier_at)

    bucket = index

    def hash_inputs(self, packets):
        """What the seeded hash reads (see :meth:`qoslab.hashing.FqCodelHash.hash_inputs`)."""
        return self.selector().hash_inputs(packets)

    def hash_buckets(self, inputs, seed):
        """Queue indexes from :meth:`hash_inputs` for one seed."""
        return self.selector().hash_buckets(inputs, seed)

    def with_classifier(self, classifier: Any) -> FqCodel:
        return replace(self, classifier=classifier)

    def options(self) -> list[str]:
        out: list[str] = []
        for name in ("limit", "flows"):
            if getattr(self, name) is not None:
                out += [name, str(getattr(self, name))]
        for name in ("target", "interval"):
            if getattr(self, name) is not None:
                out += [name, format_time(getattr(self, name))]
        if self.quantum is not None:
            out += ["quantum", str(self.quantum)]
        if self.ecn is not None:
            out.append("ecn" if self.ecn else "noecn")
        if self.drop_batch is not None:
            out += ["drop_batch", str(self.drop_batch)]
        return out

    @classmethod
    def parse_options(cls, words: Sequence[str], profile: str = "5.18+", **context
                      ) -> FqCodel:
        w = Words(words, "fq_codel")
        kw: dict[str, Any] = {}
        for word in w:
            if word in ("limit", "flows", "quantum", "drop_batch"):
                kw[word] = w.number(word)
            elif word in ("target", "interval"):
                kw[word] = parse_time(w.value(word), f"fq_codel {word}")
            elif word in ("ecn", "noecn"):
                kw["ecn"] = word == "ecn"
            else:
                raise w.unknown(word)
        return cls(profile=profile, **kw)


class _Flow:
    __slots__ = ("q", "deficit", "backlog", "listed", "count", "lastcount", "dropping",
                 "first_above", "drop_next", "idx")

    def __init__(self, idx: int) -> None:
        self.q: deque = deque()
        self.deficit = 0
        self.backlog = 0
        self.listed = False
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self.first_above = 0.0
        self.drop_next = 0.0
        self.idx = idx


@runtime_for(FqCodel)
class FqCodelRuntime(Runtime):
    __slots__ = ("spec", "flow_of", "ect", "quantum", "mtu", "flows", "new_flows", "old_flows",
                 "backlog", "target", "interval", "limit", "ecn", "drop_batch")

    def __init__(self, spec: FqCodel, ctx: BuildContext, handle: str | None = None) -> None:
        super().__init__("fq_codel")
        self.spec = spec
        selector = spec.selector(handle)
        seed = ctx.seeds[0]  # the global flow-hash seed (or fq_codel's own perturbation)
        self.flow_of = ctx.flows.answer(("fq_codel", self.uid),
                                        lambda f: selector.index(f, seed))
        self.ect = ctx.ect()
        self.quantum = int(spec.quantum or ctx.mtu_bytes)
        self.mtu = ctx.mtu_bytes
        self.flows: dict[int, _Flow] = {}
        self.new_flows: deque = deque()
        self.old_flows: deque = deque()
        self.backlog = 0
        self.target = spec.effective("target")
        self.interval = spec.effective("interval")
        self.limit = spec.effective("limit")
        self.ecn = spec.effective("ecn")
        self.drop_batch = spec.effective("drop_batch")

    def enqueue(self, pkt, t: float) -> None:
        idx = self.flow_of[pkt[0]]
        pkt[QUEUE] = idx
        if idx < 0:
            self.drop(pkt, t)
            return
        flow = self.flows.get(idx)
        if flow is None:
            flow = self.flows[idx] = _Flow(idx)
        flow.q.append(pkt)
        flow.backlog += pkt[1]
        self.backlog += pkt[1]
        if not flow.listed:
            flow.listed = True
            self.new_flows.append(flow)
            flow.deficit = self.quantum
        self.qlen += 1
        if self.qlen > self.limit:
            self._drop_fattest(t)

    def _drop_fattest(self, t: float) -> None:
        fat = max(self.flows.values(), key=lambda f: (f.backlog, -f.idx))
        threshold = fat.backlog >> 1
        dropped = 0
        for _ in range(self.drop_batch):
            if not fat.q:
                break
            pkt = fat.q.popleft()
            dropped += pkt[1]
            self._account_out(fat, pkt)
            self.drop(pkt, t)
            if dropped >= threshold:
                break

    def _account_out(self, flow: _Flow, pkt) -> None:
        flow.backlog -= pkt[1]
        self.backlog -= pkt[1]
        self.qlen -= 1

    def _pop(self, flow: _Flow):
        if not flow.q:
            return None
        pkt = flow.q.popleft()
        self._account_out(flow, pkt)
        return pkt

    def _should_drop(self, flow: _Flow, pkt, now: float) -> bool:
        if pkt is None:
            flow.first_above = 0.0
            return False
        if now - pkt[2] < self.target or self.backlog <= self.mtu:
            flow.first_above = 0.0
            return False
        if flow.first_above == 0.0:
            flow.first_above = now + self.interval
            return False
        return now > flow.first_above

    def _mark(self, pkt) -> bool:
        if self.ecn and self.ect[pkt[0]]:
            pkt[4] = 1
            self.marks += 1
            return True
        return False

    def _codel_dequeue(self, flow: _Flow, now: float):
        q = flow.q
        if not q:
            flow.dropping = False
            return None
        pkt = q.popleft()
        size = pkt[1]
        flow.backlog -= size
        self.backlog -= size
        self.qlen -= 1
        if not flow.dropping and (now - pkt[2] < self.target or self.backlog <= self.mtu):
            flow.first_above = 0.0  # the common case: below target, nothing to do
            return pkt
        return self._codel_control(flow, pkt, now)

    def _codel_control(self, flow: _Flow, pkt, now: float):
        """``codel_dequeue`` after the head packet was taken: the CoDel state machine."""
        drop = self._should_drop(flow, pkt, now)
        interval = self.interval
        if flow.dropping:
            if not drop:
                flow.dropping = False
            elif now >= flow.drop_next:
                while flow.dropping and now >= flow.drop_next:
                    flow.count += 1
                    if self._mark(pkt):
                        flow.drop_next += interval / math.sqrt(flow.count)
                        return pkt
                    self.drop(pkt, now)
                    pkt = self._pop(flow)
                    if not self._should_drop(flow, pkt, now):
                        flow.dropping = False
                    else:
                        flow.drop_next += interval / math.sqrt(flow.count)
        elif drop:
            if not self._mark(pkt):
                self.drop(pkt, now)
                pkt = self._pop(flow)
                self._should_drop(flow, pkt, now)
            flow.dropping = True
            delta = flow.count - flow.lastcount
            if delta > 1 and now - flow.drop_next < 16 * interval:
                flow.count = delta
            else:
                flow.count = 1
            flow.lastcount = flow.count
            flow.drop_next = now + interval / math.sqrt(flow.count)
        return pkt

    def dequeue(self, t: float):
        new_flows, old_flows = self.new_flows, self.old_flows
        while True:
            if new_flows:
                head, flow = new_flows, new_flows[0]
            elif old_flows:
                head, flow = old_flows, old_flows[0]
            else:
                return None
            if flow.deficit <= 0:
                flow.deficit += self.quantum
                head.popleft()
                old_flows.append(flow)
                continue
            q = flow.q
            if q and not flow.dropping:
                # inline fast path of _codel_dequeue: head below target, nothing to do
                pkt = q[0]
                size = pkt[1]
                if t - pkt[2] < self.target or self.backlog - size <= self.mtu:
                    q.popleft()
                    flow.backlog -= size
                    self.backlog -= size
                    self.qlen -= 1
                    flow.first_above = 0.0
                    flow.deficit -= size
                    return pkt
            pkt = self._codel_dequeue(flow, t)
            if pkt is None:
                head.popleft()
                if head is new_flows and old_flows:
                    old_flows.append(flow)
                else:
                    flow.listed = False
                continue
            flow.deficit -= pkt[1]
            return pkt

    def snapshot(self):
        for idx in sorted(self.flows):
            q = self.flows[idx].q
            if q:
                yield idx, list(q)

    def stats(self) -> dict:
        out = super().stats()
        out.update(limit=self.limit, flows=self.spec.effective("flows"), quantum=self.quantum,
                   target=self.target, interval=self.interval, ecn=self.ecn)
        return out
