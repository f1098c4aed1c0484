"""The iputils ``ping`` back-end: its parser on captured output, and clear errors."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

import qoslab
from qoslab.ping.system_ping import find_ping, parse_line

from .conftest import need_tool

DATA = Path(__file__).parent / "data" / "iputils"


def test_captured_ipv4_output():
    lines = (DATA / "ping-v4-loopback.txt").read_text().splitlines()
    parsed = [p for p in map(parse_line, lines) if p is not None]
    replies = [p for p in parsed if p.kind == "reply"]
    assert [p.seq for p in replies] == [1, 2, 3, 4]
    assert [p.rtt_ms for p in replies] == [0.038, 0.033, 0.044, 0.033]
    assert replies[0].ts == 1795745893.427706 and replies[0].ttl == 64
    assert parsed[-1].kind == "summary" and parsed[-1].transmitted == 4


def test_captured_ipv6_output():
    lines = (DATA / "ping-v6-loopback.txt").read_text().splitlines()
    replies = [p for p in map(parse_line, lines) if p is not None and p.kind == "reply"]
    assert [p.seq for p in replies] == [1, 2, 3] and all(p.ttl == 64 for p in replies)


@pytest.mark.parametrize("line, kind, seq, rtt", [
    # iputils s20101006 .. s20121221 wrote icmp_req
    ("64 bytes from 192.168.1.1: icmp_req=12 ttl=64 time=1.95 ms", "reply", 12, 1.95),
    ("64 bytes from 192.168.1.1: icmp_seq=3 ttl=64 time=120 ms", "reply", 3, 120.0),
    ("64 bytes from 10.0.0.2: icmp_seq=5 ttl=64 time=0.5 ms (DUP!)", "duplicate", 5, 0.5),
    ("[1700000000.000100] 64 bytes from fe80::1%eth0: icmp_seq=2 ttl=64 time=0.1 ms",
     "reply", 2, 0.1),
    ("From 10.0.0.1 icmp_seq=7 Destination Host Unreachable", "unreachable", 7, math.nan),
    ("From 10.0.0.1 icmp_seq=8 Time to live exceeded", "time_exceeded", 8, math.nan),
    ("From 2001:db8::1 icmp_seq=1 Destination unreachable: Address unreachable",
     "unreachable", 1, math.nan),
    ("From 10.0.0.1 icmp_seq=9 Frag needed and DF set (mtu = 1400)", "error", 9, math.nan),
])
def test_line_formats(line, kind, seq, rtt):
    p = parse_line(line)
    assert (p.kind, p.seq) == (kind, seq)
    assert (math.isnan(p.rtt_ms) and math.isnan(rtt)) or p.rtt_ms == rtt


@pytest.mark.parametrize("line", ["PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.", "",
                                  "rtt min/avg/max/mdev = 0.033/0.037/0.044/0.004 ms"])
def test_other_lines_are_ignored(line):
    assert parse_line(line) is None


def test_missing_binary_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(qoslab.BackendUnavailableError, match="iputils-ping"):
        find_ping()
    with pytest.raises(qoslab.BackendUnavailableError, match="no 'ping' program"):
        qoslab.ping("127.0.0.1", count=1, backend="system")


def test_a_ping_that_is_not_iputils_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "ping"
    fake.write_text("#!/bin/sh\necho 'PING from BusyBox v1.36'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(qoslab.BackendUnavailableError, match="not iputils"):
        qoslab.ping("127.0.0.1", count=1, backend="system")


@pytest.mark.parametrize("entry", [".", "", "trap"])
def test_a_ping_planted_in_the_current_folder_never_runs(monkeypatch, tmp_path, entry):
    """A relative or empty ``PATH`` entry (``.`` is common in root's dotfiles) would run a
    ``ping`` planted in the folder qoslab is started from; the real one runs, from ``/``."""
    real = need_tool("ping")
    trap = tmp_path / "trap"
    trap.mkdir()
    marker = tmp_path / "EXECUTED"
    for folder in (tmp_path, trap):
        fake = folder / "ping"
        fake.write_text(f"#!/bin/sh\necho \"$PWD\" >> {marker}\n"
                        "echo 'ping from iputils 20221126'\n")
        fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{entry}:{os.path.dirname(real)}")
    assert find_ping() == real
    run = qoslab.ping("127.0.0.1", interval=0.01, count=2, backend="system")
    assert (run.probes["status"] == "ok").all() and len(run.probes) == 2
    assert not marker.exists(), marker.read_text()


def test_system_backend_on_loopback_runs_under_the_c_locale(monkeypatch):
    need_tool("ping")
    # a decimal-comma locale in the caller's environment must not reach ping's output
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    run = qoslab.ping(["127.0.0.1", "::1"], tos=[0, 0x10], interval=0.01, count=5,
                      backend="system")
    assert run.meta["backend"] == "system" and "iputils" in run.meta["backend_detail"]
    assert len(run.streams) == 4
    assert (run.probes["status"] == "ok").all() and len(run.probes) == 20
    assert run.probes.groupby("stream")["seq"].apply(sorted).map(list).tolist() == \
        [[1, 2, 3, 4, 5]] * 4
    assert (run.probes["rtt_ms"] < 50).all()


def test_system_backend_reports_no_route(tmp_path):
    need_tool("ping")
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 for a namespace with an unreachable route")
    from .test_ping_engine import scratch_namespace

    with scratch_namespace("sysunreach") as ns:
        out = tmp_path / "r.json.gz"
        code = ns.python(["-m", "qoslab", "ping", "10.99.0.1", "-c", "2", "-i", "0.05",
                          "--backend", "system", "-w", str(out)],
                         setup=[["ip", "route", "add", "unreachable", "10.99.0.0/24"]])
        run = qoslab.load(out)
    assert code.returncode == 1
    assert run.probes["status"].tolist() == ["unreachable"]
    assert "No route to host" in run.probes["detail"].iloc[0]
