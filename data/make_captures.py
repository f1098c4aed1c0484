"""Write the crafted captures under data/captures/ (deterministic: same bytes every run).

``tunnel_uploads.pcap`` is the situation qoslab was built for: hosts behind an IP-in-IP (4in4)
gateway tunnel run SCP-like TCP uploads to port 22 and a UDP stream while three ping streams
with TOS 0x00, 0x10 and 0x08 measure latency; while the uploads run, the queue at the
bottleneck fills and the pings of the bulk TOS values wait behind the uploads (TOS 0x10,
"minimize delay", is served first). A few 6in4, 4in6 and 6in6 packets are mixed in. The capture
is taken on the tunnel's outer link with a 128-byte snap length (headers only), like
``tcpdump -s 128``.

Run: ``python data/make_captures.py`` (from the repository root).
"""

from __future__ import annotations

import random
import struct
import sys
from functools import partial
from pathlib import Path

from scapy.all import ICMP, IP, TCP, UDP, Ether, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, Raw

__all__ = ["tunnel_uploads", "write_pcap", "main"]

HERE = Path(__file__).resolve().parent
START_NS = 1_715_680_800 * 10**9  # 2024-05-14 10:00:00 UTC
SNAPLEN = 128
GW_LOCAL, GW_REMOTE = "192.0.2.1", "198.51.100.1"  # outer tunnel endpoints
GW6_LOCAL, GW6_REMOTE = "2001:db8:ffff::1", "2001:db8:ffff::2"
CLIENTS = ("10.10.0.2", "10.10.0.3", "10.10.0.4")
SERVER = "10.20.0.5"
PING_TOS = (0x00, 0x10, 0x08)
MAC_LOCAL, MAC_REMOTE = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _eth(inner, up: bool = True) -> bytes:
    """An IPIP (4in4) / 6in4 frame on the outer link around ``inner()``; ``up`` = from the
    local gateway."""
    src, dst = (GW_LOCAL, GW_REMOTE) if up else (GW_REMOTE, GW_LOCAL)
    macs = dict(src=MAC_LOCAL, dst=MAC_REMOTE) if up else dict(src=MAC_REMOTE, dst=MAC_LOCAL)
    return bytes(Ether(**macs) / IP(src=src, dst=dst, id=0, ttl=64) / inner())


def _over6(inner) -> bytes:
    """A 4in6 / 6in6 frame between the IPv6 tunnel endpoints."""
    return bytes(Ether(src=MAC_LOCAL, dst=MAC_REMOTE) / IPv6(src=GW6_LOCAL, dst=GW6_REMOTE)
                 / inner())


def _segment(client, sport, tos, ident, seq):
    return _eth(lambda: IP(src=client, dst=SERVER, tos=tos, id=ident) / TCP(
        sport=sport, dport=22, flags="PA", seq=seq, ack=1, window=502) / Raw(b"\0" * 1448))


def _ack(client, sport, tos, seq):
    return _eth(lambda: IP(src=SERVER, dst=client, tos=tos) / TCP(
        sport=22, dport=sport, flags="A", seq=1, ack=seq, window=8000), up=False)


def _udp4(src, dst, tos, sport, dport, payload):
    return IP(src=src, dst=dst, tos=tos) / UDP(sport=sport, dport=dport) / Raw(payload)


def _udp6(port, payload):
    return IPv6(src="2001:db8:10::2", dst="2001:db8:20::5") / UDP(sport=port, dport=port) / Raw(
        payload)


def _icmp4(src, dst, tos, icmp_type, ident, seq, ttl):
    return IP(src=src, dst=dst, tos=tos, ttl=ttl, id=seq if icmp_type == 8 else 1) / ICMP(
        type=icmp_type, id=ident, seq=seq) / Raw(bytes(range(56)))


def _echo6(src, dst, request, seq):
    echo = ICMPv6EchoRequest if request else ICMPv6EchoReply
    return IPv6(src=src, dst=dst, tc=0x10) / echo(id=0x6464, seq=seq) / Raw(b"\0" * 32)


def tunnel_uploads(seed: int = 20240514, *, build: bool = True):
    """Return ``(frames, truth)``: ``frames`` sorted ``[(t_ns, bytes)]``; ``truth`` holds the
    crafted facts (every ping request with its reply time or None, the upload windows).

    With ``build=False`` the frames are zero-argument callables returning the bytes (scapy
    is slow; the timeline and the truth are cheap)."""
    rng = random.Random(seed)
    frames: list = []

    def add(t_s: float, frame) -> None:
        frames.append((START_NS + round(t_s * 1e9), frame))

    uploads = [(CLIENTS[0], 40022, 10.0, 28.0, 0x08), (CLIENTS[1], 40023, 14.0, 32.0, 0x00)]

    def loaded(t: float) -> int:
        return sum(a <= t < b for _, _, a, b, _ in uploads)

    # SCP-like uploads: 1448-byte segments to port 22, a delayed ACK every second segment.
    for client, sport, t_start, t_end, tos in uploads:
        t, seq, n = t_start, rng.randrange(1 << 31), 0
        while t < t_end:
            add(t, partial(_segment, client, sport, tos, n & 0xFFFF, seq))
            seq = (seq + 1448) & 0xFFFFFFFF
            n += 1
            if n % 2 == 0:
                add(t + 0.021 + rng.random() * 0.002, partial(_ack, client, sport, tos, seq))
            t += 0.024 + rng.random() * 0.006
    # A UDP stream (10 packets/s, 172-byte datagrams) for the whole capture.
    for k in range(400):
        t = 0.05 + k * 0.1 + rng.random() * 0.004
        add(t, partial(_eth, partial(_udp4, CLIENTS[1], SERVER, 0xB8, 5004, 5004,
                                     struct.pack("!I", k) + b"\0" * 168)))
    # Three ping streams, one per TOS, every 0.5 s; queueing delay while the uploads run.
    pings = []
    for s, tos in enumerate(PING_TOS):
        ident = 0x4000 + s
        for seq in range(1, 81):
            t = 0.2 + 0.5 * (seq - 1) + s * 0.013
            base = 0.020 + rng.random() * 0.002
            queue = 0.0 if tos == 0x10 else loaded(t) * (0.060 + rng.random() * 0.080)
            lost = loaded(t) and tos != 0x10 and rng.random() < 0.06
            add(t, partial(_eth, partial(_icmp4, CLIENTS[2], SERVER, tos, 8, ident, seq, 64)))
            reply_t = None
            if not lost:
                reply_t = t + base + queue
                add(reply_t, partial(_eth, partial(_icmp4, SERVER, CLIENTS[2], tos, 0, ident,
                                                   seq, 63), up=False))
            pings.append({"tos": tos, "id": ident, "seq": seq, "t": t, "reply_t": reply_t,
                          "size": 56, "host": SERVER, "version": 4})
    # A few packets of the other tunnel kinds.
    for k in range(12):  # IPv6 pings through a 6in4 tunnel
        t = 1.0 + 3.0 * k
        add(t, partial(_eth, partial(_echo6, "2001:db8:10::4", "2001:db8:20::5", True, k + 1)))
        add(t + 0.025, partial(_eth, partial(_echo6, "2001:db8:20::5", "2001:db8:10::4", False,
                                             k + 1), up=False))
        pings.append({"tos": 0x10, "id": 0x6464, "seq": k + 1, "t": t, "reply_t": t + 0.025,
                      "size": 32, "host": "2001:db8:20::5", "version": 6})
    for k in range(8):  # IPv4 over an IPv6 tunnel (4in6) and IPv6 over IPv6 (6in6)
        t = 2.5 + 4.5 * k
        add(t, partial(_over6, partial(_udp4, CLIENTS[0], SERVER, 0, 5353, 53, b"\0" * 24)))
        add(t + 0.5, partial(_over6, partial(_udp6, 443, b"\0" * 40)))
    frames.sort(key=lambda f: f[0])
    if build:
        frames = [(t, make()) for t, make in frames]
    return frames, {"pings": pings, "uploads": uploads}


def write_pcap(path: Path, frames, snaplen: int = SNAPLEN) -> None:
    """Write ``[(t_ns, frame)]`` as a little-endian microsecond pcap cut to ``snaplen``."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)]
    for t_ns, frame in frames:
        sec, ns = divmod(t_ns, 10**9)
        cap = frame[:snaplen]
        out.append(struct.pack("<IIII", sec, ns // 1000, len(cap), len(frame)) + cap)
    path.write_bytes(b"".join(out))


def main() -> int:
    frames, _ = tunnel_uploads()
    path = HERE / "captures" / "tunnel_uploads.pcap"
    path.parent.mkdir(exist_ok=True)
    write_pcap(path, frames)
    print(f"wrote {path} ({len(frames)} packets, {path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
