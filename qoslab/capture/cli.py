"""``qoslab capture FILE``: summary and flow table of a capture; export of PACKETS.

The capture is read chunk by chunk (:func:`~qoslab.capture.iter_capture`): the summary, the
flow table and the exported file are built as the chunks come, so captures larger than memory
work too.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from ..engines.cli import add_set_options, is_capture_set, run_capture_set
from ..outputs import check_output, write_with
from .flows import flow_partials, flows_from_partials
from .frame import empty_packets
from .reader import DEFAULT_CHUNK, iter_capture
from .tunnels import UDP_TUNNEL_PORTS

__all__ = ["register", "summary_lines", "print_flows", "udp_tunnels", "Summary", "CHUNK"]

#: Packets read at a time.
CHUNK = DEFAULT_CHUNK


class Summary:
    """Running totals of a PACKETS table fed chunk by chunk (:meth:`add`)."""

    def __init__(self, name: str):
        self.name = name
        self.packets = 0
        self.wire = 0
        self.first_t = self.last_t = None
        self.first_time = None
        self.versions: Counter = Counter()
        self.non_ip = 0
        self.tunnels: Counter = Counter()
        self.problems: Counter = Counter()

    def add(self, packets: pd.DataFrame) -> None:
        """Count one chunk."""
        self.packets += len(packets)
        self.wire += int(packets["wire_len"].sum())
        t = packets["t"].dropna()
        if len(t):
            if self.first_t is None:
                self.first_t = float(t.iloc[0])
                self.first_time = packets["time"].dropna().iloc[0]
            self.last_t = float(t.iloc[-1])
        self.versions.update(packets["ip_version"].dropna().astype(int).tolist())
        self.non_ip += int(packets["ip_version"].isna().sum())
        self.tunnels.update(packets["tunnel"].astype(str).value_counts().to_dict())
        prob = packets["problem"].astype(str)
        self.problems.update(prob[prob != ""].value_counts().to_dict())

    def lines(self) -> list[str]:
        """Human summary (one line per fact)."""
        if not self.packets:
            return [f"{self.name}: 0 packets"]
        span = (self.last_t - self.first_t) if self.first_t is not None else 0.0
        when = f" from {self.first_time}" if self.first_time is not None else ", no time stamps"
        lines = [f"{self.name}: {self.packets} packets, {self.wire} bytes on the wire, "
                 f"{span:.3f} s{when}"]
        lines.append("IP versions: " + (", ".join(f"IPv{v} {c}" for v, c in
                                                  sorted(self.versions.items())) or "none")
                     + f", non-IP {self.non_ip}")
        tun = [(k, v) for k, v in self.tunnels.most_common() if v > 0]
        lines.append("tunnels: " + ", ".join(f"{k} {v}" for k, v in tun))
        lines.append("problems: " + (", ".join(f"{k} {v}" for k, v in
                                               self.problems.most_common()) or "none"))
        return lines


def summary_lines(packets: pd.DataFrame, name: str) -> list[str]:
    """Human summary of a PACKETS table (one line per fact).

    >>> from qoslab.capture.frame import empty_packets
    >>> summary_lines(empty_packets(), "x.pcap")[0]
    'x.pcap: 0 packets'
    """
    summary = Summary(name)
    summary.add(packets)
    return summary.lines()

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
    p.add_argument("--vxlan-port", type=int, action="append", metavar="PORT",
                   help="also decode UDP to this port as VXLAN (besides 4789; Linux's old "
                   "default is 8472); repeatable")
    p.add_argument("--geneve-port", type=int, action="append", metavar="PORT",
                   help="also decode UDP to this port as Geneve (besides 6081); repeatable")

    add_set_options(p)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if is_capture_set(args.file) or args.engine == "dask":  # Dask: a set of one capture
        return run_capture_set(args)
    if not os.path.exists(args.file):  # before any output: not a write error
        raise FileNotFoundError(f"no capture file {args.file!r}")
    for out, what in ((args.csv, "CSV"), (args.parquet, "Parquet file")):
        if out:  # checked before the capture is read
            check_output(out, force=args.force, what=what)
    summary = Summary(Path(args.file).name)
    parts: list[pd.DataFrame] = []

    tunnels = udp_tunnels(args)

    def consume(sink=None) -> None:
        # warnings: one line each on stderr (qoslab.cli)
        for chunk in iter_capture(args.file, CHUNK, udp_tunnels=tunnels):
            summary.add(chunk)
            parts.append(flow_partials(chunk, args.level))
            if sink is not None:
                sink(chunk)

    if args.csv:
        write_with(args.csv, lambda tmp: _csv(tmp, consume), force=args.force, what="CSV")
    elif args.parquet:
        write_with(args.parquet, lambda tmp: _parquet(tmp, consume), force=args.force,
                   what="Parquet file")
    else:
        consume()
    for line in summary.lines():
        print(line)
    if parts:
        print_flows(flows_from_partials(parts), args.level, args.top)
    if args.csv or args.parquet:
        print(f"wrote {summary.packets} packets to {args.csv or args.parquet}")
    return 0


def udp_tunnels(args: argparse.Namespace) -> dict[int, str]:
    """The UDP tunnel ports of ``--vxlan-port`` / ``--geneve-port`` (besides the defaults).

    >>> udp_tunnels(argparse.Namespace(vxlan_port=[8472], geneve_port=None))[8472]
    'vxlan'
    """
    ports = dict(UDP_TUNNEL_PORTS)
    for kind in ("vxlan", "geneve"):
        for port in getattr(args, f"{kind}_port", None) or ():
            ports[port] = kind
    return ports


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


def _csv(tmp: Path, consume) -> None:
    with open(tmp, "w", newline="") as fh:
        header = [True]

        def sink(chunk: pd.DataFrame) -> None:
            chunk.to_csv(fh, index=False, header=header[0])
            header[0] = False

        consume(sink)
        if header[0]:  # no packets: still a table with its columns
            empty_packets().to_csv(fh, index=False)


def _parquet(tmp: Path, consume) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    state = {"writer": None, "schema": None}

    def table_of(chunk: pd.DataFrame):
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if state["schema"] is None:  # one dictionary type for every chunk's categories
            fields = [pa.field(f.name, pa.dictionary(pa.int32(), pa.string()))
                      if pa.types.is_dictionary(f.type) else f for f in table.schema]
            state["schema"] = pa.schema(fields, metadata=table.schema.metadata)
        return table.cast(state["schema"])

    def sink(chunk: pd.DataFrame) -> None:
        table = table_of(chunk)
        if state["writer"] is None:
            state["writer"] = pq.ParquetWriter(tmp, state["schema"])
        state["writer"].write_table(table)

    try:
        consume(sink)
        if state["writer"] is None:
            pq.write_table(table_of(empty_packets()), tmp)
    finally:
        if state["writer"] is not None:
            state["writer"].close()
