"""The experiment matrix and ping-exp's target syntax."""

from __future__ import annotations

import socket

import pytest

import qoslab
from qoslab.ping.targets import Target, build_streams, parse_target, parse_tos


def test_pingexp_target_syntax():
    assert parse_target("a,10.0.0.2,0x10") == Target("10.0.0.2", "a", 16, None)
    assert parse_target(" b , host.example , 8 , 1400 ") == Target("host.example", "b", 8, 1400)
    assert parse_target("10.0.0.2") == Target("10.0.0.2")


@pytest.mark.parametrize("spec, message", [
    ("a,10.0.0.2", "expected ID,HOST,TOS"),
    ("a,10.0.0.2,0x100", "0-255"),
    ("a,10.0.0.2,fast", "TOS 'fast'"),
    ("a,10.0.0.2,0,big", "size 'big'"),
    ("a,10.0.0.2,0,70000", "0-65507"),
    ("", "expected ID,HOST,TOS"),
])
def test_bad_targets_are_named(spec, message):
    with pytest.raises(qoslab.ConfigError, match=message):
        parse_target(spec)


def test_matrix_crosses_hosts_tos_and_sizes_and_keeps_fixed_values():
    streams = build_streams(["127.0.0.1", "x,127.0.0.1,0x08,1000"], tos=[0, 0x10],
                            sizes=[56, 1400])
    assert [(s.host, s.tos, s.size) for s in streams] == [
        ("127.0.0.1", 0, 56), ("127.0.0.1", 0, 1400), ("127.0.0.1", 16, 56),
        ("127.0.0.1", 16, 1400), ("127.0.0.1", 8, 1000)]
    assert streams[-1].label == "x: 127.0.0.1 tos=0x08 size=1000"
    assert len({s.label for s in streams}) == len(streams)


def test_repeated_streams_get_distinct_labels():
    labels = [s.label for s in build_streams(["127.0.0.1", "127.0.0.1"])]
    assert labels == ["127.0.0.1 tos=0x00 size=56", "127.0.0.1 tos=0x00 size=56 #2"]


def test_families():
    (v6,) = build_streams("::1")
    assert v6.family == socket.AF_INET6 and v6.ip_version == 6
    (v4,) = build_streams("localhost", family=4)
    assert v4.address == "127.0.0.1"
    with pytest.raises(qoslab.ConfigError, match="as IPv6"):
        build_streams("127.0.0.1", family=6)


def test_unresolvable_name_is_a_clear_error():
    with pytest.raises(qoslab.ConfigError, match="cannot resolve 'no-such-host.invalid'"):
        build_streams("no-such-host.invalid")


def test_tos_parsing():
    assert parse_tos("0xb8") == 0xB8 and parse_tos(" 16 ") == 16
    with pytest.raises(qoslab.ConfigError):
        parse_tos(-1)
