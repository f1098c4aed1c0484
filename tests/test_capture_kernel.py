"""Captures of real kernel traffic, made here, against tshark: every column, echo RTTs and TCP
ack RTTs.

Two network namespaces joined by a veth pair carry, all at once: plain IPv4/IPv6 pings (small
and fragmented), pings through two Linux VXLAN devices (an IPv4 underlay on port 4789 and an
IPv6 underlay on port 8472, Linux's old default), large enough to be fragmented inside the
tunnel, and iperf3 uploads over the plain link and through the VXLAN tunnel, shaped by a TBF
so that queues build. tcpdump captures the client's veth. tshark is the reference for every
PACKETS column (including the inner headers), for ``icmp.resptime`` / ``icmpv6.resptime``
(with its IP reassembly on) and for ``tcp.analysis.ack_rtt``.
"""

from __future__ import annotations

import subprocess
import time
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from qoslab.capture import UDP_TUNNEL_PORTS, echo_rtts, read_capture, tcp_rtts
from tests.conftest import need_root, need_tool
from tests.test_capture_tshark import compare

pytestmark = pytest.mark.netns

PORTS = {**UDP_TUNNEL_PORTS, 8472: "vxlan"}
#: inner (tunnel) addresses: VXLAN over IPv4 (vx4) and over IPv6 (vx6)
INNER = {"vx4": ("192.168.42.{}", "fd42::{}"), "vx6": ("192.168.43.{}", "fd43::{}")}


@lru_cache(maxsize=1)
def _kernel_capture(folder: str) -> str:
    from qoslab.lab import Testbed
    from qoslab.lab.loads import start_tcp_bulk

    path = f"{folder}/kernel.pcap"
    ping = need_tool("ping")
    need_tool("iperf3")
    with Testbed() as tb:
        c, s = tb.ns("client"), tb.ns("server")
        dev = {"client": tb.point("client")[1], "server": tb.point("server")[1]}
        for role, ns, peer, host in (("client", c, "server", 1), ("server", s, "client", 2)):
            for name, vni, family, port in (("vx4", 42, 4, 4789), ("vx6", 4242, 6, 8472)):
                ns.ip("link", "add", name, "type", "vxlan", "id", str(vni), "local",
                      tb.addr(role, family), "remote", tb.addr(peer, family), "dstport",
                      str(port), "dev", dev[role])
                v4, v6 = INNER[name]
                ns.ip("addr", "add", f"{v4.format(host)}/24", "dev", name)
                ns.ip("-6", "addr", "add", f"{v6.format(host)}/64", "dev", name, "nodad")
                ns.ip("link", "set", name, "up")
        tb.tc("client", "qdisc", "add", "dev", "DEV", "root", "tbf", "rate", "30mbit",
              "burst", "30kb", "latency", "80ms")
        cap = tb.capture(path, at="client", bpf=None, snaplen=65535)  # whole: reassembly
        targets = [tb.addr("server", 4), tb.addr("server", 6)]
        targets += [INNER[n][f].format(2) for n in ("vx4", "vx6") for f in (0, 1)]
        bulks = [start_tcp_bulk(c, s, tb.addr("server", 4), duration=2.0, port=5201),
                 start_tcp_bulk(c, s, INNER["vx4"][0].format(2), duration=2.0, port=5202)]
        pings = []
        for size in (56, 3000):  # 3000: fragmented on the link, and inside the tunnels
            for target in targets:
                pings.append(c.run([ping, "-c", "4", "-i", "0.05", "-s", str(size), "-W", "2",
                                    target], check=False, timeout=30))
        for load in bulks:
            load.wait(timeout=30)
        time.sleep(0.3)
        cap.stop()
    assert all(p.returncode == 0 for p in pings), [p.stdout[-200:] for p in pings]
    return path


@pytest.fixture(scope="module")
def kernel_pcap(tmp_path_factory):
    need_root("network namespaces")
    need_tool("tshark")
    need_tool("tcpdump")
    return _kernel_capture(str(tmp_path_factory.mktemp("kernel")))


def _tshark(path, fields, *extra):
    cmd = [need_tool("tshark"), "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f"]
    for port, kind in PORTS.items():
        cmd += ["-d", f"udp.port=={port},{kind}"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd + list(extra), capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_kernel_traffic_matches_tshark_in_every_column(kernel_pcap):
    df = compare(kernel_pcap, udp_tunnels=PORTS)
    assert len(df) > 1000
    kinds = df["tunnel"].astype(str)
    assert ((kinds == "vxlan") & (df["ip_version"] == 4) & (df["dport"] == 4789)).sum() > 50
    assert ((kinds == "vxlan") & (df["ip_version"] == 6) & (df["dport"] == 8472)).sum() > 20
    vx = df[kinds == "vxlan"]
    assert set(vx["tunnel_id"].dropna()) == {42, 4242}
    assert vx["inner_frag_more"].any() and vx["frag"].sum() == 0  # fragmented inside only
    assert df.loc[kinds == "none", "frag"].any()  # and plain pings fragmented on the link
    assert (df["problem"] == "").all()


def test_echo_rtts_equal_tshark_resptime(kernel_pcap):
    """Fragmented and tunnelled pings: paired on the reassembled datagram, at the time of the
    fragment that completed it, exactly as tshark's icmp.resptime (reassembly on)."""
    ref = {}
    for frame, r4, r6 in _tshark(kernel_pcap, ["frame.number", "icmp.resptime",
                                               "icmpv6.resptime"]):
        if r4 or r6:
            ref[int(frame) - 1] = float(r4 or r6) / 1000  # tshark's resptime is in ms
    probes = echo_rtts(read_capture(kernel_pcap, udp_tunnels=PORTS))
    ours = probes[probes["status"] == "ok"]
    got = dict(zip(ours["reply_row"].astype(int), ours["rtt_ms"] / 1000, strict=True))
    # 6 destinations x 2 sizes x 4 pings (the bulk uploads may cost a ping or two)
    assert len(ref) >= 40 and set(got) == set(ref)
    assert max(abs(got[k] - ref[k]) for k in ref) < 1e-9
    assert sorted(ours["size"].unique().tolist()) == [56, 3000]
    hosts = set(ours.loc[ours["size"] == 3000, "host"])
    assert {"192.168.42.2", "fd42::2", "192.168.43.2", "fd43::2"} <= hosts  # in the tunnels
    assert len(probes) - len(ours) == (probes["status"] == "lost").sum()


def test_tcp_rtts_equal_tshark_ack_rtt(kernel_pcap):
    """iperf3 over the shaped link and through the VXLAN tunnel: every ack_rtt tshark finds,
    from the same segment, to the nanosecond; each TCP flow is one PROBES stream."""
    ref = {}
    for frame, rtt, acked in _tshark(kernel_pcap, ["frame.number", "tcp.analysis.ack_rtt",
                                                   "tcp.analysis.acks_frame"]):
        if rtt:
            ref[int(frame) - 1] = (float(rtt), int(acked) - 1)
    packets = read_capture(kernel_pcap, udp_tunnels=PORTS)
    rtt = tcp_rtts(packets)
    got = {int(a): (r / 1000, int(s)) for a, r, s in
           zip(rtt["ack_row"], rtt["rtt_ms"], rtt["segment_row"], strict=True)}
    assert len(ref) > 500 and set(got) == set(ref)
    assert all(got[k][1] == ref[k][1] for k in ref)
    assert max(abs(got[k][0] - ref[k][0]) for k in ref) < 1e-9
    streams = set(rtt["stream"])
    assert any(":5201 tcp" in st for st in streams) and any(":5202 tcp" in st for st in streams)
    tunnelled = rtt[rtt["stream"].str.contains("192.168.42.1")]
    assert len(tunnelled) > 100 and (tunnelled["ttl"].isna()).all()
    assert (rtt["kind"] == "handshake").sum() >= 4
    assert np.nanmedian(rtt.loc[rtt["kind"] == "data", "rtt_ms"]) > 0


def test_kernel_capture_as_pcapng_reads_the_same(kernel_pcap, tmp_path):
    """editcap's pcapng of the same capture (nanosecond blocks) gives the same table."""
    editcap = need_tool("editcap")
    ng = tmp_path / "kernel.pcapng"
    subprocess.run([editcap, "-F", "pcapng", kernel_pcap, str(ng)], check=True, timeout=60)
    a = read_capture(kernel_pcap, udp_tunnels=PORTS)
    b = read_capture(ng, udp_tunnels=PORTS)
    pd.testing.assert_frame_equal(a, b)
