"""``qoslab plot``: draw RUN, flent or ping-exp files to PNG/SVG or to a window.

::

    qoslab plot run.json.gz                        # ping-exp's 4-panel figure in a window
    qoslab plot run.json.gz -l -o run.png          # ... with lines, to a PNG (ping-exp -l -o)
    qoslab plot a.flent.gz b.json.gz --kind cdf -o cdf.svg
    qoslab plot run.json.gz --kind scatter --streams "10.0.0.2 tos=0x10 size=56"

    qoslab plot a.json.gz b.json.gz --kind line -o ab.html   # zoomable, works offline

With several files the streams are prefixed with each file's name so they stay apart; ``cdf``
and ``box`` of several files give each file one colour (flent's multi-file plots).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import ConfigError
from .io import load
from .outputs import check_output
from .plot_kinds import PLOT_KINDS

__all__ = ["register", "plot_files", "chart_files", "PLOT_KINDS"]

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
    p.add_argument("-o", "--output", metavar="PNG|SVG|HTML",
                   help="write the figure to this .png or .svg file instead of opening a "
                   "window; .html (kinds scatter, line): a zoomable chart that works offline")
    p.add_argument("--force", action="store_true", help="replace an existing -o file")
    p.add_argument("--streams", nargs="+", action="extend", metavar="STREAM",
                   help="only these stream labels (put FILE arguments first)")
    p.add_argument("--no-events", action="store_true", help="do not draw EVENTS (hash changes …)")
    p.add_argument("--spikes", action="store_true",
                   help="shade spikes found by qoslab.analysis.detect_spikes")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="for --kind loss: loss percentage per window instead of markers")
    p.set_defaults(func=_main)


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
    from .plots import combine_runs, compare, plot_kind  # lazy: matplotlib, not for --help

    paths = [Path(f) for f in files]
    names = _unique_names(paths)
    runs = {n: load(p) for n, p in zip(names, paths, strict=True)}
    if len(runs) > 1 and kind in ("cdf", "box"):
        return compare(runs, kind, streams=streams)  # one colour per file, as flent does
    run = combine_runs(runs)
    return plot_kind(run, kind, streams, lines=lines, events=events,
                     spikes=True if spikes else None, window=window)


def chart_files(files, kind: str = "scatter", *, lines: bool = False, streams=None,
                events: bool = True, spikes: bool = False):
    """Load files and return the zoomable chart ``qoslab plot --kind line -o X.html`` writes."""
    if kind not in ("scatter", "line", "pingexp"):
        raise ConfigError(f"an .html output is a zoomable latency chart: use --kind scatter or "
                          f"line, not {kind!r}")
    from .plots import combine_runs, latency_chart  # lazy: matplotlib, not for --help

    paths = [Path(f) for f in files]
    names = _unique_names(paths)
    runs = {n: load(p) for n, p in zip(names, paths, strict=True)}
    chart_kind = "line" if (lines or kind == "line") else "scatter"
    run = combine_runs(runs)
    return latency_chart(run, chart_kind, streams, events=events, spikes=True if spikes else None)


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name.removesuffix(".gz").removesuffix(".json").removesuffix(".flent")
             for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return names


def _main(args: argparse.Namespace) -> int:
    if args.output:
        check_output(args.output, force=args.force, what="figure")
        if Path(args.output).suffix.lower() in (".html", ".htm"):
            chart = chart_files(args.files, args.kind, lines=args.lines, streams=args.streams,
                                events=not args.no_events, spikes=args.spikes)
            print(f"wrote {chart.save(args.output, force=args.force)}")
            return 0
    fig = plot_files(args.files, args.kind, lines=args.lines, streams=args.streams,
                     events=not args.no_events, spikes=args.spikes, window=args.window)
    if args.output:
        from .plots import save_figure  # lazy: matplotlib, not for --help

        path = save_figure(fig, args.output, force=args.force)
        print(f"wrote {path}")
        return 0
    _show(fig)
    return 0


def _show(fig) -> None:
    from .plots import show_figure  # lazy: matplotlib, not for --help

    show_figure(fig)
