"""Discrete-event simulation of a shaped egress link with real qdisc behaviour.

``simulate(SimConfig(...)) -> Run`` and the named experiments of :mod:`qoslab.scenarios`
produce the same RUN tables as the real ping runner, so every plot and analysis works on
either. The qdiscs are the runtime models of :mod:`qoslab.qdiscs` (the same objects the
userspace datapath and capture replay drive); queue choice per packet comes from
:mod:`qoslab.hashing` (one call per flow and seed).
"""

import importlib

from ..qdiscs import Bfifo, FqCodel, Htb, HtbClass, Pfifo, PfifoFast, Prio, Sfq, Tbf
from .link import Link, TokenBucket
from .simulate import ConfigChange, SimConfig, occupancy, root_spec, simulate
from .traffic import BulkFlow, PingFlood, PingStream, Tunnel, UdpFlood, flow_frame

#: The SFQ qdisc spec under its earlier name.
SfqQdisc = Sfq

__all__ = [
    "scenarios",
    "Bfifo",
    "BulkFlow",
    "ConfigChange",
    "FqCodel",
    "Htb",
    "HtbClass",
    "Link",
    "Pfifo",
    "PfifoFast",
    "PingFlood",
    "PingStream",
    "Prio",
    "Sfq",
    "SfqQdisc",
    "SimConfig",
    "Tbf",
    "TokenBucket",
    "Tunnel",
    "UdpFlood",
    "flow_frame",
    "occupancy",
    "root_spec",
    "simulate",
]


def __getattr__(name: str):
    # qoslab.sim.scenarios (the registry's experiments as functions) is imported on first use:
    # the registry itself builds on this package.
    if name == "scenarios":
        return importlib.import_module(f"{__name__}.scenarios")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
