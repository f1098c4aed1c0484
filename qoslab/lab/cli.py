"""``qoslab lab``: a scenario on the real kernel in network namespaces, and the lab's tools.

::

    qoslab lab pfifo_fast_tos -w tos.json.gz
    qoslab lab bufferbloat --queue-limit 500 --capture bb.pcap -w bb.json.gz -o bb.png
    qoslab lab bufferbloat --param queue_limit=500       # the same, NAME=VALUE form
    qoslab lab --features          # which qdiscs / classifiers / tunnels this kernel has
    qoslab lab --cleanup           # remove namespaces left by crashed runs

``qoslab lab NAME …`` is ``qoslab run NAME --backend kernel …`` (:mod:`qoslab.scenarios.cli`).
"""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError
from ..scenarios.cli import listing, run_command
from ..scenarios.registry import names
from .netns import remove_leftovers, require_lab
from .probe import kernel_features

__all__ = ["register", "handle"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lab`` subcommand."""
    p = subparsers.add_parser(
        "lab", help="run a scenario on the real kernel in network namespaces (root, Linux)",
        description="Run a scenario in throw-away network namespaces on this kernel (needs "
        "root on Linux): shaping with tc, loads, qoslab ping, tc -s statistics; save it as a "
        "RUN. `qoslab lab NAME --help` lists its parameters.",
        epilog="scenarios:\n" + listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", metavar="SCENARIO")
    p.add_argument("--features", action="store_true",
                   help="probe and print the qdiscs, classifiers and tunnels this kernel has")
    p.add_argument("--cleanup", action="store_true",
                   help="remove lab namespaces left by runs whose process is dead")
    p.add_argument("items", nargs=argparse.REMAINDER,
                   help="-w FILE, -o PNG, --capture PCAP, --force, and the scenario's "
                   "parameters (--NAME VALUE or --param NAME=VALUE)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the ``lab`` subcommand; return the exit status."""
    if args.cleanup:
        require_lab()
        gone = remove_leftovers()
        print(f"removed {len(gone)} leftover namespace(s)" + (f": {', '.join(gone)}"
                                                              if gone else ""))
        return 0
    if args.features:
        print(json.dumps(kernel_features(), indent=1))
        return 0
    if not args.scenario:
        raise ConfigError(f"name a scenario ({', '.join(names())}), or --features / --cleanup")
    return run_command(args.scenario, args.items, backend="kernel", prog="qoslab lab")
