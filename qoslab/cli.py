"""The ``qoslab`` command.

Each subcommand lives beside the layer it drives, in a module that defines
``register(subparsers)``; this file only lists them. A subcommand's handler returns an exit
status. Errors qoslab raises on purpose (:class:`~qoslab.errors.QoslabError`) are printed as one
line, never as a traceback, and so is each warning; Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from ._version import __version__
from .errors import QoslabError

__all__ = ["main", "build_parser", "OneLineParser", "SUBCOMMANDS"]

#: subcommand -> module that registers it (in the order ``--help`` lists them).
SUBCOMMANDS: dict[str, str] = {
    "report": "qoslab.report",
    "notebooks": "qoslab.data",
    "capture": "qoslab.capture.cli",
    "plot": "qoslab.plot_cli",
    "ping": "qoslab.ping.cli",
    "run": "qoslab.scenarios.cli",
    "lab": "qoslab.lab.cli",
    "sim": "qoslab.sim.cli",
    "replay": "qoslab.replay.cli",
    "datapath": "qoslab.datapath.cli",
    "hash": "qoslab.hashing.cli",
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (status 2), like qoslab's own:
    ``qoslab ping: error: argument -c/--count: expected one argument (see qoslab ping --help)``.
    """

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = OneLineParser(
        prog="qoslab",
        description="Explain why latency spikes under load: captures, flow hashes, pings, "
        "a queue simulator and a network-namespace lab.",
    )
    parser.add_argument("--version", action="version", version=f"qoslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qoslab`` command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2

    def one_line(message, category, filename, lineno, line=None):
        return f"qoslab {args.command}: warning: {message}\n"

    plain = warnings.formatwarning
    warnings.formatwarning = one_line  # a warning is one line on stderr, not source code
    try:
        return int(args.func(args) or 0)
    except QoslabError as exc:
        print(f"qoslab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or device the command was given or writes: one line too
        print(f"qoslab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qoslab {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = plain


if __name__ == "__main__":
    sys.exit(main())
