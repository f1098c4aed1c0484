"""Capture files → the PACKETS table; flows and ICMP echo round trips found in it.

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
