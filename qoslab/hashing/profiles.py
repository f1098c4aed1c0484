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
    notes
        What sets the era apart, which releases were compiled and which were not.
    bounds
        The commits (or releases) that open and close the era.
    oracle
        The kernel trees whose compiled code checks this profile bit for bit
        (``tools/kernel-oracle`` era names; empty for the out-of-tree patches).
    jhash
        ``"lookup2"`` (≤ 2.6.36), ``"lookup3-v1"`` (2.6.37–3.18 word helpers) or
        ``"lookup3-v2"`` (≥ 3.19); cls_flow always uses ``jhash2`` of this generation.
    clsflow
        cls_flow key semantics: ``None`` (no cls_flow before 2.6.25), ``"direct"`` (2.6.2x–2.6.36 header read, 0 when no ports),
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
        ``None``, ``"rxhash-2.6"`` (2.6.37–3.1 ``__skb_get_rxhash``, outer header only),
        ``"rxhash-3.2"`` (3.2: the same through IPIP from an IPv4 header and GRE),
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
        ``None`` (no fq_codel), ``"jhash-3words"`` (own hash, 3.5–4.1), ``"flow-hash-perturb"``
        (the flow-keys hash with its own perturbation, 4.2–4.10) or ``"skb-hash"`` (4.11+).
    dissector_ip_fragment_proto
        What the dissector puts in ``ip_proto`` for a fragment: ``"zero"`` (IPv4 0, IPv6
        the fragment header's 44: 3.3–4.3), ``"ipv6-44"`` (IPv4 keeps its protocol, IPv6 44:
        4.4–4.5) or ``"keep"`` (both keep the upper protocol: 4.6+).
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
    vlan_prio_bit
        Where the flow_keys VLAN key keeps the priority: bit 13 (``vlan_id:12, vlan_dei:1,
        vlan_priority:3``) or bit 12 (``vlan_id:12, vlan_priority:3``, before the DEI member).
    sfq_classify
        SFQ picks a bucket through ``sfq_classify`` (2.6.25+): ``skb->priority`` of its
        handle and attached filters come before the hash; before, the hash alone decides.
    sfq_divisor_fixed
        SFQ's hash table has 1024 buckets whatever tc asks (``SFQ_HASH_DIVISOR``, before
        2.6.39's configurable divisor, 817fb15dfd9).
    rxhash_order
        How ``__skb_get_rxhash`` (2.6.37–4.1) makes both directions of a flow hash alike:
        ``"apart"`` (the raw ports sorted on their own, then the raw addresses: ≤ 3.3) or
        ``"canonical"`` (3.4+: addresses and ports swapped together when raw ``dst < src``, or
        equal addresses and raw dport < sport).
    dissector_tunnels
        Which IP-in-IP packets the flow dissector looks through: ``"ip-in-ip"`` (4in4, 6in4,
        4in6, 6in6; 3.19+) or ``"ipip"`` (3.3–3.18: protocol 4 re-parses the payload as the
        outer family, so only 4in4 is right; protocol 41 is not followed).
    dissector_gre
        What the flow dissector does with GRE version 0 (3.3+): ``"ip"`` (3.3–3.9: follows
        an IPv4 or IPv6 payload; an Ethernet payload, e.g. NVGRE, ends the walk with a
        failure) or ``"ip+teb"`` (3.10+: Ethernet payloads followed too; from 4.2 the GRE key
        enters the flow keys). VXLAN and Geneve are never opened.
    dissector_ipv6_ext
        The dissector walks IPv6 hop-by-hop, routing and destination options headers (4.2+);
        before, ``ip_proto`` is the fixed header's next header and no ports are read past an
        extension header.
    dissector_flow_label
        What a non-zero IPv6 flow label does in the dissector: ``"ignore"`` (3.3–3.18),
        ``"ports"`` (3.19–4.1: the walk stops and the label stands for the ports, for every
        caller) or ``"key"`` (4.2+: the label is a key; the walk stops there only when the
        caller asks, see ``flow_label_stop``).
    flow_label_stop
        The flow-keys hash dissects with ``FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL`` (4.3+): a
        labelled IPv6 header ends the walk before the ports (F4).
    clsflow_protocol
        The protocol cls_flow's ``dst``/``proto-dst`` fallbacks XOR in: ``"skb"``
        (``skb->protocol``) or ``"tc"`` (``tc_skb_protocol()``, 4.1–5.7: the accelerated VLAN
        tag's protocol, 0x8100, when the packet carries a tag).
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
    clsflow: str | None
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
    oracle: tuple[str, ...] = ()
    notes: str = ""
    vlan_tci_hashed: int = 0x0FFF
    sfq_scheduler: str = "3.3"
    sfq_allot_bits: int = 16
    sfq_perturb_rearm: str = "callback"
    pfifo_fast_limit: str = "per-band"
    clsflow_protocol: str = "skb"
    flow_label_stop: bool = True
    vlan_prio_bit: int = 13
    rxhash_order: str = "canonical"
    sfq_divisor_fixed: bool = False
    sfq_classify: bool = True
    dissector_tunnels: str = "ip-in-ip"
    dissector_gre: str = "ip+teb"
    dissector_ipv6_ext: bool = True
    dissector_flow_label: str = "key"


#: The profile table: one keyword row per kernel era. A row names the versions it stands for
#: (``era``), the commits that bound it (``bounds``), the oracle tree that checks it
#: (``oracle``; docs/kernel-facts.md) and its behaviour fields; ``like=`` starts a row from
#: an earlier one and overrides what differs.
_ROWS: tuple[dict, ...] = (
    dict(name="sfq-fold-2.6.2x",
         era="2.6.21–2.6.22",
         notes="checked on 2.6.22: SFQ folds its own hash, the hash alone picks the bucket, no "
               "cls_flow; before 2.6.21 (a8d0f9526ff) SFQ does not read UDP-Lite's ports",
         bounds="UDP-Lite in sfq_hash (a8d0f9526ff, 2.6.21) .. SFQ on jhash (32740ddc109, "
                "2.6.23)", oracle=("2.6.22",),
         jhash="lookup2", clsflow=None, ipv6_addr="last-word", sfq="fold", sfq_rehash=False,
         sfq_ports="classic", skb_hash=None, flow_keys_layout=None, flow_hash=None,
         fq_codel=None, dissector_ip_fragment_proto="zero", tos2prio="old", routing_cache=True,
         rxhash_key=False, tunnel_keys=False, ports_zero_without_ports=False,
         consistentify="signed", sfq_scheduler="classic", pfifo_fast_limit="total",
         sfq_divisor_fixed=True, rxhash_order="apart", sfq_classify=False),
    dict(like="sfq-fold-2.6.2x", name="classic-2.6.3x",
         era="2.6.25–2.6.35",
         notes="checked on 2.6.32: SFQ on jhash_2words, cls_flow reading the outer header itself (0 "
               "for an IP packet without ports), lookup2 jhash; 2.6.23–2.6.24 hash alike but have "
               "no cls_flow and no sfq_classify (not checked)",
         bounds="cls_flow and sfq_classify (2.6.25) .. cls_flow's addr_fold fallback for IP "
                "(4b95c3d40d7, 2.6.36)", oracle=("2.6.32",), sfq="jhash-2words",
         clsflow="direct", sfq_classify=True),
    dict(like="classic-2.6.3x", name="2.6.36",
         era="2.6.36",
         notes="checked on 2.6.36: cls_flow's proto-src/proto-dst fall back to addr_fold for an IP "
               "packet without ports",
         bounds="4b95c3d40d7 (2.6.36) .. proto_ports_offset and rxhash (2.6.37)",
         oracle=("2.6.36",), clsflow="direct-fold"),
    dict(like="2.6.36", name="2.6.37",
         era="2.6.37",
         notes="checked on 2.6.37: proto_ports_offset (AH's SPI), rxhash and cls_flow's rxhash key, "
               "still lookup2 jhash and the old TOS table; SFQ gives a new flow one quantum",
         bounds="proto_ports_offset, __skb_get_rxhash (2.6.37) .. lookup3 jhash (60d509c823c, "
                "2.6.38)", oracle=("2.6.37",), sfq_ports="proto_ports_offset",
         skb_hash="rxhash-2.6", rxhash_key=True, sfq_scheduler="2.6.37"),
    dict(like="2.6.37", name="2.6.38",
         era="2.6.38",
         notes="checked on 2.6.38: lookup3 jhash (word helpers v1), still the old TOS table and a "
               "1024-bucket SFQ",
         bounds="lookup3 jhash (60d509c823c, 2.6.38) .. TOS table fix (4a2b9c37560) and SFQ "
                "divisor (817fb15dfd9), 2.6.39", oracle=("2.6.38",), jhash="lookup3-v1",
         sfq_scheduler="2.6.38"),
    dict(like="2.6.38", name="2.6.37-3.2",
         era="2.6.39–3.1",
         notes="checked on 2.6.39 and 3.1: the fixed TOS table, SFQ's divisor configurable, routing "
               "cache",
         bounds="TOS table fix (4a2b9c37560) and SFQ divisor (817fb15dfd9), 2.6.39 .. rxhash "
                "through tunnels (3.2)", oracle=("2.6.39", "3.1"), tos2prio="new",
         sfq_divisor_fixed=False),
    dict(like="2.6.37-3.2", name="3.2",
         era="3.2",
         notes="checked on 3.2.7: rxhash walks in-band VLAN and PPPoE headers and follows IPIP (re-"
               "parsed as the outer family) and GRE",
         bounds="rxhash through tunnels (3.2) .. flow dissector (0744dd00c1b, 3.3)",
         oracle=("3.2.7",), skb_hash="rxhash-3.2"),
    dict(like="3.2", name="3.3",
         era="3.3",
         notes="checked on 3.3.8: the first flow dissector (IPv6 addresses by their last word), SFQ "
               "on jhash_3words with rehash, rxhash ordering ports and addresses apart, routing "
               "cache",
         bounds="flow dissector (0744dd00c1b, 3.3) .. canonical rxhash order (3.4)",
         oracle=("3.3.8",), clsflow="dissector", sfq="jhash-3words", sfq_rehash=True,
         skb_hash="rxhash", fq_codel=None, consistentify="unsigned", sfq_scheduler="3.3",
         dissector_tunnels="ipip", dissector_ipv6_ext=False, dissector_flow_label="ignore",
         rxhash_order="apart", dissector_gre="ip"),
    dict(like="3.3", name="3.4-3.5",
         era="3.4–3.5",
         notes="checked on 3.4.26; 3.5 not checked: rxhash orders addresses and ports together; "
               "fq_codel arrives in 3.5 (jhash_3words of the dissected flow with its own "
               "perturbation, as in 3.6)",
         bounds="canonical rxhash order (3.4) .. routing cache removal (89aef8921bf, 3.6)",
         oracle=("3.4.26",), rxhash_order="canonical", fq_codel="jhash-3words"),
    dict(like="3.4-3.5", name="3.4.y-stable",
         era="late 3.4.y stable releases",
         notes="checked on 3.4.113: jhash v2 word helpers backported",
         bounds="stable backport into 3.4.y of the jhash word-helper change (4.1)",
         oracle=("3.4.113",), jhash="lookup3-v2", fq_codel=None),
    dict(like="3.4-3.5", name="3.6-3.9",
         era="3.6–3.9",
         notes="checked on 3.6.5; 3.7–3.9 not checked: IPv6 addresses by ipv6_addr_hash, no "
               "routing cache; GRE carrying Ethernet ends the dissection",
         bounds="routing cache removal (89aef8921bf, 3.6) .. Ethernet over GRE dissected (3.10)",
         ipv6_addr="xor", routing_cache=False, oracle=("3.6.5",)),
    dict(like="3.6-3.9", name="3.x-dissector",
         era="3.10–3.18",
         notes="checked on 3.10.99; 3.11–3.18 not checked: GRE carrying Ethernet (NVGRE, "
               "gretap) is followed to the inner Ethernet frame",
         bounds="Ethernet over GRE dissected (3.10) .. IP-in-IP and flow-label dissection "
                "(3.19)", dissector_gre="ip+teb", oracle=("3.10.99",)),
    dict(like="3.x-dissector", name="3.19-4.1",
         era="3.19–4.0",
         notes="checked on 3.19.8; 4.0 not checked: the dissector follows all four IP-in-IP kinds "
               "and a labelled IPv6 header ends the walk with the label as the ports; jhash word "
               "helpers still v1",
         bounds="IP-in-IP and flow-label dissection (3.19) .. jhash v2 word helpers (4.1)",
         oracle=("3.19.8",), dissector_tunnels="ip-in-ip", dissector_flow_label="ports"),
    dict(like="3.19-4.1", name="4.1",
         era="4.1",
         notes="checked on 4.1.13: jhash word helpers v2 (jhash_3words = jhash2 of the three "
               "words); cls_flow's fallbacks read tc_skb_protocol()",
         bounds="jhash v2 word helpers, tc_skb_protocol (4.1) .. flow_keys hash (4.2)",
         oracle=("4.1.13",), jhash="lookup3-v2", clsflow_protocol="tc"),
    dict(like="4.1", name="4.2-4.3",
         era="4.2–4.3",
         notes="checked on 4.2.8; 4.3 not checked: the first flow_keys hash, 4-byte control key, "
               "24-byte IPv4 keys, the flow label above vlan_id:12 in one word, no flow-label stop, "
               "IPv4 fragments with ip_proto 0, accelerated VLAN tags not hashed",
         bounds="flow_keys hash (4.2) .. control flags and dissection flags (4.4)",
         oracle=("4.2.8",), sfq="flow-hash", skb_hash="flow-keys", flow_keys_layout="4.2",
         flow_hash="jhash2", fq_codel="flow-hash-perturb", consistentify="signed",
         clsflow_protocol="tc", vlan_tci_hashed=0, flow_label_stop=False,
         dissector_ipv6_ext=True, dissector_flow_label="key"),
    dict(like="4.2-4.3", name="4.4-4.5",
         era="4.4–4.5",
         notes="checked on 4.4.11; 4.5 not checked: 8-byte control key, the same tags word, flow-"
               "label stop, IPv4 fragments keep ip_proto",
         bounds="control flags and dissection flags (4.4) .. vlan key (4.6)",
         oracle=("4.4.11",), flow_keys_layout="4.4", flow_label_stop=True,
         dissector_ip_fragment_proto="ipv6-44"),
    dict(like="4.4-4.5", name="4.2-5.3",
         era="4.6–4.17",
         notes="checked on 4.9 (4.6–4.10): vlan key (id, priority at bit 12), 7 IPv4 words, jhash2 "
               "flow hash; 4.11–4.17 alike except that fq_codel hashes with the global secret "
               "(skb_get_hash) instead of its own perturbation and, from 4.16, pfifo_fast limits "
               "each band (not checked)",
         bounds="vlan key (4.6) .. cvlan key (4.18)", oracle=("4.9",),
         flow_keys_layout="4.6", vlan_tci_hashed=0xEFFF, vlan_prio_bit=12,
         dissector_ip_fragment_proto="keep"),
    dict(like="4.2-5.3", name="4.14.y-stable",
         era="late 4.14.y stable releases",
         notes="checked on 4.14.177: the 4.6 layout hashed with siphash",
         bounds="stable backport into 4.14.y of the siphash flow hash (55667441c84f)",
         oracle=("4.14.177",), flow_hash="siphash",
         fq_codel="skb-hash"),
    dict(like="4.2-5.3", name="4.18-5.3",
         era="4.18–5.0",
         notes="checked on 4.20 and 5.0.1: cvlan key, 8 IPv4 words, jhash2 flow hash",
         bounds="cvlan key (4.18) .. vlan_dei member (5.1 or 5.2)", oracle=("4.20", "5.0.1"),
         flow_keys_layout="4.18", fq_codel="skb-hash", pfifo_fast_limit="per-band"),
    dict(like="4.18-5.3", name="4.19.y-stable",
         era="late 4.19.y stable releases",
         notes="checked on 4.19.304: 8-byte vlan keys without the icmp member, hashed with siphash; "
               "cls_flow reads skb_protocol(skb, true)",
         bounds="stable backports into 4.19.y of the siphash flow hash (55667441c84f), the "
                "vlan_eth_type key and d7bf2ebebc2b (skb_protocol)", oracle=("4.19.304",),
         flow_hash="siphash", clsflow_protocol="skb", flow_keys_layout="5.4.y"),
    dict(like="4.18-5.3", name="5.2-5.3",
         era="5.2–5.3",
         notes="checked on 5.2.1 and 5.3.1; 5.1 not checked: the vlan_dei member puts the priority "
               "at bit 13 (DEI itself is not filled)",
         bounds="vlan_dei member (after 5.0.1) .. siphash flow hash (5.4)",
         oracle=("5.2.1", "5.3.1"), vlan_prio_bit=13),
    dict(like="5.2-5.3", name="5.4-siphash", era="5.4",
         notes="checked on 5.4.0: siphash, 32-byte IPv4 flow_keys", bounds="siphash flow hash (55667441c84f, 5.4) .. icmp member (5.5)",
         oracle=("5.4",), flow_keys_layout="5.4", flow_hash="siphash"),
    dict(like="5.4-siphash", name="5.4.y-stable",
         era="late 5.4.y stable releases",
         notes="checked on 5.4.214: 8-byte vlan keys backported without the icmp member (40-byte "
               "IPv4 flow_keys), cls_flow reading skb_protocol(skb, true)",
         bounds="stable backports into 5.4.y of the vlan_eth_type key and of d7bf2ebebc2b "
                "(skb_protocol)", oracle=("5.4.214",), flow_keys_layout="5.4.y",
         clsflow_protocol="skb"),
    dict(like="5.4-siphash", name="5.5-5.17",
         era="5.5–5.7",
         notes="checked on 5.6.4: icmp member, 40-byte IPv4 flow_keys, cls_flow's tc_skb_protocol()",
         bounds="icmp member (5.5) .. skb_protocol in cls_flow (d7bf2ebebc2b, 5.8)",
         oracle=("5.6.4",), flow_keys_layout="5.5"),
    dict(like="5.5-5.17", name="5.8-5.13",
         era="5.8–5.13",
         notes="checked on 5.10.44: cls_flow reads skb_protocol(skb, true)",
         bounds="skb_protocol in cls_flow (d7bf2ebebc2b, 5.8) .. ports ordered apart "
                "(1e60cebf8294, 5.14)", oracle=("5.10.44",), clsflow_protocol="skb"),
    dict(like="5.8-5.13", name="5.14-5.17",
         era="5.14–5.17",
         notes="checked on 5.14.2 and 5.17-rc5: addresses (signed IPv4 compare) and ports ordered "
               "apart",
         bounds="ports ordered apart (1e60cebf8294, 5.14) .. 8-byte vlan keys (5.18)",
         oracle=("5.14.2", "5.17-rc5"), consistentify="signed-ports-apart"),
    dict(like="5.14-5.17", name="5.18-5.19",
         era="5.18–5.19",
         notes="checked on 5.19: 8-byte vlan keys, 48-byte IPv4 flow_keys",
         bounds="8-byte vlan keys (5.18) .. unsigned IPv4 compare (64ae13ed4784, 6.0)",
         oracle=("5.19",), flow_keys_layout="5.18"),
    dict(like="5.18-5.19", name="5.18+",
         era="6.0 and later; late 5.15.y stable releases",
         notes="checked on 6.1.20 and 5.15.100: addresses (unsigned IPv4 compare) and ports ordered "
               "apart; 5.15.y carries the 8-byte vlan keys and 64ae13ed4784 as backports",
         bounds="unsigned IPv4 compare (64ae13ed4784, 6.0; backported with the 8-byte vlan keys "
                "into 5.15.y) ..", oracle=("6.1.20", "5.15.100"),
         consistentify="unsigned-ports-apart"),
    dict(like="classic-2.6.3x", name="tunnel-patch",
         era="classic-2.6.3x with the seed's tunnel-* keys (out-of-tree patch)", bounds="out-of-tree patch",
         tunnel_keys=True),
    dict(like="2.6.37-3.2", name="proposed-fix",
         era="2.6.39–3.1 with the seed's tunnel-* keys (out-of-tree patch)",
         notes="2.6.37-3.2's cls_flow plus the tunnel-* keys; proto-src/proto-dst give 0 without "
               "ports",
         bounds="out-of-tree patch", tunnel_keys=True, ports_zero_without_ports=True),
)


def _build(rows) -> dict[str, KernelProfile]:
    table: dict[str, dict] = {}
    for row in rows:
        row = dict(row)
        base = table[row.pop("like")] if "like" in row else {}
        merged = {**base, "oracle": (), "notes": "", **row}
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
