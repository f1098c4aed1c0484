"""Load generators run inside a lab namespace: UDP constant-bit-rate floods and TCP bulk.

Run as ``ip netns exec NS python -m qoslab.lab.flood MODE …``; every mode has a bounded
``--duration``, prints one JSON line ``{"ready": …}`` when its socket is set up and one JSON
summary line when it ends (also on SIGTERM/SIGINT). Modes:

``udp-send``  CBR flood: ``--rate`` bits/s of IP packets of ``--size`` bytes with ``--tos``.
``udp-sink``  Counts datagrams arriving on ``--port``.
``tcp-send``  Bulk upload (one connection, as fast as the path allows) with ``--tos``.
``tcp-sink``  Accepts connections on ``--port`` and reads everything.

Sizes are IP packet lengths (what the qdisc queues, minus the link header): the UDP payload is
``size - 28`` (IPv4) or ``size - 48`` (IPv6).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import random
import re
import selectors
import signal
import socket
import sys
import time
from collections.abc import Sequence

__all__ = ["parse_rate", "main"]

SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: Socket buffer forced on flood sockets: queued packets stay charged to the sending socket
#: until the qdisc frees them, so a long queue (1000 packets) needs far more than the default.
BUFFER_BYTES = 16 * 1024 * 1024
_RATE = re.compile(r"^\s*([0-9.]+)\s*([kmg]?)(bit|bps)?\s*$", re.IGNORECASE)
_MULT = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_rate(rate: str | float | int) -> float:
    """Parse a rate in ``tc`` units to bits per second (``kbit`` = 1000 bit/s, ``bps`` = bytes/s).

    Examples
    --------
    >>> parse_rate("2mbit"), parse_rate("500kbit"), parse_rate(1e6), parse_rate("1mbps")
    (2000000.0, 500000.0, 1000000.0, 8000000.0)
    """
    if isinstance(rate, (int, float)):
        value = float(rate)
    else:
        m = _RATE.match(str(rate))
        if not m:
            raise ValueError(f"rate {rate!r}: expected a number with an optional kbit/mbit/gbit "
                             "(or kbps/mbps, bytes) unit, e.g. '4mbit'")
        value = float(m[1]) * _MULT[m[2].lower()] * (8 if (m[3] or "").lower() == "bps" else 1)
    if not value > 0:
        raise ValueError(f"rate {rate!r} must be positive")
    return value


class _Stop:
    def __init__(self) -> None:
        self.flag = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, *_: object) -> None:
        self.flag = True


def _family(addr: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def _set_tos(sock: socket.socket, family: int, tos: int) -> None:
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)


def _force_buffer(sock: socket.socket, opt_force: int, opt: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, opt_force, BUFFER_BYTES)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, opt, BUFFER_BYTES)


def _emit(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


def udp_send(dst: str, port: int, rate: float, size: int, tos: int, duration: float,
             prefill: int = 0, jitter: float = 0.0, seed: int | None = None) -> dict:
    """Send a constant-bit-rate UDP flood; return the summary dict.

    Packet ``k`` leaves at ``t0 + (k + u_k * jitter) * gap`` with ``u_k`` uniform in [0, 1):
    the mean rate is exact, and ``jitter`` > 0 keeps the flood from phase-locking with
    isochronous pings (which otherwise meet a full tail-drop queue at the same instant of
    every cycle and are all dropped, or all accepted). ``prefill`` packets go first, in quick
    chunks of 50 (1 ms apart, so the receiving CPU's backlog keeps up): they fill a bottleneck
    queue at once instead of at the small excess of ``rate`` over the bottleneck's rate."""
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter {jitter!r}: expected a fraction of the gap in [0, 1)")
    family = _family(dst)
    header = 48 if family == socket.AF_INET6 else 28
    if size < header + 1 or size > 65000:
        raise ValueError(f"size {size}: an IP packet of {header + 1}..65000 bytes is needed")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    _force_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF)
    _set_tos(sock, family, tos)
    sock.connect((dst, port))
    payload = bytearray(size - header)
    gap = size * 8 / rate
    rng = random.Random(seed)
    stop = _Stop()
    _emit({"ready": "udp-send", "dst": dst, "port": port})
    errors = 0
    burst = max(0, int(prefill))
    for i in range(burst):
        try:
            sock.send(payload)
        except OSError:
            errors += 1
        if i % 50 == 49:
            time.sleep(0.001)
    paced = 0
    total = int(duration / gap) + 1
    t0 = time.perf_counter()
    end = t0 + duration
    next_due = t0 + rng.random() * jitter * gap
    while not stop.flag and paced < total:
        now = time.perf_counter()
        if now >= end:
            break
        n = 0
        while next_due <= now and n < 256 and paced < total:
            payload[0:8] = paced.to_bytes(8, "big")
            try:
                sock.send(payload)
            except OSError:
                errors += 1
            paced += 1
            n += 1
            next_due = t0 + (paced + rng.random() * jitter) * gap
        delay = next_due - time.perf_counter()
        if delay > 0:
            time.sleep(max(0.0, min(delay, end - time.perf_counter(), 0.05)))
    elapsed = time.perf_counter() - t0
    sock.close()
    sent = burst + paced
    return {"mode": "udp-send", "sent": sent, "prefill": burst, "send_errors": errors,
            "bytes": sent * size, "seconds": elapsed,
            "rate_bps": paced * size * 8 / elapsed if elapsed else 0.0,
            "jitter": jitter, "size": size, "tos": tos, "dst": dst}


def udp_sink(port: int, duration: float, family: int) -> dict:
    """Count datagrams on ``port`` for ``duration`` seconds; return the summary."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    _force_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF)
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))  # noqa: S104 (inside the lab namespace)
    sock.settimeout(0.2)
    stop = _Stop()
    _emit({"ready": "udp-sink", "port": sock.getsockname()[1]})
    received = nbytes = 0
    first = last = None
    end = time.monotonic() + duration
    while not stop.flag and time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        now = time.monotonic()
        first = now if first is None else first
        last = now
        received += 1
        nbytes += len(data)
    sock.close()
    span = (last - first) if first is not None and last is not None else 0.0
    return {"mode": "udp-sink", "received": received, "payload_bytes": nbytes,
            "seconds": span, "payload_rate_bps": nbytes * 8 / span if span else 0.0}


def tcp_send(dst: str, port: int, tos: int, duration: float) -> dict:
    """Upload as fast as TCP allows for ``duration`` seconds; return the summary."""
    family = _family(dst)
    sock = socket.socket(family, socket.SOCK_STREAM)
    _set_tos(sock, family, tos)
    sock.settimeout(5.0)
    sock.connect((dst, port))
    sock.settimeout(0.5)
    stop = _Stop()
    _emit({"ready": "tcp-send", "dst": dst, "port": port})
    chunk = bytes(65536)
    sent = 0
    t0 = time.monotonic()
    while not stop.flag and time.monotonic() - t0 < duration:
        try:
            sent += sock.send(chunk)
        except TimeoutError:
            continue
        except OSError:
            break
    elapsed = time.monotonic() - t0
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    return {"mode": "tcp-send", "bytes": sent, "seconds": elapsed,
            "rate_bps": sent * 8 / elapsed if elapsed else 0.0, "tos": tos, "dst": dst}


def tcp_sink(port: int, duration: float, family: int) -> dict:
    """Accept connections on ``port`` and discard everything for ``duration`` seconds."""
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))  # noqa: S104 (inside the lab namespace)
    srv.listen(16)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    stop = _Stop()
    _emit({"ready": "tcp-sink", "port": srv.getsockname()[1]})
    nbytes = conns = 0
    first = last = None
    end = time.monotonic() + duration
    while not stop.flag and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            if key.fileobj is srv:
                conn, _addr = srv.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                conns += 1
                continue
            try:
                data = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            last = time.monotonic()
            first = last if first is None else first
            nbytes += len(data)
    span = (last - first) if first is not None and last is not None else 0.0
    return {"mode": "tcp-sink", "connections": conns, "bytes": nbytes, "seconds": span,
            "rate_bps": nbytes * 8 / span if span else 0.0}


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qoslab.lab.flood",
                                description="qoslab lab load generator (run inside a namespace)")
    p.add_argument("mode", choices=["udp-send", "udp-sink", "tcp-send", "tcp-sink"])
    p.add_argument("--dst", help="destination address (senders)")
    p.add_argument("--port", type=int, default=9)
    p.add_argument("--rate", default="4mbit", help="UDP rate, tc units (default 4mbit)")
    p.add_argument("--size", type=int, default=1000, help="IP packet bytes (default 1000)")
    p.add_argument("--tos", type=lambda s: int(s, 0), default=0)
    p.add_argument("--prefill", type=int, default=0, help="udp-send: packets sent at once first")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="udp-send: random offset of each packet, a fraction of the gap (0..1)")
    p.add_argument("--duration", type=float, required=True, help="seconds (bounded)")
    p.add_argument("-6", dest="ipv6", action="store_true", help="sinks: listen on IPv6")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m qoslab.lab.flood``."""
    args = _build_parser().parse_args(argv)
    if not 0 < args.duration <= 3600:
        print("--duration must be in (0, 3600] seconds", file=sys.stderr)
        return 2
    family = socket.AF_INET6 if args.ipv6 else socket.AF_INET
    try:
        if args.mode == "udp-send":
            doc = udp_send(args.dst, args.port, parse_rate(args.rate), args.size, args.tos,
                           args.duration, args.prefill, args.jitter)
        elif args.mode == "udp-sink":
            doc = udp_sink(args.port, args.duration, family)
        elif args.mode == "tcp-send":
            doc = tcp_send(args.dst, args.port, args.tos, args.duration)
        else:
            doc = tcp_sink(args.port, args.duration, family)
    except (OSError, ValueError) as exc:
        print(f"qoslab.lab.flood {args.mode}: {exc}", file=sys.stderr)
        return 1
    _emit(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
