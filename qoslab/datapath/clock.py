"""Waking up on time: ``epoll`` on the TUN device, the parent's pipe and a ``timerfd``.

The datapath sleeps in :meth:`Waker.wait` until a packet arrives, its parent speaks, or the
next instant it must act (the link frees up, a shaper allows the next packet, a delayed packet
is due, a hash seed changes). ``epoll_wait``'s own timeout is whole milliseconds; a Linux
``timerfd`` armed at an absolute ``CLOCK_MONOTONIC`` time fires with the kernel's hrtimer
precision (tens of microseconds), which a 1 Mbit/s link (12 ms per packet) and a 50 Mbit/s one
(0.24 ms) both need. Without ``timerfd`` (not Linux), the millisecond timeout is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import time

__all__ = ["Waker"]

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timerfd():
    """``(libc, fd)`` of a new non-blocking monotonic timerfd, or ``(None, -1)``."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = lib.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None, -1
    return (lib, fd) if fd >= 0 else (None, -1)


class Waker:
    """Wait for any of ``fds`` to be readable, or until an absolute monotonic time.

    ``wait(until_ns)`` returns the readable fds (empty when the time came first).
    """

    def __init__(self, fds: list[int]) -> None:
        self.ep = select.epoll()
        for fd in fds:
            self.ep.register(fd, select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR)
        self.lib, self.tfd = _timerfd()
        self._spec = _Itimerspec()
        self._armed = -1
        if self.tfd >= 0:
            self.ep.register(self.tfd, select.EPOLLIN)

    def _arm(self, when_ns: int) -> None:
        if when_ns == self._armed:
            return
        self._armed = when_ns
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(when_ns, 1), 1_000_000_000)
        self.lib.timerfd_settime(self.tfd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)

    def wait(self, until_ns: int | None) -> list[int]:
        """Readable fds; returns at ``until_ns`` (monotonic ns) at the latest (``None``: no
        deadline)."""
        if until_ns is None:
            timeout = -1.0
            if self.tfd >= 0 and self._armed != 0:
                self._armed = 0
                self.lib.timerfd_settime(self.tfd, _TFD_TIMER_ABSTIME,
                                         ctypes.byref(_Itimerspec()), None)
        elif self.tfd >= 0:
            if until_ns <= time.monotonic_ns():
                return []
            self._arm(until_ns)
            timeout = -1.0
        else:
            timeout = max(0.0, (until_ns - time.monotonic_ns()) / 1e9)
        out = []
        for fd, _ in self.ep.poll(timeout):
            if fd == self.tfd:
                try:
                    os.read(self.tfd, 8)
                except BlockingIOError:
                    pass
                self._armed = -1
            else:
                out.append(fd)
        return out

    def close(self) -> None:
        self.ep.close()
        if self.tfd >= 0:
            os.close(self.tfd)
            self.tfd = -1
