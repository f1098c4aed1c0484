"""``qoslab capture FILE``: summary and flow table of a capture; export of PACKETS."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pandas as pd

from ..outputs import check_output, write_with
from .flows import flows
from .reader import read_capture

__all__ = ["register", "summary_lines", "print_flows"]


def summary_lines(packets: pd.DataFrame, name: str) -> list[str]:
    """Human summary of a PACKETS table (one line per fact).

    >>> from qoslab.capture.frame import empty_packets
    >>> summary_lines(empty_packets(), "x.pcap")[0]
    'x.pcap: 0 packets'
    """
    n = len(packets)
    if n == 0:
        return [f"{name}: 0 packets"]
    span = float(packets["t"].iloc[-1] - packets["t"].iloc[0]) if n else 0.0
    lines = [f"{name}: {n} packets, {int(packets['wire_len'].sum())} bytes on the wire, "
             f"{span:.3f} s from {packets['time'].iloc[0]}"]
    ipv = packets["ip_version"].value_counts().sort_index()
    lines.append("IP versions: " + (", ".join(f"IPv{int(v)} {c}" for v, c in ipv.items())
                                     or "none") + f", non-IP {int(packets['ip_version'].isna().sum())}")
    tun = packets["tunnel"].value_counts()
    tun = tun[tun > 0]
    lines.append("tunnels: " + ", ".join(f"{k} {v}" for k, v in tun.items()))
    prob = packets["problem"].astype(str)
    bad = prob[prob != ""].value_counts()
    lines.append("problems: " + (", ".join(f"{k} {v}" for k, v in bad.items()) or "none"))
    return lines


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``qoslab capture`` to the command line."""
    p = sub.add_parser(
        "capture", help="decode a pcap/pcapng capture: summary, flows, export",
        description="Decode a pcap or pcapng capture into the PACKETS table; print a summary "
        "and the flow table, optionally export every packet as CSV or Parquet.")
    p.add_argument("file", help="capture file (pcap or pcapng), or a folder or quoted glob "
                   "of them (a capture set, see below)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="OUT", help="write PACKETS as CSV")
    out.add_argument("--parquet", metavar="OUT", help="write PACKETS as Parquet")
    p.add_argument("--force", action="store_true", help="replace an existing --csv/--parquet file")
    p.add_argument("--level", choices=("inner", "outer"), default="inner",
                   help="flows by the inner (tunnelled) or outer IP header (default inner)")
    p.add_argument("--top", type=int, default=30,
                   help="flows printed, largest first (default 30; 0 = all)")
    from ..engines.cli import add_set_options

    add_set_options(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from ..engines.cli import is_capture_set, run_capture_set

    if is_capture_set(args.file):
        return run_capture_set(args)
    for out, what in ((args.csv, "CSV"), (args.parquet, "Parquet file")):
        if out:  # checked before the capture is read
            check_output(out, force=args.force, what=what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        packets = read_capture(args.file)
    for w in caught:
        print(f"warning: {w.message}")
    for line in summary_lines(packets, Path(args.file).name):
        print(line)
    print_flows(flows(packets, args.level), args.level, args.top)
    if args.csv:
        write_with(args.csv, lambda tmp: packets.to_csv(tmp, index=False), force=args.force,
                   what="CSV")
        print(f"wrote {len(packets)} packets to {args.csv}")
    if args.parquet:
        write_with(args.parquet, lambda tmp: packets.to_parquet(tmp, index=False),
                   force=args.force, what="Parquet file")
        print(f"wrote {len(packets)} packets to {args.parquet}")
    return 0


def print_flows(table: pd.DataFrame, level: str, top: int) -> None:
    """Print a flow table, largest first (``top`` rows; 0 = all)."""
    if not len(table):
        return
    shown = table.sort_values("bytes", ascending=False, kind="stable")
    if top:
        shown = shown.head(top)
    print(f"\n{len(table)} flows ({level} headers)"
          + (f", {len(shown)} largest:" if len(shown) < len(table) else ":"))
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_rows", None):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
