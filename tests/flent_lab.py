"""Run real flent tests between two lab namespaces (shared by the live tests and by the script
that made the committed files in tests/data/flent/; see its README.md).

The server namespace runs ``netserver`` (netperf), ``irtt server`` and ``iperf -s -u``; flent
runs in the client namespace against the server's address. The client's egress is shaped with
HTB (default 20 Mbit/s) so the load builds a queue and latency under load is visible.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

#: flent test -> extra flent arguments (beyond -l LENGTH -H SERVER).
FLENT_TESTS: dict[str, list[str]] = {
    "ping": [],
    "tcp_upload": ["--socket-stats"],
    "rrul": [],
    "udp_flood": [],
    "voip": [],
    "rtt_fair": [],  # -H given four times (its four hosts: all the lab's server)
}
#: Debian tools each test needs on this machine.
NEEDS: dict[str, tuple[str, ...]] = {
    "ping": ("fping", "irtt"),
    "tcp_upload": ("netperf", "netserver", "fping"),
    "rrul": ("netperf", "netserver", "fping", "irtt"),
    "udp_flood": ("iperf", "fping"),
    "voip": ("irtt",),
    "rtt_fair": ("netperf", "netserver", "fping"),
}


def flent_exe() -> str | None:
    exe = Path(sys.executable).with_name("flent")
    return str(exe) if exe.exists() else shutil.which("flent")


def missing_tools(test: str) -> list[str]:
    return [t for t in NEEDS[test] if shutil.which(t) is None]


def _server(tb, argv: list[str], ready: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", tb.ns("server").name, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if ready:
        deadline = time.monotonic() + 10
        for line in proc.stdout:  # wait until it listens
            if ready in line or time.monotonic() > deadline:
                break
    else:
        time.sleep(0.3)
    return proc


def run_flent(test: str, out_dir: Path, *, length: int = 6, rate: str = "20mbit",
              title: str = "qoslab-lab") -> tuple[Path, subprocess.CompletedProcess]:
    """Run ``flent TEST`` in a fresh Testbed; return (the .flent.gz file, flent's result)."""
    from qoslab.lab import Testbed

    flent = flent_exe()
    if flent is None:
        raise RuntimeError("flent is not installed (pip install -e '.[dev]')")
    out_dir = Path(out_dir)
    with Testbed(ipv6=False) as tb, ExitStack() as stack:
        server = tb.addr("server")
        for at in ("client", "server"):  # both directions: uploads and downloads queue
            tb.tc(at, "qdisc", "replace", "dev", "DEV", "root", "handle", "1:", "htb",
                  "default", "10")
            tb.tc(at, "class", "add", "dev", "DEV", "parent", "1:", "classid", "1:10",
                  "htb", "rate", rate)
        procs = []
        if "netserver" in NEEDS[test]:
            procs.append(_server(tb, ["netserver", "-D", "-L", server]))
        if "irtt" in NEEDS[test]:
            procs.append(_server(tb, ["irtt", "server", "-b", server], ready="listener"))
        if "iperf" in NEEDS[test]:
            procs.append(_server(tb, ["iperf", "-s", "-u", "-B", server]))
        for p in procs:
            stack.callback(_stop, p)
        hosts = ["-H", server] * (4 if test == "rtt_fair" else 1)
        argv = ["ip", "netns", "exec", tb.ns("client").name, flent, test, "-l", str(length),
                *hosts, *FLENT_TESTS[test], "-t", title, "-D", str(out_dir)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=length + 120)
    files = sorted(out_dir.glob(f"{test}-*.flent.gz"))
    if result.returncode != 0 or not files:
        raise RuntimeError(f"flent {test} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return files[-1], result


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
