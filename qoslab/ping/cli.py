"""``qoslab ping``: ping-exp's command line, done right.

::

    qoslab ping -t ID,HOST,TOS[,SIZE] [-t ...] [-i INTERVAL] [-c COUNT] [-w FILE] [-o PNG] [-l]
    qoslab ping -r FILE [-o PNG] [-l]
    qoslab ping HOST... [-Q TOS ...] [-s SIZE ...] [-4|-6] [--deadline S] [-W S] [--backend B]

Without ``-o`` the figure opens in a window when run from a terminal with a display
(ping-exp's interactive viewer); ``-w`` journals every probe while the run lasts, so Ctrl-C (SIGINT) or SIGTERM stops
the run and still saves every probe sent.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..analysis.summary import reported_summary, summarize
from ..errors import ConfigError, QoslabError
from ..io import load
from ..outputs import check_output
from ..runs import Run
from .runner import BACKENDS, DEFAULT_TIMEOUT, ping
from .targets import DEFAULT_SIZE, parse_tos

__all__ = ["register", "main", "summary_lines"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``ping`` subcommand."""
    p = subparsers.add_parser(
        "ping", help="ping destinations x TOS x sizes concurrently; save, reload and plot",
        description=__doc__.split("::")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hosts", nargs="*", metavar="HOST",
                   help="destinations crossed with every -Q TOS and -s SIZE")
    p.add_argument("-t", "--target", action="append", default=[], metavar="ID,HOST,TOS[,SIZE]",
                   help="one experiment (ping-exp syntax; TOS decimal or 0x hex); repeatable")
    p.add_argument("-Q", "--tos", action="append", default=None, metavar="TOS",
                   help="TOS byte for HOST arguments (repeatable: one stream each; default 0)")
    p.add_argument("-s", "--size", action="append", default=None, type=int, metavar="BYTES",
                   help=f"ICMP payload size (repeatable; default {DEFAULT_SIZE})")
    p.add_argument("-i", "--interval", type=float, default=0.2, metavar="SECONDS",
                   help="seconds between probes of a stream (default 0.2)")
    p.add_argument("-c", "--count", type=int, default=None,
                   help="probes per stream (default 400; unlimited with --deadline alone)")
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                   help="stop sending after this many seconds (iputils ping -w)")
    p.add_argument("-W", "--timeout", type=float, default=None, metavar="SECONDS",
                   help=f"wait this long for an answer before 'lost' (default {DEFAULT_TIMEOUT:g})")
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="family", action="store_const", const=4, help="IPv4 only")
    fam.add_argument("-6", dest="family", action="store_const", const=6, help="IPv6 only")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                   help="raw socket, ICMP datagram socket or system ping (default: first usable)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                   help="SCHED_FIFO for the probe loop (default: when permitted, e.g. root)")
    p.add_argument("-w", "--write", metavar="FILE", help="save the RUN file here")
    p.add_argument("-r", "--read", metavar="FILE",
                   help="reload a RUN, journal, flent or ping-exp file instead of pinging")
    p.add_argument("-o", "--output", metavar="PNG", help="write the figure here (PNG/SVG)")
    p.add_argument("--force", action="store_true",
                   help="replace existing -w/-o files (an earlier journal is kept aside)")
    p.add_argument("-l", "--lines", action="store_true", help="draw lines instead of points")
    p.add_argument("--no-plot", action="store_true", help="no figure window")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary table")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Handle ``qoslab ping``; return the exit status."""
    if args.read:
        if args.target or args.hosts or args.write:
            raise ConfigError("-r FILE reloads a saved run: it does not go with -t, HOST or -w")

        run = load(args.read)
    else:
        if args.output:  # checked before measuring: a run never ends in an unwritable figure
            check_output(args.output, force=args.force, what="figure")
        run = _measure(args)
    if not args.quiet:
        for line in summary_lines(run):
            print(line)
    if args.write and not args.read:
        print(f"saved {len(run.probes)} probes to {args.write}", file=sys.stderr)
    _plot(run, args)
    reason = run.meta.get("stop_reason")
    if reason in ("SIGINT", "SIGTERM") and not args.read:
        return 130 if reason == "SIGINT" else 143
    answered = run.probes["status"].isin(["ok", "late"]).any()
    return 0 if answered or args.read else 1


def _measure(args: argparse.Namespace) -> Run:
    targets = list(args.target) + list(args.hosts)
    if not targets:
        raise ConfigError("nothing to ping: give -t ID,HOST,TOS[,SIZE], a HOST, or -r FILE")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"-c {args.count}: expected at least 1 probe")
    count = args.count if args.count is not None else (None if args.deadline else 400)
    tos = [parse_tos(t) for t in args.tos] if args.tos else [0]
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    return ping(targets, tos=tos, sizes=args.size or [DEFAULT_SIZE], interval=args.interval,
                count=count, deadline=args.deadline, timeout=args.timeout, family=args.family,
                backend=args.backend, progress=progress or None, path=args.write,
                realtime=args.realtime, force=args.force)


def summary_lines(run: Run) -> list[str]:
    """iputils-style per-stream statistics (:func:`qoslab.analysis.summarize`).

    Where the file carries the figures the tool printed itself (an original ping-exp file
    keeps ``ping``'s own summary, :func:`qoslab.analysis.reported_summary`), each stream's
    recomputed line is followed by the tool's own, and the header says which is which.

    >>> run = Run({"stream": ["a"] * 3, "host": ["h"] * 3, "tos": [0] * 3, "size": [56] * 3,
    ...            "seq": [1, 2, 3], "t_sent": [0, .2, .4], "rtt_ms": [1.0, 3.0, None],
    ...            "status": ["ok", "ok", "lost"], "ttl": [64, 64, None]})
    >>> print(summary_lines(run)[1])
    a  sent 3  received 2  loss 33.3%  rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms
    >>> run.meta["reported_summary"] = {"a": {"by": "ping", "sent": 3, "received": 2,
    ...     "loss_pct": 33, "min": 1.0, "mean": 2.004, "max": 3.0, "mdev": 1.002}}
    >>> print("\\n".join(summary_lines(run)))
    --- run: 1 stream (recomputed from the replies; the tool's own figures below each) ---
    a  sent 3  received 2  loss 33.3%  rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms
       as ping printed it: sent 3  received 2  loss 33%  rtt min/avg/max/mdev = 1.000/2.004/3.000/1.002 ms
    """
    p = run.probes
    backend = run.meta.get("backend")  # a loaded file (ping-exp, flent) names none
    via = f" via {backend}" if backend else ""
    n = len(run.streams)
    own = reported_summary(run)
    note = " (recomputed from the replies; the tool's own figures below each)" if len(own) else ""
    out = [f"--- {run.meta.get('source', 'run')}{via}: {n} stream{'s' if n != 1 else ''}{note} ---"]
    width = max((len(s) for s in run.streams), default=0)
    table = summarize(p)
    for stream in run.streams:
        rows = p[p["stream"] == stream]
        fig = table.loc[stream]
        line = (f"{stream:<{width}}  sent {int(fig['sent'])}  received {int(fig['received'])}  "
                f"loss {fig['loss_pct']:.1f}%")
        if fig["received"]:
            line += f"  {_rtt_text(fig)}"
        primary = rows[rows["status"] != "duplicate"]
        errors = primary["status"].isin(["unreachable", "time_exceeded", "error"]).sum()
        dups = (rows["status"] == "duplicate").sum()
        if errors:
            line += f"  +{errors} errors"
        if dups:
            line += f"  +{dups} duplicates"
        out.append(line)
        if stream in own.index:
            out.append(_reported_line(own.loc[stream]))
    return out


def _rtt_text(fig) -> str:
    vals = [fig[k] for k in ("min", "mean", "max", "mdev")]
    return "rtt min/avg/max/mdev = " + "/".join(
        "?" if not np.isfinite(v) else f"{v:.3f}" for v in vals) + " ms"


def _reported_line(fig) -> str:
    """The tool's own summary of one stream, as it printed it (integers stay integers)."""
    def num(v, spec=""):
        return "?" if not np.isfinite(v) else (f"{int(v)}" if v == int(v) and not spec
                                               else f"{v:{spec}}")
    text = (f"   as {fig['by']} printed it: sent {num(fig['sent'])}  "
            f"received {num(fig['received'])}  loss {num(fig['loss_pct'])}%")
    if np.isfinite(fig["mean"]):
        text += f"  {_rtt_text(fig)}"
    return text


def _plot(run: Run, args: argparse.Namespace) -> None:
    """``-o`` writes the figure; otherwise a window when a person is at a display."""
    window = (not args.output and not args.no_plot and sys.stdin.isatty()
              and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))
    if not args.output and not window:
        return
    try:
        from ..plots import pingexp_figure, save_figure, show_figure  # lazy: loads matplotlib
    except ImportError as exc:
        raise QoslabError(f"plotting needs qoslab.plots ({exc})") from None
    fig = pingexp_figure(run, kind="line" if args.lines else "scatter")
    if args.output:
        save_figure(fig, args.output, force=args.force)
        print(f"figure written to {args.output}", file=sys.stderr)
    else:
        show_figure(fig)
