"""Kernel behaviour profiles: ONE declarative table of what each Linux era does.

Every hash function in :mod:`qoslab.hashing` takes ``profile=`` (a name or a
:class:`KernelProfile`) and reads its behaviour from here; no era logic lives elsewhere as
version checks. Facts and their sources (kernel file and version or commit, numbered F1…,
Q1…, S1…): ``docs/kernel-facts.md``. A row's ``oracle`` names the kernel tree whose compiled
code checks it bit for bit (``tools/kernel-oracle``, ``tests/test_kernel_oracle.py``).
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
    bounds
        The commits (or releases) that open and close the era.
    oracle
        The kernel tree whose compiled code checks this profile bit for bit
        (``tools/kernel-oracle``), or None when no oracle covers it yet.
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
    vlan_tci_hashed
        Which VLAN TCI bits the flow_keys hash sees (the ``vlan_id:12, vlan_dei:1,
        vlan_priority:3`` key): ``0x0FFF`` id only, ``0xEFFF`` id and priority (PCP).
    sfq_scheduler
        Generation of SFQ's scheduler (``net/sched/sch_sfq.c``), which
        :mod:`qoslab.qdiscs.sfq` runs: ``"classic"`` (≤ 2.6.36: a new flow keeps the
        unscaled 16-bit allotment its slot had), ``"2.6.37"`` (aa3e219997e: a new flow starts
        with one quantum), ``"2.6.38"`` (eeaeb068f13: allotment scaled by 8, slots with no
        allotment skipped; to 3.2) or ``"3.3"`` (flows/depth/headdrop, rehash on perturb).
    sfq_allot_bits
        Width of SFQ's signed ``allot`` credit (``short``: 16 bits, wraps past ±32,767).
    sfq_perturb_rearm
        How the perturb timer re-arms: ``"callback"`` (``mod_timer(jiffies + period)`` from
        its own callback, so each period counts from when the previous callback ran).
    pfifo_fast_limit
        How pfifo_fast counts the device's ``txqueuelen``: ``"total"`` over its three bands
        (``sch_generic.c`` up to 4.15: ``skb_queue_len(&qdisc->q) < tx_queue_len``) or
        ``"per-band"`` (c5ad119fb6c0, 4.16: one ``skb_array`` of ``tx_queue_len`` per band, so a
        full band 1 no longer drops band-0 packets).
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
    bounds: str = ""
    oracle: str | None = None
    vlan_tci_hashed: int = 0x0FFF
    sfq_scheduler: str = "3.3"
    sfq_allot_bits: int = 16
    sfq_perturb_rearm: str = "callback"
    pfifo_fast_limit: str = "per-band"


#: The profile table: one keyword row per kernel era. A row names the versions it stands for
#: (``era``), the commits that bound it (``bounds``), the oracle tree that checks it
#: (``oracle``; docs/kernel-facts.md) and its behaviour fields; ``like=`` starts a row from
#: an earlier one and overrides what differs.
_ROWS: tuple[dict, ...] = (
    dict(name="sfq-fold-2.6.2x", era="≤ 2.6.24 (SFQ before jhash; no cls_flow)",
         bounds="SFQ moves to jhash in 2.6.23 (32740ddc109) for fold-less buckets",
         jhash="lookup2", clsflow="direct", ipv6_addr="last-word", sfq="fold", sfq_rehash=False,
         sfq_ports="classic-no-udplite", skb_hash=None, flow_keys_layout=None, flow_hash=None,
         fq_codel=None, dissector_ip_fragment_proto="zero", tos2prio="old", routing_cache=True,
         rxhash_key=False, tunnel_keys=False, ports_zero_without_ports=False,
         consistentify="signed", sfq_scheduler="classic", pfifo_fast_limit="total"),
    dict(like="sfq-fold-2.6.2x", name="classic-2.6.3x", era="2.6.25–2.6.36",
         bounds="jhash SFQ (32740ddc109) .. lookup3 jhash (60d509c823c, 2.6.38)",
         sfq="jhash-2words", sfq_ports="classic"),
    dict(like="classic-2.6.3x", name="2.6.37-3.2",
         era="2.6.37–3.2 (lookup3, addr_fold fallbacks, routing cache)",
         bounds="2.6.37 .. flow dissector (0744dd00c1b, 3.3)", jhash="lookup3-v1",
         clsflow="direct-fold", sfq_ports="proto_ports_offset", skb_hash="rxhash-2.6",
         tos2prio="new", rxhash_key=True, sfq_scheduler="2.6.38"),
    dict(like="2.6.37-3.2", name="3.x-dissector",
         era="3.6–3.18 (flow dissector, SFQ rehash, no routing cache)",
         bounds="routing cache removal (89aef8921bf, 3.6) .. jhash v2 word helpers (3.19)",
         clsflow="dissector", ipv6_addr="xor", sfq="jhash-3words", sfq_rehash=True,
         skb_hash="rxhash", fq_codel="jhash-3words", routing_cache=False,
         consistentify="unsigned", sfq_scheduler="3.3"),
    dict(like="3.x-dissector", name="3.19-4.1", era="3.19–4.1 (jhash word helpers v2)",
         bounds="3.19 .. flow_keys hash (4.2)", jhash="lookup3-v2"),
    dict(like="3.19-4.1", name="4.2-5.3", era="4.6–4.17 layout (7 IPv4 words), jhash2 flow hash",
         bounds="4.6 .. cvlan key (4.18)", sfq="flow-hash", skb_hash="flow-keys",
         flow_keys_layout="4.6", flow_hash="jhash2", fq_codel="skb-hash",
         dissector_ip_fragment_proto="keep", consistentify="signed"),
    dict(like="4.2-5.3", name="4.18-5.3",
         era="4.18–5.3 layout (cvlan, 8 IPv4 words), jhash2 flow hash",
         bounds="cvlan key (4.18) .. siphash flow hash (5.4)", flow_keys_layout="4.18",
         pfifo_fast_limit="per-band"),
    dict(like="4.18-5.3", name="5.4-siphash", era="5.4 (siphash, 32-byte IPv4 flow_keys)",
         bounds="siphash flow hash (5.4) .. icmp member (5.5)", flow_keys_layout="5.4",
         flow_hash="siphash"),
    dict(like="5.4-siphash", name="5.5-5.17", era="5.5–5.17 (icmp member, 40-byte IPv4 flow_keys)",
         bounds="icmp member (5.5) .. 8-byte vlan keys (5.18)", flow_keys_layout="5.5"),
    dict(like="5.5-5.17", name="5.18+",
         era="6.0 and later (checked on 6.1.20); 8-byte vlan keys with the priority bits, "
             "48-byte IPv4 flow_keys, addresses (unsigned compare) and ports ordered apart",
         bounds="unsigned IPv4 compare (64ae13ed4784, 6.0) ..", oracle="6.1.20",
         flow_keys_layout="5.18", consistentify="unsigned-ports-apart", vlan_tci_hashed=0xEFFF),
    dict(like="classic-2.6.3x", name="tunnel-patch",
         era="classic-2.6.3x cls_flow plus the seed's tunnel-* keys", bounds="out-of-tree patch",
         tunnel_keys=True),
    dict(like="2.6.37-3.2", name="proposed-fix",
         era="2.6.37–3.2 with tunnel-* keys; proto-src/dst give 0 without ports",
         bounds="out-of-tree patch", tunnel_keys=True, ports_zero_without_ports=True),
)


def _build(rows) -> dict[str, KernelProfile]:
    table: dict[str, dict] = {}
    for row in rows:
        row = dict(row)
        base = table[row.pop("like")] if "like" in row else {}
        merged = {**base, "oracle": None, **row}
        table[merged["name"]] = merged
    return {name: KernelProfile(**fields) for name, fields in table.items()}


#: name -> profile.
PROFILES: dict[str, KernelProfile] = _build(_ROWS)


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
