"""Per-era key semantics on hand-built PACKETS-like frames: each expected value is derived
from the kernel rule it names (docs/kernel-semantics.md §2–§4), not from the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qoslab import ConfigError, FlowClassifier, Sfq
from qoslab.errors import KernelFeatureMissing
from qoslab.hashing import jhash2, jhash_2words, jhash_3words, skb_hash
from qoslab.hashing.sfq import sfq_fold

BASE = {"ip_version": 4, "tos": 0, "frag": False, "tunnel": "none", "inner_src": None,
        "inner_dst": None, "inner_proto": None, "inner_sport": None, "inner_dport": None,
        "sport": None, "dport": None}
F = {"src": "192.168.1.10", "dst": "10.0.0.1", "proto": 6, "sport": 12345, "dport": 80}


def frame(*rows):
    return pd.DataFrame([{**BASE, **r} for r in rows])


def keys(spec, profile, pk, **kw):
    return FlowClassifier(spec, profile=profile, **kw).key_matrix(pk)


def test_big_endian_host_raw_loads():
    # on a big-endian host a raw __be32 load is the network-order value itself
    pk = frame(F)
    h2 = 0xC0A8010A ^ 6 ^ ((12345 << 16) | 80)
    expected = jhash_2words(0x0A000001, h2, 0, algo="lookup2") & 1023
    assert Sfq(profile="classic-2.6.3x", endianness="big").bucket(pk, 0)[0] == expected
    little = jhash_2words(0x0100000A, 0x5A0191F6, 0, algo="lookup2") & 1023
    assert Sfq(profile="classic-2.6.3x").bucket(pk, 0)[0] == little != expected
    # cls_flow keys are ntohl/ntohs values: the same on both hosts
    a = FlowClassifier("src,dst,proto,proto-src,proto-dst", profile="classic-2.6.3x")
    b = FlowClassifier("src,dst,proto,proto-src,proto-dst", profile="classic-2.6.3x",
                       endianness="big")
    assert (a.key_matrix(pk) == b.key_matrix(pk)).all()


def test_pre_jhash_fold_profile():
    pk = frame(F)
    # h = raw daddr, h2 = raw saddr ^ proto ^ raw ports
    assert Sfq(profile="sfq-fold-2.6.2x").bucket(pk, 0)[0] == sfq_fold(
        np.array([0x0100000A], np.uint32), np.array([0x5A0191F6], np.uint32), 0)[0]
    # by hand: 0x0100000a ^ 0x5a0191f6 ^ (0x5a0191f6 >> 31) = 0x5b0191fc;
    # ^ (>> 10) = 0x5b175198; & 0x3ff = 0x198
    assert Sfq(profile="sfq-fold-2.6.2x").bucket(pk, 0)[0] == 0x198
    lite = frame({**F, "proto": 136})
    b = Sfq(profile="sfq-fold-2.6.2x").hash_inputs(lite)
    # 2.6.22's sfq_hash lists UDP-Lite (the oracle's era 2.6.22 agrees): its ports are read
    assert b[0, 1] == (0x0A01A8C0 ^ 136 ^ 0x50003930)
    # the hash alone picks the bucket: no skb->priority override, no filters before 2.6.25
    pri = frame({**F, "priority": 0x10005})
    assert Sfq(profile="sfq-fold-2.6.2x").bucket(pri, 0, handle="1:")[0] == 0x198
    assert Sfq(profile="classic-2.6.3x").bucket(pri, 0, handle="1:")[0] == 4
    with pytest.raises(KernelFeatureMissing):
        FlowClassifier("src", profile="sfq-fold-2.6.2x")


def test_ipv6_address_words_per_era():
    pk = frame({"ip_version": 6, "src": "2001:db8::1:2", "dst": "2001:db8::5", "proto": 17,
                "sport": 1, "dport": 2})
    classic = keys("src,dst", "classic-2.6.3x", pk)[0]
    assert classic.tolist() == [0x00010002, 0x00000005]  # s6_addr32[3] only
    modern = keys("src,dst", "5.18+", pk)[0]
    assert modern.tolist() == [0x20010DB8 ^ 0x00010002, 0x20010DB8 ^ 0x5]  # ipv6_addr_hash


def test_icmp_and_fragments_per_era():
    icmp = frame({"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 1})
    frag = frame({**F, "frag": True})  # first fragment: PACKETS has ports, the kernel not
    spec = "proto,proto-src,proto-dst"
    assert keys(spec, "classic-2.6.3x", icmp)[0].tolist() == [1, 0, 0]
    assert keys(spec, "classic-2.6.3x", frag)[0].tolist() == [6, 0, 0]
    route = keys(spec, "2.6.37-3.2", icmp)[0]
    assert route[1] == 0 and route[2] != 0  # no socket; addr_fold(route) ^ 0x0008
    assert keys(spec, "proposed-fix", icmp)[0].tolist() == [1, 0, 0]
    # 3.x dissector: an IPv4 fragment gets ip_proto 0; modern keeps it; neither has ports
    d3 = keys(spec, "3.x-dissector", frag)[0]
    d5 = keys(spec, "5.18+", frag)[0]
    assert d3[0] == 0 and d5[0] == 6 and d3[2] == d5[2] != 80


def test_route_token_identity():
    pk = frame(*[{"src": "10.0.0.1", "dst": d, "proto": 1, "tos": t}
                 for d, t in (("10.0.0.2", 0), ("10.0.0.2", 0x10), ("10.0.0.3", 0))])
    old = keys("proto-dst", "2.6.37-3.2", pk)[:, 0]
    assert len(set(old)) == 3  # per (destination, TOS)
    new = keys("proto-dst", "3.x-dissector", pk)[:, 0]
    assert new[0] == new[1] != new[2]  # per next hop (here: the destination)
    via = keys("proto-dst", "3.x-dissector", pk.assign(nexthop="10.0.0.254"))[:, 0]
    assert len(set(via)) == 1  # one gateway, one route entry
    given = keys("proto-dst", "2.6.37-3.2", pk.assign(route_token=[7, 7, 7]))[:, 0]
    assert (given == 7 ^ 0x0008).all()  # addr_fold(dst) ^ raw be16 ETH_P_IP on LE


def test_esp_and_ah_give_spi_halves():
    esp = frame({"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 50, "spi": 0x12345678})
    ah = frame({"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 51, "spi": 0x12345678})
    assert keys("proto-src,proto-dst", "classic-2.6.3x", esp)[0].tolist() == [0x1234, 0x5678]
    assert keys("proto-src,proto-dst", "classic-2.6.3x", ah)[0].tolist() == [0, 0]
    assert keys("proto-src,proto-dst", "2.6.37-3.2", ah)[0].tolist() == [0x1234, 0x5678]
    assert keys("proto-src,proto-dst", "5.18+", ah)[0].tolist() == [0x1234, 0x5678]


def test_optional_columns_and_defaults():
    pk = frame({**F, "tos": 0x10}, {**F, "ip_version": 6, "src": "fd00::1", "dst": "fd00::2",
                                     "tos": 0x10})
    prio = keys("priority", "5.18+", pk)[:, 0]
    assert prio.tolist() == [6, 0]  # rt_tos2priority(0x10) = INTERACTIVE; IPv6: 0
    pk = pk.assign(mark=[5, 6], vlan=[pd.NA, 4097], iif=[3, 3], sk_uid=[1000, 0],
                   priority=[0x10003, 1])
    m = keys("iif,priority,mark,sk-uid,vlan-tag", "5.18+", pk)
    assert m.tolist() == [[3, 0x10003, 5, 1000, 0], [3, 1, 6, 0, 1]]


def test_nfct_keys_fall_back_without_conntrack_and_read_the_tuple_with_it():
    pk = frame({"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 1, "icmp_id": 77,
                "icmp_type": 8, "icmp_code": 0})
    plain = keys("src,dst,proto-src,proto-dst", "5.18+", pk)[0]
    nf = keys("nfct-src,nfct-dst,nfct-proto-src,nfct-proto-dst", "5.18+", pk)[0]
    assert (plain == nf).all()
    ct = keys("nfct,nfct-src,nfct-dst,nfct-proto-src,nfct-proto-dst", "5.18+",
              pk.assign(nfct_token=0xABC))[0]
    assert ct.tolist() == [0xABC, 0x0A000001, 0x0A000002, 77, 8 << 8]


def test_key_order_is_kernel_bit_order_and_map_mode_operators():
    pk = frame(F)
    a = FlowClassifier("proto-dst,src,dst", profile="5.18+").key_matrix(pk)[0]
    assert a.tolist() == [0xC0A8010A, 0x0A000001, 80]
    assert FlowClassifier("proto-dst,src,dst", profile="5.18+").classify(pk, 9)[0] == (
        1 + jhash2([0xC0A8010A, 0x0A000001, 80], 9)) & 0xFFFF  # no divisor: minor wraps
    fc = FlowClassifier("dst", mode="map", mask=0xFF00, xor=0x100, rshift=8, addend=2,
                        baseclass="1:10")
    assert fc.classify(pk)[0] == 0x10 + ((((0x0A000001 & 0xFF00) ^ 0x100) >> 8) + 2)
    with pytest.raises(ConfigError, match="minor"):
        FlowClassifier("src", baseclass="1:0")
    with pytest.raises(ConfigError, match="exactly one key"):
        FlowClassifier("src,dst", mode="map")


def test_sfq_classifier_override_drops_out_of_range_minors():
    pk = frame(*[{**F, "mark": m} for m in (0, 1, 1024, 1025)])
    fc = FlowClassifier("mark", mode="map", baseclass="1:1")  # minor = 1 + mark
    assert Sfq(classifier=fc).bucket(pk).tolist() == [0, 1, -1, -1]
    # skb->priority of the qdisc's own major selects the bucket before any filter
    pk = pk.assign(priority=[0x10005, 0x20005, 0, 0x10000])
    got = Sfq(classifier=fc).bucket(pk, handle="1:")
    assert got.tolist() == [4, 1, -1, -1]


def test_3x_rxhash_is_jhash_3words_of_canonical_order():
    pk = frame(F)
    expected = jhash_3words(0x0A01A8C0, 0x0100000A, 0x39305000, 0, algo="lookup3-v1")
    assert skb_hash(pk, 0, "3.x-dissector")[0] == expected
    assert skb_hash(frame({"ip_version": 0, "src": None, "dst": None, "proto": 0}), 0,
                    "3.x-dissector")[0] == 0  # non-IP: no rxhash


def test_2637_rxhash_orders_addresses_and_ports_separately():
    # net/core/dev.c __skb_get_rxhash (2.6.37-3.2): swap ports if v16[1] < v16[0]; swap
    # addresses if addr2 < addr1; jhash_3words(addr1, addr2, ports); outer header only
    pk = frame(F, {**F, "src": "10.0.0.1", "dst": "192.168.1.10", "sport": 80, "dport": 12345})
    ports = 0x3930 | (0x5000 << 16)  # raw 12345 = 0x3930 < raw 80 = 0x5000 on LE
    expected = jhash_3words(0x0100000A, 0x0A01A8C0, ports, 0, algo="lookup3-v1")
    assert skb_hash(pk, 0, "2.6.37-3.2").tolist() == [expected, expected]
    rx = FlowClassifier("rxhash", profile="2.6.37-3.2").key_matrix(pk, skb_hashrnd=0)
    assert rx[:, 0].tolist() == [expected, expected]
    with pytest.raises(Exception, match="2.6.35"):
        skb_hash(pk, 0, "classic-2.6.3x")


def test_fq_codel_overrides_as_fq_codel_classify():
    from qoslab.hashing import FqCodel
    pk = frame(*[{**F, "mark": m} for m in (0, 63, 64)])
    fc = FlowClassifier("mark", mode="map")  # minor = 1 + mark
    q = FqCodel(flows=64, profile="5.18+", classifier=fc)
    assert q.index(pk, handle="8001:").tolist() == [0, 63, -1]
    pk = pk.assign(priority=[0x80010002, 0x80010041, 0x00010002])  # minor 65 > flows: filter
    assert q.index(pk, handle="8001:").tolist() == [1, 63, -1]
    assert q.index(pk).tolist() == [0, 63, -1]  # no handle: no priority override


def test_route_cache_identity_includes_mark_and_input_keys():
    rows = [{"src": s, "dst": "10.0.0.9", "proto": 1} for s in ("10.0.0.1", "10.0.0.2")]
    local = keys("proto-dst", "2.6.37-3.2", frame(*rows))[:, 0]
    assert local[0] == local[1]  # output route of unbound sockets: saddr not in the key
    fwd = keys("proto-dst", "2.6.37-3.2", frame(*rows).assign(iif=[2, 2]))[:, 0]
    assert fwd[0] != fwd[1]  # input route cache entry per (daddr, saddr, iif, tos)
    marked = keys("proto-dst", "2.6.37-3.2", frame(*rows).assign(mark=[1, 2]))[:, 0]
    assert marked[0] != marked[1]
