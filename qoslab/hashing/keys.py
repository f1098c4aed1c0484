"""cls_flow keys: their bits, tc spellings and per-era values (``net/sched/cls_flow.c``).

:data:`FLOW_KEYS` is the one table of keys: tc name → keymask bit (``enum flow_keys`` in
``include/uapi/linux/pkt_cls.h``) and whether the flow dissector is needed. Keys are gathered
in ascending bit order, whatever order tc was given. The ``tunnel-*`` keys are the seed's
patch (profiles ``tunnel-patch`` and ``proposed-fix``); they take bits 18–22 after ``rxhash``.

Reading of the tunnel keys (documented decision): on an IP-in-IP packet (4in4, 6in4, 4in6,
6in6) they give the inner header's source, destination, protocol and ports with the profile's
rules for the plain keys; on a packet that is not tunnelled they give the same value as the
plain key (``tunnel-src`` = ``src`` …), so one filter classifies mixed traffic like the
classic hash does.

``addr_fold`` values (socket, route, conntrack pointers) are opaque tokens; see
:data:`qoslab.hashing.OPTIONAL_COLUMNS` for their identity and the other columns a capture
cannot know.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ._packets import column, header, present, raw16, tokens
from .dissect import Flow, addr32, direct_read, dissect, port_protocols, read_ports
from .pfifo_fast import skb_priority
from .profiles import KernelProfile
from .skbhash import skb_hash

__all__ = ["FLOW_KEYS", "KEY_BITS", "parse_keys", "key_values"]

#: tc name -> (bit, needs the flow dissector).
FLOW_KEYS: dict[str, tuple[int, bool]] = {
    "src": (0, True), "dst": (1, True), "proto": (2, True), "proto-src": (3, True),
    "proto-dst": (4, True), "iif": (5, False), "priority": (6, False), "mark": (7, False),
    "nfct": (8, False), "nfct-src": (9, True), "nfct-dst": (10, True),
    "nfct-proto-src": (11, True), "nfct-proto-dst": (12, True), "rt-classid": (13, False),
    "sk-uid": (14, False), "sk-gid": (15, False), "vlan-tag": (16, False),
    "rxhash": (17, False),
    "tunnel-src": (18, True), "tunnel-dst": (19, True), "tunnel-proto": (20, True),
    "tunnel-proto-src": (21, True), "tunnel-proto-dst": (22, True),
}
KEY_BITS = {name: bit for name, (bit, _) in FLOW_KEYS.items()}
_BY_BIT = {bit: name for name, bit in KEY_BITS.items()}


def parse_keys(spec: str | list[str] | tuple[str, ...], profile: KernelProfile) -> list[str]:
    """Key names (prefixes allowed, as tc allows) → full names in kernel bit order.

    Examples
    --------
    >>> from qoslab.hashing.profiles import get_profile
    >>> parse_keys("dst,src,proto-d,proto-s,proto", get_profile("5.18+"))
    ['src', 'dst', 'proto', 'proto-src', 'proto-dst']
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    bits = set()
    for item in items:
        word = item.strip()
        if word in FLOW_KEYS:
            name = word
        else:
            # iproute2 f_flow.c matches by prefix, first table entry wins
            matches = [k for k in FLOW_KEYS if k.startswith(word)] if word else []
            if not matches:
                raise ConfigError(f"cls_flow key {word!r}: expected one of {', '.join(FLOW_KEYS)}")
            name = matches[0]
        if name.startswith("tunnel-") and not profile.tunnel_keys:
            raise ConfigError(f"cls_flow key {name!r} exists only with the seed's tunnel patch "
                              "(profiles 'tunnel-patch', 'proposed-fix'), not in "
                              f"{profile.name!r}")
        if name == "rxhash" and not profile.rxhash_key:
            raise ConfigError(f"cls_flow key 'rxhash' does not exist in profile {profile.name!r}")
        bits.add(KEY_BITS[name])
    if not bits:
        raise ConfigError("cls_flow keys: expected at least one key")
    return [_BY_BIT[b] for b in sorted(bits)]


_addr32 = addr32  # an address as the u32 cls_flow returns (host order)


class _Context:
    """Lazily computed per-packet facts shared by the key functions of one classification."""

    def __init__(self, packets: pd.DataFrame, profile: KernelProfile, endianness: str,
                 skb_hashrnd) -> None:
        self.p, self.prof, self.endian, self.skb_hashrnd = packets, profile, endianness, skb_hashrnd
        self._cache: dict[str, object] = {}

    def get(self, name: str, make):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def flow(self) -> Flow:
        if self.prof.clsflow == "dissector":
            return self.get("flow", lambda: dissect(self.p, self.prof))
        return self.get("flow", lambda: direct_read(self.p, self.prof))

    @property
    def outer(self):
        return self.get("outer", lambda: header(self.p, "outer"))

    @property
    def sk(self) -> np.ndarray:
        return self.get("sk", lambda: column(self.p, "sk_token"))

    @property
    def route(self) -> np.ndarray:
        return self.get("route", self._route)

    def _route(self) -> np.ndarray:
        if "route_token" in self.p.columns:
            return column(self.p, "route_token")
        o = self.outer
        dst = self.p["dst"]
        if self.prof.routing_cache:
            # route cache (net/ipv4/route.c before 3.6): output entries match daddr, saddr
            # (0 for unbound sockets), oif, mark and TOS & (IPTOS_RT_MASK | RTO_ONLINK);
            # input (forwarded, iif != 0) entries match daddr, saddr, iif, TOS & IPTOS_RT_MASK
            iif = column(self.p, "iif")
            fwd = iif != 0
            src = self.p["src"].astype("string").where(fwd, "")
            tok = tokens("route", dst, o.tos & 0x1C, column(self.p, "mark"), src,
                         np.where(fwd, iif, 0))
        elif "nexthop" in self.p.columns:
            nh = self.p["nexthop"].astype("string")
            tok = tokens("nexthop", nh.fillna(dst.astype("string")))
        else:
            tok = tokens("nexthop", dst)
        return np.where(o.version > 0, tok, 0).astype(np.uint32)

    @property
    def proto_raw(self) -> np.ndarray:
        """``(__force u16)`` of the protocol cls_flow's fallbacks read, as a host integer.

        ``skb->protocol``, or with ``clsflow_protocol == "tc"`` (``tc_skb_protocol``) the
        accelerated VLAN tag's protocol (0x8100) when the packet carries one.
        """
        proto = self.flow.l2_proto
        if self.prof.clsflow_protocol == "tc":
            proto = np.where(self.flow.has_vlan, 0x8100, proto)
        return raw16(proto, self.endian)


def _unless(ok: np.ndarray, value: np.ndarray, fallback) -> np.ndarray:
    """``where(ok, value, fallback())``, calling ``fallback`` only when some row needs it."""
    if ok.all():
        return value.astype(np.uint32)
    return np.where(ok, value, fallback()).astype(np.uint32)


def _src(c: _Context, f: Flow) -> np.ndarray:
    a = _addr32(f.src, f.version, c.prof.ipv6_addr)
    ok = a != 0 if c.prof.clsflow == "dissector" else f.version > 0
    return _unless(ok, a, lambda: c.sk)


def _dst(c: _Context, f: Flow) -> np.ndarray:
    a = _addr32(f.dst, f.version, c.prof.ipv6_addr)
    ok = a != 0 if c.prof.clsflow == "dissector" else f.version > 0
    return _unless(ok, a, lambda: c.route ^ c.proto_raw)


def _has_ports(c: _Context, f: Flow) -> np.ndarray:
    if c.prof.clsflow == "dissector":
        return (f.sport | f.dport) != 0  # ports.ports != 0
    return _port_read_ok(c, f)


def _port_read_ok(c: _Context, f: Flow) -> np.ndarray:
    """Direct-read eras: the port read succeeded (a port protocol, not a fragment)."""
    return c.get("portok", lambda: (f.version > 0) & np.isin(f.ip_proto, port_protocols(
        c.prof.sfq_ports)) & ~column(c.p, "frag", 0, bool) & (
            present(c.p, "sport") | np.isin(f.ip_proto, (50, 51))))


def _proto_src(c: _Context, f: Flow) -> np.ndarray:
    return _port_key(c, f, f.sport, lambda: c.sk)


def _proto_dst(c: _Context, f: Flow) -> np.ndarray:
    return _port_key(c, f, f.dport, lambda: c.route ^ c.proto_raw)


def _port_key(c: _Context, f: Flow, port: np.ndarray, fallback) -> np.ndarray:
    ok = _has_ports(c, f)
    if c.prof.ports_zero_without_ports:
        return np.where(ok, port, 0).astype(np.uint32)
    if c.prof.clsflow == "direct":  # 2.6.3x: 0 for IP without ports, addr_fold for non-IP
        port = np.where(ok, port, 0)
        ok = ok | (f.version > 0)
    return _unless(ok, port, fallback)


def _nfct(c: _Context, key: str, plain) -> np.ndarray:
    ct = column(c.p, "nfct_token")
    value = plain()
    if not ct.any():
        return value
    o = c.outer
    if key in ("src", "dst"):
        own = (o.src if key == "src" else o.dst)[:, 3]
    else:
        icmp = np.isin(o.proto, (1, 58))
        if key == "proto-src":
            own = np.where(icmp, column(c.p, "icmp_id"), o.sport)
        else:
            own = np.where(icmp, (column(c.p, "icmp_type") << 8) | column(c.p, "icmp_code"),
                           o.dport)
    return np.where(ct != 0, own, value).astype(np.uint32)


def _tunnel(c: _Context, key: str, plain) -> np.ndarray:
    inner = c.get("innerflow", lambda: _inner_flow(c))
    value = {"src": _src, "dst": _dst, "proto": lambda cc, ff: ff.ip_proto,
             "proto-src": _proto_src, "proto-dst": _proto_dst}[key]
    sub = _Context(c.p, c.prof, c.endian, c.skb_hashrnd)
    sub._cache = {**c._cache, "flow": inner, "portok": _inner_port_ok(c, inner)}
    mine = value(sub, inner)
    return np.where(inner.tunnelled, mine, plain()).astype(np.uint32)


def _inner_flow(c: _Context) -> Flow:
    i = header(c.p, "inner")
    sport, dport = read_ports(i, np.zeros(len(c.p), np.uint32), c.prof.sfq_ports)
    base = c.flow
    return Flow(base.n_proto, base.l2_proto, i.version, i.src, i.dst, i.proto, sport, dport,
                base.flow_label, base.vlan, base.has_vlan, i.version > 0)


def _inner_port_ok(c: _Context, f: Flow) -> np.ndarray:
    return (f.version > 0) & np.isin(f.ip_proto, port_protocols(c.prof.sfq_ports)) & \
        present(c.p, "inner_sport")


def _priority(c: _Context) -> np.ndarray:
    return skb_priority(c.p, c.prof)


def _rxhash(c: _Context) -> np.ndarray:
    return skb_hash(c.p, hashrnd=c.skb_hashrnd, profile=c.prof, endianness=c.endian)


def key_values(packets: pd.DataFrame, keys: list[str], profile: KernelProfile, *,
               endianness: str = "little", skb_hashrnd=0) -> np.ndarray:
    """The ``(N, len(keys))`` uint32 array cls_flow hashes (keys already in bit order)."""
    c = _Context(packets, profile, endianness, skb_hashrnd)
    plain = {
        "src": lambda: _src(c, c.flow), "dst": lambda: _dst(c, c.flow),
        "proto": lambda: c.flow.ip_proto, "proto-src": lambda: _proto_src(c, c.flow),
        "proto-dst": lambda: _proto_dst(c, c.flow),
    }
    table = {
        **plain,
        "iif": lambda: column(packets, "iif"),
        "priority": lambda: _priority(c),
        "mark": lambda: column(packets, "mark"),
        "nfct": lambda: column(packets, "nfct_token"),
        "rt-classid": lambda: column(packets, "rt_classid"),
        "sk-uid": lambda: column(packets, "sk_uid"),
        "sk-gid": lambda: column(packets, "sk_gid"),
        "vlan-tag": lambda: c.flow.vlan,
        "rxhash": lambda: _rxhash(c),
    }
    for k in ("src", "dst", "proto-src", "proto-dst"):
        table["nfct-" + k] = (lambda k=k: _nfct(c, k, plain[k]))
    for k in ("src", "dst", "proto", "proto-src", "proto-dst"):
        table["tunnel-" + k] = (lambda k=k: _tunnel(c, k, plain[k]))
    out = np.empty((len(packets), len(keys)), dtype=np.uint32, order="F")
    for j, k in enumerate(keys):
        out[:, j] = table[k]()
    return out
