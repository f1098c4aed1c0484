"""ICMP and ICMPv6 echo sockets: raw when privileged, ICMP datagram ("ping") sockets otherwise.

Raw sockets (``CAP_NET_RAW``) see every ICMP packet the host receives, so each stream's socket
gets an ``ICMP_FILTER`` / ``ICMP6_FILTER`` for the types it needs and a classic-BPF program
accepting only echo replies carrying its own identifier (and ICMP errors, whose quoted header is
checked here), as iputils ``ping`` does. Datagram sockets (``socket(AF_INET, SOCK_DGRAM,
IPPROTO_ICMP)``, allowed when the caller's group is inside ``net.ipv4.ping_group_range``) get
only their own replies; ICMP errors arrive on the error queue (``IP_RECVERR``).

Every socket sets the TOS byte (``IP_TOS`` / ``IPV6_TCLASS``) and ``SO_TIMESTAMPNS``, so the
receive time of a reply is the kernel's, taken when the packet arrived, not when Python got to
it. The send time is read from ``CLOCK_REALTIME`` immediately before ``sendto``, as iputils
does; RTT is their difference.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass

from ..errors import BackendUnavailableError

__all__ = ["SOCKET_KINDS", "ProbeSocket", "Reply", "echo_request", "checksum",
           "socket_kind_status", "parse_raw4", "parse_raw6", "parse_dgram"]

#: Socket back-ends, in the order ``backend="auto"`` tries them.
SOCKET_KINDS = ("raw", "dgram")

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_ATTACH_FILTER = 26
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
IP_TTL_CMSG = 2
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

ECHO_REPLY4, ECHO_REQUEST4 = 0, 8
ECHO_REQUEST6, ECHO_REPLY6 = 128, 129
#: ICMP error types -> the PROBES status they give a probe (RFC 792 / RFC 4443).
ERROR_STATUS4 = {3: "unreachable", 11: "time_exceeded", 12: "error", 4: "error", 5: "error"}
ERROR_STATUS6 = {1: "unreachable", 3: "time_exceeded", 2: "error", 4: "error"}
_UNREACH4 = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable",
             3: "port unreachable", 4: "fragmentation needed", 9: "net prohibited",
             10: "host prohibited", 13: "communication prohibited"}
_UNREACH6 = {0: "no route", 1: "administratively prohibited", 3: "address unreachable",
             4: "port unreachable", 5: "source address failed policy", 6: "reject route"}
_ANC_SIZE = 512
_TIMESPEC = struct.Struct("@qq")


@dataclass
class Reply:
    """One ICMP message received for a stream."""

    kind: str  # "reply" or one of ERROR_STATUS values
    seq: int  # 16-bit ICMP sequence number
    rx_ns: int  # CLOCK_REALTIME receive time (kernel timestamp when available)
    ttl: int | None = None
    size: int | None = None  # ICMP payload bytes in the reply
    head: bytes = b""  # the first 16 payload bytes (the engine's probe index and run nonce)
    detail: str = ""  # for errors: what and from whom


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum.

    >>> hex(checksum(bytes.fromhex("0800000012340001")))
    '0xe5ca'
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """Build an ICMP (or ICMPv6) echo request; the ICMPv6 checksum is left to the kernel.

    >>> echo_request(socket.AF_INET, 0x1234, 1, b"").hex()
    '0800e5ca12340001'
    """
    icmp_type = ECHO_REQUEST6 if family == socket.AF_INET6 else ECHO_REQUEST4
    header = struct.pack("!BBHHH", icmp_type, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if family == socket.AF_INET6:
        return header + payload
    csum = checksum(header + payload)
    return header[:2] + struct.pack("!H", csum) + header[4:] + payload


def _bpf(program: list[tuple[int, int, int, int]]) -> bytes:
    return b"".join(struct.pack("HBBI", *insn) for insn in program)


# classic BPF opcodes
_LDX_B_MSH, _LD_B_IND, _LD_H_IND = 0xB1, 0x50, 0x48
_LD_B_ABS, _LD_H_ABS, _JEQ_K, _RET_K = 0x30, 0x28, 0x15, 0x06


def _filter4(ident: int) -> bytes:
    """Accept echo replies with our identifier and every ICMP error; drop other echoes."""
    return _bpf([
        (_LDX_B_MSH, 0, 0, 0),  # X = IP header length
        (_LD_B_IND, 0, 0, 0),  # A = ICMP type
        (_JEQ_K, 0, 3, ECHO_REPLY4),
        (_LD_H_IND, 0, 0, 4),  # A = identifier
        (_JEQ_K, 3, 0, ident),
        (_RET_K, 0, 0, 0),
        (_JEQ_K, 0, 1, ECHO_REQUEST4),
        (_RET_K, 0, 0, 0),
        (_RET_K, 0, 0, 0x40000),
    ])


def _filter6(ident: int) -> bytes:
    return _bpf([
        (_LD_B_ABS, 0, 0, 0),
        (_JEQ_K, 0, 3, ECHO_REPLY6),
        (_LD_H_ABS, 0, 0, 4),
        (_JEQ_K, 3, 0, ident),
        (_RET_K, 0, 0, 0),
        (_JEQ_K, 0, 1, ECHO_REQUEST6),
        (_RET_K, 0, 0, 0),
        (_RET_K, 0, 0, 0x40000),
    ])


def _attach(sock: socket.socket, program: bytes) -> None:
    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _icmp6_filter(passed: tuple[int, ...]) -> bytes:
    words = [0xFFFFFFFF] * 8  # a set bit blocks the type
    for t in passed:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return struct.pack("8I", *words)


class ProbeSocket:
    """One non-blocking echo socket for one stream.

    Parameters
    ----------
    kind
        ``"raw"`` or ``"dgram"``.
    family
        ``socket.AF_INET`` or ``socket.AF_INET6``.
    tos
        TOS / traffic-class byte for every probe.
    ident
        ICMP identifier for raw sockets (datagram sockets get theirs from the kernel).

    Raises
    ------
    BackendUnavailableError
        When the kernel refuses the socket (no permission, no ICMP datagram support).
    """

    def __init__(self, kind: str, family: int, tos: int, ident: int = 0) -> None:
        self.kind, self.family = kind, family
        v6 = family == socket.AF_INET6
        proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
        stype = socket.SOCK_RAW if kind == "raw" else socket.SOCK_DGRAM
        try:
            sock = socket.socket(family, stype, proto)
        except OSError as exc:
            raise BackendUnavailableError(_refusal(kind, family, exc)) from None
        self.sock = sock
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, tos)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            if kind == "raw":
                self.ident = ident & 0xFFFF
                if v6:
                    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER,
                                    _icmp6_filter((ECHO_REPLY6, *ERROR_STATUS6)))
                    _attach(sock, _filter6(self.ident))
                else:
                    blocked = ~sum(1 << t for t in (ECHO_REPLY4, *ERROR_STATUS4)) & 0xFFFFFFFF
                    sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", blocked))
                    _attach(sock, _filter4(self.ident))
            else:
                sock.setsockopt(socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP,
                                IPV6_RECVERR if v6 else IP_RECVERR, 1)
                sock.bind(("::", 0) if v6 else ("0.0.0.0", 0))  # noqa: S104 - picks the ICMP id
                self.ident = sock.getsockname()[1] & 0xFFFF
        except OSError as exc:
            sock.close()
            raise BackendUnavailableError(f"{kind} ICMP socket: setting it up failed: {exc}") \
                from None

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, address: str, seq: int, payload: bytes) -> int:
        """Send one echo request; return the CLOCK_REALTIME ns read just before ``sendto``.

        Raises ``OSError`` as ``sendto`` does (the engine records it per probe).
        """
        packet = echo_request(self.family, self.ident, seq, payload)
        now = time.time_ns()
        self.sock.sendto(packet, (address, 0))
        return now

    def receive(self) -> list[Reply]:
        """Read every message waiting (replies and queued errors) without blocking."""
        out: list[Reply] = []
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65536, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # a pending ICMP error (IP_RECVERR): read it from the error queue
                if not self._read_errqueue(out):
                    break
                continue
            rx_ns, ttl = _ancillary(anc)
            if self.kind == "raw" and self.family == socket.AF_INET:
                rep = parse_raw4(data, self.ident)
            elif self.kind == "raw":
                rep = parse_raw6(data, self.ident, addr[0] if addr else "?")
            else:
                rep = parse_dgram(data, self.family)
            if rep is None:
                continue
            rep.rx_ns = rx_ns or time.time_ns()
            if rep.ttl is None:
                rep.ttl = ttl
            out.append(rep)
        if self.kind == "dgram":
            self._read_errqueue(out)
        return out

    def _read_errqueue(self, out: list[Reply]) -> bool:
        got = False
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, _ANC_SIZE, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError:
                return got
            got = True
            rep = _queued_error(data, anc, self.family)
            if rep is not None:
                out.append(rep)


def _ancillary(anc) -> tuple[int | None, int | None]:
    rx_ns = ttl = None
    for level, ctype, cdata in anc:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = _TIMESPEC.unpack_from(cdata)
            rx_ns = sec * 1_000_000_000 + nsec
        elif (level == socket.IPPROTO_IP and ctype == IP_TTL_CMSG) or (
                level == socket.IPPROTO_IPV6 and ctype == IPV6_HOPLIMIT):
            ttl = struct.unpack("i", cdata[:4])[0]
    return rx_ns, ttl


def parse_raw4(data: bytes, ident: int) -> Reply | None:
    """Parse what a raw IPv4 ICMP socket read (IP header first).

    >>> ip = bytes.fromhex("4500001c000000004001" "0000" "7f000001" "7f000001")
    >>> r = parse_raw4(ip + bytes.fromhex("0000000012340007"), 0x1234)
    >>> r.kind, r.seq, r.ttl
    ('reply', 7, 64)
    """
    if len(data) < 20:
        return None
    ihl = (data[0] & 0x0F) * 4
    icmp = data[ihl:]
    if len(icmp) < 8:
        return None
    itype, code = icmp[0], icmp[1]
    if itype == ECHO_REPLY4:
        rid, seq = struct.unpack_from("!HH", icmp, 4)
        if rid != ident:
            return None
        return Reply("reply", seq, 0, ttl=data[8], size=len(icmp) - 8, head=icmp[8:24])
    status = ERROR_STATUS4.get(itype)
    inner = icmp[8:]
    if status is None or len(inner) < 20:
        return None
    iihl = (inner[0] & 0x0F) * 4
    quoted = inner[iihl:]
    if inner[9] != socket.IPPROTO_ICMP or len(quoted) < 8 or quoted[0] != ECHO_REQUEST4:
        return None
    qid, qseq = struct.unpack_from("!HH", quoted, 4)
    if qid != ident:
        return None
    src = socket.inet_ntop(socket.AF_INET, data[12:16])
    return Reply(status, qseq, 0, ttl=data[8], detail=_describe4(itype, code, src))


def parse_raw6(data: bytes, ident: int, src: str) -> Reply | None:
    """Parse what a raw ICMPv6 socket read (ICMPv6 header first)."""
    if len(data) < 8:
        return None
    itype, code = data[0], data[1]
    if itype == ECHO_REPLY6:
        rid, seq = struct.unpack_from("!HH", data, 4)
        return (Reply("reply", seq, 0, size=len(data) - 8, head=data[8:24]) if rid == ident
                else None)
    status = ERROR_STATUS6.get(itype)
    inner = data[8:]
    if status is None or len(inner) < 48 or inner[6] != socket.IPPROTO_ICMPV6:
        return None
    quoted = inner[40:]
    if quoted[0] != ECHO_REQUEST6:
        return None
    qid, qseq = struct.unpack_from("!HH", quoted, 4)
    if qid != ident:
        return None
    return Reply(status, qseq, 0, detail=_describe6(itype, code, src))


def parse_dgram(data: bytes, family: int) -> Reply | None:
    """Parse what an ICMP datagram socket read (ICMP header first, our replies only)."""
    if len(data) < 8:
        return None
    want = ECHO_REPLY6 if family == socket.AF_INET6 else ECHO_REPLY4
    if data[0] != want:
        return None
    return Reply("reply", struct.unpack_from("!H", data, 6)[0], 0, size=len(data) - 8,
                 head=data[8:24])


_EXT_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err


def _queued_error(data: bytes, anc, family: int) -> Reply | None:
    """An ``IP_RECVERR`` error-queue message: the quoted request and what went wrong."""
    rx_ns, _ = _ancillary(anc)
    for level, ctype, cdata in anc:
        if (level, ctype) not in ((socket.IPPROTO_IP, IP_RECVERR),
                                  (socket.IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        if len(cdata) < _EXT_ERR.size or len(data) < 8:
            return None
        ee_errno, origin, etype, code, _pad, _info, _data = _EXT_ERR.unpack_from(cdata)
        seq = struct.unpack_from("!H", data, 6)[0]
        src = "?"
        off = cdata[_EXT_ERR.size:]
        if len(off) >= 8 and struct.unpack_from("=H", off)[0] == socket.AF_INET:
            src = socket.inet_ntop(socket.AF_INET, off[4:8])
        elif len(off) >= 24 and struct.unpack_from("=H", off)[0] == socket.AF_INET6:
            src = socket.inet_ntop(socket.AF_INET6, off[8:24])
        if origin == 2:  # SO_EE_ORIGIN_ICMP
            status, detail = ERROR_STATUS4.get(etype, "error"), _describe4(etype, code, src)
        elif origin == 3:  # SO_EE_ORIGIN_ICMP6
            status, detail = ERROR_STATUS6.get(etype, "error"), _describe6(etype, code, src)
        else:
            status, detail = "error", os.strerror(ee_errno)
        return Reply(status, seq, rx_ns or time.time_ns(), detail=detail)
    return None


def _describe4(itype: int, code: int, src: str) -> str:
    if itype == 3:
        what = _UNREACH4.get(code, f"destination unreachable (code {code})")
    elif itype == 11:
        what = "time to live exceeded" if code == 0 else "fragment reassembly time exceeded"
    else:
        what = f"ICMP type {itype} code {code}"
    return f"{what} from {src}"


def _describe6(itype: int, code: int, src: str) -> str:
    if itype == 1:
        what = _UNREACH6.get(code, f"destination unreachable (code {code})")
    elif itype == 3:
        what = "hop limit exceeded" if code == 0 else "fragment reassembly time exceeded"
    elif itype == 2:
        what = "packet too big"
    else:
        what = f"ICMPv6 type {itype} code {code}"
    return f"{what} from {src}"


def _refusal(kind: str, family: int, exc: OSError) -> str:
    v = "ICMPv6" if family == socket.AF_INET6 else "ICMP"
    if kind == "raw" and exc.errno in (errno.EPERM, errno.EACCES):
        return f"raw {v} sockets need root or CAP_NET_RAW ({exc.strerror})"
    if kind == "dgram" and exc.errno in (errno.EPERM, errno.EACCES):
        return (f"{v} datagram sockets are not allowed for group {os.getgid()}: "
                "net.ipv4.ping_group_range does not include it")
    if exc.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT, errno.ESOCKTNOSUPPORT):
        return f"{kind} {v} sockets are not supported by this kernel ({exc.strerror})"
    return f"{kind} {v} socket: {exc}"


def socket_kind_status(kind: str, family: int = socket.AF_INET) -> str | None:
    """Return ``None`` when a ``kind`` socket can be opened for ``family``, else why not.

    >>> socket_kind_status("nonsense") is not None
    True
    """
    if kind not in SOCKET_KINDS:
        return f"unknown socket kind {kind!r}"
    try:
        ProbeSocket(kind, family, 0, ident=1).close()
    except BackendUnavailableError as exc:
        return str(exc)
    return None
