"""``qoslab datapath PLAN``: one datapath process (started by the userspace backend).

It runs inside a lab namespace, creates the plan's TUN device, says ``{"ready": …}`` on stdout
and runs the plan's role (:class:`~qoslab.datapath.engine.Router` or
:class:`~qoslab.datapath.engine.Decapsulator`) until its parent says stop, closes its stdin
(the parent ended, however it ended) or sends SIGTERM; it dies with its parent (the kernel's
parent-death signal) and ignores Ctrl-C, which its parent handles.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import sys

from ..errors import ConfigError

__all__ = ["register", "run_plan"]

_PR_SET_PDEATHSIG = 1
#: Bytes of each packet the input capture keeps (headers; its length is kept whole).
INPUT_SNAPLEN = 160


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent ends (``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: stdin's end still stops the loop
        return
    if os.getppid() == 1:  # the parent ended before prctl took effect
        os._exit(1)


def run_plan(path: str) -> int:
    """Run the datapath plan at ``path`` (in this process and namespace)."""
    from .engine import Decapsulator, Router, emit
    from .pcapfile import PcapWriter
    from .plan import Plan
    from .tun import open_tun

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plan = Plan.load(path)
    control = sys.stdin.fileno()
    os.set_blocking(control, False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    tun = open_tun(plan.tun)
    role = (Router if plan.role == "router" else Decapsulator)(plan, tun, control)
    # SIGTERM stops the loop like a stop command: the signal wakes epoll through a pipe
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: setattr(role, "stopping", True))
    capture = None
    if plan.role == "router" and plan.input_capture:
        capture = open(plan.input_capture, "xb")  # noqa: SIM115, PTH123 - parent's work dir
        role.capture = PcapWriter(capture, snaplen=INPUT_SNAPLEN)
    emit({"ready": {"tun": plan.tun, "pid": os.getpid(), "role": plan.role}})
    try:
        role.extra_wake = wake_r
        role.run()
    finally:
        if capture is not None:
            capture.close()
        summary = role.save()
        emit({"done": summary})
        os.close(tun)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qoslab datapath`` (internal: the userspace backend starts it)."""
    p = subparsers.add_parser(
        "datapath", help="run one userspace datapath process (started by --backend "
        "userspace inside its namespaces)",
        description="Run the datapath plan PLAN (JSON written by the userspace backend): "
        "create its TUN device and schedule, encapsulate or decapsulate the packets the "
        "kernel routes into it.")
    p.add_argument("plan", help="plan file")
    p.set_defaults(func=lambda args: run_plan(args.plan))


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 2:
        raise ConfigError("usage: python -m qoslab.datapath.cli PLAN")
    sys.exit(run_plan(sys.argv[1]))
