"""Named experiments: the seed's set-ups, each a plain function returning a RUN.

Every preset takes keyword parameters with defaults that reproduce the seed's experiment,
``seed`` (all randomness) and ``duration``; META records them. :data:`SCENARIOS` maps the
names the CLI accepts (``qoslab sim NAME``) to the functions.

Addresses: the shaping host is ``10.0.0.1``; ping targets ``10.0.1.1``, ``10.0.2.1`` …; load
targets ``10.0.9.x``; tunnel endpoints ``192.0.2.1`` → ``198.51.100.1``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..qdiscs import FqCodel, Htb, HtbClass, Pfifo, PfifoFast, Sfq, U32Filter, U32Match
from ..runs import Run
from .link import Link, TokenBucket
from .simulate import ConfigChange, SimConfig, simulate
from .traffic import BulkFlow, PingFlood, PingStream, Tunnel

__all__ = [
    "SCENARIOS",
    "sfq_perturb",
    "tunnel_keys",
    "tos_proto_dst",
    "pfifo_fast_ecn",
    "bufferbloat",
    "latency_first",
    "saturated_link",
    "CLASSIC_SFQ_KEYS",
    "TUNNEL_KEYS",
]

#: "Classic SFQ hash" with cls_flow (the flow classifier's commit message).
CLASSIC_SFQ_KEYS = "src,dst,proto,proto-src,proto-dst"
#: The seed's tunnel-aware key set: the classic keys plus the inner header's.
TUNNEL_KEYS = CLASSIC_SFQ_KEYS + ",tunnel-src,tunnel-dst,tunnel-proto,tunnel-proto-src,tunnel-proto-dst"

TUNNEL = Tunnel("192.0.2.1", "198.51.100.1")


def _pings(n: int, *, interval: float, start: float, tos=0, size: int = 56) -> list[PingStream]:
    toss = tos if isinstance(tos, (list, tuple)) else [tos] * n
    # staggered like separately started ping processes
    return [PingStream(f"10.0.{i + 1}.1", tos=toss[i], size=size, interval=interval,
                       start=start + i * interval / (n + 1)) for i in range(n)]


def _params(**kw) -> dict:
    return dict(kw)


def sfq_perturb(perturb: float = 5, *, seed: int = 1, duration: float = 120.0, limit: int = 10,
                profile: str = "classic-2.6.3x", link_rate: float = 1_000_000,
                shaper_rate: float = 900_000, interval: float = 0.2, n_pings: int = 3,
                n_floods: int = 2) -> Run:
    """Seed "Linux SFQ experimentation": HTB just below the link, SFQ ``limit 10 perturb N``.

    Two ``ping -f`` floods of MTU-sized packets to one host saturate the uplink; three ping
    streams go to three other hosts. With the classic scheduler, every perturbation hands the
    floods a fresh slot that may carry a stale allotment: latency spikes on the perturb grid.

    Examples
    --------
    >>> run = sfq_perturb(perturb=5, duration=20)
    >>> (run.events["kind"] == "hash_change").sum()
    3
    """
    traffic = [PingFlood("10.0.9.1", start=0.0) for _ in range(n_floods)]
    traffic += _pings(n_pings, interval=interval, start=1.0)
    cfg = SimConfig(
        traffic=tuple(traffic),
        qdisc=Sfq(limit=limit, perturb=perturb, profile=profile),
        link=Link(rate=link_rate, delay=0.010),
        shaper=TokenBucket(rate=shaper_rate),
        duration=duration, seed=seed, name="sfq_perturb",
        params=_params(perturb=perturb, limit=limit, profile=profile, link_rate=link_rate,
                       shaper_rate=shaper_rate, interval=interval, n_pings=n_pings,
                       n_floods=n_floods))
    return simulate(cfg)


def _classifier(keys: str, profile: str, perturb: float | None = None):
    from ..hashing import FlowClassifier

    return FlowClassifier(keys, divisor=1024, perturb=perturb, profile=profile)


def tunnel_keys(*, seed: int = 1, duration: float = 60.0, switch_at: float | None = 30.0,
                profile: str = "tunnel-patch", n_uploads: int = 2, n_pings: int = 3,
                link_rate: float = 1_000_000, shaper_rate: float = 900_000,
                interval: float = 0.2, limit: int = 127) -> Run:
    """Seed "tunnel aware": everything leaves through one IPIP tunnel.

    SFQ with a ``flow`` filter on the classic keys sees only the outer header, so SCP-like
    uploads and pings share one queue. At ``switch_at`` the filter is replaced by one that
    adds the ``tunnel-*`` keys (EVENTS ``config_change``) and the pings get their own queues.
    ``switch_at=None`` keeps the classic keys throughout.
    """
    uploads = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, dport=22, tos=0x08)
               for i in range(n_uploads)]
    traffic = TUNNEL.wrap(uploads + _pings(n_pings, interval=interval, start=1.0))
    changes = ()
    if switch_at is not None:
        if not 0 < switch_at < duration:
            raise ConfigError(f"tunnel_keys: switch_at must be inside the run (0..{duration})")
        changes = (ConfigChange(switch_at, f"tc filter replace ... flow hash keys {TUNNEL_KEYS} "
                                           "divisor 1024",
                                classifier=_classifier(TUNNEL_KEYS, profile)),)
    cfg = SimConfig(
        traffic=tuple(traffic),
        qdisc=Sfq(limit=limit, profile=profile,
                  classifier=_classifier(CLASSIC_SFQ_KEYS, profile)),
        link=Link(rate=link_rate, delay=0.010), shaper=TokenBucket(rate=shaper_rate),
        duration=duration, seed=seed, changes=changes, forwarded=True, name="tunnel_keys",
        params=_params(switch_at=switch_at, profile=profile, n_uploads=n_uploads,
                       n_pings=n_pings, link_rate=link_rate, shaper_rate=shaper_rate,
                       interval=interval, limit=limit, keys_before=CLASSIC_SFQ_KEYS,
                       keys_after=TUNNEL_KEYS if switch_at is not None else None))
    return simulate(cfg)


def tos_proto_dst(*, profile: str = "2.6.37-3.2", seed: int = 1, duration: float = 40.0,
                  upload_tos: int = 0x08, ping_tos: tuple[int, ...] = (0x00, 0x08, 0x10),
                  keys: str = CLASSIC_SFQ_KEYS, link_rate: float = 1_000_000,
                  shaper_rate: float = 900_000, interval: float = 0.2, limit: int = 127) -> Run:
    """Seed "proto-dst and TOS": three ICMP streams of different TOS over the tunnel.

    On a router (no sockets) with the classic keys, the outer IPIP header has no ports:
    ``proto-dst`` falls back to the route cache entry's address, and the routing cache of
    2.6.37–3.2 keeps one entry per TOS. Pings whose TOS differs from the upload's (scp sets
    ``IPTOS_THROUGHPUT`` = 0x08) land in other queues and escape its backlog; under
    ``proposed-fix`` (``proto-dst`` = 0 without ports) they share the upload's queue.
    """
    uploads = [BulkFlow("10.0.9.1", sport=40000, dport=22, tos=upload_tos)]
    pings = [PingStream(f"10.0.{i + 1}.1", tos=t, interval=interval,
                        start=1.0 + i * interval / (len(ping_tos) + 1))
             for i, t in enumerate(ping_tos)]
    cfg = SimConfig(
        traffic=tuple(TUNNEL.wrap(uploads + pings)),
        qdisc=Sfq(limit=limit, profile=profile, classifier=_classifier(keys, profile)),
        link=Link(rate=link_rate, delay=0.010), shaper=TokenBucket(rate=shaper_rate),
        duration=duration, seed=seed, forwarded=True, name="tos_proto_dst",
        params=_params(profile=profile, upload_tos=upload_tos, ping_tos=list(ping_tos),
                       keys=keys, link_rate=link_rate, shaper_rate=shaper_rate,
                       interval=interval, limit=limit))
    return simulate(cfg)


def pfifo_fast_ecn(table: str = "old", *, seed: int = 1, duration: float = 30.0,
                   link_rate: float = 10_000_000, txqueuelen: int = 100,
                   interval: float = 0.2, ping_tos: int = 0x00) -> Run:
    """Seed "pfifo_fast and ECN": an ECN-capable upload (TOS 0x02 = ECT(0)) under pfifo_fast.

    The old ``ip_tos2prio`` maps ECT(0) to priority FILLER → band 2, behind a band-1 ping
    stream; the fixed table maps it to best effort → band 1, the ping's own band, where the
    ping waits behind the upload's backlog.
    """
    traffic = [BulkFlow("10.0.9.1", sport=40000, dport=22, ecn=True, start=0.5)]
    traffic += [PingStream("10.0.1.1", tos=ping_tos, interval=interval, start=1.0)]
    if table not in _TABLE_PROFILE:
        raise ConfigError(f"pfifo_fast_ecn: table must be 'old' or 'new', not {table!r}")
    cfg = SimConfig(
        traffic=tuple(traffic), qdisc=PfifoFast(profile=_TABLE_PROFILE[table]),
        link=Link(rate=link_rate, delay=0.010, txqueuelen=txqueuelen), duration=duration,
        seed=seed,
        name="pfifo_fast_ecn",
        params=_params(table=table, link_rate=link_rate, txqueuelen=txqueuelen,
                       interval=interval, ping_tos=ping_tos))
    return simulate(cfg)


#: The TOS table of pfifo_fast_ecn -> a profile that has it.
_TABLE_PROFILE = {"old": "classic-2.6.3x", "new": "5.18+"}

_QDISCS: dict[str, Callable[[int], object]] = {
    "pfifo": lambda limit: Pfifo(limit=limit),
    "pfifo_fast": lambda limit: PfifoFast(),
    "sfq": lambda limit: Sfq(limit=min(limit, 127)),
    "fq_codel": lambda limit: FqCodel(limit=limit),
}


def bufferbloat(queue_limit: int = 1000, *, qdisc: str = "pfifo", seed: int = 1,
                duration: float = 30.0, link_rate: float = 10_000_000, n_uploads: int = 4,
                n_pings: int = 3, interval: float = 0.2, delay: float = 0.010) -> Run:
    """Greedy uploads fill a ``queue_limit``-packet queue: ping RTT grows with the queue.

    ``qdisc`` is ``pfifo`` (the bloat), ``pfifo_fast``, ``sfq`` or ``fq_codel`` (the cure).
    """
    if qdisc not in _QDISCS:
        raise ConfigError(f"bufferbloat: qdisc must be one of {', '.join(_QDISCS)}, not {qdisc!r}")
    traffic = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, start=0.5 + 0.1 * i)
               for i in range(n_uploads)]
    traffic += _pings(n_pings, interval=interval, start=1.0)
    cfg = SimConfig(
        traffic=tuple(traffic), qdisc=_QDISCS[qdisc](queue_limit),
        link=Link(rate=link_rate, delay=delay, txqueuelen=queue_limit), duration=duration,
        seed=seed,
        name="bufferbloat",
        params=_params(queue_limit=queue_limit, qdisc=qdisc, link_rate=link_rate,
                       n_uploads=n_uploads, n_pings=n_pings, interval=interval, delay=delay))
    return simulate(cfg)


def latency_first(*, seed: int = 1, duration: float = 30.0, link_rate: float = 1_000_000,
                  shaper_rate: float = 900_000, n_uploads: int = 2, n_pings: int = 3,
                  interval: float = 0.2, leaf: str = "sfq") -> Run:
    """The seed's "latency-sensitive traffic first" script: HTB classes, ICMP in a prio-0
    class, everything else (bulk) in a prio-1 class; each may borrow up to the root rate.

    ``leaf`` is the bulk class's qdisc: ``"sfq"`` (``perturb 10``) or ``"pfifo"``.
    """
    if leaf not in ("sfq", "pfifo"):
        raise ConfigError(f"latency_first: leaf must be 'sfq' or 'pfifo', not {leaf!r}")
    bulk_leaf = Sfq(limit=127, perturb=10) if leaf == "sfq" else Pfifo(limit=100)
    root = HtbClass("1:1", shaper_rate, name="root")
    interactive = HtbClass("1:10", shaper_rate * 0.3, ceil=shaper_rate, prio=0, parent="1:1",
                           leaf=Pfifo(limit=50), name="interactive")
    bulk = HtbClass("1:20", shaper_rate * 0.7, ceil=shaper_rate, prio=1, parent="1:1",
                    leaf=bulk_leaf, name="bulk")
    icmp = U32Filter("1:10", (U32Match("protocol", 1, 0xFF),))
    traffic = [BulkFlow(f"10.0.9.{i + 1}", sport=40000 + i, start=0.5) for i in range(n_uploads)]
    traffic += _pings(n_pings, interval=interval, start=1.0)
    cfg = SimConfig(
        traffic=tuple(traffic),
        qdisc=Htb(classes=(root, interactive, bulk), default=0x20, filters=(icmp,)),
        link=Link(rate=link_rate, delay=0.010), duration=duration, seed=seed,
        name="latency_first",
        params=_params(link_rate=link_rate, shaper_rate=shaper_rate, n_uploads=n_uploads,
                       n_pings=n_pings, interval=interval, leaf=leaf))
    return simulate(cfg)


def saturated_link(*, qdisc: str = "sfq", seed: int = 1, duration: float = 60.0,
                   link_rate: float = 100_000_000, n_uploads: int = 10, n_pings: int = 3,
                   queue_limit: int = 1000, interval: float = 0.2) -> Run:
    """The benchmark load: ``n_uploads`` greedy flows and ``n_pings`` ping streams on a
    ``link_rate`` link (≈ 500 000 packets in 60 s at 100 Mbit/s)."""
    return bufferbloat(queue_limit, qdisc=qdisc, seed=seed, duration=duration,
                       link_rate=link_rate, n_uploads=n_uploads, n_pings=n_pings,
                       interval=interval)


#: Preset name -> function (what ``qoslab sim NAME`` runs).
SCENARIOS: dict[str, Callable[..., Run]] = {
    "sfq_perturb": sfq_perturb,
    "tunnel_keys": tunnel_keys,
    "tos_proto_dst": tos_proto_dst,
    "pfifo_fast_ecn": pfifo_fast_ecn,
    "bufferbloat": bufferbloat,
    "latency_first": latency_first,
    "saturated_link": saturated_link,
}
