"""Record batches: where each captured frame lies in the file, and its per-record metadata.

Both file formats (:mod:`.pcap`, :mod:`.pcapng`) produce :class:`RecordBatch` objects; the
header decoder (:mod:`.decode`) only ever sees these arrays and the file buffer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["RecordBatch", "CaptureWarning", "warn_capture", "MAX_RECORD_LEN", "MAX_ANY_RECORD",
           "PROBLEMS", "problem_code"]

#: Largest captured length accepted for one record. libpcap's MAXIMUM_SNAPLEN is 262144; pcapng
#: writers use the same bound. A larger length field is treated as lying: reading stops there.
MAX_RECORD_LEN = 262_144
#: A pcap file header may announce a larger snap length; it is trusted up to this many bytes.
MAX_ANY_RECORD = 64 << 20

#: Values of the ``problem`` column ("" = clean). A row shows the first problem found, in this
#: order: the record itself (its interface), the link layer, the headers from the outside in,
#: and last the time stamp (a clean row without a usable time stamp).
PROBLEMS: tuple[str, ...] = (
    "",
    "unknown_interface",  # pcapng packet names an interface not described before it
    "cap_len_exceeds_wire_len",  # more bytes captured than the record's original length says
    # (Wireshark: "Frame length is less than captured length"); both lengths read as the file
    # states them, every captured byte is decoded (the frame ends at the larger of the two)
    "unsupported_link",  # a link type qoslab does not decode
    "truncated",  # a header is cut by the snap length
    "too_many_vlan_tags",  # more VLAN tags than qoslab.capture.linktypes.MAX_VLAN_TAGS
    "bad_ip_header",  # IPv4/IPv6 header: version, header length, total / payload length
    # (under the header, or past the frame), an option of an impossible length
    "bad_ext_header",  # IPv6 extension header: past the payload, hop-by-hop not first, a loop
    "bad_transport_header",  # TCP/UDP/ICMP/... (either level): the header does not fit in the
    # IP payload, TCP data offset under 20 bytes or past the segment, a TCP option of an
    # impossible length, UDP length under 8 or past the IP payload
    "bad_tunnel_header",  # a GRE header of an unknown version or with source routes: not opened
    "bad_inner_ip_header",
    "nested_tunnel",  # a tunnel inside the tunnel: inner_* describe its outer header
    "no_timestamp",  # pcapng Simple Packet Block: time is NaT, t NaN
    "bad_timestamp",  # time stamp outside 1677-2262 (NaT), its interface's resolution unusable,
    # or (classic pcap) a fraction of a second or more in the micro/nanoseconds field
)


def problem_code(name: str) -> int:
    """The int8 code of a ``problem`` value.

    >>> PROBLEMS[problem_code("truncated")]
    'truncated'
    """
    return PROBLEMS.index(name)


class CaptureWarning(UserWarning):
    """A capture was cut mid-record or a record length lied; the records before it are kept."""


def warn_capture(path: str, message: str) -> None:
    """Issue a :class:`CaptureWarning` naming the file."""
    warnings.warn(f"{path}: {message}", CaptureWarning, stacklevel=4)


@dataclass
class RecordBatch:
    """Per-record arrays of one batch of frames (all of equal length)."""

    data_off: np.ndarray  #: int64 file offset of the frame's first byte
    cap_len: np.ndarray  #: int64 captured bytes
    wire_len: np.ndarray  #: int64 original length
    ts_ns: np.ndarray  #: int64 nanoseconds since the Unix epoch (NaT value when unknown)
    ifindex: np.ndarray  #: int32 interface id (within its pcapng section)
    linktype: np.ndarray  #: int32 LINKTYPE_* of the frame (-1: unknown interface)
    section: np.ndarray | None = None  #: int32 pcapng section number (None: all 0)
    flag: np.ndarray | None = None  #: int8 record problem (:func:`problem_code`; None: none)
    #: int8 bytes of Ethernet frame check sequence ending the frame (pcapng if_fcslen; None: 0)
    fcs: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.data_off)
        if self.section is None:
            self.section = np.zeros(n, np.int32)
        if self.flag is None:
            self.flag = np.zeros(n, np.int8)
        if self.fcs is None:
            self.fcs = np.zeros(n, np.int8)

    def __len__(self) -> int:
        return len(self.data_off)

    def take(self, sl: slice) -> RecordBatch:
        """Return the records in ``sl``."""
        return RecordBatch(*(getattr(self, f.name)[sl] for f in fields(self)))

    @staticmethod
    def concat(batches: list[RecordBatch]) -> RecordBatch:
        """Concatenate batches in order."""
        if len(batches) == 1:
            return batches[0]
        return RecordBatch(*(np.concatenate([getattr(b, f.name) for b in batches])
                             for f in fields(RecordBatch)))
