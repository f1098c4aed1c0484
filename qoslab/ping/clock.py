"""A precise wake-up for asyncio: a Linux ``timerfd`` armed at absolute ``CLOCK_MONOTONIC`` times.

asyncio's own timers wake through ``epoll_wait`` whose timeout is rounded *up* to whole
milliseconds, so a probe scheduled with ``loop.call_at`` leaves up to 1 ms late. A ``timerfd``
registered with ``loop.add_reader`` fires with the kernel's hrtimer precision (tens of
microseconds), which isochronous sending at 100 Hz and more needs. Where ``timerfd`` is not
available, :class:`LoopTimer` falls back to ``loop.call_at``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable

__all__ = ["PreciseTimer", "LoopTimer", "make_timer"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc():
    name = ctypes.util.find_library("c") or "libc.so.6"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                    ctypes.c_void_p]
    return lib


class PreciseTimer:
    """Call ``callback()`` at absolute ``time.monotonic_ns()`` instants, via a timerfd.

    Parameters
    ----------
    loop
        The running event loop.
    callback
        Called (in the loop) each time the armed instant passes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._lib = _libc()
        fd = self._lib.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._fd, self._loop, self._callback = fd, loop, callback
        loop.add_reader(fd, self._fired)

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        self._callback()

    def arm(self, when_ns: int) -> None:
        """Fire once at ``when_ns`` (monotonic ns); an instant in the past fires at once."""
        when_ns = max(int(when_ns), 1)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(when_ns // 1_000_000_000,
                                                      when_ns % 1_000_000_000))
        if self._lib.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None):
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def close(self) -> None:
        """Unregister and close the timer."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


class LoopTimer:
    """The same interface on ``loop.call_at`` (millisecond precision)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop, self._callback, self._handle = loop, callback, None
        self._offset = loop.time() - time.monotonic_ns() / 1e9

    def arm(self, when_ns: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when_ns / 1e9 + self._offset, self._callback)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def make_timer(loop: asyncio.AbstractEventLoop,
               callback: Callable[[], None]) -> PreciseTimer | LoopTimer:
    """Return a :class:`PreciseTimer`, or a :class:`LoopTimer` where timerfd is missing.

    Examples
    --------
    >>> import asyncio, time
    >>> async def demo():
    ...     done = asyncio.Event()
    ...     t = make_timer(asyncio.get_running_loop(), done.set)
    ...     t.arm(time.monotonic_ns() + 1_000_000)
    ...     await asyncio.wait_for(done.wait(), 1)
    ...     t.close()
    ...     return type(t).__name__
    >>> asyncio.run(demo())
    'PreciseTimer'
    """
    try:
        return PreciseTimer(loop, callback)
    except (OSError, AttributeError, NotImplementedError):
        return LoopTimer(loop, callback)


