"""Frames held in memory (not in a capture file) → PACKETS, with the capture decoder.

A program that sees packets one by one — the userspace datapath reading a TUN device — gets
exactly the columns :func:`qoslab.read_capture` would give for the same bytes, because the
same vectorised stages decode them: the frames are laid end to end in one buffer and described
by a record batch, as a file's records are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._bytes import ByteSource
from .decode import decode_batch
from .frame import to_frame
from .linktypes import LINKTYPES
from .records import RecordBatch

__all__ = ["decode_frames", "LINKTYPE_RAW", "LINKTYPE_ETHERNET"]

#: Raw IPv4/IPv6 packets (what a TUN device without packet information hands out).
LINKTYPE_RAW = 101
#: Ethernet frames.
LINKTYPE_ETHERNET = 1


def decode_frames(frames: Sequence[bytes], *, linktype: int = LINKTYPE_RAW,
                  ts_ns: Sequence[int] | None = None, wire_len: Sequence[int] | None = None
                  ) -> pd.DataFrame:
    """The PACKETS rows of ``frames`` (bytes each), decoded as :func:`read_capture` decodes.

    Parameters
    ----------
    frames
        One bytes object per frame.
    linktype
        Their ``LINKTYPE_*`` (raw IP by default).
    ts_ns
        Time stamps in nanoseconds since the Unix epoch (default 0); ``t`` counts from the
        first.
    wire_len
        Original lengths (default: the lengths of ``frames``).

    Examples
    --------
    >>> import struct
    >>> ip = bytes([0x45, 0x10]) + struct.pack("!HHHBBH", 84, 1, 0x4000, 64, 1, 0) + \\
    ...     bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes([8, 0, 0, 0, 0x12, 0x34, 0, 1]) + \\
    ...     bytes(56)
    >>> row = decode_frames([ip]).iloc[0]
    >>> row["src"], row["dst"], int(row["proto"]), int(row["tos"]), int(row["icmp_id"])
    ('10.0.0.1', '10.0.0.2', 1, 16, 4660)
    """
    if linktype not in LINKTYPES:
        raise ValueError(f"linktype {linktype}: qoslab decodes {sorted(LINKTYPES)}")
    n = len(frames)
    lengths = np.fromiter((len(f) for f in frames), np.int64, n)
    offsets = np.zeros(n, np.int64)
    if n > 1:
        np.cumsum(lengths[:-1], out=offsets[1:])
    buf = np.frombuffer(b"".join(frames), np.uint8)
    stamps = np.zeros(n, np.int64) if ts_ns is None else np.asarray(ts_ns, np.int64)
    wire = lengths if wire_len is None else np.asarray(wire_len, np.int64)
    batch = RecordBatch(offsets, lengths.copy(), wire, stamps, np.zeros(n, np.int32),
                        np.full(n, linktype, np.int32))
    return to_frame(batch, decode_batch(ByteSource(buf), batch),
                    int(stamps[0]) if n else 0)
