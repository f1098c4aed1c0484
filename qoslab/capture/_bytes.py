"""Bounds-checked, vectorized gathering of header bytes from a capture buffer (private).

Every packet's headers are copied out as rows of a small ``(N, width)`` matrix with one
fancy-indexing operation on a sliding-window view of the file buffer (each row is a short
memcpy). Bytes past a packet's captured length read as zero, so a lying or cut header can never
make a decoder read the next record or past the end of the file.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["ByteSource", "be16", "be32"]


class ByteSource:
    """A read-only uint8 buffer (an mmap of the capture file) with row gathering."""

    def __init__(self, buf: np.ndarray):
        self.buf = buf
        self.size = len(buf)

    def rows(self, pos: np.ndarray, width: int, avail: np.ndarray) -> np.ndarray:
        """Return ``(len(pos), width)`` uint8: the bytes at ``pos``, zero past ``avail``.

        ``avail`` is how many bytes of the packet are captured from ``pos`` on (may be <= 0).
        """
        n = len(pos)
        size = self.size
        if n == 0:
            return np.zeros((0, width), np.uint8)
        if size >= width:
            window = as_strided(self.buf, shape=(size - width + 1, width), strides=(1, 1),
                                writeable=False)
            out = window[np.clip(pos, 0, size - width)]
            tail = np.flatnonzero(pos > size - width)
        else:
            out = np.zeros((n, width), np.uint8)
            tail = np.arange(n)
        if len(tail):
            idx = pos[tail, None] + np.arange(width)
            inside = (idx >= 0) & (idx < size)
            out[tail] = np.where(inside, self.buf[np.clip(idx, 0, max(size - 1, 0))], 0) \
                if size else 0
        short = np.flatnonzero(avail < width)
        if len(short):
            keep = np.arange(width) < avail[short, None]
            out[short] = np.where(keep, out[short], 0)
        return out


def be16(m: np.ndarray, col: int) -> np.ndarray:
    """Big-endian 16-bit field at column ``col`` of a row matrix (as int64)."""
    return (m[:, col].astype(np.int64) << 8) | m[:, col + 1]


def be32(m: np.ndarray, col: int) -> np.ndarray:
    """Big-endian 32-bit field at column ``col`` of a row matrix (as int64)."""
    return ((m[:, col].astype(np.int64) << 24) | (m[:, col + 1].astype(np.int64) << 16)
            | (m[:, col + 2].astype(np.int64) << 8) | m[:, col + 3])
