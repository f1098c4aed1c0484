"""Every experiment qoslab ships, declared once (parameters, set-up, backends).

The seed's experiments (``sfq_perturb``, ``tunnel_keys``, ``tos_proto_dst``,
``pfifo_fast_ecn``, ``latency_first``) and the teaching and lab ones (``bufferbloat``,
``pfifo_fast_tos``, ``saturated_link``). Addresses are the scenarios' own: the shaping host
``10.0.0.1``; ping targets ``10.0.1.1``, ``10.0.2.1`` …; load targets ``10.0.9.x``; tunnel
endpoints ``192.0.2.1`` → ``198.51.100.1``. The lab gives every destination address to its
server namespace, so the same addresses appear in every backend's PROBES.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..hashing import PROFILES, FlowClassifier
from ..qdiscs import FqCodel, Htb, HtbClass, Pfifo, PfifoFast, Sfq, U32Filter, U32Match
from ..qdiscs.pfifo_fast import bands_of
from ..sim.link import Link, TokenBucket
from ..sim.traffic import BulkFlow, PingFlood, PingStream, Tunnel, UdpFlood, flow_frame
from .params import Param
from .registry import Scenario, register
from .setup import ConfigChange, Phase, Setup

__all__ = ["CLASSIC_SFQ_KEYS", "TUNNEL_KEYS", "TUNNEL", "common_params"]

#: "Classic SFQ hash" with cls_flow (the flow classifier's commit message).
CLASSIC_SFQ_KEYS = "src,dst,proto,proto-src,proto-dst"
#: The seed's tunnel-aware key set: the classic keys plus the inner header's.
TUNNEL_KEYS = CLASSIC_SFQ_KEYS + \
    ",tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst"
#: The IPIP tunnel of the seed's experiments.
TUNNEL = Tunnel("192.0.2.1", "198.51.100.1")
#: Where ping streams go: 10.0.1.1, 10.0.2.1 … (IPv4) or fd00:1::1 … (IPv6).
PING_TARGET = {4: "10.0.{i}.1", 6: "fd00:{i}::1"}

_ALL_PROFILES = tuple(PROFILES)
_TUNNEL_PROFILES = tuple(n for n, p in PROFILES.items() if p.tunnel_keys)
_QDISC_KINDS = ("pfifo", "pfifo_fast", "sfq", "fq_codel")


def common_params(duration: float, *, interval: float = 0.2) -> tuple[Param, ...]:
    """``seed``, ``duration`` and ``interval``: what every scenario takes."""
    return (
        Param("seed", "int", 1, "seed of every random choice (hash seeds included)", min=0,
              max=2**63 - 1),
        Param("duration", "time", duration, "seconds the traffic runs", unit="s", min=0.1,
              max=86400, min_open=False),
        Param("interval", "time", interval, "ping interval", unit="s", min=0.001, max=60),
    )


def _rate(name: str, default: float, help: str, optional: bool = False) -> Param:
    return Param(name, "rate", default, help, unit="bit/s", min=1e3, max=1e11, log=True,
                 optional=optional)


def _count(name: str, default: int, help: str, lo: int = 1, hi: int = 64) -> Param:
    return Param(name, "int", default, help, min=lo, max=hi)


def _pings(n: int, *, interval: float, start: float, tos=0, size: int = 56,
           family: int = 4) -> list[PingStream]:
    toss = tos if isinstance(tos, (list, tuple)) else [tos] * n
    # staggered like separately started ping processes
    return [PingStream(PING_TARGET[family].format(i=i + 1), tos=toss[i], size=size,
                       interval=interval, start=start + i * interval / (n + 1))
            for i in range(n)]


def _classifier(keys: str, profile: str, perturb: float | None = None) -> FlowClassifier:
    return FlowClassifier(keys, divisor=1024, perturb=perturb, profile=profile)


# ---------------------------------------------------------------------------- sfq_perturb
def _sfq_perturb(v: dict[str, Any]) -> Setup:
    traffic = [PingFlood("10.0.9.1", start=0.0) for _ in range(v["n_floods"])]
    traffic += _pings(v["n_pings"], interval=v["interval"], start=1.0)
    leaf = Sfq(limit=v["limit"], perturb=v["perturb"], profile=v["profile"])
    return Setup(traffic=tuple(traffic), qdisc=TokenBucket(rate=v["shaper_rate"]).wrap(leaf),
                 link=Link(rate=v["link_rate"], delay=0.010), duration=v["duration"])


register(Scenario(
    "sfq_perturb", "SFQ perturbation: latency spikes on the perturb grid",
    (Param("perturb", "int", 5, "seconds between SFQ hash perturbations", unit="s", min=0,
           max=3600, zero_means="no perturbation", log=True),
     *common_params(120.0),
     Param("limit", "int", 10, "SFQ limit", unit="packets", min=2, max=127),
     Param("profile", "choice", "classic-2.6.3x", "kernel era of SFQ and its hash",
           choices=_ALL_PROFILES),
     _rate("link_rate", 1e6, "line rate of the uplink"),
     _rate("shaper_rate", 9e5, "HTB rate just below the link"),
     _count("n_pings", 3, "ping streams (to 10.0.1.1, 10.0.2.1 …)"),
     _count("n_floods", 2, "ping -f floods of MTU-sized packets to 10.0.9.1", lo=0)),
    _sfq_perturb, backends=("sim", "kernel", "userspace"),
    description="HTB just below the link, SFQ limit 10 perturb N. Two ping -f floods of "
    "MTU-sized packets saturate the uplink; ping streams go to other hosts. With the classic "
    "scheduler, every perturbation hands the floods a fresh slot that may carry a stale "
    "allotment: latency spikes on the perturb grid.",
    seed_experiment="Linux SFQ experimentation"))


# ---------------------------------------------------------------------------- tunnel_keys
def _tunnel_keys(v: dict[str, Any]) -> Setup:
    uploads = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, dport=22, tos=0x08)
               for i in range(v["n_uploads"])]
    traffic = TUNNEL.wrap(uploads + _pings(v["n_pings"], interval=v["interval"], start=1.0))
    changes: tuple[ConfigChange, ...] = ()
    switch_at = v["switch_at"]
    if switch_at is not None:
        if not 0 < switch_at < v["duration"]:
            raise ConfigError(f"tunnel_keys: switch_at = {switch_at} s: expected inside the "
                              f"run (0 … {v['duration']} s), or none")
        changes = (ConfigChange(switch_at, "tc filter replace … flow hash keys "
                                f"{TUNNEL_KEYS} divisor 1024",
                                classifier=_classifier(TUNNEL_KEYS, v["profile"])),)
    leaf = Sfq(limit=v["limit"], profile=v["profile"],
               classifier=_classifier(CLASSIC_SFQ_KEYS, v["profile"]))
    phases = ((Phase("classic keys", 1.0, switch_at), Phase("tunnel keys", switch_at,
                                                            v["duration"]))
              if switch_at is not None else (Phase("classic keys", 1.0, v["duration"]),))
    return Setup(traffic=tuple(traffic), qdisc=TokenBucket(rate=v["shaper_rate"]).wrap(leaf),
                 link=Link(rate=v["link_rate"], delay=0.010), duration=v["duration"],
                 changes=changes, forwarded=True, phases=phases,
                 predictions={"keys_before": CLASSIC_SFQ_KEYS,
                              "keys_after": TUNNEL_KEYS if switch_at is not None else None})


register(Scenario(
    "tunnel_keys", "Tunnel keys: pings and uploads inside one IPIP tunnel",
    (*common_params(60.0),
     Param("switch_at", "time", 30.0, "when the filter switches to the tunnel keys", unit="s",
           min=0, optional=True),
     Param("profile", "choice", "tunnel-patch", "kernel era (with the tunnel-* keys)",
           choices=_TUNNEL_PROFILES),
     _count("n_uploads", 2, "SCP-like TCP uploads through the tunnel"),
     _count("n_pings", 3, "ping streams through the tunnel"),
     _rate("link_rate", 1e6, "line rate of the uplink"),
     _rate("shaper_rate", 9e5, "HTB rate just below the link"),
     Param("limit", "int", 127, "SFQ limit", unit="packets", min=2, max=127)),
    _tunnel_keys, backends=("sim", "kernel", "userspace"),
    description="Everything leaves through one IPIP tunnel. SFQ with a flow filter on the "
    "classic keys sees only the outer header, so SCP-like uploads and pings share one queue. "
    "At switch_at the filter is replaced by one that adds the tunnel-* keys and the pings get "
    "their own queues.",
    seed_experiment="tunnel aware"))


# ---------------------------------------------------------------------------- tos_proto_dst
def _tos_proto_dst(v: dict[str, Any]) -> Setup:
    uploads = [BulkFlow("10.0.9.1", sport=40000, dport=22, tos=v["upload_tos"])]
    ping_tos = v["ping_tos"]
    pings = [PingStream(f"10.0.{i + 1}.1", tos=t, interval=v["interval"],
                        start=1.0 + i * v["interval"] / (len(ping_tos) + 1))
             for i, t in enumerate(ping_tos)]
    leaf = Sfq(limit=v["limit"], profile=v["profile"],
               classifier=_classifier(v["keys"], v["profile"]))
    return Setup(traffic=tuple(TUNNEL.wrap(uploads + pings)),
                 qdisc=TokenBucket(rate=v["shaper_rate"]).wrap(leaf),
                 link=Link(rate=v["link_rate"], delay=0.010), duration=v["duration"],
                 forwarded=True)


register(Scenario(
    "tos_proto_dst", "proto-dst and TOS: the routing cache splits pings by TOS",
    (Param("profile", "choice", "2.6.37-3.2", "kernel era of cls_flow", choices=_ALL_PROFILES),
     *common_params(40.0),
     Param("upload_tos", "hex", 0x08, "TOS byte of the upload (scp: IPTOS_THROUGHPUT)",
           unit="TOS", min=0, max=255),
     Param("ping_tos", "ints", (0x00, 0x08, 0x10), "TOS bytes of the ping streams",
           unit="TOS", min=0, max=255),
     Param("keys", "str", CLASSIC_SFQ_KEYS, "cls_flow keys"),
     _rate("link_rate", 1e6, "line rate of the uplink"),
     _rate("shaper_rate", 9e5, "HTB rate just below the link"),
     Param("limit", "int", 127, "SFQ limit", unit="packets", min=2, max=127)),
    _tos_proto_dst, backends=("sim", "kernel", "userspace"),
    description="Three ICMP streams of different TOS over the tunnel, on a router. With the "
    "classic keys the outer IPIP header has no ports: proto-dst falls back to the route "
    "cache entry, and the routing cache of 2.6.37–3.2 keeps one entry per TOS, so pings "
    "whose TOS differs from the upload's escape its backlog.",
    seed_experiment="proto-dst and TOS"))


# ---------------------------------------------------------------------------- pfifo_fast_ecn
#: The TOS table of pfifo_fast_ecn -> a profile that has it.
TABLE_PROFILE = {"old": "classic-2.6.3x", "new": "5.18+"}


def _pfifo_fast_ecn(v: dict[str, Any]) -> Setup:
    traffic = [BulkFlow("10.0.9.1", sport=40000, dport=22, ecn=True, start=0.5),
               PingStream("10.0.1.1", tos=v["ping_tos"], interval=v["interval"], start=1.0)]
    return Setup(traffic=tuple(traffic), qdisc=PfifoFast(profile=TABLE_PROFILE[v["table"]]),
                 link=Link(rate=v["link_rate"], delay=0.010, txqueuelen=v["txqueuelen"]),
                 duration=v["duration"])


register(Scenario(
    "pfifo_fast_ecn", "pfifo_fast and ECN: the old TOS table sends ECT(0) to band 2",
    (Param("table", "choice", "old", "ip_tos2prio table: old (≤ 2.6.38) or new",
           choices=("old", "new")),
     *common_params(30.0),
     _rate("link_rate", 10e6, "line rate of the uplink"),
     Param("txqueuelen", "int", 100, "device queue length (pfifo_fast's limit)",
           unit="packets", min=1, max=100000),
     Param("ping_tos", "hex", 0x00, "TOS byte of the pings", unit="TOS", min=0, max=255)),
    _pfifo_fast_ecn, backends=("sim", "kernel", "userspace"),
    description="An ECN-capable upload (TOS 0x02 = ECT(0)) under pfifo_fast. The old "
    "ip_tos2prio maps ECT(0) to priority FILLER → band 2, behind a band-1 ping stream; the "
    "fixed table maps it to best effort → band 1, where the ping waits behind it.",
    seed_experiment="pfifo_fast and ECN"))


# ---------------------------------------------------------------------------- bufferbloat
def _leaf(kind: str, limit: int, profile: str = "5.18+") -> Any:
    if kind == "pfifo":
        return Pfifo(limit=limit)
    if kind == "pfifo_fast":
        return PfifoFast(profile=profile)
    if kind == "sfq":
        return Sfq(limit=min(limit, 127), profile=profile)
    return FqCodel(limit=limit, profile=profile)


def _bufferbloat(v: dict[str, Any]) -> Setup:
    start = 1.0
    switch_at, short = v["switch_at"], v["short_limit"]
    if switch_at is not None and not start < switch_at < v["duration"]:
        raise ConfigError(f"bufferbloat: switch_at = {switch_at} s: expected after the pings "
                          f"start ({start} s) and before the end ({v['duration']} s), or none")
    if v["load"] == "udp":
        load = [UdpFlood("10.0.9.1", rate=v["flood_rate"], size=v["size"] - 28,
                         sport=9000, dport=9000, prefill=v["queue_limit"], jitter=0.5,
                         start=0.0)]
    else:
        load = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, start=0.5 + 0.1 * i)
                for i in range(v["n_uploads"])]
    traffic = load + _pings(v["n_pings"], interval=v["interval"], start=start)
    leaf = _leaf(v["qdisc"], v["queue_limit"])
    root = TokenBucket(rate=v["rate"]).wrap(leaf) if v["rate"] is not None else leaf
    changes: tuple[ConfigChange, ...] = ()
    phases = (Phase(f"{v['qdisc']} limit {v['queue_limit']}", start, v["duration"],
                    {"limit": v["queue_limit"]}),)
    if switch_at is not None and short is not None:
        if v["rate"] is None:
            raise ConfigError("bufferbloat: the queue switch replaces the leaf under the "
                              "shaper; give a rate")
        short_leaf = _leaf(v["qdisc"], short)
        changes = (ConfigChange(switch_at, f"qdisc replace parent 1:10: {leaf.to_tc()} -> "
                                f"{short_leaf.to_tc()}", qdisc=short_leaf, parent="1:10"),)
        phases = (Phase(f"{v['qdisc']} limit {v['queue_limit']}", start, switch_at,
                        {"limit": v["queue_limit"]}),
                  Phase(f"{v['qdisc']} limit {short}", switch_at, v["duration"],
                        {"limit": short}))
    bottleneck = v["rate"] if v["rate"] is not None else v["link_rate"]
    wire = v["size"] + 14 if v["load"] == "udp" else 1514
    predictions = {"full_queue_delay_ms": {
        p.name: int(p.name.rsplit(" ", 1)[1]) * wire * 8 / bottleneck * 1000 for p in phases}}
    return Setup(traffic=tuple(traffic), qdisc=root,
                 link=Link(rate=v["link_rate"], delay=v["delay"],
                           txqueuelen=v["queue_limit"]),
                 duration=v["duration"], changes=changes, forwarded=v["router"],
                 phases=phases, predictions=predictions)


_BUFFERBLOAT_PARAMS = (
    Param("qdisc", "choice", "pfifo", "the bottleneck's qdisc", choices=_QDISC_KINDS),
    Param("queue_limit", "int", 1000, "the (first) queue's limit", unit="packets", min=1,
          max=100000, log=True),
    Param("short_limit", "int", 10, "the queue's limit after switch_at", unit="packets",
          min=1, max=100000, optional=True),
    Param("switch_at", "time", 7.0, "when the queue is replaced by the short one", unit="s",
          min=0, optional=True),
    *common_params(11.0, interval=0.1),
    Param("load", "choice", "udp", "what fills the queue: a UDP flood or TCP uploads",
          choices=("udp", "tcp")),
    _rate("flood_rate", 2.5e6, "UDP flood rate (above the bottleneck)"),
    Param("size", "int", 500, "UDP flood packet size (IP bytes)", unit="bytes", min=64,
          max=1500),
    _count("n_uploads", 4, "TCP uploads (load tcp)"),
    _count("n_pings", 1, "ping streams"),
    _rate("rate", 2e6, "HTB shaper rate (none: the link is the bottleneck)", optional=True),
    _rate("link_rate", 1e9, "line rate of the device"),
    Param("delay", "time", 0.0, "one-way propagation delay", unit="s", min=0, max=10),
    Param("router", "bool", True, "shape on a router between client and server"),
)

register(Scenario(
    "bufferbloat", "Bufferbloat: queue length becomes delay",
    _BUFFERBLOAT_PARAMS, _bufferbloat, backends=("sim", "kernel", "userspace"),
    description="A load keeps a queue full; pings measure the wait. By default a UDP flood "
    "above the HTB rate fills a 1000-packet pfifo, which is then (mid-run) replaced by a "
    "10-packet one: the RTT drops by the ratio of the queue lengths. With load tcp and no "
    "rate, TCP uploads fill the link's own queue (the classic lesson).",
    extra={"delay_model": "full_queue_delay_ms"}))


def _saturated_link(v: dict[str, Any]) -> Setup:
    return _bufferbloat({**_BUFFERBLOAT_DEFAULTS, "qdisc": v["qdisc"],
                         "queue_limit": v["queue_limit"], "switch_at": None,
                         "short_limit": None, "seed": v["seed"], "duration": v["duration"],
                         "interval": v["interval"], "load": "tcp",
                         "n_uploads": v["n_uploads"], "n_pings": v["n_pings"], "rate": None,
                         "link_rate": v["link_rate"], "delay": 0.010, "router": False})


_BUFFERBLOAT_DEFAULTS = {p.name: p.default for p in _BUFFERBLOAT_PARAMS}

register(Scenario(
    "saturated_link", "The benchmark load: many TCP uploads on a fast link",
    (Param("qdisc", "choice", "sfq", "the link's qdisc", choices=_QDISC_KINDS),
     *common_params(60.0),
     _rate("link_rate", 100e6, "line rate of the link"),
     _count("n_uploads", 10, "TCP uploads", hi=1000),
     _count("n_pings", 3, "ping streams"),
     Param("queue_limit", "int", 1000, "queue limit", unit="packets", min=1, max=100000)),
    _saturated_link, backends=("sim", "userspace"),
    description="n_uploads greedy flows and ping streams on a link_rate link (≈ 500 000 "
    "packets in 60 s at 100 Mbit/s): the simulator's speed benchmark."))


# ---------------------------------------------------------------------------- latency_first
def _latency_first(v: dict[str, Any]) -> Setup:
    rate = v["shaper_rate"]
    bulk_leaf = Sfq(limit=127, perturb=10) if v["leaf"] == "sfq" else Pfifo(limit=100)
    tree = Htb(classes=(
        HtbClass("1:1", rate, name="root"),
        HtbClass("1:10", rate * 0.3, ceil=rate, prio=0, parent="1:1", leaf=Pfifo(limit=50),
                 name="interactive"),
        HtbClass("1:20", rate * 0.7, ceil=rate, prio=1, parent="1:1", leaf=bulk_leaf,
                 name="bulk")),
        default=0x20, filters=(U32Filter("1:10", (U32Match("protocol", 1, 0xFF),)),))
    traffic = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, start=0.5)
               for i in range(v["n_uploads"])]
    traffic += _pings(v["n_pings"], interval=v["interval"], start=1.0)
    return Setup(traffic=tuple(traffic), qdisc=tree,
                 link=Link(rate=v["link_rate"], delay=0.010), duration=v["duration"])


register(Scenario(
    "latency_first", "Latency-sensitive traffic first: HTB classes with priorities",
    (*common_params(30.0),
     _rate("link_rate", 1e6, "line rate of the uplink"),
     _rate("shaper_rate", 9e5, "HTB root rate just below the link"),
     _count("n_uploads", 2, "TCP uploads"),
     _count("n_pings", 3, "ping streams"),
     Param("leaf", "choice", "sfq", "the bulk class's qdisc", choices=("sfq", "pfifo"))),
    _latency_first, backends=("sim", "kernel", "userspace"),
    description="The seed's script: ICMP in a prio-0 HTB class, everything else in a prio-1 "
    "class; each may borrow up to the root rate.",
    seed_experiment="latency-sensitive traffic first"))


# ---------------------------------------------------------------------------- pfifo_fast_tos
def _pfifo_fast_tos(v: dict[str, Any]) -> Setup:
    family = v["family"]
    dst = PING_TARGET[family].format(i=1)
    settle = v["settle"]
    count = v["count"]
    duration = settle + count * v["interval"]
    flood = UdpFlood(PING_TARGET[family].format(i=9), rate=v["flood_rate"],
                     size=v["size"] - (48 if family == 6 else 28), sport=9000, dport=9000,
                     prefill=v["txqueuelen"], jitter=0.5, start=0.0)
    tos = v["tos"]
    pings = [PingStream(dst, tos=t, interval=v["interval"],
                        start=settle + i * v["interval"] / (len(tos) + 1))
             for i, t in enumerate(tos)]
    wire = v["size"] + 14

    bands = bands_of(flow_frame(pings), v["profile"])
    return Setup(traffic=(flood, *pings),
                 qdisc=TokenBucket(rate=v["rate"]).wrap(PfifoFast(profile=v["profile"])),
                 link=Link(rate=1e9, delay=0.0, txqueuelen=v["txqueuelen"]),
                 duration=duration, forwarded=v["router"],
                 phases=(Phase("flood", settle, duration),),
                 predictions={"predicted_band1_delay_ms": v["txqueuelen"] * wire * 8 / v["rate"]
                              * 1000,
                              "model_band": {p.name: int(b) for p, b in zip(pings, bands,
                                                                           strict=True)}})


register(Scenario(
    "pfifo_fast_tos", "pfifo_fast's three bands under a TOS-0 flood, by ping TOS",
    (_rate("rate", 2e6, "HTB rate of the bottleneck"),
     _rate("flood_rate", 3e6, "UDP flood rate at TOS 0 (above the rate)"),
     Param("size", "int", 1000, "flood packet size (IP bytes)", unit="bytes", min=64,
           max=1500),
     Param("txqueuelen", "int", 100, "device queue length: pfifo_fast's limit",
           unit="packets", min=1, max=100000),
     Param("tos", "ints", (0x10, 0x00, 0x08), "ping TOS bytes (one stream each)", unit="TOS",
           min=0, max=255),
     Param("seed", "int", 1, "seed of every random choice", min=0, max=2**63 - 1),
     Param("interval", "time", 0.1, "ping interval", unit="s", min=0.001, max=60),
     Param("count", "int", 50, "probes per stream", min=1, max=1000000),
     Param("settle", "time", 1.5, "flood time before the pings start", unit="s", min=0,
           max=600),
     Param("router", "bool", False, "shape on a router between client and server"),
     Param("family", "choice", 4, "address family", choices=(4, 6)),
     Param("profile", "choice", "5.18+", "kernel era (its TOS → priority table)",
           choices=_ALL_PROFILES)),
    _pfifo_fast_tos, backends=("sim", "kernel", "userspace"),
    description="pfifo_fast picks the band from skb->priority, which a socket gets from "
    "IP_TOS through rt_tos2priority; an IPv6 socket's IPV6_TCLASS sets no priority, so with "
    "family 6 every ping shares band 1."))


from . import custom  # noqa: E402,F401 - registers "custom" (its own module: the file reader)
