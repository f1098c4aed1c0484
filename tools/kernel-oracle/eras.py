"""Which kernel trees and commits the oracle copies code from, and which definitions.

One declarative table: :data:`TREES` names each fetched tree (public repository, commit,
the kernel version at that commit, the kernel's folder inside the repository); :data:`ERAS`
lists, per oracle era, the files and the definitions copied out of them by ``extract.py``.
The harness (``harness/oracle.c``) is compiled once per era with
``-DKV=KERNEL_VERSION(a,b,c)`` and includes ``kernel/<era>/``.

The trees are release imports and vendor trees (``torvalds/linux`` is too large to fetch);
each version was read from the top-level ``Makefile`` at the named commit, except where
``version_from`` says otherwise. Where a repository's later commits add annotations or
vendor patches, the commit named is the import itself (see tools/kernel-oracle/README.md).
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
    version_from: str = "Makefile"  # where the version was read

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


_GPL = "gpl-releases/linux-2.6.39.3"  # full history 2.6.12 .. 2.6.39.3

TREES: dict[str, Tree] = {t.version: t for t in (
    Tree(_GPL, "7dcca30a32aadb0520417521b0c44f42d09fe05c", "2.6.22"),
    Tree(_GPL, "22763c5cf3690a681551162c15d34d935308c8d7", "2.6.32"),
    Tree(_GPL, "f6f94e2ab1b33f0082ac22d71f66385a60d8157f", "2.6.36"),
    Tree(_GPL, "3c0eee3fe6a3a1c745379547c7e7c904aa64f6d5", "2.6.37"),
    Tree(_GPL, "521cb40b0c44418a4fd36dc633f575813d59a43d", "2.6.38"),
    Tree(_GPL, "61c4f2c81c61f73549928dfd9f3e8f26aa36a8cf", "2.6.39"),
    Tree("303750856/linux-3.1", "fb152c114d392b6fc3d16e4f53f7f02093520d24", "3.1"),
    Tree("me-oss/86-linux-3.2.7", "1ee821c21572b39eefdd3b6fd09b243881b0b8a1", "3.2.7",
         prefix="fc86-linux-3.2.7/"),
    Tree("ciminaghi/linux-3.3.8", "ac941d2648df7b90ae14ce23509c7c921050f645", "3.3.8"),
    Tree("liwei/asustor-linux-3.4.26", "5f3bb1c98fd2c3a471afcbfe6203b313cfefa7a7", "3.4.26"),
    Tree("latelee/linux-3.4.113", "7c6bbaf3fdccbd30bb37ea69128043ac8e8ad14e", "3.4.113"),
    Tree("yuhc/linux-3.6.5", "073e79b1b865262865e3ab9e7f0d7900ef49c11d", "3.6.5"),
    Tree("harviswang/linux-3.10.99", "8072c307a15fcaaac0de6e59734ab0cd158786e4", "3.10.99"),
    Tree("yuanguohuo/linux-3.19.8", "5efb20db82bf1b8fe32fdb7165db81de3f1dc319", "3.19.8"),
    Tree("bionicOnion/RPi-Linux-4.1.13", "08405cf44a27adeb06eb57c2216cf33ec0677fde", "4.1.13",
         prefix="linux/"),
    Tree("mlpzaq9998/linux-4.2", "9bbc521a1ac5c4ab5d37d5794b842e019bcb6c05", "4.2.8"),
    Tree("mincepi/linux-4.4.11", "fe47ff1b65418bdf5a738b9c00e06d02562e9a28", "4.4.11"),
    Tree("lxuxx/linux-4.9", "0bdf813acb3215077c86d43dbb9192e93bd1c665", "4.9"),
    Tree("linuxzjs/linux-4.14", "3550cd6a1534a0ce3cc891924335fb8a866f92dc", "4.14.177",
         prefix="linux-4.14.177/"),
    Tree("a4913994/linux-4.20", "89eafd3ccb447ccd556066b1884086530d7f8e6c", "4.20"),
    Tree("VVvector/linux-5.0.1", "9422dd5e01dff59d5e9fe0d8483052826dd44f45", "5.0.1",
         prefix="linux-5.0.1/"),
    Tree("wangliang-cs/linux-5.2.1", "6759af640c6e3095d58e1dc686588d6a0448be38", "5.2.1"),
    Tree("maxiangpan/linux-4.19", "edbd7815870d0bfe40642b4379f493ce3f45b268", "4.19.304",
         prefix="kernel/"),
    Tree("github-lvbing/linux-5.3.1", "e9a2d56197fc979e5df137fe6beab2732d6ebf2a", "5.3.1"),
    Tree("jashawnyu/linux-5.4", "644498d07fb2b9ebe70fabcd35a8bd93572df891", "5.4"),
    Tree("GunWooJung/git-linux-5.4.214", "356048271f036fbb6e3c38a18497edf2f7fe2626", "5.4.214",
         prefix="linux-5.4.214/", version_from="the repository's folder name (no Makefile)"),
    Tree("shmily1012/linux-5.6.4", "fcf201dfb6fd7203379e71be0de29a7bfef210f4", "5.6.4"),
    Tree("Qiushankonyu/Linux-5.10.44", "6c1a7b04e186e5196bac45bd8eab70d82c859fb0", "5.10.44"),
    Tree("Kingdo777/linux-5.14.2-faascale-host", "21101b620aaba970fec20c708abad1e5d6422571",
         "5.14.2"),
    Tree("zcjie1/linux-5.15.100", "5382e6c4f584d95b3e19d44f55c3f8ff62e487eb", "5.15.100"),
    Tree("dunli/linux-5.17", "6d28e3552c15bfd7c91004a65ae918591be70693", "5.17-rc5"),
    Tree("yishangzhang/linux-5.19", "319643233978abdccfe89bea7cfe994711d74b9d", "5.19"),
    Tree("c1336658570/linux-6.1.20", "bba118ae072307cd5527c908808d598b3e3d1f70", "6.1.20"),
)}

# ----------------------------------------------------------------------------- shared pieces
_TC_H = ("#define TC_H_MAJ_MASK", "#define TC_H_MIN_MASK", "#define TC_H_MAJ", "#define TC_H_MIN",
         "#define TC_H_MAKE", "#define TC_PRIO_BESTEFFORT", "#define TC_PRIO_FILLER",
         "#define TC_PRIO_BULK", "#define TC_PRIO_INTERACTIVE_BULK", "#define TC_PRIO_INTERACTIVE",
         "#define TC_PRIO_CONTROL", "#define TC_PRIO_MAX")


def _tables(pkt_sched: str = "include/uapi/linux/pkt_sched.h") -> tuple[Piece, ...]:
    """pfifo_fast's tables: prio2band, ip_tos2prio, rt_tos2priority, TC_H_* / TC_PRIO_*."""
    return (
        Piece(pkt_sched, _TC_H),
        Piece("net/sched/sch_generic.c", ("prio2band",)),
        Piece("net/ipv4/route.c", ("#define ECN_OR_COST", "ip_tos2prio")),
        Piece("include/net/route.h", ("rt_tos2priority",)),
    )


def _vlan(*extra: str, present: bool = True) -> Piece:
    """The VLAN acceleration accessors of ``include/linux/if_vlan.h``."""
    names = ("#define VLAN_TAG_PRESENT",) if present else ()
    return Piece("include/linux/if_vlan.h", names + extra + ("__vlan_hwaccel_put_tag",
                                                            "__vlan_get_tag",
                                                            "__vlan_hwaccel_get_tag",
                                                            "vlan_get_tag"))


_CLS_FLOW = ("struct flow_head", "struct flow_filter", "addr_fold", "flow_get_src",
             "flow_get_dst", "flow_get_proto", "flow_get_proto_src", "flow_get_proto_dst",
             "flow_get_iif", "flow_get_priority", "flow_get_mark", "flow_get_nfct",
             "#if-block CTTUPLE", "flow_get_nfct_src", "flow_get_nfct_dst",
             "flow_get_nfct_proto_src", "flow_get_nfct_proto_dst", "flow_get_rtclassid",
             "flow_get_skuid", "flow_get_skgid", "flow_get_vlan_tag")


def _flow_keys_era(tree: str, *, dissector: tuple[str, ...], vlan: tuple[str, ...],
                   present: bool, math: str, siphash: bool, tc_protocol: bool,
                   skbuff: tuple[str, ...] = ("decl __skb_get_hash", "skb_get_hash",
                                              "decl __skb_flow_dissect",
                                              "skb_flow_dissect_flow_keys",
                                              "__skb_header_pointer")) -> Era:
    """An era with ``struct flow_keys`` hashing (4.2+): the 6.1-style piece list."""
    sip = (Piece("include/linux/siphash.h", whole=True),
           Piece("lib/siphash.c", ("#define SIPROUND", "#define PREAMBLE", "#define POSTAMBLE",
                                   "__siphash_aligned", "__siphash_unaligned"))) if siphash else ()
    tcp = (Piece("include/net/pkt_sched.h", ("tc_skb_protocol",)),) if tc_protocol else ()
    return Era(tree, (
        Piece("include/linux/jhash.h", whole=True),
        *sip,
        Piece("include/net/flow_dissector.h", whole=True),
        Piece("include/linux/skbuff.h", skbuff),
        _vlan(*vlan, present=present),
        Piece("include/net/ip.h", ("ip_is_fragment",)),
        Piece("include/linux/in.h", ("proto_ports_offset",)),
        Piece(math, ("reciprocal_scale",)),
        *tcp,
        Piece("include/net/ipv6.h", ("ipv6_addr_hash", "ip6_flowlabel")),
        Piece("net/core/flow_dissector.c", dissector),
        Piece("net/sched/cls_flow.c", _CLS_FLOW + ("flow_get_rxhash", "flow_key_get",
                                                   "#define FLOW_KEYS_NEEDED", "flow_classify")),
        Piece("net/sched/sch_sfq.c", ("sfq_hash", "sfq_classify")),
        Piece("net/sched/sch_fq_codel.c", ("fq_codel_hash", "fq_codel_classify")),
        *_tables(),
    ))


_HASH_TAIL = ("hashrnd", "__flow_hash_secret_init", "flow_keys_hash_start",
              "flow_keys_hash_length", "flow_get_u32_src", "flow_get_u32_dst",
              "__flow_hash_consistentify", "__flow_hash_from_keys", "___skb_get_hash",
              "__skb_get_hash", "skb_get_hash_perturb", "flow_keys_dissector_keys",
              "flow_keys_dissector")
_VLAN_ACCESSORS = ("#define skb_vlan_tag_present", "#define skb_vlan_tag_get",
                   "#define skb_vlan_tag_get_id", "#define skb_vlan_tag_get_prio")

_FD_61 = (
    "dissector_set_key", "skb_flow_dissector_init", "__skb_flow_get_ports", "icmp_has_id",
    "skb_flow_get_icmp_tci", "__skb_flow_dissect_icmp", "__skb_flow_dissect_l2tpv3",
    "__skb_flow_dissect_mpls", "__skb_flow_dissect_arp", "__skb_flow_dissect_gre",
    "__skb_flow_dissect_batadv", "__skb_flow_dissect_tcp", "__skb_flow_dissect_ports",
    "__skb_flow_dissect_ipv4", "__skb_flow_dissect_ipv6", "#define MAX_FLOW_DISSECT_HDRS",
    "skb_flow_dissect_allowed", "is_pppoe_ses_hdr_valid", "__skb_flow_dissect") + _HASH_TAIL
_FD_510 = tuple(n for n in _FD_61 if n not in ("__skb_flow_dissect_l2tpv3",
                                               "is_pppoe_ses_hdr_valid"))
_FD_54 = tuple(n for n in _FD_510 if n not in ("icmp_has_id", "skb_flow_get_icmp_tci",
                                               "__skb_flow_dissect_icmp"))
_FD_54_0 = tuple(n for n in _FD_54 if n != "__skb_flow_dissect_ports") + ("skb_flow_get_be16",)
_FD_53 = _FD_54_0 + ("__flow_hash_words",)
_FD_419 = _FD_54_0
_FD_414 = ("dissector_set_key", "skb_flow_dissector_init", "skb_flow_get_be16",
           "__skb_flow_get_ports", "__skb_flow_dissect_mpls", "__skb_flow_dissect_arp",
           "__skb_flow_dissect_gre", "__skb_flow_dissect_tcp", "__skb_flow_dissect_ipv4",
           "__skb_flow_dissect_ipv6", "#define MAX_FLOW_DISSECT_HDRS", "skb_flow_dissect_allowed",
           "__skb_flow_dissect") + _HASH_TAIL
_FD_49 = ("dissector_set_key", "skb_flow_dissector_init", "__skb_flow_get_ports",
          "__skb_flow_dissect", "__flow_hash_words") + _HASH_TAIL
_FD_44 = ("dissector_uses_key", "dissector_set_key", "skb_flow_dissector_target",
          "skb_flow_dissector_init", "__skb_flow_get_ports", "__skb_flow_dissect",
          "__flow_hash_words") + _HASH_TAIL
_FD_42 = ("skb_flow_dissector_uses_key", "skb_flow_dissector_set_key",
          "skb_flow_dissector_target", "skb_flow_dissector_init", "__skb_flow_get_ports",
          "__skb_flow_dissect", "__flow_hash_words") + _HASH_TAIL

_VLAN_61 = _VLAN_ACCESSORS + ("eth_type_vlan", "__vlan_get_protocol", "vlan_get_protocol",
                              "skb_protocol")
_VLAN_54 = _VLAN_ACCESSORS + ("eth_type_vlan", "__vlan_get_protocol", "vlan_get_protocol")
_VLAN_42 = ("#define skb_vlan_tag_present", "#define skb_vlan_tag_get",
            "#define skb_vlan_tag_get_id", "__vlan_get_protocol", "vlan_get_protocol")
_VLAN_49 = _VLAN_ACCESSORS + ("eth_type_vlan", "__vlan_get_protocol", "vlan_get_protocol")

def _dissect_era(tree: str, *, dissector: tuple[str, ...], vlan: tuple[str, ...],
                 dev: tuple[str, ...] = (), skbuff: tuple[str, ...] = ("skb_get_rxhash",),
                 math: str | None = None, tc_protocol: bool = False,
                 pkt_sched: str = "include/uapi/linux/pkt_sched.h",
                 ipv6: tuple[str, ...] = ("ipv6_addr_hash",), fq_codel: bool = True) -> Era:
    """An era with the first flow dissector (3.3–4.1): ``struct flow_keys`` of
    ``include/net/flow_keys.h`` (src, dst, ports, ip_proto) and ``jhash_3words`` hashes."""
    return Era(tree, (
        Piece("include/linux/jhash.h", whole=True),
        Piece("include/net/flow_keys.h", whole=True),
        Piece("include/linux/skbuff.h", skbuff),
        _vlan(*vlan),
        Piece("include/net/ip.h", ("ip_is_fragment",)),
        Piece("include/linux/in.h", ("proto_ports_offset",)),
        *((Piece(math, ("reciprocal_scale",)),) if math else ()),
        *((Piece("include/net/pkt_sched.h", ("tc_skb_protocol",)),) if tc_protocol else ()),
        *((Piece("include/net/ipv6.h", ipv6),) if ipv6 else ()),
        Piece("net/core/flow_dissector.c", dissector),
        *((Piece("net/core/dev.c", dev),) if dev else ()),
        Piece("net/sched/cls_flow.c", _CLS_FLOW + ("flow_get_rxhash", "flow_key_get",
                                                   "#define FLOW_KEYS_NEEDED", "flow_classify")),
        Piece("net/sched/sch_sfq.c", ("struct sfq_skb_cb", "sfq_skb_cb", "sfq_hash",
                                      "sfq_classify")),
        *((Piece("net/sched/sch_fq_codel.c", ("fq_codel_hash", "fq_codel_classify")),)
          if fq_codel else ()),
        *_tables(pkt_sched),
    ))


def _sfq_only_era(tree: str) -> Era:
    """Before cls_flow and sfq_classify (≤ 2.6.24): SFQ's own hash and pfifo_fast's tables."""
    return Era(tree, (
        Piece("net/sched/sch_sfq.c", ("#define SFQ_DEPTH", "#define SFQ_HASH_DIVISOR",
                                      "sfq_fold_hash", "sfq_hash")),
        *_tables("include/linux/pkt_sched.h"),
    ))


def _direct_era(tree: str, *, sfq: tuple[str, ...], rxhash: bool, present: bool = True,
                ports_offset: bool = True, fragment: bool = False, proto_common: bool = False,
                skbuff: tuple[str, ...] = ("skb_get_rxhash",)) -> Era:
    """An era before the flow dissector (≤ 3.2): cls_flow and SFQ read the headers
    themselves; ``__skb_get_rxhash`` (2.6.37+) lives in ``net/core/dev.c``."""
    return Era(tree, (
        Piece("include/linux/jhash.h", whole=True),
        *((Piece("include/linux/skbuff.h", skbuff),) if rxhash else ()),
        _vlan("#define vlan_tx_tag_present", "#define vlan_tx_tag_get", present=present),
        *((Piece("include/net/ip.h", ("ip_is_fragment",)),) if fragment else ()),
        *((Piece("include/linux/in.h", ("proto_ports_offset",)),) if ports_offset else ()),
        *((Piece("net/core/dev.c", ("hashrnd", "__skb_get_rxhash")),) if rxhash else ()),
        Piece("net/sched/cls_flow.c", _CLS_FLOW + (
            ("flow_get_rxhash",) if rxhash else ()) + (
            () if ports_offset else ("has_ports",)) + (
            ("flow_get_proto_common",) if proto_common else ()) + ("flow_key_get",
                                                                   "flow_classify")),
        Piece("net/sched/sch_sfq.c", sfq + ("sfq_fold_hash", "sfq_hash", "sfq_classify")),
        *_tables("include/linux/pkt_sched.h"),
    ))


_SFQ_26 = ("#define SFQ_DEPTH", "#define SFQ_HASH_DIVISOR")

_VLAN_3X = ("#define vlan_tx_tag_present", "#define vlan_tx_tag_get")
_FD_36 = ("iph_to_flow_copy_addrs", "skb_flow_dissect")
_FD_310 = _FD_36 + ("hashrnd", "__skb_get_rxhash")
_FD_319 = ("iph_to_flow_copy_addrs", "__skb_flow_get_ports", "__skb_flow_dissect", "hashrnd",
           "__flow_hash_secret_init", "__flow_hash_3words", "__flow_hash_from_keys",
           "__skb_get_hash")

def _sfq_sched_era(tree: str, *, sfq: tuple[str, ...], skbuff: tuple[str, ...],
                   pkt_sched: str = "include/linux/pkt_sched.h",
                   ports_offset: bool = False) -> Era:
    """SFQ's scheduler (``sfq_enqueue``, ``sfq_dequeue``, ``sfq_drop`` and their helpers) for
    ``harness/sfq_sched.c``, which pins each packet's bucket through ``skb->priority``."""
    return Era(tree, (
        Piece("include/linux/jhash.h", whole=True),
        Piece(pkt_sched, _TC_H),
        Piece("include/linux/skbuff.h", skbuff),
        Piece("include/net/sch_generic.h", ("qdisc_pkt_len", "qdisc_drop")),
        *((Piece("include/linux/in.h", ("proto_ports_offset",)),) if ports_offset else ()),
        Piece("net/sched/sch_sfq.c", sfq),
    ))


_SKB_LIST_26 = ("struct sk_buff_head", "skb_peek", "skb_queue_len", "__skb_queue_head_init",
                "skb_queue_head_init", "__skb_insert", "__skb_queue_before",
                "__skb_queue_tail", "__skb_unlink", "__skb_dequeue")
_SFQ_SCHED_26 = ("#define SFQ_DEPTH", "#define SFQ_HASH_DIVISOR", "typedef sfq_index",
                 "struct sfq_head", "struct sfq_sched_data", "sfq_fold_hash", "sfq_hash",
                 "sfq_classify", "sfq_link", "sfq_dec", "sfq_inc", "sfq_drop", "sfq_enqueue",
                 "sfq_peek", "sfq_dequeue", "sfq_perturbation", "sfq_init")

_SFQ_SCHED_39 = ("#define SFQ_DEPTH", "#define SFQ_SLOTS", "#define SFQ_EMPTY_SLOT",
                 "#define SFQ_DEFAULT_HASH_DIVISOR", "#define SFQ_ALLOT_SHIFT",
                 "#define SFQ_ALLOT_SIZE", "typedef sfq_index", "struct sfq_head",
                 "struct sfq_slot", "struct sfq_sched_data", "sfq_dep_head", "sfq_fold_hash",
                 "sfq_hash", "sfq_classify", "sfq_link", "#define sfq_unlink", "sfq_dec",
                 "sfq_inc", "slot_dequeue_tail", "slot_dequeue_head", "slot_queue_init",
                 "slot_queue_add", "sfq_drop", "sfq_enqueue", "sfq_peek", "sfq_dequeue",
                 "sfq_perturbation", "sfq_init")

_SFQ_SCHED_61 = ("#define SFQ_MAX_DEPTH", "#define SFQ_DEFAULT_FLOWS", "#define SFQ_MAX_FLOWS",
                 "#define SFQ_EMPTY_SLOT", "#define SFQ_DEFAULT_HASH_DIVISOR",
                 "#define SFQ_ALLOT_SHIFT", "#define SFQ_ALLOT_SIZE", "typedef sfq_index",
                 "struct sfq_head", "struct sfq_slot", "struct sfq_sched_data", "sfq_dep_head",
                 "sfq_hash", "sfq_classify", "sfq_link", "#define sfq_unlink", "sfq_dec",
                 "sfq_inc", "slot_dequeue_tail", "slot_dequeue_head", "slot_queue_init",
                 "slot_queue_add", "sfq_drop", "sfq_prob_mark", "sfq_hard_mark",
                 "sfq_headdrop", "sfq_enqueue", "sfq_dequeue", "sfq_change", "sfq_alloc",
                 "sfq_init")

#: SFQ scheduler eras (harness/sfq_sched.c), one per generation of sch_sfq.c's scheduler.
SFQ_SCHED_ERAS: dict[str, Era] = {
    "sfq-2.6.32": _sfq_sched_era("2.6.32", sfq=_SFQ_SCHED_26, skbuff=_SKB_LIST_26),
    "sfq-2.6.37": _sfq_sched_era("2.6.37", sfq=_SFQ_SCHED_26, skbuff=_SKB_LIST_26,
                                 ports_offset=True),
    "sfq-2.6.39": _sfq_sched_era("2.6.39", sfq=_SFQ_SCHED_39, skbuff=_SKB_LIST_26,
                                 ports_offset=True),
    "sfq-6.1.20": Era("6.1.20", (
        Piece("include/linux/siphash.h", whole=True),
        Piece("include/uapi/linux/pkt_sched.h", _TC_H + (
            "struct tc_sfq_qopt", "struct tc_sfqred_stats", "struct tc_sfq_qopt_v1",
            "#define TC_RED_ECN", "#define TC_RED_HARDDROP")),
        Piece("include/net/red.h", ("struct red_parms", "struct red_vars", "red_set_vars")),
        Piece("include/net/sch_generic.h", ("qdisc_pkt_len", "qdisc_qstats_backlog_dec",
                                            "qdisc_qstats_backlog_inc", "qdisc_qstats_drop",
                                            "qdisc_qstats_overlimit", "__qdisc_drop",
                                            "qdisc_drop")),
        Piece("net/sched/sch_sfq.c", _SFQ_SCHED_61),
    )),
}

ERAS: dict[str, Era] = {
    "4.1.13": _dissect_era("4.1.13", dissector=_FD_319,
                           vlan=("#define skb_vlan_tag_present", "#define skb_vlan_tag_get",
                                 "#define skb_vlan_tag_get_id"),
                           skbuff=("skb_get_hash", "__skb_header_pointer"),
                           math="include/linux/kernel.h", tc_protocol=True,
                           ipv6=("ipv6_addr_hash", "ip6_flowlabel")),
    "3.19.8": _dissect_era("3.19.8", dissector=_FD_319,
                           vlan=_VLAN_3X + ("#define vlan_tx_tag_get_id",),
                           skbuff=("skb_get_hash", "__skb_header_pointer"),
                           math="include/linux/kernel.h", ipv6=("ipv6_addr_hash", "ip6_flowlabel")),
    "3.10.99": _dissect_era("3.10.99", dissector=_FD_310,
                            vlan=_VLAN_3X + ("#define vlan_tx_tag_get_id",)),
    "3.6.5": _dissect_era("3.6.5", dissector=_FD_36, vlan=_VLAN_3X,
                          dev=("hashrnd", "__skb_get_rxhash"),
                          pkt_sched="include/linux/pkt_sched.h"),
    "3.4.113": _dissect_era("3.4.113", dissector=_FD_36, vlan=_VLAN_3X,
                            dev=("hashrnd", "__skb_get_rxhash"),
                            pkt_sched="include/linux/pkt_sched.h", fq_codel=False, ipv6=()),
    "3.2.7": _direct_era("3.2.7", sfq=("#define SFQ_DEFAULT_HASH_DIVISOR",), rxhash=True,
                         fragment=True, proto_common=True),
    "3.1": _direct_era("3.1", sfq=("#define SFQ_DEFAULT_HASH_DIVISOR",), rxhash=True,
                       fragment=True),
    "2.6.39": _direct_era("2.6.39", sfq=("#define SFQ_DEFAULT_HASH_DIVISOR",), rxhash=True),
    "2.6.38": _direct_era("2.6.38", sfq=_SFQ_26, rxhash=True),
    "2.6.37": _direct_era("2.6.37", sfq=_SFQ_26, rxhash=True),
    "2.6.36": _direct_era("2.6.36", sfq=_SFQ_26, rxhash=False, ports_offset=False),
    "2.6.32": _direct_era("2.6.32", sfq=_SFQ_26, rxhash=False, ports_offset=False,
                          present=False),
    "2.6.22": _sfq_only_era("2.6.22"),
    "3.4.26": _dissect_era("3.4.26", dissector=_FD_36, vlan=_VLAN_3X,
                           dev=("hashrnd", "__skb_get_rxhash"),
                           pkt_sched="include/linux/pkt_sched.h", fq_codel=False, ipv6=()),
    "3.3.8": _dissect_era("3.3.8", dissector=_FD_36, vlan=_VLAN_3X,
                          dev=("hashrnd", "__skb_get_rxhash"),
                          pkt_sched="include/linux/pkt_sched.h", fq_codel=False, ipv6=()),
    "6.1.20": _flow_keys_era("6.1.20", dissector=_FD_61, vlan=_VLAN_61, present=False,
                             math="include/linux/math.h", siphash=True, tc_protocol=False),
    "5.19": _flow_keys_era("5.19", dissector=_FD_510, vlan=_VLAN_61, present=False,
                           math="include/linux/math.h", siphash=True, tc_protocol=False),
    "5.17-rc5": _flow_keys_era("5.17-rc5", dissector=_FD_510, vlan=_VLAN_61, present=False,
                               math="include/linux/math.h", siphash=True, tc_protocol=False),
    "5.14.2": _flow_keys_era("5.14.2", dissector=_FD_510, vlan=_VLAN_61, present=False,
                             math="include/linux/math.h", siphash=True, tc_protocol=False),
    "5.15.100": _flow_keys_era("5.15.100", dissector=_FD_510, vlan=_VLAN_61, present=False,
                               math="include/linux/math.h", siphash=True, tc_protocol=False),
    "5.10.44": _flow_keys_era("5.10.44", dissector=_FD_510, vlan=_VLAN_61, present=False,
                              math="include/linux/kernel.h", siphash=True, tc_protocol=False),
    "5.6.4": _flow_keys_era("5.6.4", dissector=_FD_510, vlan=_VLAN_54, present=False,
                            math="include/linux/kernel.h", siphash=True, tc_protocol=True),
    "5.4.214": _flow_keys_era("5.4.214", dissector=_FD_54 + ("skb_flow_get_be16",), vlan=_VLAN_61, present=False,
                              math="include/linux/kernel.h", siphash=True, tc_protocol=False),
    "5.4": _flow_keys_era("5.4", dissector=_FD_54_0, vlan=_VLAN_54, present=False,
                          math="include/linux/kernel.h", siphash=True, tc_protocol=True),
    "5.3.1": _flow_keys_era("5.3.1", dissector=_FD_53, vlan=_VLAN_54, present=False,
                            math="include/linux/kernel.h", siphash=False, tc_protocol=True),
    "5.2.1": _flow_keys_era("5.2.1", dissector=_FD_53, vlan=_VLAN_54, present=False,
                            math="include/linux/kernel.h", siphash=False, tc_protocol=True),
    "5.0.1": _flow_keys_era("5.0.1", dissector=_FD_53, vlan=_VLAN_54, present=False,
                            math="include/linux/kernel.h", siphash=False, tc_protocol=True),
    "4.20": _flow_keys_era("4.20", dissector=_FD_53, vlan=_VLAN_54, present=True,
                           math="include/linux/kernel.h", siphash=False, tc_protocol=True),
    "4.19.304": _flow_keys_era("4.19.304", dissector=_FD_419, vlan=_VLAN_61, present=True,
                               math="include/linux/kernel.h", siphash=True, tc_protocol=False),
    "4.14.177": _flow_keys_era("4.14.177", dissector=_FD_414, vlan=_VLAN_49, present=True,
                               math="include/linux/kernel.h", siphash=True, tc_protocol=True),
    "4.9": _flow_keys_era("4.9", dissector=_FD_49, vlan=_VLAN_49, present=True,
                          math="include/linux/kernel.h", siphash=False, tc_protocol=True,
                          skbuff=("decl __skb_get_hash", "skb_get_hash",
                                  "decl __skb_flow_dissect", "skb_flow_dissect_flow_keys",
                                  "__skb_header_pointer")),
    "4.4.11": _flow_keys_era("4.4.11", dissector=_FD_44, vlan=_VLAN_42, present=True,
                             math="include/linux/kernel.h", siphash=False, tc_protocol=True),
    "4.2.8": _flow_keys_era("4.2.8", dissector=_FD_42, vlan=_VLAN_42, present=True,
                            math="include/linux/kernel.h", siphash=False, tc_protocol=True,
                            skbuff=("skb_get_hash", "__skb_header_pointer")),
}
ERAS.update(SFQ_SCHED_ERAS)
