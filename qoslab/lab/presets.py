"""Ready-made real-kernel experiments, each a plain function returning a :class:`~qoslab.Run`.

``pfifo_fast_tos``
    HTB at 2 mbit with a ``pfifo_fast`` leaf, a UDP flood at TOS 0 and pings at TOS 0x10,
    0x00 and 0x08: the three bands of pfifo_fast (the seed's TOS figure). 0x10 ("minimize
    delay", priority 6, band 0) overtakes the flood, 0x00 (band 1) waits behind the whole
    queue, 0x08 ("maximize throughput", priority 2, band 2) is starved while band 1 is busy.
``bufferbloat``
    HTB at 2 mbit with a ``pfifo limit 1000`` leaf under a flood, replaced mid-run by
    ``pfifo limit 10`` (a ``config_change`` EVENT): seconds of queueing delay, then tens of
    milliseconds and drops.
``tunnel_keys``
    An IP-in-IP tunnel through an HTB + SFQ bottleneck: does SFQ tell flows inside the tunnel
    apart? Needs ``ipip`` and ``sfq``; raises :class:`~qoslab.errors.KernelFeatureMissing`
    naming what is missing otherwise.
``custom``
    Your own qdisc tree and timed ``tc`` changes from a JSON/YAML file under a flood, with
    pings at the TOS values you name (:mod:`qoslab.lab.custom`).

Every preset takes ``path`` (save the RUN there; the bed's EVENTS are journalled to
``path + ".partial"`` while it runs) and ``capture`` (a pcap path: tcpdump at the point before
the bottleneck).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..runs import Run
from .custom import custom
from .experiment import Experiment, queue_delay_ms
from .loads import start_tcp_bulk
from .probe import require_features
from .tc import htb, leaf

__all__ = ["PRESETS", "pfifo_fast_tos", "bufferbloat", "tunnel_keys", "custom", "preset_params",
           "queue_delay_ms"]

def _model_bands(tos: tuple[int, ...]) -> dict[str, int]:
    """The band :func:`qoslab.hashing.pfifo_fast_band` (current kernels' table) predicts for
    each ping TOS, keyed like the ping target ids (``tos10``)."""
    from ..hashing import pfifo_fast_band

    return {f"tos{t:02x}": int(pfifo_fast_band(int(t), table="new")) for t in tos}


def pfifo_fast_tos(*, rate: str = "2mbit", flood_rate: str = "3mbit", size: int = 1000,
                   txqueuelen: int = 100, tos: tuple[int, ...] = (0x10, 0x00, 0x08),
                   interval: float = 0.1, count: int = 50, settle: float = 1.5,
                   router: bool = False, family: int = 4, capture: str | None = None,
                   path: str | None = None, force: bool = False) -> Run:
    """pfifo_fast's three bands under a TOS-0 flood, measured with pings at each TOS.

    pfifo_fast picks the band from the packet's *priority* (``skb->priority``), which a
    socket gets from ``IP_TOS`` through ``rt_tos2priority``; an IPv6 socket's
    ``IPV6_TCLASS`` sets no priority, so with ``family=6`` every ping shares band 1
    (measured on Linux 6.18: TCLASS 0x10 and 0x00 both wait behind the whole flood).

    Parameters
    ----------
    rate
        HTB rate of the bottleneck (the client's uplink, or the router's with ``router``).
    flood_rate, size
        UDP flood at TOS 0: bits/s and IP packet bytes; above ``rate`` so the queue stays full
        (after a prefill of ``txqueuelen`` packets; not far above, so that few pings meet a
        full band and are tail-dropped).
    txqueuelen
        The veth's queue length, which is pfifo_fast's per-band limit: band 1 then holds
        ``txqueuelen`` packets, ``txqueuelen × size`` bytes of delay at ``rate``.
    tos
        Ping TOS values (one stream each).
    interval, count
        Ping interval (s) and probes per stream.
    settle
        Seconds of flood before the pings start (the queue fills).
    family
        4 or 6: the address family of the flood and the pings.
    router, capture, path, force
        See the module docstring.

    Returns
    -------
    Run
        PROBES of the pings; EVENTS (config, load start/stop); META with the ``tc`` commands,
        ``tc -s`` snapshots (before, during, after) and backlog samples,
        ``predicted_band1_delay_ms``, and ``model_band`` (target id -> the band qoslab's
        pfifo_fast model predicts, to hold against what the kernel did).
    """
    at = "router" if router else "client"
    timeout = max(2.0, 3 * queue_delay_ms(txqueuelen, size, rate) / 1000)
    exp = Experiment(path, {
        "preset": "pfifo_fast_tos",
        "params": {"rate": rate, "flood_rate": flood_rate, "size": size,
                   "txqueuelen": txqueuelen, "tos": list(tos), "interval": interval,
                   "count": count, "settle": settle, "router": router, "family": family},
        "predicted_band1_delay_ms": queue_delay_ms(txqueuelen, size, rate),
        "model_band": _model_bands(tos),
    }, router=router, txqueuelen=txqueuelen, capture=capture, force=force)
    with exp as (tb, ping_file):
        tb.apply(htb(rate, leaf=leaf("pfifo_fast")), at)
        tb.snapshot("before", at)
        tb.sample(at)
        if capture:
            tb.capture(capture, force=force)
        # the flood is stopped explicitly once the pings are done; its own bound is generous
        # (a loaded machine can take seconds to start the ping runner)
        flood = tb.udp_flood(flood_rate, size=size, tos=0, prefill=txqueuelen,
                             duration=settle + count * interval + timeout + 60, family=family)
        time.sleep(settle)
        proc = tb.start_ping(tb.ping_targets(list(tos), family=family), interval=interval,
                             count=count, path=ping_file, timeout=timeout)
        t_mid = proc.wait_started() - tb.t0 + count * interval / 2
        tb.at_time(t_mid, lambda: tb.snapshot("during", at))
        pings = proc.result(t0_unix=tb.t0_unix)
        flood.finish()
        tb.snapshot("after", at)
    return exp.finish(pings)


def bufferbloat(*, rate: str = "2mbit", flood_rate: str = "2.5mbit", size: int = 500,
                long_limit: int = 1000, short_limit: int = 10, long_seconds: float = 6.0,
                short_seconds: float = 4.0, interval: float = 0.1, router: bool = True,
                capture: str | None = None, path: str | None = None,
                force: bool = False) -> Run:
    """The same flood through a 1000-packet pfifo, then (replaced mid-run) a 10-packet one.

    Parameters
    ----------
    rate
        HTB rate of the bottleneck.
    flood_rate, size
        UDP flood (TOS 0) bits/s and IP packet bytes, above ``rate``; it starts with
        ``long_limit`` packets at once, which fill the long queue.
    long_limit, short_limit
        pfifo limits (packets) of the two phases.
    long_seconds, short_seconds
        Phase lengths; the switch is a ``config_change`` EVENT at ``long_seconds`` after the
        pings start.
    interval
        Ping interval (one TOS-0 stream to the server).
    router, capture, path, force
        See the module docstring.

    Returns
    -------
    Run
        META ``phases``: per phase its name, ``t_start``/``t_end`` (bed clock, like
        ``t_sent``), pfifo limit, predicted full-queue delay, and the leaf qdisc's ``tc -s``
        statistics at the end of the phase (``backlog`` bytes, ``qlen``, ``drops``).
    """
    if long_seconds <= 0 or short_seconds <= 0:
        raise ConfigError("long_seconds and short_seconds must be positive")
    at = "router" if router else "client"
    long_delay = queue_delay_ms(long_limit, size, rate) / 1000
    timeout = 2 * long_delay + 1
    count = int(round((long_seconds + short_seconds) / interval))
    phases: list[dict[str, Any]] = []
    exp = Experiment(path, {
        "preset": "bufferbloat",
        "params": {"rate": rate, "flood_rate": flood_rate, "size": size,
                   "long_limit": long_limit, "short_limit": short_limit,
                   "long_seconds": long_seconds, "short_seconds": short_seconds,
                   "interval": interval, "router": router},
        "phases": phases,
    }, router=router, capture=capture, force=force)
    with exp as (tb, ping_file):
        tb.apply(htb(rate, leaf=leaf("pfifo", limit=long_limit)), at)
        tb.snapshot("before", at)
        tb.sample(at)
        if capture:
            tb.capture(capture, force=force)
        flood = tb.udp_flood(flood_rate, size=size, tos=0, prefill=long_limit,
                             duration=long_seconds + short_seconds + timeout + 60)
        proc = tb.start_ping(tb.ping_targets([0]), interval=interval, count=count,
                             path=ping_file, timeout=timeout)
        t_switch = proc.wait_started() - tb.t0 + long_seconds

        def leaf_stats(label: str) -> dict[str, Any]:
            snap = tb.snapshot(label, at)
            return next((q for q in snap["qdiscs"] if q["kind"] == "pfifo"), {})

        def switch() -> None:
            phases.append({"name": f"pfifo limit {long_limit}", "limit": long_limit,
                           "t_end": tb.now(), "tc": leaf_stats("end of long queue")})
            tb.tc(at, "qdisc", "replace", "dev", "DEV", "parent", "1:10", "handle", "20:",
                  "pfifo", "limit", str(short_limit),
                  detail=f"{at}: pfifo limit {long_limit} -> pfifo limit {short_limit}")

        tb.at_time(t_switch, switch)
        pings = proc.result(t0_unix=tb.t0_unix)
        phases.append({"name": f"pfifo limit {short_limit}", "limit": short_limit,
                       "t_end": tb.now(), "tc": leaf_stats("end of short queue")})
        flood.finish()
        tb.snapshot("after", at)
    if len(phases) != 2:
        raise ConfigError("bufferbloat: the queue switch did not happen before the pings ended")
    phases[0]["t_start"] = float(pings.probes["t_sent"].min())
    phases[1]["t_start"] = phases[0]["t_end"]
    for ph in phases:
        ph["predicted_full_delay_ms"] = queue_delay_ms(ph["limit"], size, rate)
    return exp.finish(pings)


def tunnel_keys(*, rate: str = "2mbit", duration: float = 8.0, interval: float = 0.1,
                settle: float = 1.5, path: str | None = None,
                capture: str | None = None, force: bool = False) -> Run:
    """Does SFQ tell flows inside an IP-in-IP tunnel apart? A real-kernel answer.

    A TCP bulk upload runs *inside* an ``ipip`` tunnel from client to server through HTB +
    SFQ on the client's uplink. Two ping streams run beside it: ``inner`` through the same
    tunnel, ``outer`` outside it. If the kernel's flow hash stops at the outer header (the
    seed's old kernels), the inner pings share the bulk flow's SFQ queue and wait behind it
    while the outer pings do not; if it dissects the inner header (as the flow dissector is
    expected to do on current kernels; this preset is how to find out), both stay fast. META ``inner_over_outer_median`` is the ratio of the two
    medians (>> 1: the tunnel's flows share a queue).

    Raises
    ------
    KernelFeatureMissing
        When the kernel lacks ``sfq`` or ``ipip`` (probed first; nothing is built).
    """
    require_features(qdiscs=["htb", "sfq"], links=["ipip"], what="the tunnel_keys preset")
    from .pings import PingTarget

    count = int(round(duration / interval))
    inner = {"client": "10.72.0.1", "server": "10.72.0.2"}
    extra: dict[str, Any] = {"preset": "tunnel_keys",
                             "params": {"rate": rate, "duration": duration,
                                        "interval": interval, "settle": settle}}
    exp = Experiment(path, extra, capture=capture, force=force)
    with exp as (tb, ping_file):
        tun = tb.ifname("t0")
        for role, peer in (("client", "server"), ("server", "client")):
            ns = tb.ns(role)
            ns.ip("link", "add", "name", tun, "type", "ipip", "local", tb.addr(role),
                  "remote", tb.addr(peer), log=tb.commands)
            ns.ip("addr", "add", f"{inner[role]}/30", "dev", tun, log=tb.commands)
            ns.ip("link", "set", tun, "up", log=tb.commands)
        tb.meta["tunnel"] = {"type": "ipip", "dev": tun, "inner_addresses": inner}
        tb.apply(htb(rate, leaf=leaf("sfq")), "client")
        tb.snapshot("before", "client")
        tb.sample("client")
        if capture:
            tb.capture(capture, bpf=None, snaplen=128, force=force)
        load = start_tcp_bulk(tb.ns("client"), tb.ns("server"), inner["server"],
                              duration=settle + duration + 60, backend="builtin")
        bulk = tb.track_load(load, "tcp bulk client->server inside the ipip tunnel")
        time.sleep(settle)
        targets = [PingTarget("outer", tb.addr("server"), 0),
                   PingTarget("inner", inner["server"], 0)]
        proc = tb.start_ping(targets, interval=interval, count=count, path=ping_file)
        pings = proc.result(t0_unix=tb.t0_unix)
        tb.snapshot("during", "client")
        bulk.finish()
    med = {t.id: pings.probes.loc[pings.probes["stream"].str.startswith(f"{t.id}:"),
                                  "rtt_ms"].median() for t in targets}
    extra["inner_over_outer_median"] = (float(med["inner"] / med["outer"]) if med["outer"]
                                        else None)
    return exp.finish(pings)


#: preset name -> function.
PRESETS: dict[str, Callable[..., Run]] = {
    "pfifo_fast_tos": pfifo_fast_tos,
    "bufferbloat": bufferbloat,
    "tunnel_keys": tunnel_keys,
    "custom": custom,
}


def preset_params(name: str, pairs: list[str]) -> dict[str, Any]:
    """Turn ``["rate=4mbit", "count=20"]`` into keyword arguments of preset ``name``, typed
    like the preset's defaults (int, float, bool, str, tuple of ints).

    Raises
    ------
    ConfigError
        Unknown preset or parameter, or a value of the wrong type; the message lists the
        preset's parameters.

    Examples
    --------
    >>> preset_params("pfifo_fast_tos", ["count=20", "tos=0x10,0", "router=yes"])
    {'count': 20, 'tos': (16, 0), 'router': True}
    """
    if name not in PRESETS:
        raise ConfigError(f"no lab preset {name!r}; presets: {', '.join(PRESETS)}")
    sig = inspect.signature(PRESETS[name])
    allowed = {k: p.default for k, p in sig.parameters.items() if k not in ("path", "capture", "force")}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in allowed:
            raise ConfigError(f"--param {pair!r}: expected NAME=VALUE with NAME one of "
                              f"{', '.join(f'{k} (default {v!r})' for k, v in allowed.items())}")
        default = allowed[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError("expected yes/no")
                value: Any = text.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                value = int(text, 0)
            elif isinstance(default, float):
                value = float(text)
            elif isinstance(default, tuple):
                value = tuple(int(v, 0) for v in text.split(",") if v.strip())
            else:
                value = text
        except ValueError as exc:
            raise ConfigError(f"--param {key}={text!r}: expected a value like {default!r} "
                              f"({exc})") from None
        out[key] = value
    return out
