"""Linux flow-hash reimplementations, bit-exact per kernel era, vectorized over PACKETS.

Which queue, band or class does the kernel pick for each packet? :class:`FlowClassifier`
(cls_flow), :class:`Sfq` and :class:`FqCodel` (the qdisc specs of :mod:`qoslab.qdiscs`,
whose selection is :class:`SfqHash` / :class:`FqCodelHash`), :func:`fq_codel_index`, :func:`skb_hash` and
:func:`pfifo_fast_band` answer it for a kernel profile (:data:`PROFILES`); :func:`sharing`
tells which flows share a queue for one seed and for every seed.

Modelling decisions (details in each module):

* Input is a PACKETS-like frame; columns a capture cannot know (mark, priority, iif, socket,
  route and conntrack identities, …) come from optional columns with documented defaults:
  :data:`OPTIONAL_COLUMNS`.
* ``addr_fold(pointer)`` values are opaque non-zero tokens whose *identity* follows the
  kernel object: one per local socket (``sk_token``; 0 = no socket, e.g. forwarded), one per
  route entry (per destination and TOS while the IPv4 routing cache existed, per next hop
  after), one per conntrack entry.
* Raw (``__force u32``) loads depend on the host byte order: every hash takes
  ``endianness="little"`` (default) or ``"big"``.
* The ``tunnel-*`` cls_flow keys (profiles ``tunnel-patch``, ``proposed-fix``) read the inner
  header of 4in4, 6in4, 4in6 and 6in6 packets and equal the plain key on other packets.
* Seeds are random in the kernel: give them (``hashrnd``/``seed``, sequences with ``at`` for a
  perturb schedule) for exact answers, or use :func:`sharing` for what holds for every seed.
"""

import importlib

from ._packets import OPTIONAL_COLUMNS
from .cls_flow import FlowClassifier
from .fq_codel import FqCodelHash, fq_codel_index, reciprocal_scale
from .jhash import jhash, jhash2, jhash_1word, jhash_2words, jhash_3words
from .keys import FLOW_KEYS
from .perturb import hash_changes, seeds_from_events
from .pfifo_fast import (
    PRIO2BAND,
    TOS2PRIO_NEW,
    TOS2PRIO_OLD,
    pfifo_fast_band,
    skb_priority,
    tos_to_priority,
)
from .profiles import PROFILES, KernelProfile, get_profile
from .sfq import SfqHash
from .sharing import SharingReport, birthday_probability, sharing
from .siphash import siphash
from .skbhash import FLOW_KEYS_LAYOUTS, skb_hash

__all__ = [
    "FLOW_KEYS",
    "FLOW_KEYS_LAYOUTS",
    "OPTIONAL_COLUMNS",
    "PRIO2BAND",
    "PROFILES",
    "TOS2PRIO_NEW",
    "TOS2PRIO_OLD",
    "FlowClassifier",
    "FqCodel",
    "FqCodelHash",
    "KernelProfile",
    "SharingReport",
    "Sfq",
    "SfqHash",
    "birthday_probability",
    "fq_codel_index",
    "get_profile",
    "hash_changes",
    "jhash",
    "jhash2",
    "jhash_1word",
    "jhash_2words",
    "jhash_3words",
    "pfifo_fast_band",
    "reciprocal_scale",
    "seeds_from_events",
    "sharing",
    "siphash",
    "skb_hash",
    "skb_priority",
    "tos_to_priority",
]

#: The SFQ and fq_codel qdiscs are ONE spec each (options, validation, tc text:
#: :mod:`qoslab.qdiscs`); their bucket selection is :class:`SfqHash` / :class:`FqCodelHash`
#: here, reached through ``spec.bucket`` / ``spec.index``. The specs are also reachable from
#: here, looked up when first asked for: :mod:`qoslab.qdiscs` builds on this package, which
#: therefore does not import it.
_SPECS = {"Sfq": "qoslab.qdiscs.sfq", "FqCodel": "qoslab.qdiscs.fq_codel"}


def __getattr__(name: str):
    if name in _SPECS:
        return getattr(importlib.import_module(_SPECS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
