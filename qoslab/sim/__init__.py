"""Discrete-event simulation of a shaped egress link with real qdisc behaviour.

``simulate(SimConfig(...)) -> Run`` and the named presets in :mod:`qoslab.sim.scenarios`
produce the same RUN tables as the real ping runner, so every plot and analysis works on
either. Queue choice per packet comes from :mod:`qoslab.hashing` (one call per flow and seed).
"""

from . import scenarios  # presets: qoslab.sim.scenarios.sfq_perturb(...)
from .classful import HtbClass, HtbTree, Prio
from .fifo import Pfifo, PfifoFast
from .fq_codel import FqCodel
from .sfq import SfqQdisc
from .shaper import Link, TokenBucket
from .simulate import ConfigChange, SimConfig, occupancy, simulate
from .traffic import BulkFlow, PingFlood, PingStream, Tunnel, UdpFlood, flow_frame

__all__ = [
    "scenarios",
    "BulkFlow",
    "ConfigChange",
    "FqCodel",
    "HtbClass",
    "HtbTree",
    "Link",
    "Pfifo",
    "PfifoFast",
    "PingFlood",
    "PingStream",
    "Prio",
    "SfqQdisc",
    "SimConfig",
    "TokenBucket",
    "Tunnel",
    "UdpFlood",
    "flow_frame",
    "occupancy",
    "simulate",
]
