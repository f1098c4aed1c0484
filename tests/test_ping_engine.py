"""The socket probe engine on the real kernel: loopback against iputils, every backend,
ICMP errors, duplicates, reordering, late answers and losses (namespaces only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import qoslab
from qoslab.ping.sockets import parse_raw4, socket_kind_status

from .conftest import need_root, need_tool

HERE = Path(__file__).resolve().parent
PING_GROUP_ALL = "net.ipv4.ping_group_range=0 2147483647"


class _Ns:
    def __init__(self, name: str):
        self.name = name

    def run(self, argv, **kw):
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=60, **kw)

    def python(self, args, setup=(), **kw):
        for cmd in setup:
            self.run(cmd, check=True)
        return self.run([sys.executable, *args], **kw)


@contextmanager
def scratch_namespace(tag: str):
    """A namespace named ``qoslab-t-<pid>-<tag>`` with ``lo`` up; deleted afterwards."""
    need_root("network namespaces")
    need_tool("ip")
    name = f"qoslab-t-{os.getpid()}-{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield _Ns(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _iputils_median(host: str, count: int, interval: float, v6: bool = False) -> float:
    out = subprocess.run(["ping", "-6" if v6 else "-4", "-n", "-c", str(count), "-i",
                          str(interval), host], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "LC_ALL": "C"}).stdout
    rtts = [qoslab.ping.parse_line(line) for line in out.splitlines()]
    return float(np.median([r.rtt_ms for r in rtts if r is not None and r.kind == "reply"]))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_raw_loopback_agrees_with_iputils(host):
    need_root("raw ICMP sockets")
    need_tool("ping")
    run = qoslab.ping(host, tos=[0, 0x10], interval=0.01, count=60, backend="raw")
    theirs = _iputils_median(host, 60, 0.01, v6=":" in host)
    assert run.meta["backend"] == "raw" and "SO_TIMESTAMPNS" in run.meta["backend_detail"]
    p = run.probes
    assert (p["status"] == "ok").all() and len(p) == 120
    assert p.groupby("stream")["seq"].apply(list).map(sorted).tolist() == [list(range(1, 61))] * 2
    assert p.loc[p.stream.str.contains("0x10"), "tos"].eq(0x10).all()
    ours = float(p["rtt_ms"].median())
    # loopback RTTs are tens of microseconds: the same order as iputils, within 1.5x or 50 us
    assert abs(ours - theirs) <= max(0.5 * theirs, 0.050), (ours, theirs)
    # isochronous: sends follow the absolute schedule (interval apart, no drift)
    t = p[p.stream == run.streams[0]].sort_values("seq")["t_sent"].to_numpy()
    assert abs((t[-1] - t[0]) - 59 * 0.01) < 0.01
    assert p["send_late_ms"].median() < 5


def test_dgram_backend_in_a_namespace_that_allows_it(tmp_path):
    need_tool("ping")
    out = tmp_path / "d.json.gz"
    with scratch_namespace("dgram") as ns:
        assert ns.run(["sysctl", "-n", "net.ipv4.ping_group_range"]).stdout.split() == ["1", "0"]
        # refused while ping_group_range excludes us, with the sysctl named
        r = ns.python(["-m", "qoslab", "ping", "127.0.0.1", "-c", "1", "--backend", "dgram"])
        assert r.returncode == 2 and "ping_group_range" in r.stderr and "Traceback" not in r.stderr
        r = ns.python(["-m", "qoslab", "ping", "127.0.0.1", "::1", "-c", "20", "-i", "0.01",
                       "--backend", "dgram", "-w", str(out)],
                      setup=[["sysctl", "-q", "-w", PING_GROUP_ALL]])
    assert r.returncode == 0, r.stderr
    run = qoslab.load(out)
    assert run.meta["backend"] == "dgram"
    assert (run.probes["status"] == "ok").all() and len(run.probes) == 40
    assert run.probes["ttl"].eq(64).all()


def _drop_cap_net_raw() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 13, 0, 0, 0):  # PR_CAPBSET_DROP, CAP_NET_RAW
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_no_backend_at_all_is_one_clear_line():
    need_root("dropping CAP_NET_RAW")
    if socket_kind_status("dgram") is None:
        pytest.skip("this host lets every group use ICMP datagram sockets")
    # no CAP_NET_RAW (raw refused), gid 0 outside ping_group_range (dgram refused), no ping
    r = subprocess.run([sys.executable, "-m", "qoslab", "ping", "127.0.0.1", "-c", "1"],
                       capture_output=True, text=True, timeout=60, preexec_fn=_drop_cap_net_raw,
                       env={**os.environ, "PATH": "/nonexistent"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    for what in ("no probe backend can be used", "raw:", "CAP_NET_RAW", "dgram:",
                 "ping_group_range", "system:", "iputils-ping"):
        assert what in r.stderr


def _pings_in(ns, tmp_path, name, args, setup=()):
    out = tmp_path / f"{name}.json.gz"
    r = ns.python(["-m", "qoslab", "ping", *args, "-w", str(out), "-q"], setup=setup)
    assert r.returncode in (0, 1), r.stderr
    return qoslab.load(out)


@pytest.fixture
def lab():
    need_root("network namespaces")
    from qoslab.lab import Testbed

    with Testbed(ipv6=False) as tb:
        yield tb


@pytest.mark.parametrize("backend", ["raw", "dgram"])
def test_duplicates_reordering_late_and_lost(lab, tmp_path, backend):
    server, client = lab.ns("server"), lab.ns("client")
    server.sysctl("net.ipv4.icmp_echo_ignore_all", 1)
    if backend == "dgram":
        client.sysctl("net.ipv4.ping_group_range", "0 2147483647")
    responder = subprocess.Popen(
        ["ip", "netns", "exec", server.name, sys.executable, str(HERE / "ping_responder.py"),
         "20"], stdout=subprocess.PIPE, text=True)
    try:
        assert responder.stdout.readline().strip() == "ready"
        run = _pings_in(_Ns(client.name), tmp_path, backend,
                        [lab.addr("server"), "-c", "20", "-i", "0.05", "-W", "0.3",
                         "--backend", backend])
    finally:
        responder.kill()
        responder.wait()
    p = run.probes.sort_values(["seq", "status"]).reset_index(drop=True)
    assert run.meta["backend"] == backend
    by_seq = p.groupby("seq")["status"].apply(list).to_dict()
    # the run lasts 1 s, so the answer held 0.6 s arrives while it still listens
    assert by_seq == {1: ["ok"], 2: ["duplicate", "ok"], 3: ["ok"], 4: ["ok"], 5: ["late"],
                      6: ["lost"], **{k: ["ok"] for k in range(7, 21)}}
    assert p.loc[p.seq == 3, "reordered"].item() is True
    assert not p.loc[p.seq.isin([1, 2, 4, 7]) & (p.status == "ok"), "reordered"].any()
    late = p.loc[p.seq == 5, "rtt_ms"].item()
    assert 550 < late < 2000  # held 0.6 s by the responder, beyond the 0.3 s timeout
    held = p.loc[p.seq == 3, "rtt_ms"].item()
    assert held >= 45  # answered only after probe 4 left, 50 ms later


@pytest.mark.parametrize("backend, family", [("raw", 4), ("dgram", 6)])
def test_icmp_unreachable_from_a_router(tmp_path, backend, family):
    need_root("network namespaces")
    from qoslab.lab import Testbed

    with Testbed(router=True, ipv6=family == 6) as tb:
        router, client = tb.ns("router"), tb.ns("client")
        router.sysctl("net.ipv4.icmp_ratelimit", 0)
        router.sysctl("net.ipv6.icmp.ratelimit", 0)
        v = "-6" if family == 6 else "-4"
        router.ip(v, "route", "add", "unreachable", tb.addr("server", family))
        client.sysctl("net.ipv4.ping_group_range", "0 2147483647")
        run = _pings_in(_Ns(client.name), tmp_path, "u",
                        [tb.addr("server", family), "-c", "4", "-i", "0.05", "-W", "0.5",
                         "--backend", backend])
        router_addr = tb.addr("router", family)
    assert run.probes["status"].tolist() == ["unreachable"] * 4
    what = "host unreachable" if family == 4 else "no route"
    assert run.probes["detail"].str.contains(f"{what} from {router_addr}").all(), \
        run.probes["detail"].tolist()
    assert run.probes["rtt_ms"].isna().all()


def test_no_route_and_no_answer(lab, tmp_path):
    client = _Ns(lab.ns("client").name)
    client.run(["ip", "route", "add", "unreachable", "10.99.0.0/24"], check=True)
    silent = lab.addr("client").rsplit(".", 1)[0] + ".99"  # on the link, no such host
    t0 = time.monotonic()
    run = _pings_in(client, tmp_path, "n", ["10.99.0.1", silent, "-c", "3", "-i", "0.05",
                                            "-W", "0.3"])
    assert time.monotonic() - t0 < 20
    p = run.probes
    assert p.loc[p.host == "10.99.0.1", "status"].tolist() == ["unreachable"] * 3
    assert p.loc[p.host == "10.99.0.1", "detail"].str.startswith("send failed").all()
    assert p.loc[p.host == silent, "status"].tolist() == ["lost"] * 3


def test_icmp_error_quoting_our_probe_is_matched_by_identifier():
    outer = bytes.fromhex("45000038000000004001" "0000" "0a000001" "0a000002")
    err = bytes.fromhex("0b000000" "00000000")  # time exceeded in transit
    inner_ip = bytes.fromhex("4500001c000000000101" "0000" "0a000002" "0a000063")
    inner_icmp = bytes.fromhex("08000000" "1234" "0009")
    rep = parse_raw4(outer + err + inner_ip + inner_icmp, 0x1234)
    assert (rep.kind, rep.seq, rep.detail) == ("time_exceeded", 9,
                                               "time to live exceeded from 10.0.0.1")
    assert parse_raw4(outer + err + inner_ip + inner_icmp, 0x9999) is None


def test_interval_below_what_a_backend_can_do():
    with pytest.raises(qoslab.ConfigError, match="below what the raw backend can do"):
        qoslab.ping("127.0.0.1", interval=0.00001, count=1, backend="raw")
    with pytest.raises(qoslab.ConfigError, match="interval"):
        qoslab.ping("127.0.0.1", interval=0, count=1)


def test_inside_a_running_event_loop_with_a_progress_callback(tmp_path):
    """A notebook has a running loop: the run moves to a worker thread; progress is reported."""
    import asyncio

    seen = []

    async def in_notebook():
        return qoslab.ping("127.0.0.1", interval=0.01, count=30,
                           progress=lambda done, total: seen.append((done, total)),
                           path=tmp_path / "nb.json.gz")

    run = asyncio.run(in_notebook())
    assert (run.probes["status"] == "ok").sum() == 30
    assert seen and seen[-1] == (30, 30) and all(t == 30 for _, t in seen)
    assert len(qoslab.load(tmp_path / "nb.json.gz").probes) == 30
