"""Send-time accuracy of qoslab's ping engine against iputils ``ping``, on loopback.

10 streams x 100 Hz for 10 s. For qoslab the schedule is its own (probe k of a stream at
start + offset + k*interval); ``|actual - scheduled|`` is its ``send_late_ms``. For iputils,
10 ``ping -i 0.01 -c 1000 -D`` processes run concurrently; a probe's actual send time is its
``-D`` receive timestamp minus its RTT, and its scheduled time is the stream's first send plus
``(seq-1)*interval`` (what isochronous sending would have done). Target: qoslab p99 <= 1 ms,
zero lost. Needs root (raw sockets; iputils' 10 ms interval). Usage: ``python bench_ping.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

import qoslab
from qoslab.ping import parse_line

STREAMS, INTERVAL, COUNT = 10, 0.01, 1000
HOST = "127.0.0.1"


def bench_qoslab() -> dict:
    t0 = time.monotonic()
    run = qoslab.ping(HOST, tos=[4 * i for i in range(STREAMS)], interval=INTERVAL, count=COUNT,
                      backend="raw")
    p = run.probes
    late = np.abs(p["send_late_ms"].to_numpy())
    spacing = p.sort_values(["stream", "seq"]).groupby("stream")["t_sent"].diff().dropna()
    return {"tool": f"qoslab ({run.meta['backend_detail']}; {run.meta['scheduling']})",
            "probes": len(p), "spacing_ms": float(spacing.mean() * 1e3),
            "lost": int((p["status"] != "ok").sum()), "late": late,
            "rtt_median": float(p["rtt_ms"].median()), "wall": time.monotonic() - t0}


def bench_iputils() -> dict:
    env = {**os.environ, "LC_ALL": "C"}
    t0 = time.monotonic()
    procs = [subprocess.Popen(["ping", "-n", "-D", "-i", f"{INTERVAL}", "-c", str(COUNT), "-Q",
                               str(4 * i), HOST], stdout=subprocess.PIPE, text=True, env=env)
             for i in range(STREAMS)]
    outs = [pr.communicate()[0] for pr in procs]
    wall = time.monotonic() - t0
    late, rtts, received, spacing = [], [], 0, []
    for out in outs:
        replies = [r for r in map(parse_line, out.splitlines()) if r is not None
                   and r.kind == "reply"]
        received += len(replies)
        sent = {r.seq: r.ts - r.rtt_ms / 1e3 for r in replies}
        spacing += list(np.diff(sorted(sent.values())) * 1e3)
        first = sent[min(sent)] - (min(sent) - 1) * INTERVAL
        late += [abs(t - (first + (seq - 1) * INTERVAL)) * 1e3 for seq, t in sent.items()]
        rtts += [r.rtt_ms for r in replies]
    return {"tool": "iputils ping (10 processes)", "probes": STREAMS * COUNT,
            "lost": STREAMS * COUNT - received, "late": np.array(late),
            "rtt_median": float(np.median(rtts)), "wall": wall,
            "spacing_ms": float(np.mean(spacing))}


def main() -> int:
    if os.geteuid() != 0:
        print("bench_ping: needs root (raw sockets and iputils' 10 ms interval); skipped")
        return 0
    print(f"{STREAMS} streams x {1 / INTERVAL:g} Hz x {COUNT * INTERVAL:g} s to {HOST}")
    results = [bench_qoslab(), bench_iputils()]
    for r in results:
        late = r["late"]
        print(f"{r['tool']}\n    probes {r['probes']:>6}  lost {r['lost']:>4}  "
              f"|send - schedule| p50 {np.percentile(late, 50):8.3f} ms  "
              f"p99 {np.percentile(late, 99):8.3f} ms  max {late.max():9.3f} ms  "
              f"mean spacing {r['spacing_ms']:.2f} ms  rtt median {r['rtt_median']:.3f} ms  "
              f"wall {r['wall']:.1f} s")
    q, i = results
    ratio = np.percentile(i["late"], 99) / max(np.percentile(q["late"], 99), 1e-9)
    print(f"p99 send-time error: iputils / qoslab = {ratio:.1f}x")
    ok = np.percentile(q["late"], 99) <= 1.0 and q["lost"] == 0
    print("target (qoslab p99 <= 1 ms, zero lost):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
