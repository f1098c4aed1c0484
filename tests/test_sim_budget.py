"""qoslab.sim.budget: the packets a simulation would handle are estimated before it runs, the
estimate bounds what the engine really handles, and more than MAX_SIM_PACKETS is refused at
once with SimulationLimitError."""

from __future__ import annotations

import sys
import time

import pytest

import qoslab.scenarios as scenarios
from qoslab.errors import SimulationLimitError
from qoslab.sim import BulkFlow, Link, PingFlood, PingStream, SimConfig, UdpFlood, budget
from qoslab.sim.budget import check_budget, planned_packets

SIMULATE = sys.modules["qoslab.sim.simulate"]  # the package's ``simulate`` is the function


@pytest.fixture
def estimates(monkeypatch):
    """Record the estimate simulate() makes of every configuration it runs."""
    seen = []

    def spy(config):
        seen.append(sum(planned_packets(config).values()))
        return check_budget(config)

    monkeypatch.setattr(SIMULATE, "check_budget", spy)
    return seen


@pytest.mark.parametrize("name, params", [
    ("bufferbloat", {}), ("latency_first", {}), ("tunnel_keys", {}),
    ("pfifo_fast_ecn", {"duration": 10}), ("sfq_perturb", {"duration": 20}),
])
def test_the_estimate_bounds_the_packets_the_engine_handles(estimates, name, params):
    """An upper bound, and a close one: within 3 × (ping floods answer later than the link's
    base round trip when a queue holds them)."""
    run = scenarios.get(name).run("sim", **params)
    handled = run.meta["engine"]["packets"]
    assert handled <= estimates[-1] <= 3 * handled, (handled, estimates[-1])


def test_every_kind_of_source_is_counted():
    link = Link(rate=1e6, delay=0.01)
    cfg = SimConfig(traffic=(PingStream("10.0.0.2", interval=0.5),
                             PingFlood("10.0.0.3", size=56, min_interval=0.01),
                             UdpFlood("10.0.0.4", rate=8e5, size=958, prefill=100, stop=5),
                             BulkFlow("10.0.0.5"), BulkFlow("10.0.0.6", sport=40001)),
                    link=link, duration=10, ping_timeout=2)
    planned = planned_packets(cfg)
    assert planned["10.0.0.2 tos=0x00 size=56"] == 21  # at 0, 0.5 … 10 s
    # a request per 10 ms or per base round trip (20 ms here), whichever is sooner, for 12 s
    assert planned["flood 10.0.0.3 size=56"] == pytest.approx(1201)
    assert planned["udp 10.0.0.1:5001 > 10.0.0.4:5001"] == pytest.approx(100 + 5 * 100 + 1)
    # the uploads share the link: 12 s of MTU-sized packets at 1 Mbit/s, counted once
    assert planned["TCP uploads"] == pytest.approx(12 * 1e6 / (8 * 1514), rel=0.01)


def test_a_day_at_full_rate_is_refused_before_anything_runs():
    """``qoslab sim bufferbloat --duration 86400 --flood-rate 100G`` used to run for ever."""
    cfg = SimConfig(traffic=(PingStream("10.0.0.2"), UdpFlood("10.0.0.3", rate=1e11)),
                    link=Link(rate=1e9), duration=86400, name="bufferbloat")
    started = time.monotonic()
    with pytest.raises(SimulationLimitError) as err:
        SIMULATE.simulate(cfg)
    assert time.monotonic() - started < 1
    message = str(err.value)
    assert message.startswith("sim bufferbloat: 86400 s of traffic would be about 713,3")
    assert "udp 10.0.0.1:5001 > 10.0.0.3:5001" in message and "MAX_SIM_PACKETS" in message
    assert "the limit is 20,000,000" in message


def test_the_limit_is_a_module_variable(monkeypatch):
    cfg = SimConfig(traffic=(PingStream("10.0.0.2", interval=0.1),), duration=10)
    monkeypatch.setattr(budget, "MAX_SIM_PACKETS", 50)
    with pytest.raises(SimulationLimitError, match="about 101 packets"):
        SIMULATE.simulate(cfg)
    monkeypatch.setattr(budget, "MAX_SIM_PACKETS", 101)
    assert len(SIMULATE.simulate(cfg).probes) == 101
