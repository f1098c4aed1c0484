"""One model per qdisc: its spec (``tc`` text in and out, checked against a kernel era) and
its runtime (enqueue, dequeue, drop), driven by any clock and packet source.

The same runtime objects run inside the simulator (:mod:`qoslab.sim`), on live packets (the
userspace datapath) and on captured packets (replay); bucket and class selection always comes
from :mod:`qoslab.hashing` evaluating the same spec.

=============  ==========================================  ==================================
tc kind        spec                                        runtime model
=============  ==========================================  ==================================
``pfifo``      :class:`Pfifo`                              tail drop, packets
``bfifo``      :class:`Bfifo`                              tail drop, bytes
``pfifo_fast`` :class:`PfifoFast`                          3 bands by ``skb->priority``
``tbf``        :class:`Tbf`                                token bucket + child (bfifo)
``htb``        :class:`Htb` + :class:`HtbClass`            rate/ceil buckets, prio, DRR
``prio``       :class:`Prio`                               strict priority bands
``sfq``        :class:`Sfq`                                each generation's ``sch_sfq.c``
``fq_codel``   :class:`FqCodel`                            DRR flow queues + CoDel
filters        :class:`U32Filter`, ``FlowClassifier``      class / bucket selection
=============  ==========================================  ==================================

Examples
--------
>>> tree = parse_qdisc("tc qdisc add dev eth0 root handle 1: htb default 10\\n"
...                    "tc class add dev eth0 parent 1: classid 1:10 htb rate 2mbit\\n"
...                    "tc qdisc add dev eth0 parent 1:10 handle 10: sfq perturb 10",
...                    profile="5.18+")
>>> tree.classes[0].leaf
Sfq(limit=None, depth=None, flows=None, divisor=None, perturb=10, quantum=None, headdrop=False, profile='5.18+', classifier=None, endianness='little')
"""

from __future__ import annotations

from typing import Any

from ..tcspec import SPEC_KINDS, QdiscSpec
from .changes import ConfigChange, apply_change
from .fifo import Bfifo, Pfifo
from .fq_codel import FqCodel
from .htb import Htb, HtbClass
from .pfifo_fast import PfifoFast
from .prio import Prio
from .runtime import (
    CE,
    CLS,
    FID,
    OWNER,
    QUEUE,
    SEQ,
    SIZE,
    T_ENQ,
    BuildContext,
    FlowTable,
    Runtime,
    build,
    new_packet,
)
from .sfq import Sfq
from .tbf import Tbf
from .tree import parse_tree
from .u32 import U32Filter, U32Match

__all__ = [
    "CE", "CLS", "FID", "OWNER", "QUEUE", "SEQ", "SIZE", "T_ENQ",
    "Bfifo", "BuildContext", "ConfigChange", "FlowTable", "FqCodel", "Htb", "HtbClass",
    "Pfifo", "PfifoFast", "Prio", "QdiscSpec", "Runtime", "SPEC_KINDS", "Sfq", "Tbf", "U32Filter", "U32Match",
    "apply_change", "build", "new_packet", "parse_qdisc", "parse_tree", "walk",
]


def parse_qdisc(text: str, **context: Any) -> QdiscSpec:
    """Any qdisc spec (or tree) from ``tc`` text; ``profile=`` for era-dependent qdiscs."""
    return QdiscSpec.from_tc(text, **context)


def walk(spec: Any):
    """A spec and every descendant qdisc spec, depth first."""
    yield spec
    for child in spec.child_specs():
        yield from walk(child)
