"""A pcap writer for the packets the datapath sees (nanosecond time stamps, Ethernet frames).

Packets from a TUN device have no link header; the datapath's capture gives each one an
Ethernet header (zero addresses, the IP EtherType) so the file's ``wire_len`` is ``skb->len``
— the bytes the qdisc accounted — and :func:`qoslab.read_capture` and Wireshark read it like a
capture taken on an Ethernet interface.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

__all__ = ["PcapWriter", "ETH_HEADER"]

#: A frame's Ethernet header: zero MAC addresses, then the EtherType.
_ETH = {4: bytes(12) + b"\x08\x00", 6: bytes(12) + b"\x86\xdd"}
ETH_HEADER = 14
_MAGIC_NS = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1


class PcapWriter:
    """Append packets to an open binary file as a nanosecond pcap (see the module docstring).

    Examples
    --------
    >>> import io
    >>> buf = io.BytesIO()
    >>> w = PcapWriter(buf)
    >>> w.write(bytes([0x45]) + bytes(19), 1_700_000_000_123_456_789)
    >>> len(buf.getvalue())      # file header + record header + 14 + 20 bytes
    74
    """

    def __init__(self, fh: BinaryIO, snaplen: int = 65535) -> None:
        self.fh = fh
        self.snaplen = snaplen
        fh.write(struct.pack("<IHHiIII", _MAGIC_NS, 2, 4, 0, 0, snaplen, _LINKTYPE_ETHERNET))

    def write(self, packet: bytes, ts_ns: int) -> None:
        """One IP packet, time-stamped ``ts_ns`` (ns since the Unix epoch)."""
        frame = _ETH.get(packet[0] >> 4, bytes(12) + b"\x00\x00") + packet
        cut = frame[:self.snaplen]
        sec, ns = divmod(ts_ns, 1_000_000_000)
        self.fh.write(struct.pack("<IIII", sec, ns, len(cut), len(frame)))
        self.fh.write(cut)

    def flush(self) -> None:
        self.fh.flush()
