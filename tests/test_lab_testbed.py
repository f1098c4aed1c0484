"""The lab's Testbed: real namespaces, veth, addresses, and cleanup on every way out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from qoslab import load as qoslab_load
from tests.conftest import fill_disk, load_cut_journal, need_root

pytestmark = pytest.mark.netns


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _unchanged(before: set[str], *pids: int) -> bool:
    """``ip netns list`` is as before, ignoring lab namespaces of *other* processes (other
    test runs may share this machine; in CI the two sets are simply equal)."""
    from qoslab.lab.netns import NAME_PATTERN

    mine = {os.getpid(), *pids}

    def relevant(names: set[str]) -> set[str]:
        return {n for n in names
                if not ((m := NAME_PATTERN.match(n)) and int(m["pid"]) not in mine)}
    return relevant(_netns()) == relevant(before)


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.mark.parametrize("router", [False, True])
def test_bed_reaches_server_over_ipv4_and_ipv6_and_leaves_nothing(router):
    need_root()
    from qoslab.lab import Testbed

    before, links_before = _netns(), _root_links()
    with Testbed(router=router) as tb:
        names = set(tb.meta["namespaces"].values())
        assert names <= _netns()
        assert all(n.startswith(f"qlab-{os.getpid()}-{tb.runid}-") for n in names)
        for family in (4, 6):
            r = tb.ns("client").run(["ping", "-c", "1", "-W", "3", tb.addr("server", family)],
                                    check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            assert ("ttl=63" in r.stdout) == router  # one forwarding hop with a router
        assert tb.meta["kernel_release"] == os.uname().release
        assert _root_links() == links_before  # the veths never appear in the root namespace
    assert _unchanged(before)
    assert _root_links() == links_before
    assert [e["kind"] for e in tb.events] == ["run_start", "run_stop"]


def test_exception_inside_the_bed_removes_everything():
    need_root()
    from qoslab.lab import Testbed

    before = _netns()
    with pytest.raises(RuntimeError, match="boom"), Testbed(router=True) as tb:
        assert len({n for n in _netns() - before if n.startswith(f"qlab-{os.getpid()}-")}) == 3
        raise RuntimeError("boom")
    assert _unchanged(before)
    assert tb.namespaces  # names were real ...
    assert not set(tb.meta["namespaces"].values()) & _netns()  # ... and are gone


def test_leftovers_of_a_dead_process_are_removed_and_live_ones_kept():
    need_root()
    from qoslab.lab import netns

    # a namespace "created" by a process that has exited, one by a live process (us)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    dead_name = netns.namespace_name("c", netns.new_runid(), pid=int(dead))
    live_name = netns.namespace_name("c", netns.new_runid())
    try:
        netns.create_namespace(dead_name)
        netns.create_namespace(live_name)
        assert dead_name in netns.find_leftovers()
        assert live_name not in netns.find_leftovers()
        removed = netns.remove_leftovers()
        assert live_name not in removed
        assert dead_name not in _netns() and live_name in _netns()
    finally:
        netns.delete_namespace(live_name)
        netns.delete_namespace(dead_name)
    with pytest.raises(ValueError, match="not a lab namespace"):
        netns.delete_namespace("not-ours")


def test_not_root_is_a_clear_error(monkeypatch):
    from qoslab.lab import LabUnavailableError, Testbed, netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(LabUnavailableError, match="needs root"):
        Testbed().__enter__()


def _cmdlines_in(ns: str) -> str:
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    out = []
    for pid in pids.split():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                out.append(fh.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(out)


def _probes_journalled(namespaces) -> int:
    """Probe lines in the journal of the qoslab ping runner running in one of ``namespaces``."""
    for line in "\n".join(_cmdlines_in(n) for n in namespaces).splitlines():
        if " ping " in line and " -w " in line:
            path = line.split(" -w ")[1].split()[0] + ".partial"
            try:
                with open(path) as fh:
                    return sum(1 for rec in fh if rec.startswith('{"probe"'))
            except OSError:
                return 0
    return 0


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def test_exception_mid_run_stops_loads_and_captures_and_removes_qdiscs(tmp_path):
    need_root()
    from qoslab.lab import Testbed
    from qoslab.qdiscs import Htb, HtbClass, Pfifo

    before = _netns()
    with pytest.raises(LookupError, match="mid-run"), Testbed(router=True) as tb:
        tb.apply(Htb(classes=(HtbClass("1:10", "2mbit", leaf=Pfifo(limit=100)),), default=0x10), "router")
        flood = tb.udp_flood("3mbit", size=500, duration=60)
        cap = tb.capture(tmp_path / "x.pcap", bpf=None)
        tb.sample("router", 0.1)
        pids = [flood.sender.pid, flood.sink.pid, cap.process.pid]
        assert len(_pids_alive(pids)) == 3
        ns, dev = tb.point("router")
        shown = ns.run(["tc", "qdisc", "show", "dev", dev]).stdout
        assert "htb" in shown and "pfifo" in shown
        raise LookupError("mid-run failure")
    assert _unchanged(before)
    assert _pids_alive(pids) == []
    # what happened up to the error is recorded: the load's counts and the capture file
    assert [e["kind"] for e in tb.events][-2:] == ["load_stop", "run_stop"]
    assert tb.meta["loads"][0]["sender"]["sent"] > 0
    assert (tmp_path / "x.pcap").stat().st_size > 24


_BED_SCRIPT = """
import time
from qoslab.lab import Testbed
from qoslab.qdiscs import Htb, HtbClass, Pfifo
with Testbed(router=True) as tb:
    tb.apply(Htb(classes=(HtbClass("1:10", "2mbit", leaf=Pfifo(limit=100)),), default=0x10), "router")
    tb.udp_flood("3mbit", size=500, duration=60)
    print("up", flush=True)
    time.sleep(60)
"""


def test_sigterm_to_a_process_holding_a_bed_leaves_nothing_behind():
    need_root()
    before = _netns()
    proc = subprocess.Popen([sys.executable, "-c", _BED_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up", proc.stderr.read()
        ours = {n for n in _netns() - before if n.startswith(f"qlab-{proc.pid}-")}
        assert len(ours) == 3
        inside = [int(p) for n in ours for p in subprocess.run(
            ["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()]
        assert len(inside) == 2  # the flood's sender and sink
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert _unchanged(before, proc.pid)
    assert _pids_alive(inside) == []


def test_sigkill_leftovers_are_removed_by_the_next_bed():
    """SIGKILL cannot be caught: the processes the bed started die with it (parent-death
    signal), the namespaces stay until the next Testbed finds that their creator is dead and
    removes them."""
    need_root()
    from qoslab.lab import Testbed

    before = _netns()
    proc = subprocess.Popen([sys.executable, "-c", _BED_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up", proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()
    left = {n for n in _netns() - before if n.startswith(f"qlab-{proc.pid}-")}
    assert len(left) == 3

    def inside() -> list[int]:
        return [int(p) for n in left & _netns() for p in subprocess.run(
            ["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()]

    deadline = time.monotonic() + 10
    while inside() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inside() == []  # the flood's sender and sink died with the bed's process
    still = left & _netns()  # (another test run's bed may have removed them already)
    with Testbed() as tb:
        assert set(tb.meta["leftovers_removed"]) >= still
        assert not left & _netns()
    assert _unchanged(before, proc.pid)


def test_lab_run_killed_with_sigkill_keeps_its_probes_and_the_next_run_cleans_up(tmp_path):
    """``qoslab lab bufferbloat -w FILE`` killed with SIGKILL: its probes are in FILE.partial
    (followed from the ping runner as they come), every process it started dies with it, and
    ``qoslab lab --cleanup`` (as any next run) removes its namespaces and scratch folder."""
    import tempfile

    import qoslab
    from qoslab.lab.netns import WORK_PREFIX

    need_root()
    before = _netns()
    out = tmp_path / "bb.json.gz"
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "lab", "bufferbloat", "-w",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    journal = tmp_path / "bb.json.gz.partial"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            lines = journal.read_text().count('{"probe"') if journal.exists() else 0
            if lines >= 10:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        ours = {n for n in _netns() - before if n.startswith(f"qlab-{proc.pid}-")}
        work = [d for d in os.listdir(tempfile.gettempdir())
                if d.startswith(f"{WORK_PREFIX}{proc.pid}-")]
        assert len(ours) == 3 and len(work) == 1
        time.sleep(0.3)
        proc.kill()  # SIGKILL to the lab process only: its children must die by themselves
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    def inside() -> list[int]:
        return [int(p) for n in ours & _netns() for p in subprocess.run(
            ["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()]

    deadline = time.monotonic() + 10
    while inside() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inside() == []
    run = qoslab.load(journal)
    assert len(run.probes) >= 10 and run.meta["scenario"] == "bufferbloat"
    assert run.probes["t_sent"].min() >= 0.5  # on scenario time, like the finished RUN
    from qoslab.cli import main

    assert main(["lab", "--cleanup"]) == 0
    assert not ours & _netns()
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), work[0]))
    assert _unchanged(before, proc.pid)


def test_lab_run_on_a_full_disk_ends_at_once_with_one_line_and_keeps_its_journal(small_tmpfs):
    """The -w journal's disk fills up mid-run: the run stops at that moment (not at its end),
    says so in one line, and the journal keeps every probe written before; nothing is left."""
    need_root()
    folder, _ = small_tmpfs
    fill_disk(folder, leave=12_000)
    before = _netns()
    out = folder / "bb.json.gz"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "lab", "bufferbloat", "--duration",
                             "60", "-w", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - started
    lines = err.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    assert "No space left on device" in lines[0] and "bb.json.gz.partial" in lines[0]
    assert took < 45  # stopped when the disk filled, not after its 60 s
    run = load_cut_journal(folder / "bb.json.gz.partial")  # the last line may not fit
    assert len(run.probes) >= 5 and run.meta["scenario"] == "bufferbloat"
    assert not out.exists()
    assert _unchanged(before, proc.pid)


def test_cli_run_killed_with_ctrl_c_leaves_nothing_behind_and_keeps_the_probes(tmp_path):
    """Ctrl-C (SIGINT to the process group) during ``qoslab lab bufferbloat``."""
    sig = signal.SIGINT
    need_root()
    before, links_before = _netns(), _root_links()
    out = tmp_path / "run.json.gz"
    proc = subprocess.Popen([sys.executable, "-m", "qoslab", "lab", "bufferbloat", "-w",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        ours = set()
        while time.monotonic() < deadline:  # wait until the ping runner runs in the client
            ours = {n for n in _netns() - before if n.startswith(f"qlab-{proc.pid}-")}
            if len(ours) == 3 and _probes_journalled(ours) >= 5:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert len(ours) == 3
        os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _unchanged(before, proc.pid)
    assert _root_links() == links_before
    # what was measured until the signal is saved: the pings so far and the bed's EVENTS
    assert not (tmp_path / "run.json.gz.partial").exists()
    run = qoslab_load(out)
    assert run.meta["interrupted"].startswith("KeyboardInterrupt")
    assert run.meta["stop_reason"] == "SIGINT"  # not the pinger's SIGTERM from teardown
    assert run.meta["scenario"] == "bufferbloat" and run.meta["lab"]["runid"]
    assert len(run.probes) >= 5
    kinds = list(run.events["kind"])
    assert kinds[0] == "run_start" and "run_stop" in kinds and "load_start" in kinds
