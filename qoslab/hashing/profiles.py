"""Kernel behaviour profiles: ONE declarative table of what each Linux era does.

Every hash function in :mod:`qoslab.hashing` takes ``profile=`` (a name or a
:class:`KernelProfile`) and reads its behaviour from here; no era logic lives elsewhere as
version checks. Facts and their sources: ``docs/kernel-semantics.md`` (sections cited per
field), the kernel files ``include/linux/jhash.h``, ``net/sched/cls_flow.c``,
``net/sched/sch_sfq.c``, ``net/sched/sch_fq_codel.c``, ``net/core/flow_dissector.c``,
``include/net/flow_dissector.h``, ``net/ipv4/route.c``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["KernelProfile", "PROFILES", "get_profile", "DEFAULT_PROFILE"]

DEFAULT_PROFILE = "5.18+"


@dataclass(frozen=True)
class KernelProfile:
    """What one kernel era does when it hashes a packet.

    Attributes
    ----------
    name, era
        Profile name and the kernel versions it stands for.
    jhash
        ``"lookup2"`` (≤ 2.6.36), ``"lookup3-v1"`` (2.6.37–3.18 word helpers) or
        ``"lookup3-v2"`` (≥ 3.19); cls_flow always uses ``jhash2`` of this generation.
    clsflow
        cls_flow key semantics: ``"direct"`` (2.6.2x–2.6.36 header read, 0 when no ports),
        ``"direct-fold"`` (2.6.37–3.2, ``proto_ports_offset``, addr_fold fallback on any
        failure) or ``"dissector"`` (3.3+, ``skb_flow_dissect``: looks through IP-in-IP).
    ipv6_addr
        How an IPv6 address becomes one u32: ``"last-word"`` (``s6_addr32[3]``) or ``"xor"``
        (``ipv6_addr_hash``).
    tunnel_keys
        The ``tunnel-*`` keys of the seed's patch exist.
    ports_zero_without_ports
        ``proto-src``/``proto-dst`` give 0 instead of addr_fold when there are no ports
        (the seed author's proposed fix).
    routing_cache
        The IPv4 routing cache exists (before 3.6): one route entry per (destination, TOS),
        so addr_fold(skb_dst) differs by TOS. Afterwards one per next hop.
    rxhash_key
        cls_flow knows the ``rxhash`` key (2.6.37+; 3.0 in fact, see notes).
    sfq
        SFQ bucket function: ``"fold"`` (≤ 2.6.24), ``"jhash-2words"`` (2.6.25–3.2),
        ``"jhash-3words"`` (3.3–4.1) or ``"flow-hash"`` (4.2+, ``skb_get_hash_perturb``).
    sfq_rehash
        The perturb timer re-bins queued packets (3.3+, only without filters).
    sfq_ports
        Which IP protocols give SFQ its L4 word (``"classic"`` list with or without
        UDP-Lite, or ``"proto_ports_offset"`` where AH gives its SPI).
    skb_hash
        ``None``, ``"rxhash-2.6"`` (2.6.37–3.2 ``__skb_get_rxhash``, outer header only),
        ``"rxhash"`` (3.3–4.1: ``jhash_3words(dst, src, ports)`` canonical) or
        ``"flow-keys"`` (4.2+).
    flow_keys_layout
        Byte layout of ``struct flow_keys`` for the 4.2+ hash (see :mod:`.skbhash`).
    flow_hash
        ``"jhash2"`` (u32 seed) or ``"siphash"`` (128-bit key) over the flow_keys bytes.
    consistentify
        Direction normalisation: ``"unsigned"`` (raw dst < raw src) or ``"signed"``
        (``(s32)(dst - src) < 0``).
    fq_codel
        ``None`` (no fq_codel), ``"jhash-3words"`` (own hash, 3.5–4.1) or ``"skb-hash"``.
    dissector_ip_fragment_proto
        What the dissector puts in ``ip_proto`` for an IPv4 fragment: ``"zero"`` (3.x) or
        ``"keep"`` (modern).
    tos2prio
        ``"old"`` (ECN bug: ECT(0) → FILLER) or ``"new"`` ip_tos2prio table.
    """

    name: str
    era: str
    jhash: str
    clsflow: str
    ipv6_addr: str
    tunnel_keys: bool
    ports_zero_without_ports: bool
    routing_cache: bool
    rxhash_key: bool
    sfq: str
    sfq_rehash: bool
    sfq_ports: str
    skb_hash: str | None
    flow_keys_layout: str | None
    flow_hash: str | None
    consistentify: str
    fq_codel: str | None
    dissector_ip_fragment_proto: str
    tos2prio: str


def _p(name, era, jhash, clsflow, ipv6_addr, sfq, sfq_rehash, sfq_ports, skb_hash, layout,
       flow_hash, fq_codel, frag_proto, tos2prio, routing_cache, rxhash_key,
       tunnel_keys=False, zero_ports=False, consistentify="signed") -> KernelProfile:
    return KernelProfile(name, era, jhash, clsflow, ipv6_addr, tunnel_keys, zero_ports,
                         routing_cache, rxhash_key, sfq, sfq_rehash, sfq_ports, skb_hash, layout,
                         flow_hash, consistentify, fq_codel, frag_proto, tos2prio)


#: name -> profile. Columns: jhash, cls_flow, IPv6 address word, SFQ, SFQ rehash, SFQ port list,
#: skb hash, flow_keys layout, flow hash, fq_codel, IPv4-fragment ip_proto, TOS table,
#: routing cache, rxhash key.
PROFILES: dict[str, KernelProfile] = {p.name: p for p in (
    _p("sfq-fold-2.6.2x", "≤ 2.6.24 (SFQ before jhash; no cls_flow)", "lookup2", "direct",
       "last-word", "fold", False, "classic-no-udplite", None, None, None, None, "zero", "old",
       True, False),
    _p("classic-2.6.3x", "2.6.25–2.6.36", "lookup2", "direct", "last-word", "jhash-2words",
       False, "classic", None, None, None, None, "zero", "old", True, False),
    _p("2.6.37-3.2", "2.6.37–3.2 (lookup3, addr_fold fallbacks, routing cache)", "lookup3-v1",
       "direct-fold", "last-word", "jhash-2words", False, "proto_ports_offset", "rxhash-2.6",
       None, None, None, "zero", "new", True, True),
    _p("3.x-dissector", "3.6–3.18 (flow dissector, SFQ rehash, no routing cache)",
       "lookup3-v1", "dissector", "xor", "jhash-3words", True, "proto_ports_offset", "rxhash",
       None, None, "jhash-3words", "zero", "new", False, True, consistentify="unsigned"),
    _p("3.19-4.1", "3.19–4.1 (jhash word helpers v2)", "lookup3-v2", "dissector", "xor",
       "jhash-3words", True, "proto_ports_offset", "rxhash", None, None, "jhash-3words",
       "zero", "new", False, True, consistentify="unsigned"),
    _p("4.2-5.3", "4.6–4.17 layout (7 IPv4 words), jhash2 flow hash", "lookup3-v2",
       "dissector", "xor", "flow-hash", True, "proto_ports_offset", "flow-keys", "4.6",
       "jhash2", "skb-hash", "keep", "new", False, True),
    _p("4.18-5.3", "4.18–5.3 layout (cvlan, 8 IPv4 words), jhash2 flow hash", "lookup3-v2",
       "dissector", "xor", "flow-hash", True, "proto_ports_offset", "flow-keys", "4.18",
       "jhash2", "skb-hash", "keep", "new", False, True),
    _p("5.4-siphash", "5.4 (siphash, 32-byte IPv4 flow_keys)", "lookup3-v2", "dissector", "xor",
       "flow-hash", True, "proto_ports_offset", "flow-keys", "5.4", "siphash", "skb-hash",
       "keep", "new", False, True),
    _p("5.5-5.17", "5.5–5.17 (icmp member, 40-byte IPv4 flow_keys)", "lookup3-v2", "dissector",
       "xor", "flow-hash", True, "proto_ports_offset", "flow-keys", "5.5", "siphash",
       "skb-hash", "keep", "new", False, True),
    _p("5.18+", "5.18 and later (8-byte vlan keys, 48-byte IPv4 flow_keys)", "lookup3-v2",
       "dissector", "xor", "flow-hash", True, "proto_ports_offset", "flow-keys", "5.18",
       "siphash", "skb-hash", "keep", "new", False, True),
    _p("tunnel-patch", "classic-2.6.3x cls_flow plus the seed's tunnel-* keys", "lookup2",
       "direct", "last-word", "jhash-2words", False, "classic", None, None, None, None,
       "zero", "old", True, False, tunnel_keys=True),
    _p("proposed-fix", "2.6.37–3.2 with tunnel-* keys; proto-src/dst give 0 without ports",
       "lookup3-v1", "direct-fold", "last-word", "jhash-2words", False, "proto_ports_offset",
       "rxhash-2.6", None, None, None, "zero", "new", True, True, tunnel_keys=True,
       zero_ports=True),
)}


def get_profile(profile: str | KernelProfile) -> KernelProfile:
    """Return the profile named ``profile`` (or ``profile`` itself).

    Examples
    --------
    >>> get_profile("classic-2.6.3x").jhash
    'lookup2'
    >>> get_profile("5.18+").sfq_rehash
    True
    """
    if isinstance(profile, KernelProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ConfigError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}") from None
