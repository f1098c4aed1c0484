"""Opening a capture file safely: its size read once, its bytes mapped or copied in windows.

A memory map is the fastest way to read a capture, but if another process truncates the file
while it is mapped, touching a page past the new end kills the reader with SIGBUS. So a file
is only mapped while qoslab holds a Linux *read lease* on it (``fcntl(F_SETLEASE,
F_RDLCK)``):

* the lease is granted only when no process has the file open for writing, so a capture that
  ``tcpdump -w`` is still writing is never mapped;
* while the lease is held, a process that opens the file for writing or truncates it *waits*
  (at most ``/proc/sys/fs/lease-break-time`` seconds, 45 by default) and the lease is marked
  as breaking. The lease is polled before every window is walked and before every chunk is
  decoded (:meth:`CaptureSource.secure`); once it breaks, qoslab releases it and reads
  everything still to decode with ``pread`` into a private buffer
  (:meth:`CaptureSource.degrade`). Only a chunk already being decoded when a writer has
  waited the whole lease-break time could still meet a truncated map.

Without a lease (another owner's file without CAP_LEASE, a file system without leases, a file
being written, a thread other than the main one when SIGIO is not yet handled) the file is read
with ``pread`` in windows of :data:`READ_WINDOW` bytes from the start. ``pread`` never faults:
a file cut while it is being read just ends early, which the readers report as a cut capture
(:class:`~qoslab.capture.CaptureWarning`). The size is read once when the file is opened;
bytes appended later are not read.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import signal
import stat
import threading

import numpy as np

from ..errors import CaptureFormatError
from ._bytes import ByteSource

__all__ = ["CaptureSource", "READ_WINDOW", "ACCESS_MODES"]

#: Bytes copied per window when the file is read rather than mapped.
READ_WINDOW = 256 << 20
#: How files may be accessed: ``"auto"`` maps a file under a read lease and reads it
#: otherwise; ``"read"`` always reads (never maps).
ACCESS_MODES = ("auto", "read")
_ACCESS = "auto"  # tests switch this to "read" to run every reader through pread windows


def _noop_handler(signum, frame) -> None:  # a lease break is polled, not signalled
    return None


def _sigio_ready() -> bool:
    """Can a lease be taken without its break signal (SIGIO) killing the process?"""
    current = signal.getsignal(signal.SIGIO)
    if current is _noop_handler or current == signal.SIG_IGN:
        return True
    if current == signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGIO, _noop_handler)
        return True
    return False  # someone else's handler, or not settable from this thread


class CaptureSource:
    """An open capture file: size read once; bytes through a lease-protected map or pread.

    Parameters
    ----------
    path
        The file. It must be a regular file (a FIFO, device or directory is refused: it could
        be read forever).

    Raises
    ------
    CaptureFormatError
        When the file is empty or not a regular file.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(self._fd)
            if not stat.S_ISREG(st.st_mode):
                raise CaptureFormatError(f"{path}: not a regular file, expected a pcap or "
                                         "pcapng capture")
            self.size = st.st_size
            if self.size == 0:
                raise CaptureFormatError(f"{path}: empty file, expected a pcap or pcapng "
                                         "capture")
        except BaseException:
            os.close(self._fd)
            raise
        self.shrunk = False  #: the file turned out shorter than its size at opening
        self.dropped = 0  #: records walked before the file shrank, no longer in it
        self.degraded = False  #: a writer broke the lease: the rest was read, not mapped
        self._mmap = None
        self._whole: ByteSource | None = None
        self._buffer: np.ndarray | None = None
        self._last: ByteSource | None = None
        if _ACCESS == "auto" and self._lease():
            try:
                self._mmap = mmap.mmap(self._fd, self.size, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._unlease()
            else:
                self._whole = ByteSource(np.frombuffer(self._mmap, np.uint8), 0, self.size)
                self._whole.mapped = True

    @property
    def mapped(self) -> bool:
        """Is the file read through the memory map (under a lease)?"""
        return self._whole is not None

    def _lease(self) -> bool:
        if not hasattr(fcntl, "F_SETLEASE") or not _sigio_ready():
            return False
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError:  # a writer has it open, not our file, or no leases on this fs
            return False
        return True

    def _unlease(self) -> None:
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        except OSError:
            pass

    def breaking(self) -> bool:
        """Is another process waiting to write or truncate the mapped file?"""
        if self._whole is None:
            return False
        try:
            return fcntl.fcntl(self._fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK
        except OSError:
            return True

    def degrade(self) -> None:
        """Stop using the map: release the lease; later windows are read with pread.

        Call it only when no decoded chunk still needs the map."""
        if self._whole is None:
            return
        self._whole = None
        self.degraded = True
        self._unlease()
        self._close_map()

    def _close_map(self) -> None:
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:  # a view is still alive somewhere; the GC closes it
                pass
            self._mmap = None

    def span(self, lo: int, hi: int, keep: int | None = None) -> ByteSource:
        """Bytes ``[lo, hi)`` (at least; clipped to the file) as a :class:`ByteSource`.

        Mapped: the whole file (the same object every time). Read: a copy in a buffer that
        the next call reuses; with ``keep`` (an offset before ``lo`` inside the previous
        window) the bytes ``[keep, lo)`` of the previous window are carried over and the
        result covers ``[keep, hi)``: records walked but not yet decoded stay readable.
        """
        if self._whole is not None:
            return self._whole
        hi = min(hi, self.size)
        last = self._last
        carried = 0
        if keep is not None and keep < lo and last is not None and last.base <= keep \
                and lo <= last.size:
            carried = lo - keep
        want = max(hi - lo, 0)
        need = carried + want
        if self._buffer is None or len(self._buffer) < need:
            grown = np.empty(max(need, min(self.size, READ_WINDOW),
                                 2 * len(self._buffer) if self._buffer is not None else 0),
                             np.uint8)
            if carried:
                grown[:carried] = last.buf[keep - last.base:lo - last.base]
            self._buffer = grown
        elif carried:
            self._buffer[:carried] = last.buf[keep - last.base:lo - last.base].copy()
        view = memoryview(self._buffer)[carried:carried + want]
        got = 0
        while got < want:
            n = os.preadv(self._fd, [view[got:]], lo + got)
            if n <= 0:
                break
            got += n
        end = self.size
        if got < want:  # the file was cut while being read
            self.shrunk = True
            end = lo + got
            self.size = end
        base = lo - carried
        self._last = ByteSource(self._buffer[:carried + got], base, end)
        return self._last

    def secure(self, batch, src: ByteSource):
        """``(batch, src)`` safe to decode now: when ``src`` is the map and a writer waits
        (or the lease is gone), stop mapping and read the batch's bytes with pread instead.

        Records that the file no longer holds (it was cut meanwhile) are dropped; ``shrunk``
        and ``dropped`` record it for a warning.
        """
        if not getattr(src, "mapped", False) or not len(batch):
            return batch, src
        if self._whole is not None and not self.breaking():
            return batch, src
        self.degrade()
        lo = int(batch.data_off.min())
        hi = int((batch.data_off + batch.cap_len).max())
        fresh = self.span(lo, hi)
        if fresh.size < hi:  # cut while mapped: keep the records the file still holds
            whole = batch.data_off + batch.cap_len <= fresh.size
            keep = int(np.argmin(whole)) if not whole.all() else len(batch)
            self.dropped += len(batch) - keep
            batch = batch.take(slice(0, keep))
        return batch, fresh

    def release(self, upto: int) -> None:
        """Give back the mapped pages before byte ``upto`` (they stay in the page cache), so
        walking a long file holds a window of it, not all of it. Nothing to do when read."""
        upto -= upto % mmap.PAGESIZE
        if (self._whole is not None and upto > 0 and hasattr(self._mmap, "madvise")
                and hasattr(mmap, "MADV_DONTNEED")):
            self._mmap.madvise(mmap.MADV_DONTNEED, 0, min(upto, self.size - self.size %
                                                          mmap.PAGESIZE))

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes of the file (fewer if it is shorter)."""
        return self.pread(0, n)

    def pread(self, off: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``off`` (within the size read at opening), by pread."""
        return os.pread(self._fd, max(min(n, self.size - off), 0), off)

    def close(self) -> None:
        """Release the lease and the map, close the file (idempotent)."""
        if self._fd < 0:
            return
        self._whole = None
        self._buffer = self._last = None
        self._close_map()
        if self._mmap is None:
            self._unlease()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
