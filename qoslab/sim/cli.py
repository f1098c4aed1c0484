"""``qoslab sim SCENARIO [--PARAM VALUE …] [-w FILE] [-o PNG]``: ``qoslab run`` on the
simulator.

The scenarios and their parameters are those of :mod:`qoslab.scenarios` (``qoslab run --list``);
this command is ``qoslab run SCENARIO --backend sim``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..scenarios import get
from ..scenarios.cli import listing, run_command
from ..scenarios.params import parse_cli_items

__all__ = ["register", "parse_params"]


def parse_params(name: str, items: Sequence[str]) -> dict:
    """Turn ``["--perturb", "20", "--seed", "2"]`` into the scenario's checked values.

    >>> parse_params("sfq_perturb", ["--perturb", "20", "--profile", "5.18+"])
    {'perturb': 20, 'profile': '5.18+'}
    """
    return parse_cli_items(get(name).params, items, owner=name)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab sim`` to the command line."""
    p = sub.add_parser(
        "sim", help="run a scenario on the simulator (qoslab run --backend sim)",
        description="Run a scenario of qoslab.scenarios in the discrete-event simulator and "
        "write its RUN (-w). `qoslab sim NAME --help` lists its parameters.",
        epilog="scenarios:\n" + listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", metavar="SCENARIO")
    p.add_argument("items", nargs=argparse.REMAINDER,
                   help="-w FILE, -o PNG, --force, and the scenario's parameters")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    return run_command(args.scenario, args.items, backend="sim", prog="qoslab sim")
