"""``qoslab run SCENARIO [--backend B] [--PARAM VALUE …] [-w FILE] [-o PNG]``: one syntax for
every experiment on every backend.

::

    qoslab run --list
    qoslab run sfq_perturb --help                  # its parameters, units, ranges, defaults
    qoslab run sfq_perturb --perturb 10 -w run.json.gz -o run.png
    qoslab run bufferbloat --backend kernel --queue-limit 500 --capture bb.pcap -w bb.json.gz

``qoslab sim NAME …`` is ``qoslab run NAME --backend sim …``; ``qoslab lab NAME …`` is
``qoslab run NAME --backend kernel …`` (``--param NAME=VALUE`` is accepted there too).
Every value goes through the scenario's :class:`~qoslab.scenarios.params.Param` checks.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ..analysis import detect_spikes, summarize
from ..errors import ConfigError
from ..outputs import check_output
from .params import parse_assignment, parse_cli_items
from .registry import BACKENDS, get, names

__all__ = ["register", "run_command", "listing", "options_of"]


def listing() -> str:
    """The scenarios with their titles, backends and parameters (for ``--help``)."""
    lines = []
    for name in names():
        sc = get(name)
        lines.append(f"  {name}: {sc.title} [{', '.join(sc.backends)}]")
        lines.append("      " + " ".join(f"{p.flag} {shlex.quote(p.to_text(p.default))}"
                                         for p in sc.params))
    return "\n".join(lines)


def _run_parser(prog: str, backend: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, add_help=False)
    p.add_argument("--backend", choices=list(BACKENDS), default=backend)
    p.add_argument("-w", "--write", metavar="FILE")
    p.add_argument("-o", "--output", metavar="PNG")
    p.add_argument("--capture", metavar="PCAP")
    p.add_argument("--input-capture", metavar="PCAP")
    p.add_argument("--decisions", action="store_true")
    p.add_argument("--force", action="store_true")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("-h", "--help", action="store_true")
    return p


def options_of(name: str, items: Sequence[str], *, backend: str | None = None,
               prog: str = "qoslab run") -> tuple[argparse.Namespace, dict[str, Any]]:
    """Split ``items`` into the run options and the scenario's parameter values."""
    sc = get(name)
    opts, rest = _run_parser(prog, backend).parse_known_args(list(items))
    values = parse_cli_items(sc.params, rest, owner=name)
    for text in opts.param:
        key, value = parse_assignment(sc.params, text, owner=name)
        values[key] = value
    return opts, values


def run_command(name: str | None, items: Sequence[str], *, backend: str | None = None,
                prog: str = "qoslab run") -> int:
    """Run ``qoslab run NAME ITEMS…``; return the exit status."""
    if name is None:
        raise ConfigError(f"name a scenario ({', '.join(names())}) or use --list")
    sc = get(name)
    opts, values = options_of(name, items, backend=backend, prog=prog)
    if opts.help:
        print(sc.help_text())
        print("\nrun options: --backend {" + ",".join(BACKENDS) + "}, -w FILE, -o PNG|SVG, "
              "--capture PCAP, --force, --param NAME=VALUE;\n  sim: --decisions (the "
              "per-packet decision log in the RUN); userspace: --input-capture PCAP (the "
              "datapath's input, as its classifier saw it)")
        return 0
    backend = opts.backend or sc.backends[0]
    if opts.output:  # -w and --capture are checked by the backend before it starts
        check_output(opts.output, force=opts.force, what="figure")
    options: dict[str, Any] = {}
    if opts.decisions:
        options["decisions"] = True
    if opts.input_capture:
        options["input_capture"] = opts.input_capture
    extra = {"options": options} if options else {}  # the backend's own, when given
    run = sc.run(backend, path=opts.write, capture=opts.capture, force=opts.force, **extra,
                 **values)
    _print_summary(run)
    if opts.write:
        print(f"saved {opts.write}")
    if opts.output:
        from ..plots import latency, save_figure  # lazy: qoslab.plots loads matplotlib

        fig = latency(run, events=True, spikes=detect_spikes(run.probes))
        print(f"figure {save_figure(fig, opts.output, force=opts.force)}")
    return 0


def _print_summary(run) -> None:
    table = summarize(run.probes)
    cols = [c for c in ("sent", "received", "loss_pct", "min", "median", "p90", "max")
            if c in table.columns]
    print(f"{run.meta.get('scenario', '?')} on {run.meta.get('backend', '?')}: {run!r}")
    if len(table):
        print(table[cols].round(2).to_string())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qoslab run``."""
    p = subparsers.add_parser(
        "run", help="run a scenario on the simulator, the kernel or the userspace datapath",
        description="Run a declared experiment. Its parameters are options (--NAME VALUE); "
        "`qoslab run NAME --help` lists them with units, ranges and defaults.",
        epilog="scenarios:\n" + listing(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", metavar="SCENARIO")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("items", nargs=argparse.REMAINDER,
                   help="--backend B, -w FILE, -o PNG, --capture PCAP, --force, "
                   "--decisions (sim), --input-capture PCAP (userspace), and the "
                   "scenario's parameters")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.list:
        print(listing())
        return 0
    return run_command(args.scenario, args.items)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_command(sys.argv[1] if len(sys.argv) > 1 else None, sys.argv[2:]))
