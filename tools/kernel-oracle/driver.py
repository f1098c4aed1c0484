#!/usr/bin/env python3
"""Compare qoslab.hashing with the kernel's own code, compiled, on the same pcap bytes.

Usage::

    python tools/kernel-oracle/driver.py [--era 6.1.20 ...] [--packets 2000] [--seed 1] [-v]

For each era (:data:`ERA_PROFILES`): build ``harness/oracle.c`` with the era's extracted code
(gcc), draw random frames (:mod:`packets`), write them as a pcap, read that pcap with
``qoslab.read_capture``, compute every check of :data:`CHECKS` with qoslab and with the
compiled kernel code, and count the packets where they differ. Rows that a named
exclusion of :data:`EXCLUSIONS` covers (what qoslab does not model, see docs/kernel-facts.md)
are counted apart, by name.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eras import ERAS, TREES  # noqa: E402
from packets import random_frames, write_pcap  # noqa: E402

import qoslab  # noqa: E402
from qoslab.hashing import (  # noqa: E402
    FlowClassifier,
    FqCodel,
    Sfq,
    get_profile,
    pfifo_fast_band,
    skb_hash,
)
from qoslab.hashing.keys import FLOW_KEYS  # noqa: E402


@dataclass(frozen=True)
class EraProfile:
    era: str  # folder under kernel/
    profile: str  # the qoslab profile that stands for it
    seed_kind: str  # "siphash" (128-bit keys), "u32" or "fold" (SFQ's 5-bit shift, ≤ 2.6.22)
    fq_codel: str | None = "global"  # fq_codel's seed: the global flow-hash secret or its "own"
    skb_hash: bool = True
    sfq_divisors: tuple[int, ...] = (1024, 128)
    exclude: tuple[str, ...] = ()  # names of EXCLUSIONS that apply to this era's kernel
    cls_flow: bool = True  # the era has cls_flow and sfq_classify (2.6.25+)


_IPIP_4IN6 = "4in6 through the 3.3-3.18 dissector"
_RXHASH_4IN6 = "4in6 through the 3.2 rxhash"

#: Oracle era -> the qoslab profile that must agree with it.
ERA_PROFILES: dict[str, EraProfile] = {ep.era: ep for ep in (
    EraProfile("6.1.20", "5.18+", "siphash"),
    EraProfile("5.19", "5.18-5.19", "siphash"),
    EraProfile("5.17-rc5", "5.14-5.17", "siphash"),
    EraProfile("5.15.100", "5.18+", "siphash"),
    EraProfile("5.14.2", "5.14-5.17", "siphash"),
    EraProfile("5.10.44", "5.8-5.13", "siphash"),
    EraProfile("5.6.4", "5.5-5.17", "siphash"),
    EraProfile("5.4.214", "5.4.y-stable", "siphash"),
    EraProfile("5.4", "5.4-siphash", "siphash"),
    EraProfile("5.3.1", "5.2-5.3", "u32"),
    EraProfile("5.2.1", "5.2-5.3", "u32"),
    EraProfile("5.0.1", "4.18-5.3", "u32"),
    EraProfile("4.20", "4.18-5.3", "u32"),
    EraProfile("4.19.304", "4.19.y-stable", "siphash"),
    EraProfile("4.14.177", "4.14.y-stable", "siphash"),
    EraProfile("4.9", "4.2-5.3", "u32", fq_codel="own"),
    EraProfile("4.4.11", "4.4-4.5", "u32", fq_codel="own"),
    EraProfile("4.2.8", "4.2-4.3", "u32", fq_codel="own"),
    EraProfile("4.1.13", "4.1", "u32", fq_codel="own"),
    EraProfile("3.19.8", "3.19-4.1", "u32", fq_codel="own"),
    EraProfile("3.10.99", "3.x-dissector", "u32", fq_codel="own", exclude=(_IPIP_4IN6,)),
    EraProfile("3.6.5", "3.6-3.9", "u32", fq_codel="own", exclude=(_IPIP_4IN6,)),
    EraProfile("3.2.7", "3.2", "u32", fq_codel=None, exclude=(_RXHASH_4IN6,)),
    EraProfile("3.1", "2.6.37-3.2", "u32", fq_codel=None),
    EraProfile("2.6.39", "2.6.37-3.2", "u32", fq_codel=None),
    EraProfile("2.6.38", "2.6.38", "u32", fq_codel=None, sfq_divisors=(1024,)),
    EraProfile("2.6.37", "2.6.37", "u32", fq_codel=None, sfq_divisors=(1024,)),
    EraProfile("2.6.36", "2.6.36", "u32", fq_codel=None, skb_hash=False,
               sfq_divisors=(1024,)),
    EraProfile("2.6.32", "classic-2.6.3x", "u32", fq_codel=None, skb_hash=False,
               sfq_divisors=(1024,)),
    EraProfile("2.6.22", "sfq-fold-2.6.2x", "fold", fq_codel=None, skb_hash=False,
               sfq_divisors=(1024,), cls_flow=False),
    EraProfile("3.4.113", "3.4.y-stable", "u32", fq_codel=None, exclude=(_IPIP_4IN6,)),
    EraProfile("3.4.26", "3.4-3.5", "u32", fq_codel=None, exclude=(_IPIP_4IN6,)),
    EraProfile("3.3.8", "3.3", "u32", fq_codel=None, exclude=(_IPIP_4IN6,)),
)}

#: cls_flow filters compared: (tc-style keys, mode, divisor, baseclass, map operators).
FILTERS = (
    ("src,dst,proto,proto-src,proto-dst", "hash", 1024, 0x10001, {}),
    ("dst,proto-dst,vlan-tag,priority", "hash", 64, 0x1000A, {}),
    ("proto-dst", "map", None, 0x20001, dict(mask=0xFF, xor=0x3, rshift=1, addend=5)),
    ("vlan-tag", "map", None, 0x10001, {}),
    ("src", "map", 300, 0x10001, dict(mask=0xFFFF)),
    ("rxhash,mark,iif,proto", "hash", 100, 0x30005, {}),
)
#: Keys compared one by one (all of cls_flow's; nfct-* fall back to the plain keys).
KEY_NAMES = tuple(k for k in FLOW_KEYS if not k.startswith("tunnel-"))
HANDLE = 0x10000

#: Named exclusions: packets whose kernel result qoslab does not model (what, and a predicate
#: on PACKETS); an era lists the ones that apply to it (``EraProfile.exclude``);
#: docs/kernel-facts.md lists them too.
EXCLUSIONS: dict[str, tuple[str, object, object]] = {
    _IPIP_4IN6: (
        "IPPROTO_IPIP re-parses the payload as the outer family: the inner IPv4 header and "
        "its payload are read as an IPv6 header, so every hash takes bytes PACKETS does not "
        "keep (TTL, checksum, payload)",
        lambda pk: _tunnel(pk, "4in6"), lambda check: True),
    _RXHASH_4IN6: (
        "__skb_get_rxhash follows IPPROTO_IPIP by re-parsing the payload as the outer family: "
        "the skb hash (and cls_flow's rxhash key) of a 4in6 packet takes bytes PACKETS does not "
        "keep",
        lambda pk: _tunnel(pk, "4in6"), lambda check: "rxhash" in check or check in (
            "skb_hash", "cls_flow keys")),
}


def _tunnel(pk, kind: str) -> np.ndarray:
    return (pk["tunnel"].astype("string") == kind).fillna(False).to_numpy(bool)


def build(era: str, out_dir: Path) -> Path:
    """Compile the harness for ``era``; cached by the hash of its sources."""
    tree = TREES[ERAS[era].tree]
    major, minor, patch = (tree.version.split("-")[0].split(".") + ["0"])[:3]
    sources = sorted((HERE / "kernel" / era).rglob("*")) + sorted((HERE / "harness").glob("*"))
    digest = hashlib.sha256()
    for p in sources:
        if p.is_file():
            digest.update(p.read_bytes())
    exe = out_dir / f"oracle-{era}-{digest.hexdigest()[:12]}"
    if not exe.exists():
        cmd = ["gcc", "-O1", "-std=gnu11", "-w", f"-DKV=KERNEL_VERSION({major},{minor},{patch})",
               f"-I{HERE / 'harness'}", "-iquote", str(HERE / "kernel" / era),
               str(HERE / "harness" / "oracle.c"), "-o", str(exe)]
        subprocess.run(cmd, check=True, cwd=out_dir)
    return exe


def _seed_words(rng, kind: str) -> tuple[list[int], object]:
    """(words for the harness, the seed as qoslab takes it)."""
    if kind == "siphash":
        k = [int(x) for x in rng.integers(0, 2**63, 2, dtype=np.uint64)]
        return k, k[0].to_bytes(8, "little") + k[1].to_bytes(8, "little")
    if kind == "fold":  # SFQ before jhash: net_random() & 0x1F
        s = int(rng.integers(0, 32))
        return [s], s
    s = int(rng.integers(0, 2**32))
    return [s], s


def _keymask(names: str) -> int:
    return sum(1 << FLOW_KEYS[k.strip()][0] for k in names.split(","))


def plan(ep: EraProfile, rng):
    """The harness jobs and, for each, how qoslab computes the same thing."""
    jobs, checks = [], []
    words, hashrnd = _seed_words(rng, ep.seed_kind)
    jobs.append("hashrnd " + " ".join(f"{w:x}" for w in words))
    if ep.skb_hash:
        jobs.append("skbhash")
        checks.append(("skb_hash", 1, lambda pk: skb_hash(pk, hashrnd, ep.profile)))
    prof = get_profile(ep.profile)
    key_names = [k for k in KEY_NAMES if k != "rxhash" or prof.rxhash_key]  # rxhash: 2.6.37+
    classifiers = []
    if ep.cls_flow:  # cls_flow: 2.6.25+
        mask = _keymask(",".join(key_names))
        jobs.append(f"keys {mask:x}")
        checks.append(("cls_flow keys", len(key_names), lambda pk: FlowClassifier(
            ",".join(key_names), profile=ep.profile).key_matrix(pk, skb_hashrnd=hashrnd)))
    for keys, mode, divisor, base, ops in FILTERS if ep.cls_flow else ():
        if not prof.rxhash_key:
            keys = ",".join(k for k in keys.split(",") if k != "rxhash")
        fc = FlowClassifier(keys, mode=mode, divisor=divisor, baseclass=base,
                            profile=ep.profile, **ops)
        r = int(rng.integers(0, 2**32))
        m = fc.mask if mode == "map" else 0
        jobs.append(f"flow {1 if mode == 'hash' else 0:x} {_keymask(keys):x} {divisor or 0:x} "
                    f"{base:x} {r:x} {m:x} {fc.xor:x} {fc.rshift:x} {fc.addend:x}")
        classifiers.append((fc, r))
        checks.append((f"cls_flow {mode} {keys} divisor {divisor}", 1,
                       lambda pk, fc=fc, r=r: fc.classify(pk, r, skb_hashrnd=hashrnd)))
    for divisor in ep.sfq_divisors:
        pw, perturb = _seed_words(rng, ep.seed_kind)
        jobs.append(f"sfq {divisor:x} {HANDLE:x} {-1 & 0xFFFFFFFF:x} " +
                    " ".join(f"{w:x}" for w in pw))
        checks.append((f"sfq divisor {divisor}", 1, lambda pk, d=divisor, perturb=perturb: Sfq(
            divisor=d, profile=ep.profile).bucket(pk, perturb, handle=HANDLE)))
    if classifiers:
        fc, r = classifiers[0]
        div = ep.sfq_divisors[0]
        jobs.append(f"sfq {div:x} {HANDLE:x} 0 0 0")
        sfq_f = Sfq(divisor=div, profile=ep.profile, classifier=fc)
        checks.append(("sfq with filter", 1,
                       lambda pk: sfq_f.bucket(pk, 0, hashrnd=r, handle=HANDLE)))
    if ep.fq_codel:
        for flows in (1024, 700):
            if ep.fq_codel == "own":  # its own perturbation (q->perturbation)
                fw, fseed = _seed_words(rng, ep.seed_kind)
            else:  # the global flow-hash secret
                fw, fseed = [0], hashrnd
            jobs.append(f"fqcodel {flows:x} {HANDLE:x} {-1 & 0xFFFFFFFF:x} " +
                        " ".join(f"{w:x}" for w in fw))
            fq = FqCodel(flows=flows, profile=ep.profile)
            checks.append((f"fq_codel flows {flows}", 1,
                           lambda pk, fq=fq, fseed=fseed: fq.index(pk, fseed, handle=HANDLE)))
        fc1, r1 = classifiers[1]
        jobs.append(f"fqcodel {1024:x} {HANDLE:x} 1")
        fqf = FqCodel(flows=1024, profile=ep.profile, classifier=fc1)
        checks.append(("fq_codel with filter", 1,
                       lambda pk: fqf.index(pk, hashrnd, hashrnd=r1, handle=HANDLE)))
    jobs.append("band")
    checks.append(("pfifo_fast band", 1, lambda pk: np.where(
        pk["ip_version"].fillna(0).to_numpy() == 4,
        pfifo_fast_band(pk["tos"].fillna(0).to_numpy(dtype=int), profile=ep.profile), 1)))
    return jobs, checks


@dataclass
class Result:
    era: str
    profile: str
    packets: int
    mismatches: dict[str, int]  # check -> packets that differ (exclusions removed)
    excluded: dict[str, int]  # exclusion name -> packets excluded
    examples: dict[str, list[int]]  # check -> first differing rows
    errors: dict[str, str]  # check -> the error qoslab raised (every row counted as differing)

    @property
    def total(self) -> int:
        return sum(self.mismatches.values())


def qoslab_packets(pcap: Path, priority, mark) -> pd.DataFrame:
    pk = qoslab.read_capture(pcap)
    pk["priority"] = pd.array(priority, dtype="UInt32")
    pk["mark"] = pd.array(mark, dtype="UInt32")
    pk["route_token"] = 0  # no route: addr_fold(skb_dst) = 0, as in the harness
    pk["sk_token"] = 0
    return pk


def run_era(era: str, n: int = 2000, seed: int = 1, work: Path | None = None,
            profile: str | None = None) -> Result:
    ep = ERA_PROFILES[era]
    if profile is not None:  # compare the era with another profile
        ep = replace(ep, profile=profile)
    rng = np.random.default_rng([seed, sum(map(ord, era))])
    with tempfile.TemporaryDirectory(prefix="qoslab-oracle-") as tmp:
        tmp = Path(tmp)
        build_dir = work or tmp
        exe = build(era, build_dir)
        frames, priority, mark = random_frames(n, seed)
        write_pcap(tmp / "frames.pcap", frames)
        (tmp / "meta").write_text("".join(f"{p} {m}\n" for p, m in zip(priority, mark, strict=True)))
        jobs, checks = plan(ep, rng)
        (tmp / "jobs").write_text("\n".join(jobs) + "\n")
        res = subprocess.run([str(exe), str(tmp / "frames.pcap"), str(tmp / "meta"),
                              str(tmp / "jobs")], capture_output=True, text=True, check=True,
                             cwd=tmp, timeout=600)
        kernel = np.array([line.split() for line in res.stdout.splitlines()], dtype=np.int64)
        pk = qoslab_packets(tmp / "frames.pcap", priority, mark)
    if kernel.shape[0] != len(pk):
        raise RuntimeError(f"oracle gave {kernel.shape[0]} rows for {len(pk)} packets")
    excluded = {name: np.asarray(EXCLUSIONS[name][1](pk), dtype=bool) for name in ep.exclude}
    mismatches, examples, errors = {}, {}, {}
    col = 0
    for name, width, fn in checks:
        want = kernel[:, col:col + width]
        col += width
        try:
            got = np.asarray(fn(pk), dtype=np.int64).reshape(len(pk), -1)
        except Exception as exc:  # qoslab cannot compute it for this profile: all differ
            errors[name] = f"{type(exc).__name__}: {exc}"
            got = np.full((len(pk), width), -2, dtype=np.int64)
        if width == 1:
            got = got[:, :1]
        bad = (got != (want & (0xFFFFFFFF if name == "cls_flow keys" else -1))).any(axis=1)
        for ex, rows in excluded.items():
            if EXCLUSIONS[ex][2](name):
                bad &= ~rows
        mismatches[name] = int(bad.sum())
        examples[name] = np.flatnonzero(bad)[:5].tolist()
    return Result(era, ep.profile, len(pk), mismatches,
                  {name: int(rows.sum()) for name, rows in excluded.items()}, examples, errors)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--era", action="append", help="era (default: all)")
    ap.add_argument("--packets", type=int,
                    default=int(os.environ.get("QOSLAB_ORACLE_PACKETS", "2000")))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", help="compare with this qoslab profile instead")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    bad = 0
    for era in args.era or list(ERA_PROFILES):
        r = run_era(era, args.packets, args.seed, profile=args.profile)
        print(f"{era:10} {r.profile:16} {r.packets} packets: {r.total} mismatches")
        for name, count in r.mismatches.items():
            if count or args.verbose:
                print(f"    {name}: {count}  e.g. rows {r.examples[name]}")
                if name in r.errors:
                    print(f"        qoslab raised {r.errors[name][:150]}")
        for name, count in r.excluded.items():
            print(f"    excluded ({name}): {count}")
        bad += r.total
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
