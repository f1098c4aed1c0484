"""Real-kernel test bed: network namespaces, veth, ``tc`` shaping, loads, pings and captures.

Needs Linux and root. Everything it creates is named ``qlab-<pid>-<runid>-<role>`` and removed
on exit, on errors and on SIGINT/SIGTERM; see :mod:`qoslab.lab.netns`.

Modules: :mod:`~qoslab.lab.testbed` (the bed), :mod:`~qoslab.lab.tc` (declarative qdisc trees
and ``tc -s`` parsing), :mod:`~qoslab.lab.probe` (what this kernel has),
:mod:`~qoslab.lab.loads` and :mod:`~qoslab.lab.flood` (UDP floods, TCP bulk),
:mod:`~qoslab.lab.pings` (qoslab's ping runner inside a namespace),
:mod:`~qoslab.lab.observe` (tcpdump, ``tc -s`` sampling). The experiments themselves are
scenarios of :mod:`qoslab.scenarios`, run here by its ``kernel`` backend
(``qoslab lab NAME`` = ``qoslab run NAME --backend kernel``).

Examples
--------
>>> from qoslab.lab import Testbed
>>> from qoslab.qdiscs import Htb, HtbClass, Pfifo
>>> with Testbed(router=True) as tb:                                  # doctest: +SKIP
...     tb.apply(Htb(classes=(HtbClass("1:10", "2mbit", leaf=Pfifo(limit=1000)),), default=0x10),
...              "router")
...     flood = tb.udp_flood("2.5mbit", size=500, prefill=1000, duration=30)
...     pings = tb.start_ping(tb.ping_targets([0x00]), interval=0.1, count=50,
...                           path="p.json.gz", timeout=5).result(t0_unix=tb.t0_unix)
>>> run = tb.result(pings)                                            # doctest: +SKIP
"""

from .netns import LabCommandError, LabUnavailableError, find_leftovers, remove_leftovers
from .observe import tc_samples
from .pings import PingTarget
from .probe import kernel_features, require_features
from .tc import Filter, Qdisc, Shaping, TcClass
from .testbed import Testbed

__all__ = [
    "Filter",
    "LabCommandError",
    "LabUnavailableError",
    "PingTarget",
    "Qdisc",
    "Shaping",
    "TcClass",
    "Testbed",
    "find_leftovers",
    "kernel_features",
    "remove_leftovers",
    "require_features",
    "tc_samples",
]
