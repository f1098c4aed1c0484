"""Folders of generated captures for the capture-set tests and benchmarks/bench_dask.py.

``write_set`` writes a deterministic folder of classic pcap files cut from one continuous
stream of traffic, written with numpy (no per-packet Python): a few thousand flows with
Zipf-like sizes (TCP bulk and ACKs, UDP, IPv6), some of them inside an IP-in-IP (4in4)
tunnel, and ICMP / ICMPv6 echo streams whose replies follow their requests by a few
milliseconds — so some requests are the last packets of one file and their replies the first
of the next, as with a ring buffer (``tcpdump -C``, ``dumpcap -b``). A few requests get no
reply, a few get two.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["write_set", "traffic"]

T0_NS = 1_764_000_000 * 10**9  # 2025-11-24 16:00 UTC
_ETH = bytes.fromhex("020000000001" "020000000002")


def traffic(n: int, *, seed: int = 1, flows: int = 3000, echo_share: float = 0.06,
            tunnel_share: float = 0.05, v6_share: float = 0.1, seconds: float = 600.0,
            start_ns: int = T0_NS, tcp_payloads=(1448, 1448, 536, 100),
            ack_share: float = 0.35) -> dict[str, np.ndarray]:
    """Header fields of ``n`` packets in time order (arrays of one value per packet)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, flows, p=[0.65, 0.3, 0.05])  # TCP, UDP, ICMP echo
    v6 = rng.random(flows) < v6_share
    tun = (rng.random(flows) < tunnel_share) & ~v6
    rank = rng.permutation(flows) + 1
    weight = 1.0 / rank ** 1.1
    weight /= weight.sum()
    echo_flows = np.flatnonzero(kind == 2)
    n_req = int(n * echo_share / 2) if len(echo_flows) else 0
    f_req = rng.choice(echo_flows, n_req) if n_req else np.zeros(0, np.int64)
    t_req = np.sort(rng.uniform(0, seconds, n_req))
    rtt = rng.uniform(0.0005, 0.040, n_req)
    answered = rng.random(n_req) >= 0.01  # 1 % lost
    dup = answered & (rng.random(n_req) < 0.005)  # 0.5 % answered twice
    n_other = n - n_req - int(answered.sum()) - int(dup.sum())
    other_flows = np.flatnonzero(kind != 2)
    w = weight[other_flows] / weight[other_flows].sum()
    f_other = rng.choice(other_flows, n_other, p=w)
    t_other = rng.uniform(0, seconds, n_other)
    back = (rng.random(n_other) < ack_share) & (kind[f_other] == 0)  # TCP ACKs flow back
    f = np.concatenate([f_other, f_req, f_req[answered], f_req[dup]])
    t = np.concatenate([t_other, t_req, (t_req + rtt)[answered], (t_req + 1.7 * rtt)[dup]])
    role = np.concatenate([np.where(back, 2, 0), np.full(n_req, 1), np.full(answered.sum(), 3),
                           np.full(dup.sum(), 3)])  # 0 data, 1 echo request, 2 ack, 3 reply
    seq_req = np.zeros(n_req, np.int64)
    if n_req:
        order = np.argsort(f_req, kind="stable")
        counts = np.bincount(f_req[order])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        seq_req[order] = np.arange(n_req) - np.repeat(starts[counts > 0], counts[counts > 0])
    seq = np.concatenate([np.zeros(n_other, np.int64), seq_req, seq_req[answered], seq_req[dup]])
    order = np.argsort(t, kind="stable")
    f, t, role, seq = f[order], t[order], role[order], seq[order]
    host_a = rng.integers(1, 4000, flows)
    host_b = rng.integers(1, 4000, flows)
    rev = (role >= 2)
    side_a, side_b = host_a[f], host_b[f] + 0x100000  # 10.0.x.y and 10.16.x.y
    src = np.where(rev, side_b, side_a)
    dst = np.where(rev, side_a, side_b)
    sport = rng.integers(1024, 65535, flows)
    dport = rng.choice(np.array([22, 80, 443, 53, 5201, 8080]), flows)
    tos = rng.choice(np.array([0x00, 0x10, 0x08, 0xB8, 0x01]), flows)
    payload = np.select([kind[f] == 0, kind[f] == 1], [
        np.where(rev, 0, rng.choice(np.array(tcp_payloads), n)),
        rng.integers(20, 1200, n)], 56)
    return {
        "ts_ns": start_ns + (t * 1e9).astype(np.int64),
        "v6": v6[f], "tunnel": tun[f], "kind": kind[f], "role": role,
        "src": src, "dst": dst,
        "sport": np.where(rev, dport[f], sport[f]), "dport": np.where(rev, sport[f], dport[f]),
        "tos": tos[f], "icmp_id": (f * 7 + 0x100) & 0xFFFF, "icmp_seq": seq & 0xFFFF,
        "payload": payload, "flow": f,
    }


def _put(buf: np.ndarray, pos: np.ndarray, values, width: int) -> None:
    v = np.asarray(values, np.uint64)
    for k in range(width):
        buf[pos + k] = (v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF)


def write_pcap(path: Path, p: dict[str, np.ndarray], rows: slice | np.ndarray,
               snaplen: int = 128) -> int:
    """Write packets ``rows`` of :func:`traffic` as an Ethernet pcap (ns timestamps); return
    its size in bytes."""
    q = {k: v[rows] for k, v in p.items()}
    n = len(q["ts_ns"])
    v6, tun, kind = q["v6"], q["tunnel"], q["kind"]
    l4 = np.select([kind == 0, kind == 1], [20, 8], 8)
    l3 = np.where(v6, 40, 20) + np.where(tun, 20, 0)
    wire = 14 + l3 + l4 + q["payload"]
    cap = np.minimum(wire, snaplen)
    off = np.zeros(n, np.int64)
    np.cumsum(16 + cap[:-1], out=off[1:])
    off += 24
    total = int(off[-1] + 16 + cap[-1]) if n else 24
    # headers are written into a frame-sized scratch area, then cut to the snap length
    room = 14 + 60 + 20
    scratch = np.zeros((n, room), np.uint8)
    base = np.arange(n, dtype=np.int64) * room
    flat = scratch.reshape(-1)
    flat[base[:, None] + np.arange(12)] = np.frombuffer(_ETH, np.uint8)
    _put(flat, base + 12, np.where(v6, 0x86DD, 0x0800), 2)
    ip = base + 14
    if tun.any():
        o = ip[tun]
        flat[o] = 0x45
        _put(flat, o + 2, (wire - 14)[tun], 2)
        flat[o + 8] = 64
        flat[o + 9] = 4
        _put(flat, o + 12, 0xC0000201, 4)  # 192.0.2.1 > 198.51.100.1
        _put(flat, o + 16, 0xC6336401, 4)
        ip = ip + np.where(tun, 20, 0)
    proto = np.select([kind == 0, kind == 1], [6, 17], np.where(v6, 58, 1))
    inner_len = l4 + q["payload"]
    v4 = ~v6
    i4 = ip[v4]
    flat[i4] = 0x45
    flat[i4 + 1] = q["tos"][v4]
    _put(flat, i4 + 2, (20 + inner_len)[v4], 2)
    flat[i4 + 8] = 64
    flat[i4 + 9] = proto[v4]
    _put(flat, i4 + 12, 0x0A000000 + q["src"][v4], 4)
    _put(flat, i4 + 16, 0x0A000000 + q["dst"][v4], 4)
    i6 = ip[v6]
    _put(flat, i6, (6 << 28) | (q["tos"][v6].astype(np.uint64) << 20), 4)
    _put(flat, i6 + 4, inner_len[v6], 2)
    flat[i6 + 6] = proto[v6]
    flat[i6 + 7] = 64
    _put(flat, i6 + 8, 0x20010DB8, 4)
    _put(flat, i6 + 20, q["src"][v6], 4)
    _put(flat, i6 + 24, 0x20010DB8, 4)
    _put(flat, i6 + 36, q["dst"][v6], 4)
    tp = ip + np.where(v6, 40, 20)
    ported = kind != 2
    _put(flat, tp[ported], q["sport"][ported], 2)
    _put(flat, tp[ported] + 2, q["dport"][ported], 2)
    tcp = kind == 0
    flat[tp[tcp] + 12] = 0x50
    flat[tp[tcp] + 13] = np.where(q["role"][tcp] == 2, 0x10, 0x18)
    udp = kind == 1
    _put(flat, tp[udp] + 4, inner_len[udp], 2)
    echo = kind == 2
    request = q["role"] == 1
    flat[tp[echo]] = np.where(v6[echo], np.where(request[echo], 128, 129),
                              np.where(request[echo], 8, 0))
    _put(flat, tp[echo] + 4, q["icmp_id"][echo], 2)
    _put(flat, tp[echo] + 6, q["icmp_seq"][echo], 2)
    buf = np.zeros(total, np.uint8)
    buf[:24] = np.frombuffer(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, snaplen, 1),
                             np.uint8)
    ts = q["ts_ns"]
    hdr = np.stack([ts // 10**9, ts % 10**9, cap, wire], axis=1).astype("<u4")
    rec = np.ascontiguousarray(hdr).view(np.uint8).reshape(n, 16)
    for k in range(16):
        buf[off + k] = rec[:, k]
    width = int(cap.max()) if n else 0
    for k in range(min(width, room)):
        sel = cap > k
        buf[off[sel] + 16 + k] = scratch[sel, k]
    path.write_bytes(buf.tobytes())
    return total


def write_set(folder: Path, files: int, packets_per_file: int, *, seed: int = 1,
              snaplen: int = 128, prefix: str = "ring", **traffic_options) -> list[Path]:
    """Write ``files`` pcap files of one continuous stream into ``folder`` (created), named
    like a ring buffer (``ring_1.pcap`` … ``ring_10.pcap``); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    p = traffic(files * packets_per_file, seed=seed, **traffic_options)
    paths = []
    for k in range(files):
        path = folder / f"{prefix}_{k + 1}.pcap"
        write_pcap(path, p, slice(k * packets_per_file, (k + 1) * packets_per_file), snaplen)
        paths.append(path)
    return paths
