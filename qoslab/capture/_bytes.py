"""Bounds-checked, vectorized gathering of header bytes from a capture buffer (private).

Every packet's headers are copied out as rows of a small ``(N, width)`` matrix with one
fancy-indexing operation on a sliding-window view of the file buffer (each row is a short
memcpy). Bytes past a packet's captured length read as zero, so a lying or cut header can never
make a decoder read the next record or past the end of the file.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["ByteSource", "windows", "be16", "be32"]


class ByteSource:
    """A read-only uint8 buffer holding bytes ``[base, base + len(buf))`` of a capture file,
    with row gathering.

    Positions given to every method are *file* offsets. ``buf`` is either a view of the whole
    memory-mapped file (``base`` 0) or a window copied out of it (see :mod:`.source`); bytes
    outside the buffer read as zero. ``file_size`` is the size of the whole file, so a record
    running past ``end`` is cut only when ``end == file_size`` (else the next window holds it).
    """

    def __init__(self, buf: np.ndarray, base: int = 0, file_size: int | None = None):
        self.buf = buf
        self.base = int(base)
        self.size = self.base + len(buf)  #: file offset just past the buffer
        self.file_size = self.size if file_size is None else int(file_size)
        self.heads: np.ndarray | None = None
        self.head_slot: np.ndarray | None = None
        self.outer: ByteSource | None = None  # the source these heads were copied from

    @property
    def is_file_end(self) -> bool:
        """Does the buffer reach the end of the file?"""
        return self.size >= self.file_size

    def u32(self, off: int, order: str) -> int | None:
        """The u32 at file offset ``off`` (``None`` when it is not inside the buffer)."""
        rel = off - self.base
        if rel < 0 or rel + 4 > len(self.buf):
            return None
        return struct.unpack_from(order + "I", self.buf, rel)[0]

    def bytes_at(self, off: int, n: int) -> bytes:
        """Up to ``n`` bytes from file offset ``off`` (fewer at the end of the buffer)."""
        rel = max(off - self.base, 0)
        return bytes(self.buf[rel:rel + n])

    def with_heads(self, rows: np.ndarray, data_off: np.ndarray,
                   width: int = 64) -> ByteSource:
        """A source for the frames ``rows`` (at ``data_off``) with their first ``width``
        bytes copied once.

        Later :meth:`rows` calls that pass ``rows=`` and fall inside these heads read the
        small contiguous copy instead of the file: one scattered pass over the file per frame
        instead of one per header, which is what costs (cache and TLB misses). ``rows`` may
        be any increasing frame numbers (a tunnel's rows: ``data_off`` its payload); rows
        without a head read the file. The returned object is independent, so sub-batches can
        be decoded in parallel threads.
        """
        view = ByteSource(self.buf, self.base, self.file_size)
        view.heads = self.rows(data_off, width, rows=rows) if self.heads is not None \
            else self.rows(data_off, width)
        view.head_lo = int(rows[0]) if len(rows) else 0
        span = int(rows[-1]) - view.head_lo + 1 if len(rows) else 0
        view.head_slot = None
        if span != len(rows):  # not consecutive: a slot per frame number, -1 without a head
            view.head_slot = np.full(span, -1, np.int64)
            view.head_slot[rows - view.head_lo] = np.arange(len(rows))
        view.head_off = data_off
        view.head_w = width
        view.outer = self
        return view

    def rows(self, pos: np.ndarray, width: int, avail: np.ndarray | None = None, *,
             rows: np.ndarray | None = None) -> np.ndarray:
        """Return ``(len(pos), width)`` uint8: the bytes at ``pos`` (zero past the file end).

        Bytes past a packet's captured length (``avail`` bytes from ``pos``) belong to the
        next record: every decoder checks ``avail`` before it uses a field, so they are not
        cleared here (clearing costs a pass over every row).
        """
        n = len(pos)
        if n == 0:
            return np.zeros((0, width), np.uint8)
        if rows is not None and self.heads is not None and width <= self.head_w:
            local = rows - self.head_lo
            if self.head_slot is not None:
                known = (local >= 0) & (local < len(self.head_slot))
                local = np.where(known, self.head_slot[np.where(known, local, 0)], -1)
                if (local < 0).any():  # frames without a head here: the enclosing source
                    return self._rows_split(pos, width, rows, local)
            rel = pos - self.head_off[local]
            inside = (rel >= 0) & (rel <= self.head_w - width)
            window = windows(self.heads.reshape(-1), width)
            at = local * self.head_w + rel
            if inside.all():
                return _rows_of(window[at], width)
            out = np.empty((n, width), np.uint8)
            out[inside] = _rows_of(window[at[inside]], width)
            out[~inside] = self.outer.rows(pos[~inside], width, rows=rows[~inside]) \
                if self.outer is not None else self._file_rows(pos[~inside], width)
            return out
        return self._file_rows(pos, width)

    def _rows_split(self, pos, width, rows, local):
        have = local >= 0
        out = np.empty((len(pos), width), np.uint8)
        out[have] = self.rows(pos[have], width, rows=rows[have])
        out[~have] = self.outer.rows(pos[~have], width, rows=rows[~have])
        return out

    def _file_rows(self, pos: np.ndarray, width: int) -> np.ndarray:
        """The bytes at ``pos`` read from the buffer itself."""
        n = len(pos)
        size = len(self.buf)
        if self.base:
            pos = pos - self.base
        if size >= width:
            window = windows(self.buf, width)
            last = size - width
            if int(pos.max()) <= last and int(pos.min()) >= 0:
                return _rows_of(window[pos], width)
            out = _rows_of(window[np.clip(pos, 0, last)], width)
            tail = np.flatnonzero((pos > last) | (pos < 0))
        else:
            out = np.zeros((n, width), np.uint8)
            tail = np.arange(n)
        idx = pos[tail, None] + np.arange(width)
        inside = (idx >= 0) & (idx < size)
        out[tail] = np.where(inside, self.buf[np.clip(idx, 0, max(size - 1, 0))], 0) \
            if size else 0
        return out

    def records(self, pos: np.ndarray, dtype: np.dtype, *,
                rows: np.ndarray | None = None) -> np.ndarray:
        """The bytes at ``pos`` viewed as one structured ``dtype`` record each."""
        return self.rows(pos, dtype.itemsize, rows=rows).view(dtype).reshape(-1)


def windows(buf: np.ndarray, width: int) -> np.ndarray:
    """Every ``width``-byte window of the contiguous ``buf`` as one opaque item (read only).

    Gathering items of a ``V{width}`` view copies each window as one block, two to three
    times faster than gathering rows of a ``(size, width)`` strided uint8 view.
    """
    view = np.ndarray((max(len(buf) - width + 1, 0),), np.dtype((np.void, width)), buffer=buf,
                      strides=(1,))
    view.flags.writeable = False
    return view


def _rows_of(items: np.ndarray, width: int) -> np.ndarray:
    """Gathered ``V{width}`` items as a ``(n, width)`` uint8 matrix (no copy)."""
    return items.view(np.uint8).reshape(-1, width)


def be16(m: np.ndarray, col: int) -> np.ndarray:
    """Big-endian 16-bit field at column ``col`` of a row matrix (as int64)."""
    return (m[:, col].astype(np.int64) << 8) | m[:, col + 1]


def be32(m: np.ndarray, col: int) -> np.ndarray:
    """Big-endian 32-bit field at column ``col`` of a row matrix (as int64)."""
    return ((m[:, col].astype(np.int64) << 24) | (m[:, col + 1].astype(np.int64) << 16)
            | (m[:, col + 2].astype(np.int64) << 8) | m[:, col + 3])
