"""Parameters: one parser and one checker for the CLI, ``report -p``, widgets and Python."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qoslab.errors import ConfigError
from qoslab.scenarios.params import Param, parse_assignment, parse_cli_items, resolve
from qoslab.units import format_rate, format_size, format_time, parse_rate, parse_size, parse_time

PERTURB = Param("perturb", "time", 5.0, "seconds between hash changes", unit="s", min=0,
                max=3600, zero_means="no perturbation")
INTERVAL = Param("interval", "time", 0.2, "ping interval", unit="s", min=0.001, max=60)
RATE = Param("shaper_rate", "rate", 9e5, "HTB rate", unit="bit/s", min=1e3, max=1e11)
LIMIT = Param("limit", "int", 10, "SFQ limit", unit="packets", min=2, max=65535)
PROFILE = Param("profile", "choice", "classic-2.6.3x", "kernel", choices=("classic-2.6.3x",
                                                                           "5.18+"))
SWITCH = Param("switch_at", "time", 30.0, "key switch", unit="s", min=0, optional=True)
TOS = Param("tos", "ints", (0x10, 0, 8), "TOS bytes", unit="TOS", min=0, max=255)
SEED = Param("seed", "hex", 1, "random seed", min=0, max=2**64 - 1)
ROUTER = Param("router", "bool", True, "route through a router namespace")
ALL = (PERTURB, INTERVAL, RATE, LIMIT, PROFILE, SWITCH, TOS, SEED, ROUTER)


def test_messages_name_parameter_value_unit_and_range():
    with pytest.raises(ConfigError, match=r"^interval = 0 s: expected 0\.001 … 60 s$"):
        INTERVAL.check(0)
    with pytest.raises(ConfigError, match=r"shaper_rate = 'abc': expected a rate"):
        RATE.parse("abc")
    with pytest.raises(ConfigError, match=r"^limit = 1 packets: expected 2 … 65535 packets$"):
        LIMIT.parse("1")
    with pytest.raises(ConfigError, match="one of classic-2.6.3x, 5.18[+]"):
        PROFILE.parse("4.2")
    with pytest.raises(ConfigError, match="perturb = nan"):
        PERTURB.check(math.nan)
    with pytest.raises(ConfigError, match="perturb = inf"):
        PERTURB.check(math.inf)
    with pytest.raises(ConfigError, match=r"^tos = 0x10,0x100: expected 0x00 … 0xff"):
        TOS.parse("0x10,0x100")


def test_none_only_where_optional():
    assert SWITCH.parse("none") is None
    with pytest.raises(ConfigError, match="required"):
        PERTURB.check(None)


values = st.one_of(
    st.tuples(st.just(PERTURB), st.floats(0, 3600)),
    st.tuples(st.just(INTERVAL), st.floats(0.001, 60)),
    st.tuples(st.just(RATE), st.floats(1e3, 1e11)),
    st.tuples(st.just(LIMIT), st.integers(2, 65535)),
    st.tuples(st.just(PROFILE), st.sampled_from(PROFILE.choices)),
    st.tuples(st.just(SWITCH), st.one_of(st.none(), st.floats(0, 1e6))),
    st.tuples(st.just(TOS), st.lists(st.integers(0, 255), max_size=5).map(tuple)),
    st.tuples(st.just(SEED), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(ROUTER), st.booleans()),
)


@given(values)
def test_text_round_trip(pv):
    param, value = pv
    assert param.parse(param.to_text(value)) == param.check(value)


@given(values)
def test_cli_and_assignment_agree(pv):
    param, value = pv
    text = param.to_text(value)
    assert parse_cli_items(ALL, [param.flag, text]) == {param.name: param.check(value)}
    assert parse_cli_items(ALL, [f"{param.flag}={text}"]) == {param.name: param.check(value)}
    assert parse_assignment(ALL, f"{param.name}={text}") == (param.name, param.check(value))


def test_resolve_fills_defaults_and_refuses_unknown_names():
    got = resolve(ALL, {"perturb": 0})
    assert got["perturb"] == 0.0 and got["limit"] == 10 and got["tos"] == (16, 0, 8)
    with pytest.raises(ConfigError, match="no parameter 'perturbation'"):
        resolve(ALL, {"perturbation": 1})


@given(st.floats(1, 1e12))
def test_rate_format_parse_round_trip(bps):
    bps = float(round(bps))
    assert parse_rate(format_rate(bps)) == bps


@given(st.integers(0, 2**40))
def test_size_format_parse_round_trip(n):
    assert parse_size(format_size(n)) == n


@given(st.integers(0, 10**9))
def test_time_format_parse_round_trip(us):
    assert parse_time(format_time(us / 1e6)) == pytest.approx(us / 1e6, abs=1e-9)
