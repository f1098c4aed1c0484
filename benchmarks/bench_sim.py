"""Simulator speed: the saturated-link load and every scenario preset.

Target (issue 6): 60 s of a saturated 100 Mbit/s link with 10 bulk flows and 3 ping streams
(≈ 500 000 packets) in ≤ 5 s; each preset the notebooks use in ≤ 2 s. The peer is the real
experiment, which takes its simulated duration in wall time (the netns lab, or ping-exp on a
real link): the ratio printed is the speed-up over real time.

Both wall time and this process's CPU time are printed; on a shared machine the wall time
includes waiting for a core, so the targets are judged on CPU time (the simulator is
single-threaded: CPU time is what it costs on an idle machine).

Run: ``.venv/bin/python benchmarks/bench_sim.py [--quick]``.
"""

from __future__ import annotations

import sys
import time

from qoslab.sim import scenarios

TARGET_SATURATED_S = 5.0
TARGET_PRESET_S = 2.0


def timed(fn, **kw):
    t0, c0 = time.perf_counter(), time.process_time()
    run = fn(**kw)
    return run, time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    quick = "--quick" in sys.argv
    status = 0
    print("saturated 100 Mbit/s link, 10 bulk flows + 3 ping streams, 60 s simulated")
    for qdisc in ("pfifo", "sfq", "fq_codel") if not quick else ("sfq",):
        run, wall, cpu = timed(scenarios.saturated_link, qdisc=qdisc, duration=60.0)
        eng = run.meta["engine"]
        ok = cpu <= TARGET_SATURATED_S
        status |= not ok
        print(f"  {qdisc:9s} {eng['packets']:7d} packets  {eng['events']:8d} events  "
              f"wall {wall:5.2f} s  cpu {cpu:5.2f} s  {eng['events'] / cpu / 1e3:6.0f} k events/s  "
              f"{eng['packets'] / cpu / 1e3:5.0f} k packets/s  "
              f"x{60.0 / cpu:5.1f} real time  [{'ok' if ok else 'SLOW'} ≤ {TARGET_SATURATED_S} s]")
    print("scenario presets (defaults)")
    for name, fn in scenarios.SCENARIOS.items():
        if name == "saturated_link":
            continue
        run, wall, cpu = timed(fn)
        ok = cpu <= TARGET_PRESET_S
        status |= not ok
        dur = run.meta["duration"]
        print(f"  {name:15s} {dur:6.0f} s simulated  {run.meta['engine']['packets']:7d} packets  "
              f"wall {wall:5.2f} s  cpu {cpu:5.2f} s  x{dur / cpu:6.1f} real time  "
              f"[{'ok' if ok else 'SLOW'} ≤ {TARGET_PRESET_S} s]")
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
