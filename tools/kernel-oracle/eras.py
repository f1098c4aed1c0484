"""Which kernel trees and commits the oracle copies code from, and which definitions.

One declarative table: :data:`TREES` names each fetched tree (public repository, commit,
the kernel version at that commit); :data:`ERAS` lists, per oracle era, the files and the
definitions copied out of them by ``extract.py``. The harness (``harness/oracle.c``) is
compiled once per era with ``-DERA_<major>_<minor>`` and includes ``kernel/<era>/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tree:
    repo: str  # public GitHub repository (owner/name)
    commit: str
    version: str  # kernel version at that commit (top-level Makefile)
    prefix: str = ""  # folder of the kernel inside the repository
    mirror: str = ""  # folder under the fetch mirror; default owner+name

    def __post_init__(self):
        if not self.mirror:
            object.__setattr__(self, "mirror", self.repo.replace("/", "+"))


@dataclass(frozen=True)
class Piece:
    path: str
    names: tuple[str, ...] = ()
    whole: bool = False


@dataclass(frozen=True)
class Era:
    tree: str
    pieces: tuple[Piece, ...] = field(default_factory=tuple)


TREES: dict[str, Tree] = {
    "6.1.20": Tree("c1336658570/linux-6.1.20", "bba118ae072307cd5527c908808d598b3e3d1f70",
                   "6.1.20"),
}

_FLOW_DISSECTOR_61 = (
    "dissector_set_key", "skb_flow_dissector_init", "__skb_flow_get_ports", "icmp_has_id",
    "skb_flow_get_icmp_tci", "__skb_flow_dissect_icmp", "__skb_flow_dissect_l2tpv3",
    "__skb_flow_dissect_mpls", "__skb_flow_dissect_arp", "__skb_flow_dissect_gre",
    "__skb_flow_dissect_batadv", "__skb_flow_dissect_tcp", "__skb_flow_dissect_ports",
    "__skb_flow_dissect_ipv4", "__skb_flow_dissect_ipv6", "#define MAX_FLOW_DISSECT_HDRS",
    "skb_flow_dissect_allowed",
    "is_pppoe_ses_hdr_valid", "__skb_flow_dissect", "hashrnd", "__flow_hash_secret_init",
    "flow_keys_hash_start", "flow_keys_hash_length", "flow_get_u32_src", "flow_get_u32_dst",
    "__flow_hash_consistentify", "__flow_hash_from_keys", "___skb_get_hash", "__skb_get_hash",
    "skb_get_hash_perturb", "flow_keys_dissector_keys", "flow_keys_dissector",
)

ERAS: dict[str, Era] = {
    "6.1.20": Era("6.1.20", (
        Piece("include/linux/jhash.h", whole=True),
        Piece("include/linux/siphash.h", whole=True),
        Piece("lib/siphash.c", ("#define SIPROUND", "#define PREAMBLE", "#define POSTAMBLE",
                                "__siphash_aligned", "__siphash_unaligned")),
        Piece("include/net/flow_dissector.h", whole=True),
        Piece("include/linux/skbuff.h", ("skb_get_hash", "skb_flow_dissect_flow_keys",
                                         "__skb_header_pointer")),
        Piece("include/linux/if_vlan.h", ("#define skb_vlan_tag_present",
                                          "#define skb_vlan_tag_get",
                                          "#define skb_vlan_tag_get_id",
                                          "#define skb_vlan_tag_get_prio", "eth_type_vlan",
                                          "__vlan_get_tag", "__vlan_hwaccel_get_tag",
                                          "vlan_get_tag", "__vlan_get_protocol",
                                          "vlan_get_protocol", "skb_protocol")),
        Piece("include/net/ip.h", ("ip_is_fragment",)),
        Piece("include/linux/in.h", ("proto_ports_offset",)),
        Piece("include/linux/math.h", ("reciprocal_scale",)),
        Piece("include/uapi/linux/pkt_sched.h", ("#define TC_H_MAJ_MASK", "#define TC_H_MIN_MASK",
                                                 "#define TC_H_MAJ", "#define TC_H_MIN",
                                                 "#define TC_H_MAKE", "#define TC_PRIO_BESTEFFORT",
                                                 "#define TC_PRIO_FILLER", "#define TC_PRIO_BULK",
                                                 "#define TC_PRIO_INTERACTIVE_BULK",
                                                 "#define TC_PRIO_INTERACTIVE",
                                                 "#define TC_PRIO_CONTROL", "#define TC_PRIO_MAX")),
        Piece("include/net/ipv6.h", ("ipv6_addr_hash", "ip6_flowlabel")),
        Piece("net/core/flow_dissector.c", _FLOW_DISSECTOR_61),
        Piece("net/sched/cls_flow.c", ("struct flow_head", "struct flow_filter", "addr_fold",
                                       "flow_get_src", "flow_get_dst", "flow_get_proto",
                                       "flow_get_proto_src", "flow_get_proto_dst",
                                       "flow_get_iif", "flow_get_priority", "flow_get_mark",
                                       "flow_get_nfct", "#if-block CTTUPLE",
                                       "flow_get_nfct_src", "flow_get_nfct_dst",
                                       "flow_get_nfct_proto_src", "flow_get_nfct_proto_dst",
                                       "flow_get_rtclassid", "flow_get_skuid",
                                       "flow_get_skgid", "flow_get_vlan_tag", "flow_get_rxhash",
                                       "flow_key_get", "#define FLOW_KEYS_NEEDED",
                                       "flow_classify")),
        Piece("net/sched/sch_sfq.c", ("sfq_hash", "sfq_classify")),
        Piece("net/sched/sch_fq_codel.c", ("fq_codel_hash", "fq_codel_classify")),
        Piece("net/sched/sch_generic.c", ("prio2band",)),
        Piece("net/ipv4/route.c", ("#define ECN_OR_COST", "ip_tos2prio")),
        Piece("include/net/route.h", ("rt_tos2priority",)),
    )),
}
