"""Real-kernel test bed: network namespaces, veth, ``tc`` shaping, loads, pings and captures.

Needs Linux and root. Everything it creates is named ``qlab-<pid>-<runid>-<role>`` and removed
on exit, on errors and on SIGINT/SIGTERM; see :mod:`qoslab.lab.netns`.
"""

from . import presets
from .netns import LabCommandError, LabUnavailableError, find_leftovers, remove_leftovers
from .observe import tc_samples
from .pings import PingTarget
from .presets import PRESETS, bufferbloat, pfifo_fast_tos, tunnel_keys
from .probe import kernel_features, require_features
from .tc import Filter, Qdisc, Shaping, TcClass, htb, leaf, tbf
from .testbed import Testbed

__all__ = [
    "Filter",
    "LabCommandError",
    "LabUnavailableError",
    "PRESETS",
    "PingTarget",
    "Qdisc",
    "Shaping",
    "TcClass",
    "Testbed",
    "bufferbloat",
    "find_leftovers",
    "htb",
    "kernel_features",
    "leaf",
    "pfifo_fast_tos",
    "presets",
    "remove_leftovers",
    "require_features",
    "tbf",
    "tc_samples",
    "tunnel_keys",
]
