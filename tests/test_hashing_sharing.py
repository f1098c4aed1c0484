"""sharing(): flows sharing a class for this seed and for every seed; the `qoslab hash` CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qoslab import FlowClassifier, Sfq
from qoslab.cli import main
from qoslab.hashing import (
    FqCodel,
    birthday_probability,
    hash_changes,
    seeds_from_events,
    sharing,
)

BASE = {"ip_version": 4, "tos": 0, "frag": False, "tunnel": "none", "inner_src": None,
        "inner_dst": None, "inner_proto": None, "inner_sport": None, "inner_dport": None}


def frame(rows):
    return pd.DataFrame([{**BASE, "sport": None, "dport": None, **r} for r in rows])


def test_birthday_bound_matches_the_closed_form():
    # 1 - prod(1 - i/m); for 2 flows it is exactly 1/m
    assert birthday_probability(2, 1024) == pytest.approx(1 / 1024)
    m, n = 1024, 10
    expected = 1 - np.prod([(m - i) / m for i in range(n)])
    assert birthday_probability(n, m) == pytest.approx(expected)
    assert birthday_probability(1, 8) == 0.0 and birthday_probability(9, 8) == 1.0


def test_measured_collision_rate_agrees_with_the_birthday_bound():
    # 12 distinct TCP flows into 16 SFQ buckets: P = 1 - 16!/(4! 16^12) ≈ 0.9917... use 6 flows
    rows = [{"src": f"10.0.0.{i}", "dst": "10.9.9.9", "proto": 6, "sport": 1000 + i,
             "dport": 80} for i in range(6)]
    rep = sharing(frame(rows), Sfq(divisor=16, profile="4.2-5.3"), trials=600, rng_seed=1)
    p = birthday_probability(6, 16)
    assert rep.p_birthday == pytest.approx(p)
    sd = np.sqrt(p * (1 - p) / 600)
    assert abs(rep.p_measured - p) < 5 * sd  # binomial sampling error, 5 sigma


def test_sharing_reports_this_seed_and_every_seed():
    rows = [
        {"src": "192.168.1.10", "dst": "10.0.0.1", "proto": 6, "sport": 12345, "dport": 80},
        {"src": "10.0.0.1", "dst": "192.168.1.10", "proto": 6, "sport": 80, "dport": 12345},
        {"src": "10.0.0.5", "dst": "10.0.0.6", "proto": 1, "tos": 0x10},
        {"src": "10.0.0.5", "dst": "10.0.0.6", "proto": 1, "tos": 0x00},
    ]
    pk = frame(rows)
    modern = sharing(pk, Sfq(profile="5.18+"), seed=bytes(16), trials=50)
    assert len(modern.flows) == 4
    groups = sorted(map(sorted, modern.shared_always))
    assert len(groups) == 2
    assert any("both directions" in r for r in modern.reasons)
    assert any("TOS" in r for r in modern.reasons)
    # every "always" group also shares with the given seed
    for g in modern.shared_always:
        assert g in modern.shared_now or any(set(g) <= set(n) for n in modern.shared_now)
    classic = sharing(pk, FlowClassifier("src,dst,proto,proto-src,proto-dst", divisor=1024,
                                         profile="classic-2.6.3x"), trials=50)
    # cls_flow: directions separate; the two ICMP TOS flows have identical keys
    assert len(classic.shared_always) == 1 and len(classic.shared_always[0]) == 2
    assert "tos=0x10" in " ".join(classic.shared_always[0])
    text = str(modern)
    assert "4 flows" in text and "birthday" in text


def test_map_mode_is_reported_deterministic():
    pk = frame([{"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 17, "sport": 1, "dport": 2,
                 "mark": m} for m in (1, 1025, 2)])
    rep = sharing(pk, FlowClassifier("mark", mode="map", mask=0x3FF))
    assert rep.deterministic and rep.p_birthday == 0.0
    assert rep.shared_always == [[f for f in rep.flows["flow"] if "mark=1" in f and
                                  "mark=2" not in f]]


def test_fq_codel_sharing_uses_flow_queues():
    pk = frame([{"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 17, "sport": 1, "dport": 2}])
    rep = sharing(pk, FqCodel(flows=64, profile="4.2-5.3"), trials=10)
    assert rep.classes == 64 and 0 <= rep.flows["cls"][0] < 64


def test_sharing_rejects_other_objects():
    from qoslab import ConfigError
    with pytest.raises(ConfigError, match="FlowClassifier, Sfq or FqCodel"):
        sharing(frame([{"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 1}]), object())


def test_cli_hash_prints_the_flow_class_table(tmp_path, capsys):
    from scapy.all import IP, TCP, Ether, wrpcap
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    path = tmp_path / "two.pcap"
    wrpcap(str(path), [eth / IP(src="192.168.1.10", dst="10.0.0.1") / TCP(sport=12345, dport=80),
                       eth / IP(src="10.0.0.1", dst="192.168.1.10") / TCP(sport=80, dport=12345)])
    status = main(["hash", str(path), "--keys", "src,dst,proto,proto-src,proto-dst",
                   "--divisor", "1024", "--profile", "classic-2.6.3x", "--sfq"])
    out = capsys.readouterr().out
    assert status == 0
    # §4.6: minor 443 = 0x1bb for F under lookup2; SFQ bucket 635 / 208
    line_f = next(x for x in out.splitlines() if "192.168.1.10:12345" in x)
    assert "1:1bb" in line_f and line_f.split()[-1] == "635"
    status = main(["hash", str(path), "--profile", "5.18+", "--perturb", "10"])
    assert status == 0 and "hashrnd changes every 10 s" in capsys.readouterr().out


def test_cli_hash_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "not.pcap"
    bad.write_bytes(b"hello world, not a capture")
    assert main(["hash", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qoslab hash: error:") and err.count("\n") == 1


def test_cli_hash_filter_and_map_options(tmp_path, capsys):
    from scapy.all import IP, UDP, Ether, wrpcap
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    path = tmp_path / "udp.pcap"
    wrpcap(str(path), [eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=p)
                       for p in (53, 1053, 2053)])
    assert main(["hash", str(path), "--map", "proto-dst", "--and", "0xff",
                 "--divisor", "0"]) == 0
    out = capsys.readouterr().out
    assert "flow map key proto-dst and 0xff" in out and "map mode" in out
    # 53 & 0xff = 0x35; 1053 & 0xff = 0x1d; 2053 & 0xff = 0x05; minor = 1 + value
    for port, minor in ((53, 0x36), (1053, 0x1E), (2053, 0x06)):
        line = next(x for x in out.splitlines() if f"10.0.0.2:{port} " in x)
        assert f"1:{minor:x}" in line.split()
    assert main(["hash", str(path), "--filter",
                 "tc filter add dev eth0 parent 5: handle 1 flow hash keys dst divisor 8"]) == 0
    out = capsys.readouterr().out
    assert "baseclass 5:1" in out
    assert out.count("always shared") == 1  # one group: the three flows, same dst
    # one input for all three flows: no probability of "two distinct inputs", and one flow per line
    assert "3 flows, 1 distinct hash input, 8 classes" in out
    assert "no seed can give them different classes" in out and "P(two distinct" not in out
    assert sum(line.startswith("    udp 10.0.0.1:1000 > 10.0.0.2:") for line in out.splitlines()) == 3


def test_the_report_counts_measured_collisions_in_seeds():
    rows = [{"src": f"10.0.0.{i}", "dst": "10.9.9.9", "proto": 6, "sport": 1000 + i,
             "dport": 80} for i in range(6)]
    rep = sharing(frame(rows), Sfq(divisor=16, profile="4.2-5.3"), trials=50, rng_seed=1)
    hits = round(rep.p_measured * 50)
    assert f"({hits} of 50 random seeds)" in str(rep)
    assert f"= {rep.p_birthday:.3g} (birthday bound)" in str(rep)


def test_hash_changes_for_siphash_keys_round_trip():
    ev = hash_changes(5.0, 40.0, 10.0, rng_seed=2, bits=128)
    at, seeds = seeds_from_events(ev)
    assert at.tolist() == [15.0, 25.0, 35.0]
    assert all(0 <= s < 2**128 for s in seeds) and max(seeds[1:]) >= 2**64
    assert hash_changes(0, 100, 0).empty
