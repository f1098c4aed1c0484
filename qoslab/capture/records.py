"""Record batches: where each captured frame lies in the file, and its per-record metadata.

Both file formats (:mod:`.pcap`, :mod:`.pcapng`) produce :class:`RecordBatch` objects; the
header decoder (:mod:`.decode`) only ever sees these arrays and the file buffer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RecordBatch", "CaptureWarning", "warn_capture", "MAX_RECORD_LEN"]

#: Largest captured length accepted for one record. libpcap's MAXIMUM_SNAPLEN is 262144; pcapng
#: writers use the same bound. A larger length field is treated as lying: reading stops there.
MAX_RECORD_LEN = 262_144


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
    ts_ns: np.ndarray  #: int64 nanoseconds since the Unix epoch
    ifindex: np.ndarray  #: int32 interface id
    linktype: np.ndarray  #: int32 LINKTYPE_* of the frame

    def __len__(self) -> int:
        return len(self.data_off)

    def take(self, sl: slice) -> RecordBatch:
        """Return the records in ``sl``."""
        return RecordBatch(*(getattr(self, f)[sl] for f in
                             ("data_off", "cap_len", "wire_len", "ts_ns", "ifindex", "linktype")))

    @staticmethod
    def concat(batches: list[RecordBatch]) -> RecordBatch:
        """Concatenate batches in order."""
        if len(batches) == 1:
            return batches[0]
        return RecordBatch(*(np.concatenate([getattr(b, f) for b in batches]) for f in
                             ("data_off", "cap_len", "wire_len", "ts_ns", "ifindex", "linktype")))
