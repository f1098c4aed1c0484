"""``qoslab lab``: run a real-kernel preset in network namespaces and save its RUN.

::

    qoslab lab pfifo_fast_tos -w tos.json.gz
    qoslab lab bufferbloat --param long_limit=500 --capture bb.pcap -w bb.json.gz -o bb.png
    qoslab lab --features          # which qdiscs / classifiers / tunnels this kernel has
    qoslab lab --cleanup           # remove namespaces left by crashed runs
"""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError
from ..outputs import check_output

__all__ = ["register", "handle"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lab`` subcommand."""
    from .presets import PRESETS

    p = subparsers.add_parser(
        "lab", help="run a real-kernel experiment in network namespaces (root, Linux)",
        description="Run a preset experiment in throw-away network namespaces (needs root on "
        "Linux): shaping with tc, a load, qoslab ping, tc -s statistics; save it as a RUN.")
    p.add_argument("preset", nargs="?", choices=sorted(PRESETS), help="experiment to run")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="preset parameter (repeatable), e.g. --param rate=4mbit")
    p.add_argument("-w", "--write", metavar="FILE", help="save the RUN here (.json.gz)")
    p.add_argument("--capture", metavar="PCAP", help="also capture pings with tcpdump here")
    p.add_argument("-o", "--output", metavar="PNG",
                   help="also draw the pings' RTT over time with the EVENTS (PNG or SVG)")
    p.add_argument("--force", action="store_true",
                   help="replace existing -w/--capture/-o files (an earlier journal is kept aside)")
    p.add_argument("--features", action="store_true",
                   help="probe and print the qdiscs, classifiers and tunnels this kernel has")
    p.add_argument("--cleanup", action="store_true",
                   help="remove lab namespaces left by runs whose process is dead")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the ``lab`` subcommand; return the exit status."""
    from .netns import remove_leftovers, require_lab
    from .presets import PRESETS, preset_params
    from .probe import kernel_features

    if args.cleanup:
        require_lab()
        gone = remove_leftovers()
        print(f"removed {len(gone)} leftover namespace(s)" + (f": {', '.join(gone)}"
                                                              if gone else ""))
        return 0
    if args.features:
        print(json.dumps(kernel_features(), indent=1))
        return 0
    if not args.preset:
        raise ConfigError(f"name a preset ({', '.join(PRESETS)}), or --features / --cleanup")
    kwargs = preset_params(args.preset, args.param)
    if args.output:  # checked before the experiment (-w and --capture: by the experiment)
        check_output(args.output, force=args.force, what="figure")
    run = PRESETS[args.preset](**kwargs, path=args.write, capture=args.capture,
                               force=args.force)
    from ..analysis import summarize

    table = summarize(run.probes)
    cols = [c for c in ("sent", "received", "loss_pct", "min", "median", "p90", "max")
            if c in table.columns]
    print(table[cols].round(2).to_string())
    if args.write:
        print(f"saved {args.write}")
    if args.output:
        from ..plots import latency, save_figure

        print(f"figure {save_figure(latency(run, logy=True), args.output, force=args.force)}")
    return 0
