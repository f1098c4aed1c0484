"""Capture decoding speed: ``read_capture`` against a dpkt loop and ``tshark -T fields``.

Generates (deterministically, with numpy — no per-packet Python) a 1,000,000-packet Ethernet
pcap of full frames into ``benchmarks/_work/``: 55 % IPv4/TCP, 22 % IPv4/UDP, 10 % ICMP echo,
5 % IPv6/UDP and 8 % TCP in VXLAN (UDP 4789: inner Ethernet, IPv4, TCP). Then, each in a
fresh subprocess:

* ``qoslab.read_capture`` on the whole file: packets/s and peak memory (``ru_maxrss`` growth
  of the process, compared with the file size);
* a dpkt loop extracting the same fields (time, lengths, addresses, protocol, TOS, TTL, ports,
  ICMP type/code/id/seq; for VXLAN also the VNI and the inner addresses, protocol, TOS, TTL
  and ports), on the first ``--peer-packets`` packets (scaled, stated);
* ``tshark -T fields`` with the same fields, on the same subset.

Targets (issue 3): >= 2,000,000 packets/s, >= 20x dpkt, >= 40x tshark, peak <= 3x file size.

Run: ``python benchmarks/bench_capture.py [--packets N] [--peer-packets M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work"
T0 = 1_700_000_000


def _put(buf, pos, values, width):
    """Write big-endian ``width``-byte integers at byte offsets ``pos``."""
    v = np.asarray(values, np.uint64)
    for k in range(width):
        buf[pos + k] = (v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF)


def generate(path: Path, n: int, seed: int = 1) -> None:
    """Write an ``n``-packet little-endian µs pcap of full Ethernet frames."""
    rng = np.random.default_rng(seed)
    # tcp, udp, icmp, v6 udp, tcp in vxlan
    kind = rng.choice(5, size=n, p=[0.55, 0.22, 0.10, 0.05, 0.08])
    payload = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 4],
        [rng.choice([0, 1448, 536, 100], size=n, p=[0.4, 0.4, 0.1, 0.1]),
         rng.integers(20, 1400, n), np.full(n, 56),
         rng.choice([0, 1398, 100], size=n, p=[0.4, 0.5, 0.1])],
        rng.integers(20, 1200, n))
    # the "transport" region: VXLAN's is UDP + VXLAN + inner Ethernet + inner IPv4 + TCP
    l4 = np.select([kind == 0, kind == 2, kind == 4], [20, 8, 8 + 8 + 14 + 20 + 20], 8)
    l3 = np.where(kind == 3, 40, 20)
    frame = 14 + l3 + l4 + payload
    rec = 16 + frame
    off = np.zeros(n, np.int64)
    np.cumsum(rec[:-1], out=off[1:])
    off += 24
    total = int(off[-1] + rec[-1])
    buf = np.zeros(total, np.uint8)
    buf[:24] = np.frombuffer(np.array([0xA1B2C3D4], "<u4").tobytes()
                             + np.array([2, 4], "<u2").tobytes()
                             + np.array([0, 0, 262144, 1], "<u4").tobytes(), np.uint8)
    ts_us = T0 * 10**6 + np.cumsum(rng.integers(1, 60, n))
    hdr = np.stack([ts_us // 10**6, ts_us % 10**6, frame, frame], axis=1).astype("<u4")
    hb = hdr.view(np.uint8).reshape(n, 16)
    for k in range(16):
        buf[off + k] = hb[:, k]
    eth = off + 16
    _ethernet(buf, eth, np.where(kind == 3, 0x86DD, 0x0800))
    ip = eth + 14
    hosts = rng.integers(0, 2000, (n, 2))
    tos = rng.choice(np.array([0x00, 0x10, 0x08, 0xB8], np.uint8), n)
    proto = np.select([kind == 0, kind == 2], [6, 1], 17)
    v4 = kind != 3
    _ipv4(buf, ip[v4], tos[v4], (20 + l4 + payload)[v4], np.arange(n)[v4], proto[v4],
          0x0A000000 + hosts[v4, 0], 0xC0A80000 + hosts[v4, 1])
    i6 = ip[~v4]
    _put(buf, i6, (6 << 28) | (tos[~v4].astype(np.uint64) << 20) | 0x12345, 4)
    _put(buf, i6 + 4, (8 + payload)[~v4], 2)
    buf[i6 + 6] = 17
    buf[i6 + 7] = 64
    _put(buf, i6 + 8, 0x20010DB8, 4)
    _put(buf, i6 + 20, hosts[~v4, 0], 4)
    _put(buf, i6 + 24, 0x20010DB8, 4)
    _put(buf, i6 + 36, hosts[~v4, 1], 4)
    tp = ip + l3
    ports = rng.integers(1024, 65535, (n, 2))
    vx = kind == 4
    ports[vx, 1] = 4789
    ported = kind != 2
    _put(buf, tp[ported], ports[ported, 0], 2)
    _put(buf, tp[ported] + 2, ports[ported, 1], 2)
    tcp = kind == 0
    buf[tp[tcp] + 12] = 0x50
    buf[tp[tcp] + 13] = 0x18
    udp = (kind == 1) | (kind == 3) | vx
    _put(buf, tp[udp] + 4, (l4 + payload)[udp], 2)
    icmp = kind == 2
    idx = np.flatnonzero(icmp)
    buf[tp[icmp]] = np.where(np.arange(len(idx)) % 2 == 0, 8, 0)
    _put(buf, tp[icmp] + 4, 0x4242, 2)
    _put(buf, tp[icmp] + 6, (np.arange(len(idx)) // 2) & 0xFFFF, 2)
    # VXLAN: flags (VNI valid), VNI, then the inner frame
    hv = tp[vx] + 8
    buf[hv] = 0x08
    _put(buf, hv + 4, (100 + hosts[vx, 0] % 8) << 8, 4)
    ie = hv + 8
    _ethernet(buf, ie, np.full(len(ie), 0x0800))
    inner = ie + 14
    _ipv4(buf, inner, tos[vx], (40 + payload)[vx], np.arange(n)[vx] + 7, np.full(len(ie), 6),
          0xAC100000 + hosts[vx, 1], 0xAC110000 + hosts[vx, 0])
    it = inner + 20
    iports = rng.integers(1024, 65535, (len(it), 2))
    _put(buf, it, iports[:, 0], 2)
    _put(buf, it + 2, iports[:, 1], 2)
    buf[it + 12] = 0x50
    buf[it + 13] = 0x18
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(path)


def _ethernet(buf, at, ethertype) -> None:
    buf[at + 0] = 2  # dst 02:00:00:00:00:01, src 02:00:00:00:00:02
    buf[at + 5] = 1
    buf[at + 6] = 2
    buf[at + 11] = 2
    _put(buf, at + 12, ethertype, 2)


def _ipv4(buf, at, tos, total, ident, proto, src, dst) -> None:
    buf[at] = 0x45
    buf[at + 1] = tos
    _put(buf, at + 2, total, 2)
    _put(buf, at + 4, ident & 0xFFFF, 2)
    buf[at + 8] = 64
    buf[at + 9] = proto
    _put(buf, at + 12, src, 4)
    _put(buf, at + 16, dst, 4)


def to_pcapng(src: Path, dst: Path) -> None:
    """Rewrite a little-endian µs pcap as a pcapng (one interface, Enhanced Packet Blocks)."""
    import struct

    data = memoryview(src.read_bytes())
    linktype = struct.unpack_from("<I", data, 20)[0]
    out = [struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28),
           struct.pack("<IIHHII", 1, 20, linktype, 0, 0, 20)]
    off, end = 24, len(data)
    while off + 16 <= end:
        sec, usec, cap, wire = struct.unpack_from("<IIII", data, off)
        ts = sec * 1_000_000 + usec
        pad = -cap % 4
        blen = 32 + cap + pad
        out.append(struct.pack("<IIIIIII", 6, blen, 0, ts >> 32, ts & 0xFFFFFFFF, cap, wire))
        out.append(data[off + 16:off + 16 + cap])
        out.append(b"\0" * pad + struct.pack("<I", blen))
        off += 16 + cap
    dst.write_bytes(b"".join(out))


def head_pcap(src: Path, dst: Path, packets: int) -> None:
    """Copy the first ``packets`` records of a classic pcap (a sequential walk is fine here)."""
    data = src.read_bytes()
    off = 24
    for _ in range(packets):
        off += 16 + int.from_bytes(data[off + 8:off + 12], "little")
    dst.write_bytes(data[:off])


_OURS = """
import json, resource, sys, time
import qoslab
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
df = qoslab.read_capture(sys.argv[1], progress=False)
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"packets": len(df), "seconds": elapsed, "cpu": cpu, "rss_growth": (after - before) * 1024,
                  "frame_bytes": int(df.memory_usage(deep=True).sum())}))
"""

_DPKT = """
import json, sys, time, socket
import dpkt

def fields(eth, row):
    ip = eth.data
    if isinstance(ip, dpkt.ip.IP):
        row += [socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst), ip.p, ip.tos, ip.ttl]
    elif isinstance(ip, dpkt.ip6.IP6):
        row += [socket.inet_ntop(socket.AF_INET6, ip.src),
                socket.inet_ntop(socket.AF_INET6, ip.dst), ip.nxt, ip.fc, ip.hlim]
    l4 = getattr(ip, "data", None)
    if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        row += [l4.sport, l4.dport]
        if isinstance(l4, dpkt.udp.UDP) and l4.dport == 4789 and len(l4.data) >= 8:
            row.append(int.from_bytes(l4.data[4:7], "big"))  # the VNI, then the inner frame
            fields(dpkt.ethernet.Ethernet(l4.data[8:]), row)
    elif isinstance(l4, dpkt.icmp.ICMP):
        row += [l4.type, l4.code]
        if isinstance(l4.data, dpkt.icmp.ICMP.Echo):
            row += [l4.data.id, l4.data.seq]

t = time.perf_counter()
rows = []
with open(sys.argv[1], "rb") as fh:
    for ts, raw in dpkt.pcap.Reader(fh):
        row = [ts, len(raw)]
        fields(dpkt.ethernet.Ethernet(raw), row)
        rows.append(row)
elapsed = time.perf_counter() - t
print(json.dumps({"packets": len(rows), "seconds": elapsed}))
"""

TSHARK_FIELDS = ["frame.time_epoch", "frame.len", "frame.cap_len", "ip.src", "ip.dst",
                 "ip.proto", "ip.dsfield", "ip.ttl", "ipv6.src", "ipv6.dst", "ipv6.nxt",
                 "ipv6.tclass", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
                 "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "vxlan.vni"]


def _child(code: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tshark(path: Path) -> dict | None:
    exe = shutil.which("tshark")
    if exe is None:
        return None
    cmd = [exe, "-n", "-r", str(path), "-T", "fields"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    t = time.perf_counter()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - t
    return {"packets": res.stdout.count(b"\n"), "seconds": elapsed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--peer-packets", type=int, default=100_000,
                    help="packets decoded by dpkt and tshark (their rate is scaled)")
    ap.add_argument("--repeat", type=int, default=3, help="read_capture runs (best is kept)")
    args = ap.parse_args(argv)
    path = WORK / f"bench_{args.packets}_vxlan.pcap"  # the mix with VXLAN
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.packets)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    size = path.stat().st_size
    sub = WORK / f"bench_{args.packets}_vxlan_head{args.peer_packets}.pcap"
    if not sub.exists():
        head_pcap(path, sub, min(args.peer_packets, args.packets))
    print(f"file: {args.packets} packets, {size / 1e6:.1f} MB; peers on the first "
          f"{args.peer_packets} packets ({sub.stat().st_size / 1e6:.1f} MB), rates scaled")
    runs = [_child(_OURS, path) for _ in range(args.repeat)]
    ours = min(runs, key=lambda r: r["seconds"])
    assert ours["packets"] == args.packets, ours
    ours_rate = ours["packets"] / ours["seconds"]
    each = ", ".join(f"{r['seconds']:.3f}" for r in runs)
    print(f"read_capture: {ours['seconds']:.3f} s = {ours_rate:,.0f} packets/s (runs: {each} s)")
    print(f"  its process CPU time: {ours['cpu']:.3f} s = {ours['packets'] / ours['cpu']:,.0f} "
          f"packets per CPU second; machine load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs (wall time suffers when the machine is shared)")
    peak = max(r["rss_growth"] for r in runs)
    print(f"peak memory growth: {peak / 1e6:.0f} MB = {peak / size:.2f}x the file "
          f"(resulting frame {ours['frame_bytes'] / 1e6:.0f} MB)")
    ng = path.with_suffix(".pcapng")
    if not ng.exists():
        to_pcapng(path, ng)
    ng_run = min((_child(_OURS, ng) for _ in range(args.repeat)), key=lambda r: r["seconds"])
    print(f"read_capture on the same packets as pcapng ({ng.stat().st_size / 1e6:.1f} MB): "
          f"{ng_run['seconds']:.3f} s = {ng_run['packets'] / ng_run['seconds']:,.0f} packets/s"
          f" (CPU {ng_run['cpu']:.3f} s)")
    dp = _child(_DPKT, sub)
    dp_rate = dp["packets"] / dp["seconds"]
    print(f"dpkt loop: {dp['seconds']:.2f} s for {dp['packets']} packets = {dp_rate:,.0f} "
          f"packets/s -> read_capture is {ours_rate / dp_rate:.1f}x dpkt")
    ts = _tshark(sub)
    if ts is None:
        print("tshark: not installed, skipped")
    else:
        ts_rate = ts["packets"] / ts["seconds"]
        print(f"tshark -T fields: {ts['seconds']:.2f} s for {ts['packets']} packets = "
              f"{ts_rate:,.0f} packets/s -> read_capture is {ours_rate / ts_rate:.1f}x tshark")
    print("targets: >= 2,000,000 packets/s, >= 20x dpkt, >= 40x tshark, peak <= 3x file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
