"""``qoslab replay CAPTURE …``: a capture's packets through a qdisc tree, as a RUN.

::

    qoslab replay home.pcap --tc "sfq perturb 10" --rate 900kbit --profile classic-2.6.3x \\
        -w what-if.json.gz -o what-if.png
    qoslab replay home.pcap --scenario sfq_perturb --perturb 5 -w what-if.json.gz
    qoslab replay input.pcap --scenario tunnel_keys --seeds-from live.json.gz --t0 1733216400.5
    qoslab replay day.pcap --tc "sfq perturb 10" --rate 50mbit -w day.json.gz --per-packet day.parts

The tree comes from a scenario (its qdisc, link and timed changes; its parameters as options)
or from ``tc`` lines (``--tc TEXT`` or ``--tc @FILE``). Every output is checked before the
replay starts; nothing is overwritten without ``--force``.

``--per-packet DIR`` writes the per-packet tables (DECISIONS, PROBES) to a Parquet dataset
while the replay runs, so a capture larger than memory replays: memory stays bounded by the
chunk size, the packets queued and the number of flows. The RUN (``-w``) then keeps META (with
per-flow totals) and EVENTS and names ``DIR``; :func:`qoslab.load` reads the tables from
there when they are used. Without it, a capture of more than :data:`AUTO_PER_PACKET_BYTES`
saved with ``-w`` gets its tables in ``RUN.parts/`` beside the RUN file (``--in-memory``
keeps them in the RUN file).
"""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigError
from ..io import load
from ..io.limits import read_config_text
from ..io.run_tables import check_tables_output
from ..outputs import check_output
from ..scenarios import get
from ..scenarios.params import parse_cli_items
from ..units import parse_rate
from . import replay, seeds_of

__all__ = ["register", "AUTO_PER_PACKET_BYTES"]

#: A capture file larger than this, replayed with ``-w`` and neither ``--per-packet`` nor
#: ``--in-memory``, gets its per-packet tables in ``RUN.parts/`` (its DECISIONS and PROBES
#: would take ~400 bytes a packet in memory: ~5 GB for such a file of small packets).
AUTO_PER_PACKET_BYTES = 1 << 30


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, as every qoslab error
        raise ConfigError(f"replay: {message}")


def _options() -> argparse.ArgumentParser:
    p = _Parser(prog="qoslab replay CAPTURE", add_help=False)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--scenario", metavar="NAME")
    what.add_argument("--tc", metavar="TEXT|@FILE")
    p.add_argument("--profile")
    p.add_argument("--rate")
    p.add_argument("--seeds-from", metavar="RUN")
    p.add_argument("--l2-bytes", type=int, default=0)
    p.add_argument("--t0", type=float)
    p.add_argument("--no-probes", action="store_true")
    p.add_argument("-w", "--write", metavar="FILE")
    p.add_argument("-o", "--output", metavar="PNG")
    p.add_argument("--force", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--per-packet", metavar="DIR")
    p.add_argument("--in-memory", action="store_true")
    return p


_OPTIONS_HELP = """options:
  --scenario NAME       take the tree, link and changes of a scenario; its parameters
                        follow as --NAME VALUE (qoslab run NAME --help lists them)
  --tc TEXT|@FILE       or: the tree as tc lines (text, or @file)
  --profile ERA         kernel era of the tc lines (default 5.18+)
  --rate RATE           link rate in tc units (e.g. 900kbit; a scenario has its own)
  --seeds-from RUN      replay with the hash seeds of this RUN (a simulated or live run)
  --l2-bytes N          bytes added to each packet's length (14 for a raw-IP capture)
  --t0 SECONDS          Unix time of replay time 0 (default: the capture's first packet)
  --no-probes           only the decision log, no per-flow PROBES
  -w FILE, -o PNG       save the RUN / draw per-flow queueing delay
  --force               replace existing outputs
  --progress            show progress bars (reading, replaying, tables, saving)
  --per-packet DIR      write DECISIONS and PROBES to a Parquet dataset DIR as the replay
                        goes (bounded memory); the RUN names DIR
  --in-memory           keep the per-packet tables in the RUN file even for a large
                        capture (default: DIR = RUN.parts beside -w above 1 GB)"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qoslab replay``."""
    p = subparsers.add_parser(
        "replay", help="replay a capture through a qdisc tree (what would this qdisc do "
        "to my traffic?)",
        description="Replay the packets of a capture (their arrival times and sizes) through "
        "the shaper, qdisc and classifier models; write a RUN with the per-packet decision "
        "log, per-flow queueing delay (PROBES) and the hash changes (EVENTS).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_OPTIONS_HELP + "\n\nexamples:" + __doc__.split("::")[1])
    p.add_argument("capture", help="pcap or pcapng file")
    p.add_argument("items", nargs=argparse.REMAINDER, help="options (below)")
    p.set_defaults(func=_main)


def _parts_beside(run_path: str) -> str:
    """``day.json.gz`` -> ``day.parts``: the per-packet dataset's default name."""
    name = os.path.basename(run_path)
    for suffix in (".json.gz", ".gz", ".json"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return os.path.join(os.path.dirname(run_path), (name or "run") + ".parts")


def _main(ns: argparse.Namespace) -> int:
    args, extra = _options().parse_known_args(ns.items)
    if not args.scenario and not args.tc:
        raise ConfigError("replay: give --scenario NAME or --tc TEXT (the tree to replay "
                          "through)")
    for out, what in ((args.write, "RUN file"), (args.output, "figure")):
        if out:
            check_output(out, force=args.force, what=what)
    if args.per_packet and args.in_memory:
        raise ConfigError("replay: --per-packet and --in-memory exclude each other")
    per_packet = args.per_packet
    if per_packet is None and args.write and not args.in_memory and \
            os.path.isfile(ns.capture) and os.path.getsize(ns.capture) > AUTO_PER_PACKET_BYTES:
        per_packet = _parts_beside(args.write)
        print(f"{ns.capture}: more than {AUTO_PER_PACKET_BYTES >> 30} GB; per-packet tables "
              f"go to {per_packet} (--in-memory keeps them in the RUN file)")
    if per_packet:
        check_tables_output(per_packet, force=args.force)
    params = {}
    if args.scenario:
        params = parse_cli_items(get(args.scenario).params, extra or [], owner=args.scenario)
        what = args.scenario
    else:
        if extra:
            raise ConfigError(f"replay: unexpected {' '.join(extra)} (scenario parameters need "
                              "--scenario)")
        what = args.tc
        if what.startswith("@"):
            what = read_config_text(what[1:], "tc tree")
    seeds = times = None
    if args.seeds_from:
        seeds, times = seeds_of(load(args.seeds_from))
    run = replay(ns.capture, what, rate=parse_rate(args.rate, "--rate") if args.rate else None,
                 profile=args.profile, seeds=seeds, seed_times=times, l2_bytes=args.l2_bytes,
                 t0=args.t0, probes=not args.no_probes,
                 progress=True if args.progress else None, per_packet=per_packet,
                 force=args.force, **params)
    meta = run.meta
    tree = meta["tc"].splitlines()
    print(f"replayed {meta['packets']} packets of {meta['flows']} flows through: {tree[0]}"
          + (" …" if len(tree) > 1 else ""))
    if per_packet:
        delay = meta["delay_ms"]
        median, p99 = (f"{v:.2f} ms" if v is not None else "n/a"
                       for v in (delay["median"], delay["p99"]))
        approx = f" (within {delay['resolution']})"
    else:
        d = run.decisions
        delay = (d["t_departure"] - d["t_arrival"]) * 1000
        median, p99 = f"{delay.median():.2f} ms", f"{delay.quantile(0.99):.2f} ms"
        approx = ""
    print(f"dropped {meta['dropped']}; time in the tree: median {median}, p99 {p99}{approx}; "
          f"{(run.events['kind'] == 'hash_change').sum()} hash changes")
    if per_packet:
        print(f"per-packet tables: {meta['per_packet']['path']}")
    if args.write:
        print(f"saved {run.save(args.write, force=args.force, progress=args.progress or None)}")
    if args.output and meta["packets"] and not args.no_probes:
        from ..plots import latency, save_figure  # lazy: qoslab.plots loads matplotlib

        fig = latency(run, events=True)
        print(f"figure {save_figure(fig, args.output, force=args.force)}")
    return 0
