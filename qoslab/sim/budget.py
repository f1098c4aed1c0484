"""How many packets a simulation would handle, and the limit on it.

A simulation's cost is its packets: every packet is an event (or a few) in the engine, which
handles 20,000 to 400,000 a second. A few characters on the command line can ask
for billions (``--duration 86400 --flood-rate 100G``: 2 × 10¹² packets, a run that would never
end), so :func:`check_budget` estimates the packets every source would send before anything
runs, and refuses more than :data:`MAX_SIM_PACKETS` with a
:class:`~qoslab.errors.SimulationLimitError` naming the largest senders.

The estimate is an upper bound per source, over the time it sends (a ping stream until the
run's ``duration``, a load until its ``stop`` or until the pings are done, at most
``ping_timeout`` later):

* a ping stream: one request per ``interval``;
* a ping flood: one request per reply or per ``min_interval``, whichever comes first (replies
  come back no sooner than the link's base round trip);
* a UDP flood: ``prefill`` plus ``rate`` / its wire size;
* TCP-like uploads together: no more than the link serialises.

``MAX_SIM_PACKETS`` is a module variable: raise it to run a larger simulation on purpose.
"""

from __future__ import annotations

from typing import Any

from ..errors import SimulationLimitError
from .traffic import BulkFlow, PingFlood, PingStream, UdpFlood, wire_size

__all__ = ["MAX_SIM_PACKETS", "planned_packets", "check_budget"]

#: Most packets one simulation may handle: 1 to 15 minutes of simulation (the engine handles
#: 20,000 to 400,000 packets a second, depending on the qdisc tree and the sources). A day of
#: 10 pings a second beside a 2.5 Mbit/s flood of 500-byte packets is 55 million.
MAX_SIM_PACKETS = 20_000_000


def planned_packets(config: Any) -> dict[str, float]:
    """Upper estimate of the packets each source of ``config`` (a
    :class:`~qoslab.sim.SimConfig`) sends, by source name; TCP-like uploads share one entry,
    what the link can carry.

    Examples
    --------
    >>> from qoslab.sim import SimConfig, Link, PingStream, UdpFlood
    >>> cfg = SimConfig(traffic=(PingStream("10.0.0.2", interval=0.5),
    ...                          UdpFlood("10.0.0.3", rate=8e5, size=958)),
    ...                 link=Link(rate=1e6), duration=10)
    >>> {k: round(v) for k, v in planned_packets(cfg).items()}  # the flood: 10 s + ping_timeout
    {'10.0.0.2 tos=0x00 size=56': 21, 'udp 10.0.0.1:5001 > 10.0.0.3:5001': 1201}
    """
    duration = float(config.duration)
    loads_end = duration + float(config.ping_timeout)
    link_rate = float(config.link.rate)
    out: dict[str, float] = {}
    bulk: list[tuple[float, float, int]] = []
    for spec in config.traffic:
        start = max(0.0, float(spec.start))
        if isinstance(spec, PingStream):
            end = duration if spec.stop is None else min(float(spec.stop), duration)
        else:
            end = loads_end if spec.stop is None else min(float(spec.stop), loads_end)
        span = max(0.0, end - start)
        size = wire_size(spec)
        if isinstance(spec, PingStream):
            n = span / float(spec.interval)
        elif isinstance(spec, PingFlood):
            fastest = min(float(spec.min_interval), config.link.base_rtt(size))
            n = span / fastest if fastest > 0 else float("inf")
        elif isinstance(spec, UdpFlood):
            n = int(spec.prefill) + span * float(spec.rate) / (8.0 * size)
        elif isinstance(spec, BulkFlow):
            bulk.append((start, end, size))
            continue
        else:  # pragma: no cover - every TrafficSpec is handled above
            continue
        out[spec.name] = out.get(spec.name, 0.0) + n + 1  # a packet at each end of the span
    if bulk:
        start, end = min(b[0] for b in bulk), max(b[1] for b in bulk)
        smallest = min(b[2] for b in bulk)
        out["TCP uploads"] = max(0.0, end - start) * link_rate / (8.0 * smallest) + len(bulk)
    return out


def check_budget(config: Any) -> float:
    """Refuse a simulation that would handle more than :data:`MAX_SIM_PACKETS` packets.

    Returns
    -------
    float
        The estimate (:func:`planned_packets`, all sources together).

    Raises
    ------
    SimulationLimitError
        Naming the scenario, the estimate, its three largest sources and the limit.

    Examples
    --------
    >>> from qoslab.sim import SimConfig, Link, PingStream, UdpFlood
    >>> cfg = SimConfig(traffic=(PingStream("10.0.0.2"), UdpFlood("10.0.0.3", rate=1e11)),
    ...                 link=Link(rate=1e9), duration=86400, name="bufferbloat")
    >>> check_budget(cfg)
    Traceback (most recent call last):
    ...
    qoslab.errors.SimulationLimitError: sim bufferbloat: 86400 s of traffic would be about \
713,359,084,578 packets (udp 10.0.0.1:5001 > 10.0.0.3:5001: 713,358,652,577; 10.0.0.2 \
tos=0x00 size=56: 432,001); the limit is 20,000,000 (qoslab.sim.budget.MAX_SIM_PACKETS, \
minutes of simulation): shorten the duration or lower the rates
    """
    planned = planned_packets(config)
    total = sum(planned.values())
    if total > MAX_SIM_PACKETS:
        top = sorted(planned.items(), key=lambda kv: -kv[1])[:3]
        parts = "; ".join(f"{name}: {n:,.0f}" for name, n in top)
        raise SimulationLimitError(
            f"sim {config.name}: {config.duration:g} s of traffic would be about {total:,.0f} "
            f"packets ({parts}); the limit is {MAX_SIM_PACKETS:,} "
            "(qoslab.sim.budget.MAX_SIM_PACKETS, minutes of simulation): shorten the "
            "duration or lower the rates")
    return total
