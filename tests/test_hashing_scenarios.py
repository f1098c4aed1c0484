"""Scapy-crafted captures through the hash reimplementations: the "Must show" scenarios.

Packets are crafted with scapy, written to a pcap and decoded with qoslab's own capture
reader, so the PACKETS columns are exactly what a user's capture would give.
"""

from __future__ import annotations

import numpy as np
import pytest
from scapy.all import GRE, ICMP, IP, TCP, UDP, VXLAN, IPv6, wrpcap
from scapy.all import Ether as _Ether

from qoslab import FlowClassifier, Sfq
from qoslab.capture import read_capture
from qoslab.hashing import fq_codel_index, pfifo_fast_band, skb_hash

PLAIN = "src,dst,proto,proto-src,proto-dst"
TUNNEL = "tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst"
KEY = bytes(range(16))


def Ether():  # noqa: N802 - explicit addresses: scapy must not resolve (ARP/ND) anything
    return _Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def capture(tmp_path, packets, name="c.pcap"):
    path = tmp_path / name
    wrpcap(str(path), packets)
    return read_capture(str(path))


def outer(kind: str, tos: int = 0):
    """Outer header of a tunnel whose payload is IPv4 (4inX) or IPv6 (6inX)."""
    if kind.endswith("in4"):
        return IP(src="198.51.100.1", dst="198.51.100.2", tos=tos)
    return IPv6(src="2001:db8::1", dst="2001:db8::2", tc=tos)


def inner_flows(kind: str, n: int = 8):
    out = []
    for i in range(n):
        if kind.startswith("4"):
            ip = IP(src=f"10.0.{i}.1", dst="10.9.9.9")
        else:
            ip = IPv6(src=f"fd00::{i + 1}", dst="fd00::99")
        l4 = TCP(sport=40000 + i, dport=80) if i % 2 else UDP(sport=5000 + i, dport=53)
        out.append(ip / l4)
    return out


@pytest.fixture(scope="module", params=["4in4", "6in4", "4in6", "6in6"])
def tunnelled(request, tmp_path_factory):
    kind = request.param
    pk = capture(tmp_path_factory.mktemp(kind),
                 [Ether() / outer(kind) / f for f in inner_flows(kind)])
    assert (pk["tunnel"].astype(str) == kind).all()
    return pk


def test_classic_plain_keys_put_all_tunnelled_flows_in_one_class(tunnelled):
    fc = FlowClassifier(PLAIN, divisor=1024, profile="classic-2.6.3x")
    for seed in (0, 0x12345678):
        assert len(set(fc.classify(tunnelled, seed))) == 1


def test_tunnel_keys_separate_the_tunnelled_flows(tunnelled):
    fc = FlowClassifier(PLAIN + "," + TUNNEL, divisor=1024, profile="tunnel-patch")
    # the keys differ per flow; with these fixed seeds no two of the 8 flows collide
    assert len(np.unique(fc.key_matrix(tunnelled), axis=0)) == 8
    for seed in (0, 0x12345678):
        assert len(set(fc.classify(tunnelled, seed))) == 8


@pytest.mark.parametrize("profile", ["3.19-4.1", "4.2-5.3", "5.4-siphash", "5.18+"])
def test_dissector_eras_see_the_inner_headers_with_plain_keys(tunnelled, profile):
    fc = FlowClassifier(PLAIN, divisor=1024, profile=profile)
    assert len(np.unique(fc.key_matrix(tunnelled), axis=0)) == 8
    assert len(set(fc.classify(tunnelled, 0x12345678))) == 8


def test_3x_dissector_follows_only_ipip_from_ipv4(tunnelled):
    """3.3–3.18: protocol 4 re-parses the payload as the outer family; 41 is not followed."""
    kind = tunnelled["tunnel"].iloc[0]
    keys = FlowClassifier(PLAIN, divisor=1024, profile="3.x-dissector").key_matrix(tunnelled)
    if kind == "4in4":
        assert len(np.unique(keys, axis=0)) == 8
    elif kind in ("6in4", "6in6"):  # the outer header and protocol 41: one class
        assert len(np.unique(keys, axis=0)) == 1
        assert keys[0, 2] == 41


def test_tunnel_keys_on_plain_traffic_equal_the_plain_keys(tmp_path):
    pk = capture(tmp_path, [Ether() / f for f in inner_flows("4in4")])
    fc = FlowClassifier(PLAIN + "," + TUNNEL, profile="tunnel-patch")
    m = fc.key_matrix(pk)
    assert (m[:, :5] == m[:, 5:]).all()


@pytest.fixture(scope="module")
def tos_pings(tmp_path_factory):
    """ICMP echo over IPIP, TOS inherited by the outer header, differing only in TOS."""
    pk = []
    for tos in (0x00, 0x10, 0x08, 0x04):
        for seq in range(3):
            pk.append(Ether() / IP(src="198.51.100.1", dst="198.51.100.2", tos=tos)
                      / IP(src="10.0.0.1", dst="10.9.9.9", tos=tos) / ICMP(id=7, seq=seq))
    return capture(tmp_path_factory.mktemp("tos"), pk)


def test_tos_pings_get_different_classes_through_proto_dst_in_2637(tos_pings):
    fc = FlowClassifier(PLAIN, divisor=1024, profile="2.6.37-3.2")
    keys = fc.key_matrix(tos_pings)
    # src, dst, proto, proto-src equal for all; proto-dst (addr_fold of the route) per TOS
    assert len(np.unique(keys[:, :4], axis=0)) == 1
    assert len(set(keys[:, 4])) == 4
    minors = fc.classify(tos_pings, 0x12345678).reshape(4, 3)
    assert (minors == minors[:, :1]).all()  # same TOS, same class
    assert len(set(minors[:, 0])) == 4


@pytest.mark.parametrize("profile", ["proposed-fix", "classic-2.6.3x", "3.x-dissector"])
def test_tos_pings_share_a_class_where_no_route_entry_per_tos_is_hashed(tos_pings, profile):
    keys = PLAIN + ("," + TUNNEL if profile == "proposed-fix" else "")
    fc = FlowClassifier(keys, divisor=1024, profile=profile)
    assert len(set(fc.classify(tos_pings, 0x12345678))) == 1
    if profile == "proposed-fix":
        assert (fc.key_matrix(tos_pings)[:, [3, 4, 8, 9]] == 0).all()


def test_tos_values_sharing_a_routing_cache_entry_share_a_class(tmp_path):
    # the routing cache compares TOS & IPTOS_RT_MASK (0x1c): 0x20 (CS1) and 0x00 share a route
    pk = capture(tmp_path, [Ether() / IP(src="10.0.0.1", dst="10.9.9.9", tos=t) / ICMP()
                            for t in (0x00, 0x20, 0x10)])
    minors = FlowClassifier(PLAIN, divisor=1024, profile="2.6.37-3.2").classify(pk, 1)
    assert minors[0] == minors[1] != minors[2]


def test_map_mode_mark_is_deterministic(tmp_path):
    pk = capture(tmp_path, [Ether() / IP(src="10.0.0.1", dst="10.9.9.9") / UDP(sport=1, dport=2)
                            ] * 5)
    marks = np.array([0, 1, 0x3FF, 0x400, 0x12345])
    pk = pk.assign(mark=marks)
    fc = FlowClassifier.from_tc("tc filter add dev eth0 parent 1: protocol all handle 1 "
                                "flow map key mark and 0x3ff")
    for seed in (0, 0xDEADBEEF):
        assert fc.classify(pk, seed).tolist() == ((marks & 0x3FF) + 1).tolist()
    assert Sfq(classifier=fc).bucket(pk).tolist() == (marks & 0x3FF).tolist()


@pytest.fixture(scope="module")
def both_directions(tmp_path_factory):
    pk = [Ether() / IP(src="192.168.1.10", dst="10.0.0.1") / TCP(sport=12345, dport=80),
          Ether() / IP(src="10.0.0.1", dst="192.168.1.10") / TCP(sport=80, dport=12345),
          Ether() / IPv6(src="2001:db8::5", dst="2001:db8::1") / UDP(sport=999, dport=53),
          Ether() / IPv6(src="2001:db8::1", dst="2001:db8::5") / UDP(sport=53, dport=999)]
    return capture(tmp_path_factory.mktemp("dirs"), pk)


@pytest.mark.parametrize("profile, seeds", [
    ("4.2-5.3", (0, 0x12345678, 0xDEADBEEF)), ("4.18-5.3", (0, 7)),
    ("5.4-siphash", (KEY, 1, 2**127 + 5)), ("5.18+", (KEY, 0, 99)),
])
def test_reverse_direction_shares_sfq_and_fq_codel_buckets_from_4_2(both_directions, profile,
                                                                    seeds):
    for seed in seeds:
        b = Sfq(profile=profile).bucket(both_directions, seed)
        q = fq_codel_index(both_directions, 1024, seed, profile)
        assert b[0] == b[1] and b[2] == b[3]
        assert q[0] == q[1] and q[2] == q[3]


@pytest.mark.parametrize("profile", ["classic-2.6.3x", "2.6.37-3.2", "3.x-dissector", "5.18+"])
def test_reverse_direction_never_shares_through_cls_flow(both_directions, profile):
    fc = FlowClassifier(PLAIN, divisor=1024, profile=profile)
    m = fc.key_matrix(both_directions)
    assert (m[0] != m[1]).any() and (m[2] != m[3]).any()
    for seed in (0, 0x12345678, 0xDEADBEEF):
        c = fc.classify(both_directions, seed)
        assert c[0] != c[1] and c[2] != c[3]


def test_classic_sfq_separates_directions(both_directions):
    b = Sfq(profile="classic-2.6.3x").bucket(both_directions, 0)
    assert b[0] != b[1]


def test_pfifo_fast_ect0_band_from_a_capture(tmp_path):
    pk = capture(tmp_path, [Ether() / IP(src="10.0.0.1", dst="10.9.9.9", tos=t) / ICMP()
                            for t in (0x02, 0x00, 0x10)])
    tos = pk["tos"].to_numpy(dtype=int)
    assert pfifo_fast_band(tos, table="old").tolist() == [2, 1, 0]
    assert pfifo_fast_band(tos, table="new").tolist() == [1, 1, 0]


@pytest.mark.parametrize("line", [
    "tc filter add dev eth0 parent 1: protocol all prio 1 handle 1 flow hash keys "
    "src,dst,proto,proto-src,proto-dst divisor 1024 perturb 10",
    "tc filter add dev ifb0 parent 1:0 protocol ip handle 3 flow hash keys nfct-src,nfct-dst "
    "divisor 256 baseclass 1:10",
    "tc filter add dev eth0 parent 10: protocol ip handle 1 flow map key mark and 0x3ff",
    "tc filter add dev eth0 parent 1: handle 1 flow map key priority and 0xff xor 0x10 "
    "rshift 2 addend 3 divisor 64",
    "tc filter add dev eth0 parent 1: handle 1 flow map key dst or 0x0f addend -10.0.0.0",
])
def test_from_tc_to_tc_round_trip(line, both_directions):
    fc = FlowClassifier.from_tc(line, profile="5.18+")
    again = FlowClassifier.from_tc(fc.to_tc(), profile="5.18+")
    assert again.to_tc() == fc.to_tc()
    pk = both_directions.assign(mark=[1, 2, 3, 4], priority=[5, 6, 7, 8])
    assert fc.classify(pk, 42).tolist() == again.classify(pk, 42).tolist()


def test_from_tc_folds_operators_as_iproute2():
    fc = FlowClassifier.from_tc("flow map key dst or 0x0f xor 0x100 and 0xfff")
    # or 0xf: mask = ~0xf, xor = 0xf; xor 0x100: xor = 0x10f; and 0xfff: mask, xor &= 0xfff
    assert (fc.mask, fc.xor) == (0xFF0, 0x10F)
    fc = FlowClassifier.from_tc("tc filter add dev e parent 1: flow map key dst addend -10.0.0.0")
    assert fc.addend == (-0x0A000000) & 0xFFFFFFFF
    assert FlowClassifier.from_tc("parent 7: flow hash keys src").baseclass == 0x70001


# ------------------------------------------------------------------ GRE, NVGRE, VXLAN, Geneve
def _gre_capture(tmp_path, name, layers):
    return capture(tmp_path, [Ether() / outer("4in4") / layer / f
                              for layer, f in zip(layers, inner_flows("4in4"), strict=True)],
                   name=name)


def test_gre_is_followed_by_every_dissector_and_by_no_earlier_kernel(tmp_path):
    pk = _gre_capture(tmp_path, "gre.pcap", [GRE()] * 8)
    assert (pk["tunnel"].astype(str) == "gre").all()
    for profile in ("3.3", "3.x-dissector", "4.2-5.3", "5.18+"):
        keys = FlowClassifier(PLAIN, profile=profile).key_matrix(pk)
        assert len(np.unique(keys, axis=0)) == 8, profile
    # before 3.3 cls_flow reads the outer header: one flow
    keys = FlowClassifier(PLAIN, profile="2.6.37-3.2").key_matrix(pk)
    assert len(np.unique(keys, axis=0)) == 1


def test_the_gre_key_enters_the_flow_keys_hash_from_4_2(tmp_path):
    one = [Ether() / outer("4in4") / GRE(key_present=1, key=k) / inner_flows("4in4")[0]
           for k in (1, 2)]
    pk = capture(tmp_path, one, name="keys.pcap")
    assert skb_hash(pk, KEY, "5.18+")[0] != skb_hash(pk, KEY, "5.18+")[1]
    assert skb_hash(pk, 7, "4.2-5.3")[0] != skb_hash(pk, 7, "4.2-5.3")[1]
    # 3.x rxhash has no key: the same inner flow hashes alike
    assert skb_hash(pk, 7, "4.1")[0] == skb_hash(pk, 7, "4.1")[1]


def test_nvgre_ends_the_3_6_dissection_and_is_followed_from_3_10(tmp_path):

    nv = [Ether() / outer("4in4") / GRE(key_present=1, key=0x10000, proto=0x6558)
          / _Ether(src="0a:00:00:00:00:01", dst="0a:00:00:00:00:02") / f
          for f in inner_flows("4in4")]
    pk = capture(tmp_path, nv, name="nvgre.pcap")
    assert (pk["tunnel"].astype(str) == "nvgre").all()
    assert (skb_hash(pk, 7, "3.6-3.9") == 0).all()  # the dissector gave up: no rxhash
    assert len(set(skb_hash(pk, 7, "3.x-dissector"))) == 8
    keys = FlowClassifier(PLAIN, profile="3.6-3.9").key_matrix(pk)
    assert (keys[:, 2] == 0).all()  # ip_proto 0 (never set), outer addresses


def test_vxlan_and_geneve_are_never_opened(tmp_path):
    vx = [Ether() / outer("4in4") / UDP(sport=50000, dport=4789) / VXLAN(vni=5)
          / _Ether(src="0a:00:00:00:00:01", dst="0a:00:00:00:00:02") / f
          for f in inner_flows("4in4")]
    pk = capture(tmp_path, vx, name="vxlan.pcap")
    assert (pk["tunnel"].astype(str) == "vxlan").all()
    for profile in ("3.x-dissector", "5.18+"):
        keys = FlowClassifier(PLAIN, profile=profile).key_matrix(pk)
        assert len(np.unique(keys, axis=0)) == 1
        assert keys[0, 2] == 17 and keys[0, 4] == 4789
