"""``qoslab hash FILE`` — which class / bucket each flow of a capture gets.

Prints one row per flow with its cls_flow class (and, with ``--sfq``/``--fq-codel``, the
SFQ bucket or fq_codel queue of the same profile), then the sharing analysis.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ..capture import read_capture
from ..errors import ConfigError
from ..qdiscs import FqCodel, Sfq
from .cls_flow import FlowClassifier
from .perturb import hash_changes, seeds_from_events
from .profiles import DEFAULT_PROFILE, PROFILES
from .sharing import FLOW_COLUMNS, check_trials, sharing

__all__ = ["register", "run"]

DEFAULT_KEYS = "src,dst,proto,proto-src,proto-dst"


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (decimal or 0x...)") \
            from None


def register(subparsers) -> None:
    """Add the ``hash`` subcommand."""
    p = subparsers.add_parser("hash", help="which cls_flow class / SFQ bucket each flow gets",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="pcap or pcapng capture")
    p.add_argument("--keys", default=DEFAULT_KEYS, help=f"cls_flow keys (default {DEFAULT_KEYS})")
    p.add_argument("--map", dest="map_key", metavar="KEY",
                   help="map mode on one key instead of hashing (with --and/--addend)")
    p.add_argument("--and", dest="mask", type=_int, help="map mode mask")
    p.add_argument("--addend", type=_int, help="map mode addend")
    p.add_argument("--filter", dest="tc_line", metavar="TC_LINE",
                   help="a whole 'tc filter add ... flow ...' line instead of the options")
    p.add_argument("--divisor", type=_int, default=1024, help="class divisor (default 1024; 0 = none)")
    p.add_argument("--baseclass", default="1:1")
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=list(PROFILES),
                   help=f"kernel profile (default {DEFAULT_PROFILE})")
    p.add_argument("--perturb", type=float, default=0,
                   help="seconds between hashrnd changes; new seeds are drawn from --rng-seed")
    p.add_argument("--hashrnd", type=_int, default=0, help="the filter's seed (default 0)")
    p.add_argument("--rng-seed", type=int, default=0, help="seed for drawn perturbations")
    p.add_argument("--sfq", action="store_true", help="also show the SFQ bucket (own hash)")
    p.add_argument("--fq-codel", action="store_true", help="also show the fq_codel queue")
    p.add_argument("--trials", type=int, default=200, help="random seeds for the sharing estimate (0 = none; at most 100000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qoslab hash``."""
    check_trials(args.trials)  # every option is checked before the capture is read
    packets = read_capture(args.file)
    if not len(packets):
        raise ConfigError(f"{args.file}: no packets")
    if args.tc_line:
        fc = FlowClassifier.from_tc(args.tc_line, profile=args.profile)
    elif args.map_key:
        fc = FlowClassifier(args.map_key, mode="map", divisor=args.divisor or None,
                            baseclass=args.baseclass, mask=args.mask, addend=args.addend,
                            profile=args.profile)
    else:
        fc = FlowClassifier(args.keys, divisor=args.divisor or None, perturb=args.perturb,
                            baseclass=args.baseclass, profile=args.profile)
    seeds, at = args.hashrnd, None
    if args.perturb and fc.mode == "hash":
        t = packets["t"].to_numpy(dtype=float)
        events = hash_changes(0.0, float(np.nanmax(t)) + 1e-9, args.perturb,
                              rng_seed=args.rng_seed)
        at, seeds = seeds_from_events(events, initial=args.hashrnd)
    rep = sharing(packets, fc, seed=args.hashrnd, trials=args.trials)
    table = rep.flows.drop(columns=["cls"]).copy()
    major = fc.baseclass >> 16
    first = rep.flows["cls"].to_numpy()
    table.insert(2, "class", [f"{major:x}:{int(m):x}" for m in first])
    if at is not None:
        minors = fc.classify(packets, seeds, at)
        per_flow = _per_flow(packets, minors)
        table["classes_over_time"] = per_flow
    if args.sfq:
        table["sfq_bucket"] = sharing(packets, Sfq(profile=args.profile), seed=args.hashrnd,
                                      trials=0).flows["cls"].to_numpy()
    if args.fq_codel:
        table["fq_codel_queue"] = sharing(packets, FqCodel(profile=args.profile),
                                          seed=args.hashrnd, trials=0).flows["cls"].to_numpy()
    print(f"# {fc.to_tc()}  [profile {fc.profile.name}: {fc.profile.era}]")
    if at is not None:
        print(f"# hashrnd changes every {args.perturb:g} s ({len(at)} changes, seeds drawn "
              f"from --rng-seed {args.rng_seed}); 'class' is before the first change")
    print(table.to_string(index=False))
    print()
    print(rep)
    return 0


def _per_flow(packets, minors: np.ndarray) -> list[int]:
    """Number of distinct classes each flow went through (flows as in :func:`sharing`)."""
    cols = [c for c in FLOW_COLUMNS if c in packets.columns]
    fid, _ = pd.MultiIndex.from_frame(packets[cols].astype("string").fillna("")).factorize()
    return pd.Series(minors).groupby(fid).nunique().tolist()
