"""SFQ (``net/sched/sch_sfq.c``): which bucket a packet goes to, per kernel era.

Bucket functions (profile field ``sfq``):

* ``"fold"`` (≤ 2.6.24): ``h = raw daddr``, ``h2 = raw saddr ^ proto [^ raw L4 word]``;
  ``h ^= (h2 << pert) ^ (h2 >> (31 - pert)); h ^= h >> 10; h & 0x3ff`` with ``pert`` 0–31.
* ``"jhash-2words"`` (2.6.25–3.2): ``jhash_2words(h, h2, perturbation) & (divisor - 1)``, the
  divisor fixed at 1024 before 2.6.39 (profile field ``sfq_divisor_fixed``); never rehashes.
* ``"jhash-3words"`` (3.3–4.1): ``jhash_3words(raw dst, raw src ^ ip_proto, raw ports,
  perturbation) & (divisor - 1)`` over the dissected flow (inner header of IP-in-IP); rehash.
* ``"flow-hash"`` (4.2+): ``skb_get_hash_perturb & (divisor - 1)`` (jhash2 or siphash of
  ``flow_keys``), both directions of a flow in one bucket.

Classification override (``sfq_classify``, 2.6.25+): ``skb->priority`` whose major is the qdisc handle
and whose minor is in ``1..divisor`` selects bucket ``minor - 1``; else with filters attached
a filter minor in ``1..divisor`` selects ``minor - 1`` and anything else drops the packet
(bucket ``-1`` here); without filters the hash decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ._packets import check_frame, column, raw16, raw32
from .cls_flow import FlowClassifier, parse_classid
from .dissect import Flow, addr32, direct_read, dissect
from .jhash import jhash_2words, jhash_3words
from .perturb import apply_seeds, check_perturb
from .profiles import DEFAULT_PROFILE, KernelProfile, get_profile
from .skbhash import flow_hash, raw_ports, select_rows

__all__ = ["SfqHash", "sfq_fold", "classifier_buckets", "priority_override", "SFQ_MAX_DEPTH", "SFQ_MAX_FLOWS", "SFQ_DEFAULT_HASH_DIVISOR"]

SFQ_MAX_DEPTH = 127
SFQ_MAX_FLOWS = 65408
SFQ_DEFAULT_HASH_DIVISOR = 1024
_CLASSIC_DEPTH = 128  # SFQ_DEPTH before 3.3 (also the number of slots)


def sfq_fold(h: np.ndarray, h2: np.ndarray, pert: int) -> np.ndarray:
    """The pre-jhash SFQ fold (``sfq_fold_hash``), 1024 buckets.

    Examples
    --------
    >>> sfq_fold(np.array([0x0100000a], np.uint32), np.array([0x5a0191f6], np.uint32), 0)
    array([408])
    """
    p = int(pert) & 0x1F
    h = np.asarray(h, dtype=np.uint32)
    h2 = np.asarray(h2, dtype=np.uint32)
    x = h ^ (h2 << np.uint32(p)) ^ (h2 >> np.uint32(31 - p))
    x = x ^ (x >> np.uint32(10))
    return (x & 0x3FF).astype(np.int64)


class SfqHash:
    """The bucket selection of one SFQ configuration in one kernel era.

    The qdisc itself — its options, validation and tc text — is the spec
    :class:`qoslab.Sfq` (:class:`qoslab.qdiscs.Sfq`); ``Sfq(...).selector()`` builds this
    object, and ``Sfq(...).bucket(...)`` evaluates it. Here the options are normalised as the
    profile's kernel does (``self.limit`` etc. are the values in force).

    Parameters
    ----------
    divisor
        Hash table size (power of 2 up to 65536 from 3.3; fixed 1024 before).
    perturb
        Seconds between perturbation changes (0/None = never).
    limit, depth, flows, headdrop, quantum
        tc options; normalised as the profile's kernel does (``self.limit`` etc.). ``limit``
        None means not given (127); a given limit also caps ``flows``, as ``sfq_change`` does.
    profile
        Kernel profile name.
    classifier
        An attached filter (:class:`~qoslab.FlowClassifier`): its minors select buckets.
    handle
        The qdisc handle (``"1:"``), enabling the ``skb->priority`` override.

    Examples
    --------
    >>> import pandas as pd
    >>> pk = pd.DataFrame({"ip_version": [4, 4], "src": ["192.168.1.10", "10.0.0.1"],
    ...     "dst": ["10.0.0.1", "192.168.1.10"], "proto": [6, 6], "sport": [12345, 80],
    ...     "dport": [80, 12345], "tos": [0, 0], "frag": [False, False],
    ...     "tunnel": ["none"] * 2, "inner_src": [None] * 2, "inner_dst": [None] * 2,
    ...     "inner_proto": [None] * 2, "inner_sport": [None] * 2, "inner_dport": [None] * 2})
    >>> SfqHash(profile="classic-2.6.3x").bucket(pk, seed=0).tolist()  # F and its reverse
    [635, 208]
    >>> SfqHash(profile="5.18+").bucket(pk, seed=bytes(range(16))).tolist()  # symmetric
    [557, 557]
    >>> SfqHash(limit=500, profile="classic-2.6.3x").limit   # sfq_change caps it
    127
    """

    def __init__(self, divisor: int = SFQ_DEFAULT_HASH_DIVISOR, perturb: float | None = None,
                 limit: int | None = None, depth: int = 127, flows: int = 128,
                 headdrop: bool = False,
                 quantum: int | None = None, profile: str | KernelProfile = DEFAULT_PROFILE,
                 classifier: FlowClassifier | None = None, *, handle: str | int | None = None,
                 endianness: str = "little") -> None:
        self.profile = prof = get_profile(profile)
        if classifier is not None and not prof.sfq_classify:
            raise ConfigError(f"SFQ takes no filters in profile {prof.name!r} (sfq_classify "
                              "arrives with 2.6.25)")
        self.classifier = classifier
        self.perturb = check_perturb(perturb, "SFQ perturb")
        self.quantum = quantum
        self.headdrop = bool(headdrop)
        self.endianness = endianness
        self.handle = None if handle is None else parse_classid(handle) & 0xFFFF0000
        divisor = int(divisor)
        given_limit = limit is not None
        limit = (128 if prof.sfq == "fold" else 127) if limit is None else int(limit)
        if prof.sfq in ("fold", "jhash-2words"):
            if prof.sfq_divisor_fixed and divisor != 1024:
                raise ConfigError(f"SFQ divisor {divisor}: fixed at 1024 in profile {prof.name!r}")
            if divisor < 1 or divisor > 65536 or divisor & (divisor - 1):
                raise ConfigError(f"SFQ divisor {divisor}: expected a power of 2 up to 65536")
            if headdrop:
                raise ConfigError(f"SFQ headdrop does not exist in profile {prof.name!r}")
            self.depth = self.flows = _CLASSIC_DEPTH
            self.limit = min(int(limit), _CLASSIC_DEPTH - (1 if prof.sfq != "fold" else 0))
        else:
            if divisor < 1 or divisor > 65536 or divisor & (divisor - 1):
                raise ConfigError(f"SFQ divisor {divisor}: expected a power of 2 up to 65536")
            if prof.sfq == "jhash-3words":
                self.depth, self.flows = _CLASSIC_DEPTH, _CLASSIC_DEPTH
                self.limit = min(int(limit), _CLASSIC_DEPTH - 1)
            else:
                fl = min(min(int(flows), SFQ_MAX_FLOWS), divisor)
                self.depth = min(int(depth), SFQ_MAX_DEPTH)
                self.limit = min(int(limit), self.depth * fl)
                self.flows = min(fl, self.limit) if given_limit else fl
        if self.limit == 1:
            raise ConfigError("SFQ limit 1 is rejected by the kernel")
        self.divisor = divisor

    @property
    def rehash_on_perturb(self) -> bool:
        """Queued packets move to their new buckets when the seed changes (3.3+, no filter)."""
        return self.profile.sfq_rehash and self.classifier is None

    # ------------------------------------------------------------------ hash inputs
    def hash_inputs(self, packets: pd.DataFrame):
        """What the seeded hash reads: an ``(N, k)`` uint32 array, or a dissected Flow (4.2+).

        Packets whose inputs are equal share a bucket for every seed.
        """
        check_frame(packets)
        prof, e = self.profile, self.endianness
        if prof.sfq == "flow-hash":
            return dissect(packets, prof, stop_at_flow_label=prof.flow_label_stop)
        if prof.sfq == "jhash-3words":
            f = dissect(packets, prof)
            return np.column_stack(three_words(f, e, prof.ipv6_addr)).astype(np.uint32)
        f = direct_read(packets, prof)
        ip = f.version > 0
        h = raw32(f.dst[:, 3], e)
        h2 = raw32(f.src[:, 3], e) ^ f.ip_proto
        has_l4 = ip & (f.sport | f.dport).astype(bool)
        h2 = np.where(has_l4, h2 ^ raw_ports(f.sport, f.dport, e), h2)
        # non-IP: h = (u32)skb_dst ^ skb->protocol, h2 = (u32)skb->sk
        route = column(packets, "route_token")  # non-IP usually has no route: 0
        h = np.where(ip, h, route ^ raw16(f.l2_proto, e))
        h2 = np.where(ip, h2, column(packets, "sk_token"))
        return np.column_stack([h, h2]).astype(np.uint32)

    def hash_buckets(self, inputs, seed) -> np.ndarray:
        """Bucket (0-based) from :meth:`hash_inputs` for one seed."""
        prof = self.profile
        if prof.sfq == "flow-hash":
            return (flow_hash(inputs, seed, prof, self.endianness) & (self.divisor - 1)
                    ).astype(np.int64)
        s = int(seed) & 0xFFFFFFFF
        if prof.sfq == "fold":
            return sfq_fold(inputs[:, 0], inputs[:, 1], s)
        if prof.sfq == "jhash-2words":
            h = jhash_2words(inputs[:, 0], inputs[:, 1], s, algo=prof.jhash)
            return (np.asarray(h) & (self.divisor - 1)).astype(np.int64)
        h = jhash_3words(inputs[:, 0], inputs[:, 1], inputs[:, 2], s, algo=prof.jhash)
        return (np.asarray(h) & (self.divisor - 1)).astype(np.int64)

    # ------------------------------------------------------------------ buckets
    def bucket(self, packets: pd.DataFrame, seed: int | Sequence = 0, at=None, *,
               hashrnd: int | Sequence = 0, classifier_at=None) -> np.ndarray:
        """Bucket index per packet (int64), ``-1`` where the classifier override drops it.

        Parameters
        ----------
        seed
            The qdisc's perturbation (u32 up to 5.3, SipHash key from 5.4), or a sequence
            with ``at`` = change times (column ``t`` picks the seed per packet).
        hashrnd, classifier_at
            Seed(s) and change times of the attached classifier.
        """
        if self.classifier is not None:
            out = classifier_buckets(self.classifier, packets, self.divisor, hashrnd,
                                     classifier_at)
        else:
            out = np.full(len(packets), -1, dtype=np.int64)
            inputs = self.hash_inputs(packets)
            pick = (lambda rows: select_rows(inputs, rows)) if isinstance(inputs, Flow) else \
                (lambda rows: inputs[rows])
            apply_seeds(packets, seed, at, out,
                        lambda s, rows: self.hash_buckets(pick(rows), s))
        if not self.profile.sfq_classify:  # before 2.6.25: the hash alone
            return out
        return priority_override(packets, out, self.handle, self.divisor)

    def __repr__(self) -> str:
        return (f"SfqHash(divisor={self.divisor}, limit={self.limit}, depth={self.depth}, "
                f"flows={self.flows}, profile={self.profile.name!r})")


def classifier_buckets(classifier: FlowClassifier, packets: pd.DataFrame, n: int,
                       hashrnd=0, at=None) -> np.ndarray:
    """A filter's minor → bucket ``minor - 1`` when in ``1..n``, else -1 (dropped)."""
    minor = classifier.classify(packets, hashrnd, at).astype(np.int64)
    return np.where((minor >= 1) & (minor <= n), minor - 1, -1)


def priority_override(packets: pd.DataFrame, out: np.ndarray, handle: int | None,
                      n: int) -> np.ndarray:
    """``skb->priority`` of the qdisc's handle with minor ``1..n`` selects bucket minor - 1."""
    if handle is None or "priority" not in packets.columns:
        return out
    prio = column(packets, "priority").astype(np.int64)
    mn = prio & 0xFFFF
    hit = ((prio & 0xFFFF0000) == handle) & (mn > 0) & (mn <= n)
    return np.where(hit, mn - 1, out)


def three_words(f: Flow, e: str, ipv6_addr: str = "xor"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SFQ 3.3 / early fq_codel inputs: (raw dst, raw src ^ ip_proto, raw ports)."""
    def addr(w):
        return raw32(addr32(w, f.version, ipv6_addr), e)
    ip = f.version > 0
    return (addr(f.dst), np.where(ip, addr(f.src) ^ f.ip_proto, 0).astype(np.uint32),
            np.where(ip, raw_ports(f.sport, f.dport, e), 0).astype(np.uint32))
