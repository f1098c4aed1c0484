"""TUN devices: the kernel hands packets to a process and takes them back.

A TUN device (``/dev/net/tun``, ``IFF_TUN | IFF_NO_PI``) is a network interface whose other
end is a file descriptor: every IP packet the kernel routes into the interface can be read
from the descriptor, and every packet written to it enters the kernel as if it had arrived on
the interface. The device is created in the network namespace of the process that opens it
and lives exactly as long as the descriptor (no ``TUNSETPERSIST``): when the process ends —
normally, killed, or with its namespace — the device is gone too.

Names follow the lab's rule (:meth:`qoslab.lab.Testbed.ifname`): ``ql<run id>-t0``, inside a
namespace that carries the owning process id, so nothing outside the lab's own namespaces is
ever created or touched.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct

from ..errors import QoslabError

__all__ = ["open_tun", "TunError", "TUN_NAME", "read_batch"]

#: ioctl and flags of ``linux/if_tun.h``.
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
#: What a TUN name qoslab creates looks like (the lab's interface names).
TUN_NAME = re.compile(r"^ql[0-9a-f]{4,8}-t[0-9]$")
#: Largest packet read at once (an IP packet is at most 65535 bytes).
MAX_PACKET = 65536


class TunError(QoslabError, OSError):
    """A TUN device could not be created (no ``/dev/net/tun``, no CAP_NET_ADMIN …)."""


def open_tun(name: str) -> int:
    """Create TUN device ``name`` in this process's namespace; return its non-blocking fd.

    Raises
    ------
    TunError
        Naming the device and the reason (``/dev/net/tun`` missing: ``modprobe tun``).
    ValueError
        For a name that is not a lab TUN name (:data:`TUN_NAME`).
    """
    if not TUN_NAME.match(name):
        raise ValueError(f"{name!r} is not a lab TUN name (ql<runid>-t<n>)")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TunError("no /dev/net/tun: this kernel has no TUN driver loaded (modprobe tun); "
                       "the userspace datapath needs it") from None
    except OSError as exc:
        raise TunError(f"/dev/net/tun: {exc.strerror}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise TunError(f"TUN {name}: {exc.strerror} (creating a TUN device needs "
                       "CAP_NET_ADMIN)") from None
    return fd


def read_batch(fd: int, limit: int = 64) -> list[bytes]:
    """Up to ``limit`` packets waiting on ``fd`` (an empty list when none)."""
    out = []
    read = os.read
    for _ in range(limit):
        try:
            out.append(read(fd, MAX_PACKET))
        except BlockingIOError:
            break
    return out
