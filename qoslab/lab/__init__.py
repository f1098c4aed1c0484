"""Real-kernel test bed: network namespaces, veth, ``tc`` shaping, loads, pings and captures.

Needs Linux and root. Everything it creates is named ``qlab-<pid>-<runid>-<role>`` and removed
on exit, on errors and on SIGINT/SIGTERM; see :mod:`qoslab.lab.netns`.
"""

from .netns import LabCommandError, LabUnavailableError, find_leftovers, remove_leftovers
from .testbed import Testbed

__all__ = [
    "LabCommandError",
    "LabUnavailableError",
    "Testbed",
    "find_leftovers",
    "remove_leftovers",
]
