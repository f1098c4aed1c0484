"""Report build: every notebook executed and written as offline HTML (``make demo``).

Target (issue 13): ``qoslab report`` for all notebooks ≤ 60 s on this machine (2 cores).
Peer, measured in the same run: ``jupyter nbconvert --execute --to html`` of the same notebooks
(what one would run without qoslab: one notebook after another, CDN scripts and all), printed
as the ratio peer / qoslab.

Run: ``.venv/bin/python benchmarks/bench_report.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 60.0


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} … failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> int:
    notebooks = sorted(str(p) for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        ours = timed([sys.executable, "-m", "qoslab", "report", "-o", f"{tmp}/q", *notebooks])
        peer = timed([sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "html",
                      "--output-dir", f"{tmp}/n", *notebooks])
    ok = ours <= TARGET_S
    print(f"qoslab report, {len(notebooks)} notebooks: {ours:5.1f} s  "
          f"[{'ok' if ok else 'SLOW'} ≤ {TARGET_S:.0f} s]")
    print(f"  peer: jupyter nbconvert --execute --to html: {peer:5.1f} s  → "
          f"{peer / ours:.2f}× the time of qoslab report")
    return int(not ok)


if __name__ == "__main__":
    sys.exit(main())
