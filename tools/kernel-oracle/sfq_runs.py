#!/usr/bin/env python3
"""Compare qoslab.qdiscs' SFQ runtimes with the kernel's own SFQ scheduler, compiled.

Usage::

    python tools/kernel-oracle/sfq_runs.py [--era sfq-2.6.32 ...] [--ops 20000] [--seed 1]

For each SFQ scheduler era (:data:`SCHED_ERAS`): build ``harness/sfq_sched.c`` with the era's
``sfq_enqueue``/``sfq_dequeue`` (extracted verbatim into ``kernel/sfq-<era>/``), draw a random
script of enqueues and dequeues over flows pinned to buckets (several flows share a bucket;
sizes from 40 bytes to jumbo frames, so the 16-bit allotments wrap), run it through the
kernel code and through the qoslab runtime of the matching profile with the same pinned
buckets, and compare, operation by operation, which packet is dequeued and which packets are
dropped, in order.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eras import ERAS, TREES  # noqa: E402

from qoslab.qdiscs import sfq as qsfq  # noqa: E402
from qoslab.qdiscs.runtime import BuildContext, FlowTable, build, new_packet  # noqa: E402


@dataclass(frozen=True)
class SchedEra:
    era: str  # folder under kernel/
    profile: str  # the qoslab profile whose SFQ generation stands for it


#: SFQ scheduler era -> the profile whose runtime must agree with it.
SCHED_ERAS: dict[str, SchedEra] = {e.era: e for e in (
    SchedEra("sfq-2.6.32", "classic-2.6.3x"),
    SchedEra("sfq-2.6.37", "2.6.37"),
    SchedEra("sfq-2.6.39", "2.6.37-3.2"),
    SchedEra("sfq-6.1.20", "5.18+"),
)}


def build_harness(era: str, out_dir: Path) -> Path:
    """Compile ``harness/sfq_sched.c`` for ``era``; cached by the hash of its sources."""
    tree = TREES[ERAS[era].tree]
    major, minor, patch = (tree.version.split("-")[0].split(".") + ["0"])[:3]
    sources = sorted((HERE / "kernel" / era).rglob("*")) + sorted((HERE / "harness").glob("*"))
    digest = hashlib.sha256()
    for p in sources:
        if p.is_file():
            digest.update(p.read_bytes())
    exe = out_dir / f"sfq-sched-{era}-{digest.hexdigest()[:12]}"
    if not exe.exists():
        subprocess.run(["gcc", "-O1", "-std=gnu11", "-w",
                        f"-DKV=KERNEL_VERSION({major},{minor},{patch})",
                        f"-I{HERE / 'harness'}", "-iquote", str(HERE / "kernel" / era),
                        str(HERE / "harness" / "sfq_sched.c"), "-o", str(exe)],
                       check=True, cwd=out_dir)
    return exe


def random_script(n_ops: int, seed: int) -> tuple[list[tuple], np.ndarray]:
    """Operations ``("e", id, flow, size)`` / ``("d",)`` and the bucket of each flow.

    Phases alternate between filling (mostly enqueues: the limit is reached and sfq_drop runs)
    and draining (mostly dequeues: slots empty and are reused, allotments carry over), with
    flows joining and leaving, a few of them sharing a bucket.
    """
    rng = np.random.default_rng(seed)
    n_flows = 40
    buckets = rng.choice(1024, n_flows)
    buckets[rng.random(n_flows) < 0.15] = buckets[0]  # collisions
    sizes = np.array([40, 64, 576, 1000, 1500, 1514, 4000, 9000, 30000, 60000])
    flow_size = rng.choice(sizes, n_flows)
    ops: list[tuple] = []
    pid = 0
    p_enq = 0.8
    active = rng.choice(n_flows, 6, replace=False)
    for k in range(n_ops):
        if k % 200 == 0:
            p_enq = float(rng.choice([0.9, 0.55, 0.2]))
            active = rng.choice(n_flows, int(rng.integers(1, 12)), replace=False)
        if rng.random() < p_enq:
            f = int(rng.choice(active))
            size = int(flow_size[f]) if rng.random() < 0.8 else int(rng.choice(sizes))
            pid += 1
            ops.append(("e", pid, f, size))
        else:
            ops.append(("d",))
    return ops, buckets


def run_kernel(exe: Path, ops, buckets, limit: int, quantum: int) -> list[tuple]:
    with tempfile.TemporaryDirectory(prefix="qoslab-sfq-") as tmp:
        script = Path(tmp) / "ops"
        script.write_text("".join(f"e {o[1]} {int(buckets[o[2]])} {o[3]}\n" if o[0] == "e"
                                  else "d\n" for o in ops))
        out = subprocess.run([str(exe), str(limit), str(quantum), str(script)],
                             capture_output=True, text=True, check=True, timeout=600).stdout
    results = []
    for line in out.splitlines():
        words = line.split()
        drops = tuple(int(w[1:]) for w in words[1:] if w.startswith("x"))
        if words[0] == "d":
            results.append(("d", int(words[1]), drops))
        else:
            results.append(("e", drops))
    return results


class _Owner:
    def __init__(self) -> None:
        self.dropped: list[int] = []

    def on_drop(self, pkt, now) -> None:
        self.dropped.append(pkt[3])


def run_qoslab(profile: str, ops, buckets, limit: int, quantum: int) -> list[tuple]:
    """The same script through qoslab's runtime of ``profile``'s SFQ generation."""
    n = len(buckets)
    flows = pd.DataFrame({"ip_version": [4] * n, "src": ["10.0.0.1"] * n,
                          "dst": [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(n)],
                          "proto": [17] * n, "sport": [1000] * n, "dport": [2000] * n,
                          "tos": [0] * n, "frag": [False] * n, "tunnel": ["none"] * n,
                          "inner_src": [None] * n, "inner_dst": [None] * n,
                          "inner_proto": [None] * n, "inner_sport": [None] * n,
                          "inner_dport": [None] * n})
    ctx = BuildContext(FlowTable(flows), mtu_bytes=quantum)
    rt = build(qsfq.Sfq(profile=profile, limit=limit, quantum=quantum), ctx)
    rt.bucket_of = [int(b) for b in buckets]  # pinned, as the kernel run pins them
    owner = _Owner()
    results = []
    for k, o in enumerate(ops):
        before = len(owner.dropped)
        if o[0] == "e":
            rt.enqueue(new_packet(o[2], o[3], float(k), o[1], owner), float(k))
            results.append(("e", tuple(owner.dropped[before:])))
        else:
            pkt = rt.dequeue(float(k))
            results.append(("d", -1 if pkt is None else pkt[3], tuple(owner.dropped[before:])))
    return results


@dataclass
class SchedResult:
    era: str
    profile: str
    ops: int
    mismatches: int
    first: int | None  # index of the first operation that differs
    drops: int  # packets the kernel dropped
    dequeued: int


def run_sched_era(era: str, n_ops: int = 20000, seed: int = 1, work: Path | None = None,
                  limit: int = 40, quantum: int = 1514) -> SchedResult:
    se = SCHED_ERAS[era]
    with tempfile.TemporaryDirectory(prefix="qoslab-sfq-build-") as tmp:
        exe = build_harness(era, work or Path(tmp))
        ops, buckets = random_script(n_ops, seed)
        kernel = run_kernel(exe, ops, buckets, limit, quantum)
    ours = run_qoslab(se.profile, ops, buckets, limit, quantum)
    if len(kernel) != len(ops):
        raise RuntimeError(f"the kernel run gave {len(kernel)} results for {len(ops)} ops")
    bad = [k for k, (a, b) in enumerate(zip(kernel, ours, strict=True)) if a != b]
    return SchedResult(era, se.profile, len(ops), len(bad), bad[0] if bad else None,
                       sum(len(r[-1]) for r in kernel),
                       sum(1 for r in kernel if r[0] == "d" and r[1] >= 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--era", action="append", help="SFQ scheduler era (default: all)")
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args(argv)
    bad = 0
    for era in args.era or list(SCHED_ERAS):
        r = run_sched_era(era, args.ops, args.seed, limit=args.limit)
        print(f"{era:12} {r.profile:16} {r.ops} operations ({r.dequeued} dequeued, "
              f"{r.drops} dropped): {r.mismatches} differ"
              + (f", first at operation {r.first}" if r.first is not None else ""))
        bad += r.mismatches
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
