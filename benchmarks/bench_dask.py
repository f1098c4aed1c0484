"""Capture sets on Dask: read + flows on 2 local workers against the pandas engine.

Generates (deterministically, with numpy: tests/capture_sets.py) a ring buffer of pcap files
into ``benchmarks/_work/dask/``: by default 10 files of 500,000 packets (5,000,000 in all),
128-byte snap length like ``tcpdump -s 128``, ~3,000 flows (TCP bulk and ACKs, UDP, IPv6,
4in4 tunnels, ICMP echo). Then, each in a fresh process:

* **pandas engine**: ``qoslab.read_captures(folder)`` + ``qoslab.capture.flows`` in one
  process — the peer;
* **Dask engine**: a ``LocalCluster`` of 2 worker processes (1 thread each, glibc's malloc
  defaults as in :func:`qoslab.engines.cluster.local_cluster`; started before the clock
  starts, its start-up time printed apart), then
  ``read_captures(folder, engine="dask")`` (which walks the files to plan the partitions) +
  ``flows`` of the Dask frame;
* the Dask engine again with chunks 4x smaller, and on the same packets written as files 5x
  larger, to show what bounds a worker's memory (the chunk, not the file).

Printed: packets/s of each and their ratio (target: Dask >= 1.3x pandas), the flow tables
compared row for row, and each worker's peak resident memory during the work (VmHWM, reset
after start-up) against the chunk and the file sizes (target: bounded by the chunk, not the
file), with the machine's load before and after.

Run: ``python benchmarks/bench_dask.py [--files 10] [--packets-per-file 500000]
[--chunk-packets 250000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "dask"
sys.path.insert(0, str(HERE.parent))

_PANDAS = r"""
import json, sys, time
from qoslab.capture import flows
from qoslab.engines.captures import read_captures
folder, out = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
packets = read_captures(folder)
table = flows(packets)
seconds, cpu = time.perf_counter() - t, time.process_time() - c
table.to_parquet(out)
hwm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"seconds": seconds, "cpu": cpu, "packets": len(packets), "peak": hwm}))
"""

_DASK = r"""
import json, os, sys, time
from distributed import Client, LocalCluster
from qoslab.capture import flows
from qoslab.engines.captures import read_captures
from qoslab.engines.cluster import capture_worker_environ
folder, out, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])

def reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS
    return status("VmRSS")

def cpu_seconds():
    import resource
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime

def status(key):
    return [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key)][0]

if __name__ == "__main__":
    t = time.perf_counter()
    with capture_worker_environ():  # glibc's malloc defaults, as in the pandas process
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
    client = Client(cluster)
    warm = sys.argv[4]  # one small capture: the workers import what the work needs
    flows(read_captures(warm, engine="dask", chunk_packets=chunk))
    startup = time.perf_counter() - t
    base = client.run(reset_peak)
    cpu0 = sum(client.run(cpu_seconds).values()) + cpu_seconds()
    t = time.perf_counter()
    packets = read_captures(folder, engine="dask", chunk_packets=chunk)
    planned = time.perf_counter() - t
    table = flows(packets)
    seconds = time.perf_counter() - t
    cpu = sum(client.run(cpu_seconds).values()) + cpu_seconds() - cpu0
    peaks = client.run(lambda: status("VmHWM"))
    table.to_parquet(out)
    print(json.dumps({"seconds": seconds, "planning": planned, "startup": startup, "cpu": cpu,
                      "partitions": packets.npartitions, "packets": int(packets.divisions[-1]) + 1,
                      "base": [base[w] for w in sorted(base)],
                      "peak": [peaks[w] for w in sorted(base)]}))
    client.close()
    cluster.close()
"""


def _child(code: str, *args) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, cwd=WORK)
    if out.returncode:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    one, five, _ = os.getloadavg()
    ps = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"],
                        capture_output=True, text=True).stdout.splitlines()[:4]
    busy = "; ".join(" ".join(p.split()) for p in ps if float(p.split()[0]) >= 5.0)
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs" + (
        f"; busiest processes: {busy}" if busy else "")


def _warm_up_capture() -> Path:
    from qoslab import data_path

    return data_path("captures/tunnel_uploads.pcap")


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _generate(files: int, per_file: int, snaplen: int) -> Path:
    from tests.capture_sets import write_set

    folder = WORK / f"set_{files}x{per_file}_s{snaplen}"
    done = folder.parent / f"{folder.name}.done"
    if not done.exists():
        t = time.perf_counter()
        write_set(folder, files, per_file, seed=16, snaplen=snaplen, seconds=3600.0)
        done.write_text("")
        print(f"generated {folder} in {time.perf_counter() - t:.1f} s")
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--packets-per-file", type=int, default=500_000)
    ap.add_argument("--chunk-packets", type=int, default=250_000)
    ap.add_argument("--snaplen", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine (best kept)")
    args = ap.parse_args(argv)
    import pandas as pd

    total = args.files * args.packets_per_file
    folder = _generate(args.files, args.packets_per_file, args.snaplen)
    big_files = max(1, args.files // 5)  # the same packets in files 5x larger
    big = _generate(big_files, total // big_files, args.snaplen)
    files = sorted(folder.glob("*.pcap"))
    sizes = [p.stat().st_size for p in files]
    per_packet = sum(sizes) / total
    print(f"set: {len(files)} pcap files, {total:,} packets, {sum(sizes) / 1e6:.0f} MB "
          f"(files of {_mb(max(sizes))}), snap length {args.snaplen}")
    print(f"before: {_load()}")
    warm = _warm_up_capture()
    pandas_runs, dask_runs = [], []
    for _ in range(args.repeat):  # interleaved: a change of load hits both engines alike
        pandas_runs.append(_child(_PANDAS, folder, WORK / "flows_pandas.parquet"))
        dask_runs.append(_child(_DASK, folder, WORK / "flows_dask.parquet", args.chunk_packets,
                                warm))
    small_chunk = max(1, args.chunk_packets // 4)
    small = _child(_DASK, folder, WORK / "flows_dask_small.parquet", small_chunk, warm)
    large = _child(_DASK, big, WORK / "flows_dask_big.parquet", args.chunk_packets, warm)
    print(f"after: {_load()}")
    expected = pd.read_parquet(WORK / "flows_pandas.parquet")
    for name in ("flows_dask", "flows_dask_small"):
        pd.testing.assert_frame_equal(pd.read_parquet(WORK / f"{name}.parquet"), expected)
    best_p = min(pandas_runs, key=lambda r: r["seconds"])
    best_d = min(dask_runs, key=lambda r: r["seconds"])
    assert best_p["packets"] == best_d["packets"] == total, (best_p, best_d)
    rate_p, rate_d = total / best_p["seconds"], total / best_d["seconds"]
    runs = ", ".join(f"{r['seconds']:.2f}" for r in pandas_runs)
    print(f"pandas engine (1 process): read + flows {best_p['seconds']:.2f} s = "
          f"{rate_p:,.0f} packets/s (runs: {runs} s; CPU {best_p['cpu']:.2f} s; peak RSS "
          f"{_mb(best_p['peak'])})")
    runs = ", ".join(f"{r['seconds']:.2f}" for r in dask_runs)
    print(f"Dask engine (2 workers, chunks of {args.chunk_packets:,} packets, "
          f"{best_d['partitions']} partitions): read + flows {best_d['seconds']:.2f} s = "
          f"{rate_d:,.0f} packets/s (runs: {runs} s; of which walking the files to plan "
          f"{best_d['planning']:.2f} s; CPU of workers and client {best_d['cpu']:.2f} s; "
          f"cluster start-up {best_d['startup']:.1f} s, not timed)")
    print(f"-> Dask / pandas throughput: {rate_d / rate_p:.2f}x (target >= 1.3x); "
          f"{len(expected):,} flows, equal row for row")
    print("worker peak RSS during the work (growth over the worker at rest):")
    for label, run, chunk, file_bytes in (
            ("main run", best_d, args.chunk_packets, max(sizes)),
            ("4x smaller chunks", small, small_chunk, max(sizes)),
            (f"same packets in {big_files} files 5x larger", large, args.chunk_packets,
             max(p.stat().st_size for p in big.glob("*.pcap")))):
        growth = [p - b for p, b in zip(run["peak"], run["base"], strict=True)]
        print(f"  {label}: " + ", ".join(f"{_mb(p)} (+{_mb(g)})" for p, g in
                                         zip(run["peak"], growth, strict=True))
              + f"; chunk {chunk:,} packets ~ {_mb(per_packet * chunk)} of file, files of "
              f"{_mb(file_bytes)}; {run['seconds']:.2f} s")
    print("targets: Dask >= 1.3x the pandas engine; worker memory bounded by the chunk, not "
          "the file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
