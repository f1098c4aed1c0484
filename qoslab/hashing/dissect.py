"""What the kernel reads from a packet before hashing it, per era (vectorized).

* :func:`direct_read` — the pre-dissector code of cls_flow and SFQ (≤ 3.2): the **outer**
  header according to ``skb->protocol``, ports for the profile's protocol list, none for
  fragments; IPv6 by its fixed header's next header (no extension header is walked).
* :func:`dissect` — ``skb_flow_dissect`` (3.3+) as each era runs it (profile fields
  ``dissector_*``): IP-in-IP (4in4 only before 3.19, all four kinds after), GRE version 0
  (IPv4/IPv6 payloads from 3.3, Ethernet payloads from 3.10, the key as a flow key from 4.2),
  never VXLAN or Geneve (UDP); ports only through ``proto_ports_offset`` (TCP, UDP, UDP-Lite,
  SCTP, DCCP, ESP at offset 0; AH's SPI at offset 4), none for fragments; IPv6 extension
  headers walked from 4.2; a non-zero IPv6 flow label ignored (3.3–3.18), standing for the
  ports (3.19–4.1) or a key that, with ``stop_at_flow_label``, ends the walk (4.2+).

Not modelled (docs/kernel-facts.md, "What the oracle does not exercise"): MPLS and PPPoE
decapsulation, GRE version 1 (PPTP) and GRE with routing (PACKETS does not keep the GRE
version), Ethernet over GRE that is not NVGRE-shaped on 3.2–3.9, 802.1Q tags inside a
tunnelled Ethernet frame, nested tunnels, 4in6 through the 3.3–3.18 dissector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._packets import (
    AH,
    ESP,
    IPIP_KINDS,
    PORT_PROTOS,
    Header,
    column,
    header,
    present,
    tunnel_kinds,
)
from .profiles import KernelProfile

__all__ = ["Flow", "addr32", "direct_read", "dissect", "port_protocols"]

_PORT_LISTS = {
    "classic": PORT_PROTOS + (ESP,),
    "classic-no-udplite": (6, 17, 132, 33, ESP),
    "proto_ports_offset": PORT_PROTOS + (ESP, AH),
}


def port_protocols(rule: str) -> tuple[int, ...]:
    """IP protocols whose first L4 word (or SPI) a given era reads as ports."""
    return _PORT_LISTS[rule]


@dataclass
class Flow:
    """Hash inputs of N packets (host-order integers, length-N arrays)."""

    n_proto: np.ndarray  # EtherType of the level read (0x0800, 0x86dd, or skb->protocol)
    l2_proto: np.ndarray  # skb->protocol (outer EtherType)
    version: np.ndarray  # 4, 6, or 0 (not IP)
    src: np.ndarray  # (N, 4) words
    dst: np.ndarray
    ip_proto: np.ndarray
    sport: np.ndarray  # 0 when the era reads no ports
    dport: np.ndarray
    flow_label: np.ndarray
    vlan: np.ndarray  # VLAN id, 0 when untagged
    has_vlan: np.ndarray
    tunnelled: np.ndarray  # bool: the inner header was read
    vlan_tci: np.ndarray | None = None  # id | DEI << 12 | PCP << 13 (0 when untagged)
    residue: np.ndarray | None = None  # (N, 8) words the outer IPv6 header left in the
    # flow_keys address union under an IPv4 inner header (4in6), else 0
    keyid: np.ndarray | None = None  # the GRE key (host order of the be32), 0 when none
    failed: np.ndarray | None = None  # bool: the dissector gave up (3.3-3.9 on NVGRE)

    def rows(self, rows) -> Flow:
        """The flows of ``rows`` (a slice keeps everything)."""
        if isinstance(rows, slice):
            return self
        return Flow(*(None if getattr(self, f) is None else getattr(self, f)[rows]
                      for f in Flow.__dataclass_fields__))


#: Tunnel kinds whose inner header the flow dissector can reach (VXLAN and Geneve ride UDP
#: and are never opened by it).
_FOLLOWED_KINDS = tuple(IPIP_KINDS) + ("gre", "nvgre")


def addr32(words: np.ndarray, version: np.ndarray, ipv6: str) -> np.ndarray:
    """An address as one host-order u32, as the 3.x flow dissector and cls_flow keep it.

    IPv4: the address; IPv6: ``ipv6_addr_hash`` (``"xor"`` of the four words, 3.4+ dissector)
    or the last word (``"last-word"``: ``s6_addr32[3]``, 3.3 dissector and the pre-dissector
    code); 0 for non-IP. The profile field is ``ipv6_addr``.
    """
    v6 = words[:, 3] if ipv6 == "last-word" else (words[:, 0] ^ words[:, 1] ^ words[:, 2]
                                                 ^ words[:, 3])
    return np.where(version == 4, words[:, 3], np.where(version == 6, v6, 0)).astype(np.uint32)


def _l2_proto(packets: pd.DataFrame, version: np.ndarray) -> np.ndarray:
    default = np.where(version == 4, 0x0800, np.where(version == 6, 0x86DD, 0)).astype(np.uint32)
    if "l2_proto" not in packets.columns:
        return default
    return np.where(present(packets, "l2_proto"), column(packets, "l2_proto"), default
                    ).astype(np.uint32)


def read_ports(h: Header, spi: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(sport, dport) the era reads; 0 where it reads none."""
    ok = (h.version > 0) & ~h.frag
    l4 = ok & np.isin(h.proto, PORT_PROTOS) & h.has_ports
    lists = _PORT_LISTS[rule]
    l4 &= np.isin(h.proto, lists)
    spi_ok = ok & np.isin(h.proto, [p for p in (ESP, AH) if p in lists])
    sport = np.where(l4, h.sport, np.where(spi_ok, spi >> 16, 0)).astype(np.uint32)
    dport = np.where(l4, h.dport, np.where(spi_ok, spi & 0xFFFF, 0)).astype(np.uint32)
    return sport, dport


def _vlan(packets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VLAN id, tagged, TCI): PCP and DEI default to 0 when PACKETS lacks them."""
    has = present(packets, "vlan")
    vid = (column(packets, "vlan") & 0xFFF).astype(np.uint32)
    tci = vid | ((column(packets, "vlan_dei") & 1) << 12) | ((column(packets, "vlan_pcp") & 7)
                                                            << 13)
    return vid, has, np.where(has, tci, 0).astype(np.uint32)


def direct_read(packets: pd.DataFrame, profile: KernelProfile) -> Flow:
    """The outer header as the pre-dissector kernels read it (cls_flow ≤ 3.2, SFQ ≤ 3.2)."""
    h = header(packets, "outer")
    spi = column(packets, "spi")
    sport, dport = read_ports(h, spi, profile.sfq_ports)
    # IPv6: the fixed header's next header; no extension header is walked, so no ports
    # past one (and an IPv6 fragment is keyed with 44)
    first = np.where(present(packets, "ipv6_nexthdr"), column(packets, "ipv6_nexthdr"),
                     h.proto).astype(np.uint32)
    v6_ext = (h.version == 6) & (first != h.proto)
    proto = np.where(h.version == 6, first, h.proto)
    sport = np.where(v6_ext, 0, sport).astype(np.uint32)
    dport = np.where(v6_ext, 0, dport).astype(np.uint32)
    l2 = _l2_proto(packets, h.version)
    vlan, has_vlan, tci = _vlan(packets)
    return Flow(l2, l2, h.version, h.src, h.dst, np.where(h.version > 0, proto, 0
                                                          ).astype(np.uint32),
                sport, dport, column(packets, "flow_label"), vlan, has_vlan,
                np.zeros(len(packets), bool), tci)


def _label_ports(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3.19–4.1: ``flow->ports = ip6_flowlabel(iph)``: the label's big-endian word as ports."""
    return (label >> 16).astype(np.uint32), (label & 0xFFFF).astype(np.uint32)


def dissect(packets: pd.DataFrame, profile: KernelProfile, *,
            stop_at_flow_label: bool = False) -> Flow:
    """``skb_flow_dissect`` as the profile's kernel runs it (see module docstring).

    Profile fields: ``dissector_tunnels`` (which IP-in-IP kinds are followed),
    ``dissector_ipv6_ext`` (hop-by-hop, routing and destination options headers walked),
    ``dissector_flow_label`` (what a non-zero IPv6 flow label does: ``"ignore"``, ``"ports"``
    — 3.19–4.1: the walk stops and the label stands for the ports, for every caller — or
    ``"key"`` — 4.2+: the label enters the key; the walk stops there only with
    ``stop_at_flow_label``), ``dissector_ip_fragment_proto``.
    """
    outer = header(packets, "outer")
    inner = header(packets, "inner", kinds=_FOLLOWED_KINDS)
    kinds = tunnel_kinds(packets)
    ipip = np.isin(kinds, list(IPIP_KINDS))
    gre = (kinds == "gre") | (kinds == "nvgre")
    label_mode = profile.dissector_flow_label
    stop_flag = (stop_at_flow_label or label_mode == "ports") and label_mode != "ignore"
    label = column(packets, "flow_label") & 0xFFFFF
    stop = stop_flag & (outer.version == 6) & (label != 0)
    # the next header after the fixed IPv6 header (what the eras without an ext-header walk see)
    has_first = present(packets, "ipv6_nexthdr")
    first = np.where(has_first, column(packets, "ipv6_nexthdr"), outer.proto).astype(np.uint32)
    plain6 = (outer.version != 6) | (first == outer.proto)  # no extension header
    follow = (inner.version > 0) & (outer.version > 0) & ~outer.frag & ~stop
    if not profile.dissector_ipv6_ext:
        follow &= plain6
    if profile.dissector_tunnels == "ipip":  # 3.3-3.18: IPPROTO_IPIP re-parses as the outer
        follow &= ~ipip | ((outer.version == 4) & (inner.version == 4))  # family; 41 is not
    # GRE version 0: IPv4/IPv6 payloads; an Ethernet payload (NVGRE here) from 3.10, before
    # which the walk fails there: outer addresses, no protocol, no ports, no hash
    failed = follow & (kinds == "nvgre") & (profile.dissector_gre == "ip")
    follow &= ~gre | (profile.dissector_gre != "none")
    follow &= ~failed
    spi = column(packets, "spi")
    o_sport, o_dport = read_ports(outer, spi, "proto_ports_offset")
    i_sport, i_dport = read_ports(inner, column(packets, "inner_spi"), "proto_ports_offset")
    o_proto = outer.proto.copy()
    if profile.dissector_ip_fragment_proto == "zero":
        o_proto[outer.frag & (outer.version == 4)] = 0
    if profile.dissector_ip_fragment_proto in ("zero", "ipv6-44"):
        o_proto[outer.frag & (outer.version == 6)] = 44  # stops at NEXTHDR_FRAGMENT
    if not profile.dissector_ipv6_ext:  # stops at the first next header
        o_proto = np.where(outer.version == 6, first, o_proto).astype(np.uint32)
        o_sport[~plain6] = 0
        o_dport[~plain6] = 0
    o_proto[outer.version == 0] = 0
    o_proto[failed] = 0
    o_sport[failed] = 0
    o_dport[failed] = 0
    # stopped at the flow label: ip_proto is the fixed header's next header
    o_proto = np.where(stop & has_first, first, o_proto).astype(np.uint32)
    if label_mode == "ports":
        lp = _label_ports(label)
        o_sport, o_dport = np.where(stop, lp[0], o_sport), np.where(stop, lp[1], o_dport)
    else:
        o_sport[stop] = 0
        o_dport[stop] = 0
    # the inner IPv6 header: its extension headers and a label
    i_label = column(packets, "inner_flow_label") & 0xFFFFF
    i_has_first = present(packets, "inner_ipv6_nexthdr")
    i_first = np.where(i_has_first, column(packets, "inner_ipv6_nexthdr"), inner.proto)
    i_proto = inner.proto
    if not profile.dissector_ipv6_ext:
        i_plain = (inner.version != 6) | (i_first == inner.proto)
        i_proto = np.where(inner.version == 6, i_first, i_proto)
        i_sport = np.where(i_plain, i_sport, 0)
        i_dport = np.where(i_plain, i_dport, 0)
    i_labelled = follow & (inner.version == 6) & (i_label != 0) & (label_mode != "ignore")
    if stop_flag and i_labelled.any():
        i_proto = np.where(i_labelled & i_has_first, i_first, i_proto)
        if label_mode == "ports":
            lp = _label_ports(i_label)
            i_sport, i_dport = np.where(i_labelled, lp[0], i_sport), \
                np.where(i_labelled, lp[1], i_dport)
        else:
            i_sport = np.where(i_labelled, 0, i_sport)
            i_dport = np.where(i_labelled, 0, i_dport)
    flow_label = np.where(i_labelled, i_label, np.where(outer.version == 6, label, 0))
    if label_mode != "key":
        flow_label = np.zeros(len(packets), np.uint32)
    f2 = follow[:, None]
    version = np.where(follow, inner.version, outer.version).astype(np.uint8)
    l2 = _l2_proto(packets, outer.version)
    n_proto = np.where(version == 4, 0x0800, np.where(version == 6, 0x86DD, l2)).astype(np.uint32)
    vlan, has_vlan, tci = _vlan(packets)
    residue = None
    four_in_six = follow & (outer.version == 6) & (inner.version == 4)
    if four_in_six.any():
        residue = np.zeros((len(packets), 8), np.uint32)
        residue[four_in_six] = np.hstack([outer.src, outer.dst])[four_in_six]
    # the GRE key enters the flow keys (4.2+: FLOW_DISSECTOR_KEY_GRE_KEYID)
    keyid = None
    keyed = follow & gre & present(packets, "tunnel_id")
    if keyed.any():
        keyid = np.where(keyed, column(packets, "tunnel_id"), 0).astype(np.uint32)
    return Flow(n_proto, l2, version,
                np.where(f2, inner.src, outer.src).astype(np.uint32),
                np.where(f2, inner.dst, outer.dst).astype(np.uint32),
                np.where(follow, i_proto, o_proto).astype(np.uint32),
                np.where(follow, i_sport, o_sport).astype(np.uint32),
                np.where(follow, i_dport, o_dport).astype(np.uint32),
                flow_label.astype(np.uint32), vlan, has_vlan, follow, tci, residue, keyid,
                failed if failed.any() else None)
