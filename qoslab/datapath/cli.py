"""``qoslab datapath PLAN``: one datapath process (started by the userspace backend).

It runs inside a lab namespace, creates the plan's TUN device, says ``{"ready": …}`` on stdout
and runs the plan's role (:class:`~qoslab.datapath.engine.Router` or
:class:`~qoslab.datapath.engine.Decapsulator`) until its parent says stop, closes its stdin
(the parent ended, however it ended) or sends SIGTERM; it dies with its parent (the kernel's
parent-death signal, set by :func:`qoslab.children.die_with_parent` when it is started) and
ignores Ctrl-C, which its parent handles.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import resource
import signal
import sys

from ..errors import ConfigError

__all__ = ["register", "run_plan"]

#: Scheduling of a datapath process (see :func:`_realtime`): SCHED_RR at this priority —
#: above the ping runner's probe loop (:data:`qoslab.ping.engine.RT_PRIORITY`): a device runs
#: before the programs that use it —, at most this many microseconds of CPU without
#: blocking; else this nice value.
RT_PRIORITY = 20
RT_LIMIT_US = 2_000_000
DATAPATH_NICE = -10
#: Bytes of each packet the input capture keeps (headers; its length is kept whole).
INPUT_SNAPLEN = 160


def _realtime() -> None:
    """Run as the device it emulates does — ahead of ordinary processes.

    A loaded machine otherwise parks the loop for tens of milliseconds: packets leave late and
    the measured latency shows spikes the modelled qdisc never made. The loop blocks in
    ``epoll`` between packets, so a real-time round-robin priority (``SCHED_RR``, low level
    :data:`RT_PRIORITY`) costs others little; ``RLIMIT_RTTIME`` bounds any stretch without
    blocking to :data:`RT_LIMIT_US` (the kernel then sends SIGXCPU, which ends the process),
    so a fault can never hold a CPU. Where real-time scheduling is refused, the nice value
    :data:`DATAPATH_NICE` is tried instead.
    """
    try:
        resource.setrlimit(resource.RLIMIT_RTTIME, (RT_LIMIT_US, RT_LIMIT_US))
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
    except (OSError, AttributeError, ValueError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, DATAPATH_NICE)


def run_plan(path: str) -> int:
    """Run the datapath plan at ``path`` (in this process and namespace)."""
    # imported here: every qoslab command registers this subcommand, only this process runs it
    from .engine import Decapsulator, Router, emit  # lazy: datapath process only
    from .pcapfile import PcapWriter  # lazy: datapath process only
    from .plan import Plan  # lazy: datapath process only
    from .tun import open_tun  # lazy: datapath process only

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
    _realtime()
    # never paused by the cycle collector: packets are freed by reference counting; what was
    # built so far is frozen out of the collector's sight
    gc.collect()
    gc.freeze()
    gc.disable()
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
