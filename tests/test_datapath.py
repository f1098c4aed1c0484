"""The userspace datapath's parts (qoslab/datapath) without namespaces: flow keys, the
userspace tunnel, its pcap, its plan, and the live loop on a socket pair instead of a TUN."""

from __future__ import annotations

import json
import math
import os
import random
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrHopByHop
from scapy.packet import Raw

import qoslab
from qoslab.capture.frames import decode_frames
from qoslab.datapath.engine import Decapsulator, Router
from qoslab.datapath.packets import PacketFlows, flow_key
from qoslab.datapath.pcapfile import PcapWriter
from qoslab.datapath.plan import Plan, tree_profile
from qoslab.datapath.tunnel import Encapsulator, TunnelEnd, decapsulate, ipv4_checksum
from qoslab.errors import ConfigError
from qoslab.qdiscs import ConfigChange, Pfifo, Sfq
from qoslab.qdiscs.seeds import seed_schedule
from qoslab.replay import FlowIndex
from qoslab.replay.flows import flow_columns


def random_packets(n: int, seed: int = 1) -> list[bytes]:
    """IPv4/IPv6 packets of many shapes: TCP, UDP, ICMP echo, options, fragments, extension
    headers, IP-in-IP — with per-packet fields (TTL, IP id, sequence numbers) varying."""
    rng = random.Random(seed)
    v4 = [f"10.0.{rng.randrange(3)}.{rng.randrange(1, 4)}" for _ in range(6)]
    v6 = [f"fd00::{rng.randrange(1, 5)}" for _ in range(4)]
    out = []
    for _ in range(n):
        kind = rng.randrange(9)
        ttl, ident = rng.randrange(1, 255), rng.randrange(65536)
        tos = rng.choice([0, 0, 0x10, 0x08, 0x02])
        if kind in (0, 1):
            pkt = IP(src=rng.choice(v4), dst=rng.choice(v4), tos=tos, ttl=ttl, id=ident) / \
                TCP(sport=rng.choice([40000, 40001]), dport=22, seq=rng.randrange(2**32),
                    flags="A") / Raw(bytes(rng.randrange(0, 200)))
        elif kind == 2:
            pkt = IP(src=rng.choice(v4), dst=rng.choice(v4), tos=tos, ttl=ttl) / \
                UDP(sport=5001, dport=rng.choice([5001, 53])) / Raw(bytes(20))
        elif kind == 3:
            pkt = IP(src=rng.choice(v4), dst=rng.choice(v4), ttl=ttl, id=ident) / \
                ICMP(id=rng.choice([0x1000, 0x1001]), seq=rng.randrange(65536)) / Raw(bytes(56))
        elif kind == 4:
            pkt = IPv6(src=rng.choice(v6), dst=rng.choice(v6), hlim=ttl, tc=tos,
                       fl=rng.choice([0, 7])) / ICMPv6EchoRequest(id=7, seq=ident)
        elif kind == 5:
            inner = IP(src=rng.choice(v4), dst=rng.choice(v4), tos=tos, ttl=ttl, id=ident) / \
                TCP(sport=40000, dport=rng.choice([22, 80]), seq=ident) / Raw(bytes(10))
            pkt = IP(src="192.0.2.1", dst="198.51.100.1", ttl=ttl, id=ident, tos=tos) / inner
        elif kind == 6:  # options: never a byte key, always the decoder
            pkt = IP(src=rng.choice(v4), dst=rng.choice(v4), options=[IPOption_RR()]) / \
                UDP(sport=1, dport=2) / Raw(bytes(8))
        elif kind == 7:  # a fragment
            pkt = IP(src=rng.choice(v4), dst=rng.choice(v4), flags=rng.choice([1, 0]),
                     frag=rng.choice([0, 10]), id=ident) / Raw(bytes(40))
        else:  # an extension header
            pkt = IPv6(src=rng.choice(v6), dst=rng.choice(v6), hlim=ttl) / \
                IPv6ExtHdrHopByHop() / UDP(sport=1, dport=2) / Raw(bytes(8))
        out.append(bytes(pkt))
    return out


def test_packets_with_one_byte_key_are_one_flow_row():
    """A byte key is never less specific than a flow: packets sharing a key decode to the same
    flow row, and the live flow ids are those replay gives the decoded packets."""
    pkts = random_packets(300)
    frame = decode_frames(pkts)
    cols = flow_columns(frame)
    keys = [flow_key(p) for p in pkts]
    rows = frame[cols].astype(object).where(frame[cols].notna(), None)
    by_key: dict[bytes, tuple] = {}
    for k, row in zip(keys, rows.itertuples(index=False, name=None), strict=True):
        if k is not None:
            assert by_key.setdefault(k, row) == row
    assert sum(k is None for k in keys) > 25  # options, fragments, extension headers
    live = PacketFlows()
    fids = [live.fid(p) for p in pkts]
    assert fids == FlowIndex().fids(frame).tolist()
    # decoded: the first packet of each byte key, and every packet without one
    assert live.decoded == len({k for k in keys if k is not None}) + keys.count(None)


def test_userspace_tunnel_packets_are_what_the_decoder_calls_4in4_6in4():
    inner4 = bytes(IP(src="10.71.1.2", dst="10.0.9.1", tos=0x0a) / TCP(sport=40000, dport=22))
    inner6 = bytes(IPv6(src="fd71:1::2", dst="fd00:9::1", tc=0x11) / ICMPv6EchoRequest())
    enc = Encapsulator({"10.0.9.1": TunnelEnd("192.0.2.1", "198.51.100.1"),
                        "fd00:9::1": TunnelEnd("192.0.2.1", "198.51.100.1", tos=0x20),
                        "10.0.9.2": TunnelEnd("2001:db8::1", "2001:db8::2")})
    a, b = enc.wrap(inner4), enc.wrap(inner6)
    c = enc.wrap(inner4.replace(bytes([10, 0, 9, 1]), bytes([10, 0, 9, 2]), 1))
    frame = decode_frames([a, b, c])
    assert frame["tunnel"].tolist() == ["4in4", "6in4", "4in6"]
    assert frame["problem"].eq("").all()
    assert frame["inner_dport"].iloc[0] == 22 and frame["inner_sport"].iloc[0] == 40000
    assert frame["tos"].tolist() == [0x0a, 0x21, 0x0a]  # inherited; set with the ECN bits kept
    assert ipv4_checksum(a[:20]) == 0 and IP(a).chksum == IP(bytes(IP(a))).chksum
    assert decapsulate(a) == inner4 and decapsulate(b) == inner6 and decapsulate(c)[:1] == b"E"
    assert decapsulate(inner4) is None
    assert enc.wrap(bytes(IP(dst="10.9.9.9") / UDP())) is None


def test_the_datapath_pcap_reads_back_exactly(tmp_path):
    pkts = random_packets(50, seed=3)
    stamps = [1_733_000_000_000_000_000 + 1_234_567 * i for i in range(50)]
    with open(tmp_path / "x.pcap", "wb") as fh:
        w = PcapWriter(fh)
        for p, t in zip(pkts, stamps, strict=True):
            w.write(p, t)
    back = qoslab.read_capture(tmp_path / "x.pcap")
    assert back["time"].astype("int64").tolist() == stamps
    assert back["wire_len"].tolist() == [len(p) + 14 for p in pkts]
    cols = flow_columns(decode_frames(pkts))
    pd.testing.assert_frame_equal(back[cols], decode_frames(pkts)[cols])


def _plan(tmp_path, tree, **kw) -> Plan:
    kw.setdefault("link", {"rate": 1e6, "overhead": 0, "mtu": 1500, "txqueuelen": 1000})
    return Plan("router", "ql0001-t0", tree=tree.to_tc(), profile=tree_profile(tree),
                log=str(tmp_path / "log.npz"), flows=str(tmp_path / "flows.json"), **kw)


def test_plans_carry_trees_and_changes_as_tc_text(tmp_path):
    from qoslab.scenarios import get

    setup = get("tunnel_keys").setup(duration=20.0, switch_at=10.0)
    profile = tree_profile(setup.qdisc, setup.changes)
    sched = seed_schedule(setup.qdisc, 20.0, 1)
    plan = Plan("router", "ql0001-t0", tree=setup.qdisc.to_tc(), profile=profile,
                seeds=[f"{s:x}" for s in sched.seeds], seed_times=sched.times,
                changes=Plan.changes_of(setup.changes, profile),
                tunnels={"10.0.9.1": {"local": "192.0.2.1", "remote": "198.51.100.1",
                                      "tos": "inherit"}})
    plan.save(tmp_path / "p.json")
    back = Plan.load(tmp_path / "p.json")
    assert back.qdisc_tree() == setup.qdisc
    assert back.config_changes()[0].classifier == setup.changes[0].classifier
    assert back.tunnel_ends()["10.0.9.1"].remote == "198.51.100.1"
    doc = json.loads((tmp_path / "p.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**doc, "exec": "rm -rf /"}))
    with pytest.raises(ConfigError, match="unknown field"):
        Plan.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="profiles"):
        tree_profile(Sfq(profile="5.18+"), (ConfigChange(1.0, "x", qdisc=Sfq(
            profile="classic-2.6.3x")),))


class _Wire:
    """A socket pair standing in for a TUN device: the test is the kernel."""

    def __init__(self) -> None:
        self.kernel, self.dev = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.dev.setblocking(False)
        self.ctl_r, self.ctl_w = os.pipe()
        os.set_blocking(self.ctl_r, False)
        self.kernel.settimeout(5)

    def say(self, msg: dict) -> None:
        os.write(self.ctl_w, (json.dumps(msg) + "\n").encode())


def _run(role) -> threading.Thread:
    th = threading.Thread(target=role.run, daemon=True)
    th.start()
    return th


def test_the_live_loop_is_the_link_and_decides_as_replay(tmp_path):
    """Packets through the live loop: the link's rate and the delay line hold on the wall
    clock, hash changes come at their scenario times, and replaying the logged arrivals
    through the same tree gives the same buckets, drops and departures."""
    tree = Sfq(limit=8, perturb=1, profile="classic-2.6.3x")
    sched = seed_schedule(tree, 30.0, 4)
    plan = _plan(tmp_path, tree, delay=0.02, seeds=[f"{s:x}" for s in sched.seeds],
                 seed_times=sched.times, seed_details=sched.events["detail"].tolist())
    wire = _Wire()
    events = []
    router = Router(plan, wire.dev.fileno(), wire.ctl_r, report=events.append)
    th = _run(router)
    t0 = time.monotonic_ns()
    wire.say({"t0_ns": t0})
    pkts = [bytes(IP(src="10.0.0.1", dst=f"10.0.9.{1 + i % 3}") / UDP(sport=5000 + i % 3) /
                  Raw(bytes(1000))) for i in range(300)]
    got, t_got = [], []

    def sink():
        while len(got) < 300:
            try:
                got.append(wire.kernel.recv(65536))
            except TimeoutError:
                return
            t_got.append(time.monotonic_ns())
    reader = threading.Thread(target=sink, daemon=True)
    reader.start()
    for i, p in enumerate(pkts):  # 3 flows at ~1.6 Mbit/s into a 1 Mbit/s link
        wire.kernel.send(p)
        time.sleep(0.005 if i % 10 else 0.02)
    time.sleep(1.0)
    wire.say({"stop": True})
    th.join(15)
    reader.join(5)
    summary = router.save()
    log = np.load(tmp_path / "log.npz")
    n = len(log["fid"])
    assert n == 300 and summary["packets"] == 300
    sent = ~log["dropped"]
    assert 0 < log["dropped"].sum() < 150 and summary["written"] == sent.sum() == len(got)
    dep = np.sort(log["t_departure"][sent])
    gap = np.diff(dep)
    assert gap.min() >= (1028 + 14) * 8 / 1e6 - 1e-9  # one packet at a time at 1 Mbit/s
    # each packet leaves the process after its last bit + 20 ms of delay (+ scheduling)
    released = np.sort(log["t_departure"][sent] + (1028 + 14) * 8 / 1e6 + 0.02) + \
        summary["origin_ns"] / 1e9
    late = (np.asarray(t_got) / 1e9 - released[:len(t_got)])
    assert np.median(late) < 0.002 and late.min() > -1e-4
    changes = [e["event"]["t"] for e in events]
    assert changes[:3] == [1.0, 2.0, 3.0]
    # the same arrivals replayed on the loop's clock (seconds since its origin): the same
    # decisions, packet by packet
    origin = summary["origin_ns"]
    times = [(t0 + round(t * 1e9) - origin) / 1e9 for t in sched.times]
    frame = decode_frames(pkts).assign(t=log["t_arrival"], wire_len=[len(p) + 14 for p in pkts])
    rp = qoslab.replay(frame, tree, rate=1e6, seeds=sched.seeds, seed_times=times)
    d = rp.decisions
    np.testing.assert_array_equal(d["queue"], log["queue"])
    np.testing.assert_array_equal(d["seed_index"], log["seed_index"])
    np.testing.assert_array_equal(d["dropped"], log["dropped"])
    np.testing.assert_array_equal(d["t_departure"], log["t_departure"])


def test_a_pfifo_datapath_adds_little_latency(tmp_path):
    wire = _Wire()
    router = Router(_plan(tmp_path, Pfifo(limit=100), link={"rate": 1e10, "overhead": 0,
                                                          "mtu": 1500, "txqueuelen": 1000}),
                    wire.dev.fileno(), wire.ctl_r, report=lambda e: None)
    th = _run(router)
    pkt = bytes(IP(dst="10.0.0.2") / UDP() / Raw(bytes(1400)))
    delays = []
    for _ in range(200):
        t = time.monotonic_ns()
        wire.kernel.send(pkt)
        wire.kernel.recv(2000)
        delays.append((time.monotonic_ns() - t) / 1e6)
        time.sleep(0.001)
    wire.say({"stop": True})
    th.join(10)
    assert np.median(delays) < 2.0  # a socket round trip and the loop; benchmarks measure it
    assert router.save()["packets"] == 200


def test_the_far_end_strips_the_tunnel_and_stops_when_told():
    wire = _Wire()
    decap = Decapsulator(None, wire.dev.fileno(), wire.ctl_r)
    th = _run(decap)
    inner = bytes(IP(src="10.71.1.2", dst="10.0.9.1") / TCP(dport=22))
    outer = Encapsulator({"10.0.9.1": TunnelEnd("192.0.2.1", "198.51.100.1")}).wrap(inner)
    wire.kernel.send(outer)
    assert wire.kernel.recv(2000) == inner
    wire.kernel.send(inner)  # not a tunnel packet: not given back
    time.sleep(0.3)
    os.close(wire.ctl_w)  # the parent is gone
    th.join(5)
    assert not th.is_alive() and decap.save() == {"packets": 2, "decapsulated": 1}
    assert math.isfinite(decap.packets)


def _datapath_flows(packets: list[bytes]) -> pd.DataFrame:
    """The flow table a datapath writes for these packets (flows.json, read back)."""
    index = FlowIndex()
    index.fids(decode_frames(packets, linktype=101))
    frame = index.table.frame
    doc = json.loads(json.dumps(qoslab.runs.jsonable(
        frame.astype(object).where(frame.notna(), None).to_dict("list"))))
    return pd.DataFrame(doc)


def test_the_datapaths_flows_are_named_by_the_simulators_streams():
    """The bed's packets carry its own headers (client address, the ping runner's ICMP ids,
    ephemeral source ports); each flow still maps to the traffic spec that sent it — by the
    name the simulator's DECISIONS ``stream`` holds — so the two logs join on ``stream``."""
    from qoslab.scenarios import get
    from qoslab.scenarios.backend_userspace import UserspaceBed

    def bed(name, **values):
        sc = get(name)
        vals = sc.values(values)
        return UserspaceBed(sc.build(vals), sc, vals, path=None, capture=None, force=False,
                            progress=None)

    me = "10.71.1.2"
    flows = _datapath_flows([
        bytes(IP(src=me, dst="10.0.1.1", tos=0x10) / ICMP(id=0x54f)),
        bytes(IP(src=me, dst="10.0.1.1", tos=0x00) / ICMP(id=0x550)),
        bytes(IP(src=me, dst="10.0.1.1", tos=0x08) / ICMP(id=0x551)),
        bytes(IP(src=me, dst="10.0.9.1") / UDP(sport=43881, dport=9000) / Raw(b"x" * 900)),
        bytes(IP(src=me, dst="10.0.9.1") / UDP(sport=43882, dport=5353)),  # not the flood
    ])
    assert bed("pfifo_fast_tos").stream_names(flows).tolist() == [
        "10.0.1.1 tos=0x10 size=56", "10.0.1.1 tos=0x00 size=56", "10.0.1.1 tos=0x08 size=56",
        "udp 10.0.0.1:9000 > 10.0.9.1:9000", None]
    # two ping streams alike: the datapath cannot tell which sent a flow
    twins = bed("pfifo_fast_tos", tos=(0x10, 0x10)).stream_names(flows[:1]).tolist()
    assert twins == [None]
    # tunnelled traffic is matched by its inner header; TCP uploads by the bed's port
    outer = IP(src="192.0.2.1", dst="198.51.100.1", proto=4)
    flows = _datapath_flows([
        bytes(outer / IP(src=me, dst="10.0.2.1") / ICMP(id=7)),
        bytes(outer / IP(src=me, dst="10.0.9.2", tos=0x08) / TCP(sport=50000, dport=20001)),
    ])
    assert bed("tunnel_keys").stream_names(flows).tolist() == [
        "10.0.2.1 tos=0x00 size=56", "tcp 10.0.0.1:40001 > 10.0.9.2:22"]
