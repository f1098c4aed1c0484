"""A userspace-datapath run interrupted (SIGINT) or killed (SIGKILL) mid-run (root): every probe
answered before the signal is kept, and no namespace, TUN device or process is left — at once
after SIGINT, after SIGKILL with the next run's clean-up.

Which probes were answered before the signal is read from outside the run: a capture of the
bottleneck link (``--capture``, tcpdump on the router's interface toward the server) holds every
echo reply on its way to the client, time-stamped on the same wall clock the signal is sent on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import qoslab
from qoslab.lab.netns import NAME_PATTERN, list_namespaces, remove_leftovers, run_cmd
from tests.conftest import need_root, need_tool

#: Seconds a run goes on before the signal (set-up takes a few; pings start after that).
RUNNING = 16.0
#: Replies seen this long before the signal count as answered before it (the pinger reads a
#: reply within microseconds of the kernel; the margin covers scheduling).
MARGIN = 0.5


@pytest.fixture(autouse=True)
def _root():
    need_root("the userspace datapath runs in network namespaces")
    need_tool("tcpdump")
    need_tool("ping")


def _namespaces_of(pid: int) -> list[str]:
    return [n for n in list_namespaces() if (m := NAME_PATTERN.match(n)) and
            int(m["pid"]) == pid]


def _pids_in(names: list[str]) -> set[int]:
    pids: set[int] = set()
    for n in names:
        pids |= {int(p) for p in run_cmd(["ip", "netns", "pids", n], check=False).stdout.split()}
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tun_in(namespace: str) -> bool:
    links = run_cmd(["ip", "-n", namespace, "-o", "link"], check=False).stdout
    return bool(re.search(r"ql[0-9a-f]+-t0", links))


def _start(folder: Path, name: str):
    """Start a live sfq_perturb run with a capture of the bottleneck; return it once it has
    run :data:`RUNNING` seconds, with its namespaces and everything running in them."""
    out, cap = folder / f"{name}.json.gz", folder / f"{name}.pcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qoslab", "run", "sfq_perturb", "--backend", "userspace",
         "--duration", "60", "--capture", str(cap), "-w", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=folder)
    started = time.monotonic()
    time.sleep(RUNNING)
    assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
    spaces = _namespaces_of(proc.pid)
    assert len(spaces) == 3
    router = next(s for s in spaces if s.endswith("-r"))
    assert _tun_in(router)  # the datapath's TUN device exists
    assert time.monotonic() - started < RUNNING + 5
    return proc, out, cap, spaces, router, _pids_in(spaces)


def _answered_before(cap: Path, signalled: float, hosts: set[str]) -> set[tuple[str, int]]:
    """``(host, seq)`` of every echo reply from a probed host the capture saw before the
    signal (minus :data:`MARGIN`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a killed tcpdump may leave its last record cut
        pk = qoslab.read_capture(cap)
    t = pk["time"].astype("int64") / 1e9
    replies = pk[(pk["icmp_type"] == 0) & pk["src"].astype(str).isin(hosts) &
                 (t < signalled - MARGIN).to_numpy()]
    return set(zip(replies["src"].astype(str), replies["icmp_seq"].astype(int), strict=True))


def _kept(answered: set[tuple[str, int]], run) -> None:
    ok = run.probes[run.probes["status"] == "ok"]
    have = set(zip(ok["host"].astype(str), ok["seq"].astype(int), strict=True))
    assert len(answered) >= 30
    assert answered <= have, sorted(answered - have)[:10]


def test_sigint_keeps_every_answered_probe_and_leaves_nothing(tmp_path):
    proc, out, cap, spaces, router, pids = _start(tmp_path, "int")
    signalled = time.time()
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=90)[0].decode()
    assert proc.returncode == 130, text[-2000:]
    run = qoslab.load(out)  # the bed saved what it measured before going down
    assert "KeyboardInterrupt" in run.meta["interrupted"]
    hosts = {str(h) for h in run.probes["host"].unique()}
    _kept(_answered_before(cap, signalled, hosts), run)
    assert not set(spaces) & set(list_namespaces())  # namespaces (and their TUNs) gone
    assert not [p for p in pids if _alive(p)]  # datapath, pinger, floods, tcpdump: all gone



def test_sigkill_keeps_the_journal_and_the_next_run_cleans_up(tmp_path):
    proc, out, cap, spaces, router, pids = _start(tmp_path, "kill")
    datapaths = {p for p in pids  # qoslab datapath PLAN: "datapath" as an argument
                 if b"\0datapath\0" in Path(f"/proc/{p}/cmdline").read_bytes()}
    assert len(datapaths) == 1  # the router's (sfq_perturb has no tunnel)
    signalled = time.time()
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in datapaths if _alive(p)]:
        time.sleep(0.1)
    assert not [p for p in datapaths if _alive(p)]  # the datapath dies with its parent ...
    assert not _tun_in(router)  # ... and its TUN device with it
    journal = out.with_name(out.name + ".partial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the killed writer's last line may be cut
        run = qoslab.load(journal)  # what the run journalled survived the kill
    hosts = {f"10.0.{i}.1" for i in (1, 2, 3)}  # the scenario's ping targets
    _kept(_answered_before(cap, signalled, hosts), run)
    gone = remove_leftovers()  # what the next lab run does first
    assert set(spaces) <= set(gone)
    assert not set(spaces) & set(list_namespaces())
    assert not [p for p in pids if _alive(p)]  # pinger, floods, tcpdump: gone with them
    assert not [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob(
        f"qoslab-lab-{proc.pid}-*")]  # the killed run's scratch folders too
