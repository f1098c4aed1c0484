"""Capture files → the PACKETS table; flows, ICMP echo and TCP round trips found in it.

``read_capture`` / ``iter_capture`` read classic pcap (µs / ns, either byte order, the modified
24-byte-record variant) and pcapng (sections of either byte order, interfaces per section,
``if_tsresol``, ``if_tsoffset``; EPB, SPB, OPB: :mod:`.pcapng`), decode every frame with
numpy — no Python per packet — and return :data:`qoslab.schema.PACKETS`. How: files are
mapped under a read lease or read in windows (:mod:`.source`); record boundaries are found by
a lane-parallel chain walk proved against the sequential walk (:mod:`._walk`); each frame's
first bytes are copied once (:mod:`._bytes`); link, IP, extension-header, transport and tunnel
stages then work on whole columns (:mod:`.linktypes`, :mod:`.decode`, :mod:`.tunnels`). Cut
files and lying lengths end the walk with a :class:`CaptureWarning`; malformed headers are
flagged in ``problem``. :func:`echo_rtts` pairs pings (reassembled, tunnelled) and
:func:`tcp_rtts` gives TCP's ack RTTs, both as PROBES.

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
from .tcprtt import tcp_rtts
from .tunnels import TUNNEL_KINDS, UDP_TUNNEL_PORTS

__all__ = [
    "read_capture",
    "iter_capture",
    "concat_packets",
    "flows",
    "echo_rtts",
    "tcp_rtts",
    "CaptureWarning",
    "PROBLEMS",
    "TUNNELS",
    "TUNNEL_KINDS",
    "UDP_TUNNEL_PORTS",
]
