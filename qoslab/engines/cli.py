"""``qoslab capture DIR|GLOB``: a set of captures summarised, its flows, a Parquet dataset.

With ``--engine pandas`` (default) one process reads the set chunk by chunk (memory bounded
by the chunk, a bar per chunk); with ``--engine dask`` local worker processes (``--workers``,
``--memory-limit``) or a running cluster (``--scheduler``) read the chunks in parallel, with
Dask's progress bar. Either way the captures are read once: the flow table and the Parquet
dataset come from the same pass.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings

import pandas as pd

from ..capture.flows import flow_partials, flows_from_partials
from ..capture.reader import DEFAULT_CHUNK
from ..errors import ConfigError

__all__ = ["add_set_options", "is_capture_set", "run_capture_set", "set_summary_lines"]


def add_set_options(p: argparse.ArgumentParser) -> None:
    """The options of ``qoslab capture`` that concern capture sets."""
    g = p.add_argument_group(
        "capture sets",
        "FILE may be a folder (searched recursively) or a quoted glob ('day1/*.pcapng'): its "
        "captures are read as one set (qoslab.read_captures), with columns file and frame; "
        "--parquet OUT/ then writes a dataset folder partitioned by file and hour "
        "(qoslab.read_packets reads it back)")
    g.add_argument("--engine", choices=("pandas", "dask"), default="pandas",
                   help="pandas: one process, chunk by chunk (default); dask: Dask workers "
                   "(a single FILE is then read as a set of one capture)")
    g.add_argument("--workers", type=int, default=None,
                   help="local Dask worker processes (default: the number of CPUs)")
    g.add_argument("--memory-limit", default="auto",
                   help="memory per local Dask worker, e.g. 2GiB (default: RAM / workers)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786) instead of local workers; "
                   "its workers must see the captures and OUT at the same paths")
    g.add_argument("--chunk-packets", type=int, default=DEFAULT_CHUNK, metavar="N",
                   help=f"frames per chunk, the unit of parallel work (default {DEFAULT_CHUNK})")


def is_capture_set(target: str) -> bool:
    """Is ``target`` a folder or a glob pattern (rather than one capture file)?

    A pattern is a set even when it matches nothing (then :func:`qoslab.read_captures` says
    so) or only through ``**``.

    >>> is_capture_set("/nonexistent/day1/*.pcap"), is_capture_set("/nonexistent/a.pcap")
    (True, False)
    """
    return os.path.isdir(target) or (bool(re.search(r"[*?\[]", target))
                                     and not os.path.exists(target))


def set_summary_lines(plan) -> list[str]:
    """One line per file and one for the set, from the record walk (nothing decoded).

    >>> from qoslab import data_path
    >>> from qoslab.engines.captures import plan_captures
    >>> plan = plan_captures([("t.pcap", str(data_path("captures/tunnel_uploads.pcap")))],
    ...                      use_dask=False)
    >>> set_summary_lines(plan)[0].split(",")[0]
    't.pcap: 2913 packets'
    """
    def span(p) -> str:
        if p.ts_min_ns is None:
            return ""
        start = pd.Timestamp(p.ts_min_ns, tz="UTC")
        return f", {(p.ts_max_ns - p.ts_min_ns) / 1e9:.3f} s from {start}"

    lines = [f"{p.file}: {p.packets} packets, {p.wire_bytes} bytes on the wire{span(p)}"
             for p in plan.plans]
    stamped = [p for p in plan.plans if p.ts_min_ns is not None]
    total = type("Total", (), {
        "ts_min_ns": min((p.ts_min_ns for p in stamped), default=None),
        "ts_max_ns": max((p.ts_max_ns for p in stamped), default=None)})
    n = len(plan.plans)
    lines.append(f"{n} capture{'' if n == 1 else 's'}: {plan.packets} packets, "
                 f"{sum(p.wire_bytes for p in plan.plans)} bytes on the wire{span(total)}, "
                 f"{len(plan.chunks)} chunks")
    return lines


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace):
    from ._dask import require_distributed  # lazy: --engine dask only
    from .cluster import local_cluster  # lazy: --engine dask only

    distributed = require_distributed("qoslab capture --engine dask")
    if args.scheduler:
        with distributed.Client(args.scheduler) as client:
            yield client
        return
    workers = args.workers or os.cpu_count() or 1
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1")
    with local_cluster(workers, memory_limit=args.memory_limit) as client:
        print(f"Dask: {workers} local workers; dashboard {client.dashboard_link}",
              file=sys.stderr, flush=True)
        yield client


def run_capture_set(args: argparse.Namespace) -> int:
    """``qoslab capture`` on a folder or glob (called by :mod:`qoslab.capture.cli`)."""
    # the capture-set engine is imported for a set only: `qoslab --help` does not load it
    from ..capture.cli import print_flows, udp_tunnels  # cycle: qoslab.capture.cli imports this one
    from .captures import dask_packets, plan_captures  # lazy: capture sets only
    from .captureset import capture_files, read_chunk  # lazy: capture sets only
    from .diagnostics import compute  # lazy: capture sets only
    from .parquet import (  # lazy: capture sets only
        check_dataset_output,
        write_packets,
        write_pieces,
    )

    if args.csv:
        raise ConfigError("--csv writes one capture; for a folder or glob use --parquet OUT/")
    if args.chunk_packets < 1:
        raise ConfigError(f"--chunk-packets {args.chunk_packets}: expected at least 1")
    if args.parquet:  # checked before any capture is read
        check_dataset_output(args.parquet, force=args.force)
    files = capture_files(args.file)
    use_dask = args.engine == "dask"
    with (_dask_client(args) if use_dask else contextlib.nullcontext()), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_captures(files, args.chunk_packets, progress=use_dask, use_dask=use_dask,
                             udp_tunnels=udp_tunnels(args))
        for w in caught:
            print(f"warning: {w.message}")
        for line in set_summary_lines(plan):
            print(line, flush=True)
        if use_dask:
            packets = dask_packets(plan)
            partials = packets.map_partitions(
                flow_partials, args.level, meta=flow_partials(packets._meta, args.level))
            if args.parquet:
                _, parts = write_packets(packets, args.parquet, force=args.force, progress=True,
                                         also=(partials,))
            else:
                (parts,) = compute(partials, progress=True, what="reading the captures")
        else:
            from tqdm.auto import tqdm

            parts = []

            def chunks():
                for position, chunk in tqdm(plan.chunks, unit="chunk", desc="reading"):
                    frame = read_chunk(chunk, plan.t0_ns, plan.files, position,
                                       plan.udp_tunnels)
                    parts.append(flow_partials(frame, args.level))
                    yield frame

            if args.parquet:
                write_pieces(chunks(), args.parquet, plan.files, force=args.force)
            else:
                for _ in chunks():
                    pass
    print_flows(flows_from_partials(parts), args.level, args.top)
    if args.parquet:
        print(f"wrote {plan.packets} packets to {args.parquet} (Parquet dataset by file and "
              "hour; qoslab.read_packets reads it)")
    return 0
