"""``qoslab plot``: draw RUN, flent or ping-exp files to PNG/SVG or to a window.

::

    qoslab plot run.json.gz                        # ping-exp's 4-panel figure in a window
    qoslab plot run.json.gz -l -o run.png          # ... with lines, to a PNG (ping-exp -l -o)
    qoslab plot a.flent.gz b.json.gz --kind cdf -o cdf.svg
    qoslab plot run.json.gz --kind scatter --streams "10.0.0.2 tos=0x10 size=56"

With several files the streams are prefixed with each file's name so they stay apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .plots.kinds import PLOT_KINDS, plot_kind
from .runs import Run

__all__ = ["register", "plot_files", "combine_runs", "PLOT_KINDS"]

def register(subparsers) -> None:
    """Add the ``plot`` subcommand."""
    p = subparsers.add_parser(
        "plot",
        help="plot RUN / flent / ping-exp files",
        description="Plot one or more RUN, flent or ping-exp files. Without -o a window opens.",
        epilog="kinds: " + "; ".join(f"{k}: {v}" for k, v in PLOT_KINDS.items()),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="RUN, journal, flent or ping-exp file")
    p.add_argument("--kind", "-k", choices=list(PLOT_KINDS), default="pingexp",
                   help="what to draw (default: pingexp)")
    p.add_argument("-l", "--lines", action="store_true",
                   help="draw latency as lines instead of points (ping-exp -l)")
    p.add_argument("-o", "--output", metavar="PNG|SVG",
                   help="write the figure to this .png or .svg file instead of opening a window")
    p.add_argument("--force", action="store_true", help="replace an existing -o file")
    p.add_argument("--streams", nargs="+", action="extend", metavar="STREAM",
                   help="only these stream labels (put FILE arguments first)")
    p.add_argument("--no-events", action="store_true", help="do not draw EVENTS (hash changes …)")
    p.add_argument("--spikes", action="store_true",
                   help="shade spikes found by qoslab.analysis.detect_spikes")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="for --kind loss: loss percentage per window instead of markers")
    p.set_defaults(func=_main)


def combine_runs(runs: dict[str, Run]) -> Run:
    """Merge runs into one, prefixing stream labels with their name when there are several.

    Examples
    --------
    >>> import qoslab
    >>> r = qoslab.load(qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz"))
    >>> combine_runs({"x": r, "y": r}).streams[:2]
    ['x: Ping (ms) ICMP', 'x: Ping (ms) UDP']
    """
    if len(runs) == 1:
        return next(iter(runs.values()))
    probes, events = [], []
    for name, run in runs.items():
        p = run.probes.copy()
        p["stream"] = (name + ": " + p["stream"].astype("string")).astype("string")
        probes.append(p)
        e = run.events.copy()
        e["detail"] = (name + ": " + e["detail"].fillna("").astype("string")).astype("string")
        events.append(e)
    meta = {"title": " + ".join(runs), "combined_from": list(runs)}
    return Run(pd.concat(probes, ignore_index=True), pd.concat(events, ignore_index=True), meta)


def plot_files(files, kind: str = "pingexp", *, lines: bool = False, streams=None,
               events: bool = True, spikes: bool = False, window: float | None = None):
    """Load files and return the figure ``qoslab plot`` would draw.

    Examples
    --------
    >>> import qoslab
    >>> fig = plot_files([qoslab.data_path("flent/ping-v4-icmp-irtt.flent.gz")], kind="cdf")
    >>> len(fig.axes[0].lines)
    2
    """
    from .io import load

    paths = [Path(f) for f in files]
    names = _unique_names(paths)
    run = combine_runs({n: load(p) for n, p in zip(names, paths, strict=True)})
    return plot_kind(run, kind, streams, lines=lines, events=events,
                     spikes=True if spikes else None, window=window)


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name.removesuffix(".gz").removesuffix(".json").removesuffix(".flent")
             for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def _main(args: argparse.Namespace) -> int:
    if args.output:
        from .outputs import check_output

        check_output(args.output, force=args.force, what="figure")
    fig = plot_files(args.files, args.kind, lines=args.lines, streams=args.streams,
                     events=not args.no_events, spikes=args.spikes, window=args.window)
    if args.output:
        from .plots import save_figure

        path = save_figure(fig, args.output, force=args.force)
        print(f"wrote {path}")
        return 0
    _show(fig)
    return 0


def _show(fig) -> None:
    from .plots import show_figure

    show_figure(fig)
