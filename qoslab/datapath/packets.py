"""Live packets → flows: which row of the flow table a packet belongs to, in microseconds.

The qdisc runtimes look up everything per flow (:class:`~qoslab.qdiscs.FlowTable`), so the
datapath only has to name each packet's flow. Two levels:

* **the decoder** — the first packet of a flow is decoded by qoslab's capture decoder
  (:func:`qoslab.capture.frames.decode_frames`: the same vectorised stages
  :func:`qoslab.read_capture` runs on a file), and its PACKETS row goes through the same
  :class:`~qoslab.replay.flows.FlowIndex` replay uses. So a packet's flow row on the datapath
  is, column for column, what ``read_capture`` gives for the same bytes, and hashing a capture
  of the datapath's input offline gives the buckets the datapath used. A new flow costs about
  10 ms of CPU this way (a third decoding, half the qdiscs' hashing of the new row, the rest
  pandas; its label is made at the end) — fine once per flow, far too slow per packet;
* **a byte key** — :func:`flow_key` cuts the header bytes that can change a flow row out of a
  packet (addresses, protocol, TOS / traffic class and flow label, ports or ICMP type, code and
  identifier, the same for a tunnelled header; never lengths, TTL, checksums, sequence
  numbers) and a dict maps that key to the flow id the decoder gave. A key may be more specific
  than a flow (two keys, one flow: harmless), never less. Packets the key does not describe
  exactly — IPv4 options, fragments, IPv6 extension headers, GRE, VXLAN / Geneve (UDP
  destination ports of :data:`qoslab.capture.tunnels.UDP_TUNNEL_PORTS`), nested tunnels,
  short or non-IP packets — get no key and are decoded every time.

This is not a second header parser: :func:`flow_key` never interprets a field, it only selects
bytes at fixed offsets of the common headers and gives up on everything else.
"""

from __future__ import annotations

from ..capture.frames import decode_frames
from ..capture.tunnels import UDP_TUNNEL_PORTS
from ..replay.flows import FlowIndex

__all__ = ["flow_key", "PacketFlows"]

_PORTED = frozenset({6, 17, 33, 132, 136})  # TCP UDP DCCP SCTP UDP-Lite: 4 bytes of ports
_ICMP = frozenset({1, 58})
_IPV6_EXT = frozenset({0, 43, 44, 60, 51, 50, 135, 139, 140, 253, 254})


def flow_key(pkt: bytes, depth: int = 0) -> bytes | None:
    """The bytes of ``pkt`` that decide its flow row, or ``None`` (decode it).

    Examples
    --------
    >>> import struct
    >>> def icmp(seq, ttl=64):
    ...     return bytes([0x45, 0]) + struct.pack("!HHHBBH", 84, seq, 0x4000, ttl, 1, 0) + \\
    ...         bytes([10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0x12, 0x34, 0xbe, 0xef]) + \\
    ...         struct.pack("!H", seq) + bytes(56)
    >>> flow_key(icmp(1)) == flow_key(icmp(2, ttl=63))   # sequence, TTL, checksum differ
    True
    >>> flow_key(icmp(1)[:22]) is None                   # too short to be sure
    True
    """
    n = len(pkt)
    if n < 28:
        return None
    v = pkt[0] >> 4
    if v == 4:
        if pkt[0] != 0x45 or pkt[6] & 0x3F or pkt[7]:  # options, MF or a fragment offset
            return None
        proto = pkt[9]
        head = b"4" + pkt[1:2] + pkt[9:10] + pkt[12:20]
        off = 20
    elif v == 6:
        if n < 48:
            return None
        proto = pkt[6]
        if proto in _IPV6_EXT:
            return None
        head = b"6" + pkt[0:4] + pkt[6:7] + pkt[8:40]
        off = 40
    else:
        return None
    if n < off + 8:
        return None
    if proto in _PORTED:
        if proto == 17 and int.from_bytes(pkt[off + 2:off + 4], "big") in UDP_TUNNEL_PORTS:
            return None  # VXLAN / Geneve: the decoder reads a whole inner packet
        return head + pkt[off:off + 4]
    if proto in _ICMP:
        return head + pkt[off:off + 2] + pkt[off + 4:off + 6]
    if proto in (4, 41) and depth == 0:
        inner = flow_key(pkt[off:], 1)
        return None if inner is None else head + b"|" + inner
    if proto in (4, 41, 47):  # nested, or GRE (its inner packet is decoded): decode it
        return None
    return head + pkt[off:off + 8]


class PacketFlows:
    """Flow ids of live packets (see the module docstring).

    Examples
    --------
    >>> import struct
    >>> tcp = bytes([0x45, 0x08]) + struct.pack("!HHHBBH", 60, 1, 0x4000, 64, 6, 0) + \\
    ...     bytes([10, 0, 0, 1, 10, 0, 9, 1]) + struct.pack("!HH", 40000, 22) + bytes(36)
    >>> flows = PacketFlows()
    >>> flows.fid(tcp), flows.fid(tcp), flows.index.labels
    (0, 0, ['tcp 10.0.0.1:40000 > 10.0.9.1:22 tos=0x08'])
    >>> flows.decoded
    1
    """

    def __init__(self, index: FlowIndex | None = None) -> None:
        self.index = index if index is not None else FlowIndex()
        self.cache: dict[bytes, int] = {}
        self.decoded = 0  #: packets that went through the decoder

    def fid(self, pkt: bytes) -> int:
        """The flow id of ``pkt``; a flow seen for the first time joins the flow table."""
        key = flow_key(pkt)
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        self.decoded += 1
        fid = int(self.index.fids(decode_frames([pkt]))[0])
        if key is not None:
            self.cache[key] = fid
        return fid
