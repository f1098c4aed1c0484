"""A scripted ICMP echo responder for tests (run inside a lab namespace, as root).

The kernel's own echo replies are turned off in that namespace; this answers each request
according to its sequence number, so the engine sees every case a real network produces:
1 normal, 2 duplicated, 3 held back and sent after 4 (reordered), 5 delayed 0.6 s (late),
6 dropped (lost), 7 and later normal. Usage: ``python ping_responder.py SECONDS``.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

from qoslab.ping.sockets import checksum


def main() -> None:
    stop = time.monotonic() + float(sys.argv[1])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(0.2)
    held: dict[tuple[str, int], bytes] = {}

    def send(reply: bytes, dst: str) -> None:
        sock.sendto(reply, (dst, 0))

    print("ready", flush=True)
    while time.monotonic() < stop:
        try:
            data, (src, _) = sock.recvfrom(65536)
        except TimeoutError:
            continue
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if icmp[0] != 8:
            continue
        ident, seq = struct.unpack_from("!HH", icmp, 4)
        body = b"\0\0\0\0" + icmp[4:]
        reply = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        if seq == 2:
            send(reply, src)
            send(reply, src)
        elif seq == 3:
            held[(src, ident)] = reply
        elif seq == 4:
            send(reply, src)
            if (src, ident) in held:
                send(held.pop((src, ident)), src)
        elif seq == 5:
            threading.Timer(0.6, send, (reply, src)).start()
        elif seq == 6:
            pass
        else:
            send(reply, src)


if __name__ == "__main__":
    main()
