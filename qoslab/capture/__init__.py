"""Capture files → the PACKETS table; flows and ICMP echo round trips found in it.

``read_capture`` / ``iter_capture`` read classic pcap (µs / ns, either byte order, the modified
24-byte-record variant) and pcapng (several sections and interfaces, ``if_tsresol``,
``if_tsoffset``; EPB, SPB, OPB), decode every frame with numpy — no Python per packet — and
return :data:`qoslab.schema.PACKETS`. How: record boundaries are found by a lane-parallel chain
walk proved against the sequential walk (:mod:`._walk`); each frame's first bytes are copied
once (:mod:`._bytes`); link, IP, extension-header, transport and IP-in-IP stages then work on
whole columns (:mod:`.linktypes`, :mod:`.decode`). Cut files and lying lengths end the walk
with a :class:`CaptureWarning`; malformed headers are flagged in ``problem``.

>>> from qoslab import data_path
>>> from qoslab.capture import read_capture, flows
>>> packets = read_capture(data_path("captures/tunnel_uploads.pcap"))
>>> int((packets["problem"] == "").sum()) == len(packets)
True
"""

from .decode import PROBLEMS, TUNNELS
from .echo import echo_rtts
from .flows import flows
from .reader import concat_packets, iter_capture, read_capture
from .records import CaptureWarning

__all__ = [
    "read_capture",
    "iter_capture",
    "concat_packets",
    "flows",
    "echo_rtts",
    "CaptureWarning",
    "PROBLEMS",
    "TUNNELS",
]
