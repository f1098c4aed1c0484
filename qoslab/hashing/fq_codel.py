"""fq_codel flow selection (``net/sched/sch_fq_codel.c``).

* 3.5–4.1: ``jhash_3words(raw dst, raw src ^ ip_proto, raw ports, q->perturbation)`` of the
  dissected flow (its own per-qdisc random perturbation).
* 4.2–4.10: ``skb_get_hash_perturb(skb, q->perturbation)``: the flow-keys hash with its own
  perturbation (profile value ``"flow-hash-perturb"``).
* 4.11+: ``skb_get_hash(skb)`` (the global flow hash; see :mod:`.skbhash`).

Both scale with ``reciprocal_scale(hash, flows) = (u64)hash * flows >> 32``; ``classify``
returns that index + 1. Overrides as in ``fq_codel_classify``: ``skb->priority`` of the qdisc
handle with minor ``1..flows`` picks queue minor - 1; with filters, a minor in ``1..flows``
picks minor - 1 and anything else drops (index -1 here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, KernelFeatureMissing
from ._packets import check_frame
from .cls_flow import parse_classid
from .dissect import Flow, dissect
from .jhash import jhash_3words
from .perturb import apply_seeds
from .profiles import DEFAULT_PROFILE, KernelProfile, get_profile
from .sfq import classifier_buckets, priority_override, three_words
from .skbhash import flow_hash, rxhash, select_rows

__all__ = ["FqCodelHash", "fq_codel_index", "reciprocal_scale"]

#: fq_codel hashes the skb's flow hash: with its own perturbation (``skb_get_hash_perturb``,
#: 4.2–4.10) or the global secret (``skb_get_hash``, 4.11+); the bits are computed alike.
_FLOW_HASH = ("skb-hash", "flow-hash-perturb")


def reciprocal_scale(value, n: int) -> np.ndarray:
    """``((u64)value * n) >> 32``.

    Examples
    --------
    >>> int(reciprocal_scale(0xaa09f22d, 1024))
    680
    """
    return ((np.asarray(value, dtype=np.uint64) * np.uint64(n)) >> np.uint64(32)).astype(
        np.int64)


class FqCodelHash:
    """fq_codel's flow index for one kernel profile (``flows`` queues).

    The qdisc itself — options, validation, tc text — is the spec :class:`qoslab.qdiscs.FqCodel`
    (also ``qoslab.hashing.FqCodel``); ``FqCodel(...).selector()`` builds this object.

    ``classifier`` (an attached filter) and ``handle`` (for the ``skb->priority`` override)
    select queues as ``fq_codel_classify`` does; a packet they reject gets index -1.
    """

    def __init__(self, flows: int = 1024, profile: str | KernelProfile = DEFAULT_PROFILE, *,
                 classifier=None, handle: str | int | None = None,
                 endianness: str = "little") -> None:
        self.profile = get_profile(profile)
        if self.profile.fq_codel is None:
            raise KernelFeatureMissing(f"fq_codel does not exist in profile "
                                       f"{self.profile.name!r} (it arrives with 3.5)")
        if not 1 <= int(flows) <= 65536:
            raise ConfigError(f"fq_codel flows {flows}: expected 1..65536")
        self.flows = int(flows)
        self.divisor = self.flows
        self.endianness = endianness
        self.classifier = classifier
        self.handle = None if handle is None else parse_classid(handle) & 0xFFFF0000

    def hash_inputs(self, packets: pd.DataFrame):
        """What the seeded hash reads (Flow for 4.2+, ``(N, 3)`` words before)."""
        check_frame(packets)
        if self.profile.fq_codel in _FLOW_HASH:
            stop = self.profile.skb_hash == "flow-keys" and self.profile.flow_label_stop
            return dissect(packets, self.profile, stop_at_flow_label=stop)
        return np.column_stack(three_words(dissect(packets, self.profile), self.endianness,
                                           self.profile.ipv6_addr)).astype(np.uint32)

    def hash_buckets(self, inputs, seed) -> np.ndarray:
        prof = self.profile
        if prof.fq_codel in _FLOW_HASH:
            fn = flow_hash if prof.skb_hash == "flow-keys" else rxhash
            h = fn(inputs, seed, prof, self.endianness)
        else:
            h = jhash_3words(inputs[:, 0], inputs[:, 1], inputs[:, 2],
                             int(seed) & 0xFFFFFFFF, algo=prof.jhash)
        return reciprocal_scale(h, self.flows)

    def index(self, packets: pd.DataFrame, seed: int | Sequence = 0, at=None, *,
              hashrnd=0, classifier_at=None) -> np.ndarray:
        """0-based flow queue index per packet (int64); -1 where the override drops it."""
        if self.classifier is not None:
            out = classifier_buckets(self.classifier, packets, self.flows, hashrnd,
                                     classifier_at)
        else:
            inputs = self.hash_inputs(packets)
            pick = (lambda rows: select_rows(inputs, rows)) if isinstance(inputs, Flow) else \
                (lambda rows: inputs[rows])
            out = np.empty(len(packets), dtype=np.int64)
            apply_seeds(packets, seed, at, out, lambda s, rows: self.hash_buckets(
                pick(rows), s))
        return priority_override(packets, out, self.handle, self.flows)

    bucket = index

    def __repr__(self) -> str:
        return f"FqCodelHash(flows={self.flows}, profile={self.profile.name!r})"


def fq_codel_index(packets: pd.DataFrame, flows: int = 1024, hashrnd=0,
                   profile: str | KernelProfile = DEFAULT_PROFILE, *, at=None,
                   endianness: str = "little") -> np.ndarray:
    """fq_codel flow index (0-based; the kernel's classify returns it + 1).

    ``hashrnd`` is the global flow-hash seed (4.11+; SipHash key from 5.4) or the qdisc's own
    perturbation (3.5–4.10); a sequence with ``at`` gives a schedule.

    Examples
    --------
    >>> import pandas as pd
    >>> pk = pd.DataFrame({"ip_version": [4], "src": ["192.168.1.10"], "dst": ["10.0.0.1"],
    ...     "proto": [6], "sport": [12345], "dport": [80], "tos": [0], "frag": [False],
    ...     "tunnel": ["none"], "inner_src": [None], "inner_dst": [None], "inner_proto": [None],
    ...     "inner_sport": [None], "inner_dport": [None]})
    >>> fq_codel_index(pk, hashrnd=bytes(range(16)), profile="5.18+").tolist()
    [680]
    """
    return FqCodelHash(flows, profile, endianness=endianness).index(packets, hashrnd, at)
