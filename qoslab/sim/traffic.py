"""Traffic the simulator offers to the shaped link: what each source is and how it behaves.

A *spec* (frozen dataclass) says what a source is; :mod:`qoslab.sim.sources` holds the runtime
objects that generate packets in the event loop. Every spec becomes one *flow*: one row of the
PACKETS-like frame (:func:`flow_frame`) that the hashing layer classifies, so a flow's queue is
computed once per hash seed and looked up per packet.

Sizes are wire bytes as the qdisc accounts them (``skb->len``): L2 header + IP header +
transport header + payload.

Examples
--------
>>> flows = [PingStream("10.0.0.2", tos=0x10), BulkFlow("10.0.0.9", sport=40001)]
>>> frame = flow_frame(Tunnel("10.9.0.1", "10.9.0.2").wrap(flows))
>>> frame["src"].tolist(), frame["proto"].tolist(), frame["inner_proto"].tolist()
(['10.9.0.1', '10.9.0.1'], [4, 4], [1, 6])
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..hashing import tos_to_priority
from ..schema import stream_label

__all__ = [
    "DEFAULT_SRC",
    "DEFAULT_SRC6",
    "ETH_HEADER",
    "PingStream",
    "PingFlood",
    "UdpFlood",
    "BulkFlow",
    "Tunnel",
    "TrafficSpec",
    "flow_frame",
    "flow_label",
    "ip_header",
    "wire_size",
]

#: Source address used when a spec gives none (``DEFAULT_SRC6`` towards IPv6 destinations).
DEFAULT_SRC = "10.0.0.1"
DEFAULT_SRC6 = "fd00::1"
#: Ethernet header counted in ``skb->len`` on the egress device.
ETH_HEADER = 14
IP_HEADER = 20
_L4_HEADER = {1: 8, 58: 8, 6: 32, 17: 8}  # ICMP, ICMPv6; TCP with timestamps; UDP
IPV6_HEADER = 40
ECT0 = 0x02


@dataclass(frozen=True)
class Tunnel:
    """An IP-in-IP tunnel: wrapped flows leave with the same outer header.

    Parameters
    ----------
    local, remote
        Outer source and destination addresses.
    tos
        Outer TOS: ``"inherit"`` copies the inner TOS byte (``ip tunnel ... tos inherit``),
        an integer sets it (the ECN bits are still copied from the inner header, as
        ``ip_tunnel_ecn_encap`` does).
    """

    local: str
    remote: str
    tos: int | Literal["inherit"] = "inherit"

    def wrap(self, specs: list[TrafficSpec]) -> list[TrafficSpec]:
        """Return copies of ``specs`` sent through this tunnel."""
        return [dataclasses.replace(s, tunnel=self) for s in specs]

    def outer_tos(self, inner_tos: int) -> int:
        """Outer TOS byte for an inner TOS byte."""
        if self.tos == "inherit":
            return int(inner_tos)
        return (int(self.tos) & 0xFC) | (int(inner_tos) & 0x03)


@dataclass(frozen=True, kw_only=True)
class _Spec:
    start: float = 0.0
    stop: float | None = None
    src: str = DEFAULT_SRC
    tunnel: Tunnel | None = None
    label: str | None = None
    #: ``skb->priority`` (``SO_PRIORITY``), e.g. ``0x10003`` for class ``1:3``; an SFQ with
    #: that handle major uses the minor as the bucket (the classify override).
    priority: int | None = None

    def _positive(self, name: str, unit: str, why: str) -> None:
        """Refuse a value that must be a finite number > 0 (a zero interval would make a
        source's timer fire forever at one instant: the simulation would never end)."""
        value = getattr(self, name)
        try:
            ok = math.isfinite(float(value)) and float(value) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{type(self).__name__}({self.dst!r}): {name} = {value!r} {unit}: "
                              f"expected a finite number > 0 {unit} ({why})")


@dataclass(frozen=True)
class PingStream(_Spec):
    """ICMP echo requests at a fixed interval (``ping -i interval -Q tos -s size dst``).

    Every request becomes one PROBES row; the reply returns over the uncongested return path.
    """

    dst: str
    tos: int = 0
    size: int = 56
    interval: float = 0.2

    def __post_init__(self) -> None:
        self._positive("interval", "s", "ping -i: seconds between requests")

    @property
    def proto(self) -> int:
        """ICMP, or ICMPv6 to an IPv6 destination."""
        return 58 if ":" in self.dst else 1

    @property
    def name(self) -> str:
        return self.label or stream_label(self.dst, self.tos, self.size)


@dataclass(frozen=True)
class PingFlood(_Spec):
    """``ping -f -s size dst``: a new request on every reply, and at least every ``min_interval``.

    With 1472 payload bytes every request is MTU-sized: two of them saturate a slow uplink.
    """

    dst: str
    size: int = 1472
    tos: int = 0
    min_interval: float = 0.01

    def __post_init__(self) -> None:
        self._positive("min_interval", "s", "ping -f sends again after this without a reply")

    @property
    def proto(self) -> int:
        """ICMP, or ICMPv6 to an IPv6 destination."""
        return 58 if ":" in self.dst else 1

    @property
    def name(self) -> str:
        return self.label or f"flood {self.dst} size={self.size}"


@dataclass(frozen=True)
class UdpFlood(_Spec):
    """Constant-bit-rate UDP (``rate`` in bit/s of wire bytes); ``prefill`` packets are sent
    at once at the start (to fill a long queue quickly), then packet ``k`` at
    ``(k + u_k × jitter) × size / rate`` with ``u_k`` uniform in [0, 1) — the lab's load
    generator's rule (:func:`qoslab.lab.flood.udp_send`): the mean rate is exact and the flood
    cannot phase-lock with isochronous pings."""

    dst: str
    rate: float
    size: int = 1472
    sport: int = 5001
    dport: int = 5001
    tos: int = 0
    prefill: int = 0
    jitter: float = 0.0
    proto = 17

    def __post_init__(self) -> None:
        self._positive("rate", "bit/s", "the flood's mean sending rate")

    @property
    def name(self) -> str:
        return self.label or f"udp {self.src}:{self.sport} > {self.dst}:{self.dport}"


@dataclass(frozen=True)
class BulkFlow(_Spec):
    """A greedy TCP-like upload (an SCP stand-in): Reno window, halving on loss or ECN echo.

    Slow start doubles the window per round trip up to ``ssthresh``, then it grows by one
    segment per round trip; a drop (noticed one smoothed RTT later, as duplicate ACKs would
    tell) or a CE mark echoed by an ECN-capable flow halves it, at most once per round trip.
    ``ecn=True`` sets ECT(0) in the TOS byte (``tos | 0x02``).
    """

    dst: str
    sport: int = 40000
    dport: int = 22
    tos: int = 0
    ecn: bool = False
    mss: int = 1448
    init_cwnd: int = 10
    max_cwnd: int = 10_000
    proto = 6

    @property
    def name(self) -> str:
        return self.label or f"tcp {self.src}:{self.sport} > {self.dst}:{self.dport}"

    @property
    def ip_tos(self) -> int:
        return (self.tos | ECT0) if self.ecn else self.tos


TrafficSpec = PingStream | PingFlood | UdpFlood | BulkFlow


def wire_size(spec: TrafficSpec) -> int:
    """Bytes the qdisc accounts for one packet of ``spec`` (tunnel header included).

    >>> wire_size(PingStream("10.0.0.2"))
    98
    >>> wire_size(PingFlood("10.0.0.3"))
    1514
    """
    payload = spec.mss if isinstance(spec, BulkFlow) else spec.size
    size = ETH_HEADER + ip_header(spec.dst) + _L4_HEADER[spec.proto] + payload
    if spec.tunnel is not None:
        size += ip_header(spec.tunnel.remote)
    return size


def ip_header(addr: str) -> int:
    """Bytes of the IP header towards ``addr`` (IPv4 without options: 20; IPv6: 40).

    >>> ip_header("10.0.0.1"), ip_header("fd00::1")
    (20, 40)
    """
    return IPV6_HEADER if ":" in str(addr) else IP_HEADER


def flow_label(spec: TrafficSpec) -> str:
    """The flow's name as it appears in occupancy tables and EVENTS."""
    return spec.name


def _tos(spec: TrafficSpec) -> int:
    return spec.ip_tos if isinstance(spec, BulkFlow) else spec.tos


def _token(*parts) -> int:
    """A stable non-zero 32-bit opaque token (stands for a kernel pointer's ``addr_fold``)."""
    value = zlib.crc32(repr(parts).encode()) & 0xFFFFFFFF
    return value or 1


def flow_frame(specs: list[TrafficSpec], *, forwarded: bool = False) -> pd.DataFrame:
    """Return the PACKETS-like frame of the flows: one row per spec, as the classifier sees it.

    Tunnelled flows carry the tunnel's outer header (protocol 4, no ports) and the original
    header in the ``inner_*`` columns. ``sk_token`` is an opaque per-socket token (every spec
    is its own socket); the route token (``addr_fold(skb_dst)``) is left to the hashing layer,
    which derives it per profile (per destination and TOS while the routing cache existed);
    ``icmp_id`` distinguishes ping processes. A ``priority`` column (``skb->priority``)
    appears when a spec sets one; the other flows then get ``rt_tos2priority(TOS)``, the
    value the hashing layer assumes when the column is absent. ``forwarded=True`` models a router: the
    packets come from other hosts, so they carry no socket (``sk_token`` 0, as
    ``addr_fold(NULL)``).

    Raises
    ------
    ConfigError
        When a spec has a bad field (negative size, TOS outside 0..255).
    """
    rows = []
    for i, spec in enumerate(specs):
        tos = _tos(spec)
        if not 0 <= tos <= 255:
            raise ConfigError(f"traffic[{i}] ({spec.name}): tos must be 0..255, got {tos}")
        if wire_size(spec) <= 0:
            raise ConfigError(f"traffic[{i}] ({spec.name}): size must be positive")
        ports = (getattr(spec, "sport", None), getattr(spec, "dport", None))
        icmp_id = 0x1000 + i if spec.proto == 1 else None
        src = DEFAULT_SRC6 if spec.src == DEFAULT_SRC and ":" in spec.dst else spec.src
        inner = dict(src=src, dst=spec.dst, proto=spec.proto, sport=ports[0],
                     dport=ports[1], tos=tos)
        if spec.tunnel is None:
            outer = inner
            row = dict(outer, tunnel=None, inner_src=None, inner_dst=None, inner_proto=None,
                       inner_sport=None, inner_dport=None, inner_tos=None, icmp_id=icmp_id)
        else:
            t = spec.tunnel
            outer = dict(src=t.local, dst=t.remote, proto=4 if ":" not in spec.dst else 41,
                         sport=None, dport=None,
                         tos=t.outer_tos(tos))
            kind = ("6" if ":" in spec.dst else "4") + "in" + ("6" if ":" in t.remote else "4")
            row = dict(outer, tunnel=kind, inner_src=src, inner_dst=spec.dst,
                       inner_proto=spec.proto, inner_sport=ports[0], inner_dport=ports[1],
                       inner_tos=tos, icmp_id=None)
        version = 6 if ":" in str(row["dst"]) else 4
        row.update(ip_version=version, frag=False, l2_proto=0x86DD if version == 6 else 0x0800,
                   flow=spec.name,
                   priority=spec.priority,
                   sk_token=0 if forwarded else _token("sk", i, spec.name))
        rows.append(row)
    seen: dict[str, int] = {}
    for row in rows:  # two sources with the same description stay two flows
        n = seen[row["flow"]] = seen.get(row["flow"], 0) + 1
        if n > 1:
            row["flow"] = f"{row['flow']} #{n}"
    frame = pd.DataFrame(rows, columns=[
        "flow", "ip_version", "src", "dst", "proto", "sport", "dport", "tos", "frag", "tunnel",
        "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport", "inner_tos",
        "icmp_id", "l2_proto", "sk_token", "priority"])
    for col in ("src", "dst", "inner_src", "inner_dst", "tunnel"):
        frame[col] = frame[col].astype("category")
    for col in ("proto", "inner_proto", "tos", "inner_tos"):
        frame[col] = frame[col].astype("UInt8")
    for col in ("sport", "dport", "inner_sport", "inner_dport", "icmp_id", "l2_proto"):
        frame[col] = frame[col].astype("UInt16")
    frame["sk_token"] = frame["sk_token"].astype(np.uint32)
    if frame["priority"].isna().all():
        frame = frame.drop(columns="priority")  # hashing's default: rt_tos2priority(TOS)
    else:
        default = np.asarray(tos_to_priority(frame["tos"].astype("int64").to_numpy()))
        frame["priority"] = np.where(frame["priority"].isna(), default,
                                     frame["priority"].fillna(0).astype("int64")).astype(np.uint32)
    frame["ip_version"] = frame["ip_version"].astype("UInt8")
    frame["frag"] = frame["frag"].astype(bool)
    return frame
