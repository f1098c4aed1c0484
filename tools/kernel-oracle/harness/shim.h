/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The user-space stand-ins the extracted kernel code needs to compile and run.
 *
 * Every shim is as thin as the extracted code allows; each says why it is right:
 *
 *  - integer types, byte order (htons/ntohl on the host's order), bit helpers (rol32/rol64,
 *    ffs, swap, min_t), unaligned loads: the plain C definitions of what the kernel's
 *    generic versions compute.
 *  - wire headers (iphdr, ipv6hdr, frag_hdr, vlan_hdr, gre_base_hdr, tcphdr, ethhdr …):
 *    the RFC layouts, bit-fields ordered for a little-endian host as the kernel orders them.
 *  - struct sk_buff / net_device / Qdisc / tcf_proto: only the members the extracted
 *    functions read; the harness fills them (see oracle.c: packet model).
 *  - skb_copy_bits: the packet is one linear buffer, so a bounded memcpy.
 *  - branches the driver never takes (BPF flow dissector programs, DSA tags, MPLS, ARP,
 *    batman-adv, PPPoE, TIPC, PTP, HSR, conntrack): their types exist so the verbatim code
 *    compiles; a BPF program is never attached (run_array stays NULL) and the stub helpers
 *    abort() if reached, so a packet taking one of those paths cannot go unnoticed.
 *  - tc plumbing (tcf_classify, tcf_exts_exec, tcf_em_tree_match, RCU, lists): a filter
 *    list of one cls_flow filter, no actions, no ematches — the configuration the driver
 *    compares (an SFQ / fq_codel with one flow filter attached).
 */
#ifndef QOSLAB_ORACLE_SHIM_H
#define QOSLAB_ORACLE_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <endian.h>

#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))

/* ---------------------------------------------------------------- types */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;
typedef u16 __be16;
typedef u32 __be32;
typedef u64 __be64;
typedef u16 __le16;
typedef u32 __le32;
typedef u64 __le64;
typedef u16 __sum16;
typedef unsigned int gfp_t;
#if KV >= KERNEL_VERSION(3, 10, 0)
typedef struct { unsigned int val; } kuid_t;
typedef struct { unsigned int val; } kgid_t;
#else /* 3.6.5's cls_flow returns the credential's fsuid/fsgid as plain integers */
typedef unsigned int kuid_t;
typedef unsigned int kgid_t;
#endif

#define BITS_PER_LONG 64
#define __force
#define __rcu
#define __read_mostly
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))
#define __must_check
#define __init
#define __aligned(x) __attribute__((aligned(x)))
#define __packed __attribute__((packed))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define EXPORT_SYMBOL(x)
#define EXPORT_SYMBOL_GPL(x)
#define BUILD_BUG_ON(c) _Static_assert(!(c), #c)
#define WARN_ON(c) ({ int __w = !!(c); __w; })
#define BUG_ON(c) do { if (c) abort(); } while (0)
#define IS_ALIGNED(x, a) ((((unsigned long)(x)) & ((a) - 1)) == 0)
#define WARN_ON_ONCE(c) WARN_ON(c)
#define IS_ENABLED(option) 0
#define READ_ONCE(x) (x)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1UL << (n))
#define sizeof_field(T, m) sizeof(((T *)0)->m)
#define FIELD_SIZEOF(T, m) sizeof_field(T, m)
#define NET_IP_ALIGN 2
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define swap(a, b) do { __typeof__(a) __t = (a); (a) = (b); (b) = __t; } while (0)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline u32 rol32(u32 w, unsigned int s) { return (w << (s & 31)) | (w >> ((-s) & 31)); }
static inline u64 rol64(u64 w, unsigned int s) { return (w << (s & 63)) | (w >> ((-s) & 63)); }
#define ffs(x) __builtin_ffs(x)
#define fallthrough __attribute__((__fallthrough__))
#define uninitialized_var(x) x = x

/* byte order: constant expressions, so that case htons(ETH_P_IP): compiles as in the kernel */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define htons(x) ((u16)__builtin_bswap16((u16)(x)))
#define htonl(x) ((u32)__builtin_bswap32((u32)(x)))
#else
#define htons(x) ((u16)(x))
#define htonl(x) ((u32)(x))
#endif
#define ntohs(x) htons(x)
#define __constant_htons(x) htons(x)
#define __constant_htonl(x) htonl(x)
#define __constant_ntohs(x) htons(x)
#define ntohl(x) htonl(x)
#define cpu_to_be16(x) htons(x)
#define be16_to_cpu(x) ntohs(x)
#define cpu_to_be32(x) htonl(x)
#define be32_to_cpu(x) ntohl(x)

/* unaligned loads (the generic packed-struct versions) */
static inline u32 __get_unaligned_cpu32(const void *p) { u32 v; memcpy(&v, p, 4); return v; }
static inline u64 get_unaligned_le64(const void *p) { u64 v; memcpy(&v, p, 8); return le64toh(v); }
static inline u32 get_unaligned_le32(const void *p) { u32 v; memcpy(&v, p, 4); return le32toh(v); }
static inline u16 get_unaligned_le16(const void *p) { u16 v; memcpy(&v, p, 2); return le16toh(v); }
#define le64_to_cpup(p) le64toh(*(const u64 *)(p))
#define le64_to_cpu(x) le64toh(x)
#define le32_to_cpu(x) le32toh(x)
#define le32_to_cpup(p) le32toh(*(const u32 *)(p))
#define le16_to_cpup(p) le16toh(*(const u16 *)(p))

/* the flow-hash secret is set by the harness (job "hashrnd"), never drawn */
static inline void net_get_random_once(void *buf, size_t n) { (void)buf; (void)n; }

/* ---------------------------------------------------------------- constants */
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_RARP 0x8035
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_IPV6 0x86DD
#define ETH_P_PPP_SES 0x8864
#define ETH_P_MPLS_UC 0x8847
#define ETH_P_MPLS_MC 0x8848
#define ETH_P_TEB 0x6558
#define ETH_P_FCOE 0x8906
#define ETH_P_TIPC 0x88CA
#define ETH_P_BATMAN 0x4305
#define ETH_P_1588 0x88F7
#define ETH_P_PRP 0x88FB
#define ETH_P_HSR 0x892F
#define ETH_P_XDSA 0x00F8
#define ETH_P_802_3_MIN 0x0600

#define IPPROTO_IP 0
#define IPPROTO_ICMP 1
#define IPPROTO_IPIP 4
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_DCCP 33
#define IPPROTO_IPV6 41
#define IPPROTO_GRE 47
#define IPPROTO_ESP 50
#define IPPROTO_AH 51
#define IPPROTO_ICMPV6 58
#define IPPROTO_SCTP 132
#define IPPROTO_UDPLITE 136
#define IPPROTO_MPLS 137
#define IPPROTO_L2TP 115
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define IP6_OFFSET 0xFFF8
#define IP6_MF 0x0001
#define IPV6_FLOWLABEL_MASK htonl(0x000FFFFF)
#define IPTOS_TOS_MASK 0x1E
#define IPTOS_TOS(tos) ((tos) & IPTOS_TOS_MASK)

#define VLAN_PRIO_MASK 0xe000
#define VLAN_PRIO_SHIFT 13
#define VLAN_CFI_MASK 0x1000
#define VLAN_DEI_MASK 0x1000
#define VLAN_DEI_SHIFT 12
#define VLAN_VID_MASK 0x0fff
#define VLAN_HLEN 4
#define VLAN_MAX_DEPTH 8
#define VLAN_ETH_HLEN 18
#define NETIF_F_HW_VLAN_CTAG_TX (1ULL << 20)
#define NETIF_F_HW_VLAN_TX NETIF_F_HW_VLAN_CTAG_TX

#define GRE_CSUM htons(0x8000)
#define GRE_ROUTING htons(0x4000)
#define GRE_KEY htons(0x2000)
#define GRE_SEQ htons(0x1000)
#define GRE_STRICT htons(0x0800)
#define GRE_REC htons(0x0700)
#define GRE_ACK htons(0x0080)
#define GRE_FLAGS htons(0x0078)
#define GRE_VERSION htons(0x0007)
#define GRE_IS_CSUM(f) ((f) & GRE_CSUM)
#define GRE_IS_KEY(f) ((f) & GRE_KEY)
#define GRE_IS_SEQ(f) ((f) & GRE_SEQ)
#define GRE_VERSION_0 htons(0x0000)
#define GRE_VERSION_1 htons(0x0001)
#define GRE_PROTO_PPP htons(0x880b)
#define GRE_PPTP_KEY_MASK htonl(0xffff)
#define PPP_HDRLEN 4
#define PPP_IP 0x21
#define PPP_IPV6 0x57
#define PPP_MPLS_UC 0x0281
#define PPP_MPLS_MC 0x0283
#define PPP_PROTOCOL(p) ((((u8 *)(p))[2] << 8) + ((u8 *)(p))[3])
#define PPPOE_SES_HLEN 8
#define FCOE_HEADER_LEN 38
#define HSR_HLEN 6

#define NET_XMIT_SUCCESS 0x00
#define NET_XMIT_DROP 0x01
#define __NET_XMIT_STOLEN 0x00010000
#define __NET_XMIT_BYPASS 0x00020000
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_STOLEN 4
#define TC_ACT_QUEUED 5
#define TC_ACT_TRAP 8

/* FLOW_KEY_* and FLOW_MODE_* of include/uapi/linux/pkt_cls.h (ABI values) */
enum {
	FLOW_KEY_SRC, FLOW_KEY_DST, FLOW_KEY_PROTO, FLOW_KEY_PROTO_SRC, FLOW_KEY_PROTO_DST,
	FLOW_KEY_IIF, FLOW_KEY_PRIORITY, FLOW_KEY_MARK, FLOW_KEY_NFCT, FLOW_KEY_NFCT_SRC,
	FLOW_KEY_NFCT_DST, FLOW_KEY_NFCT_PROTO_SRC, FLOW_KEY_NFCT_PROTO_DST, FLOW_KEY_RTCLASSID,
	FLOW_KEY_SKUID, FLOW_KEY_SKGID, FLOW_KEY_VLAN_TAG, FLOW_KEY_RXHASH, __FLOW_KEY_MAX,
};
#define FLOW_KEY_MAX (__FLOW_KEY_MAX - 1)
enum { FLOW_MODE_MAP, FLOW_MODE_HASH };

/* ---------------------------------------------------------------- wire headers */
struct in6_addr {
	union {
		u8 u6_addr8[16];
		__be16 u6_addr16[8];
		__be32 u6_addr32[4];
	} in6_u;
#define s6_addr in6_u.u6_addr8
#define s6_addr16 in6_u.u6_addr16
#define s6_addr32 in6_u.u6_addr32
};
struct ethhdr {
	u8 h_dest[ETH_ALEN];
	u8 h_source[ETH_ALEN];
	__be16 h_proto;
} __packed;
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};
struct vlan_ethhdr {
	u8 h_dest[ETH_ALEN];
	u8 h_source[ETH_ALEN];
	__be16 h_vlan_proto;
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};
struct iphdr {
	u8 ihl:4, version:4; /* little-endian bit-field order */
	u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	u8 ttl;
	u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};
struct ipv6hdr {
	u8 priority:4, version:4;
	u8 flow_lbl[3];
	__be16 payload_len;
	u8 nexthdr;
	u8 hop_limit;
	struct in6_addr saddr;
	struct in6_addr daddr;
};
struct frag_hdr {
	u8 nexthdr;
	u8 reserved;
	__be16 frag_off;
	__be32 identification;
};
struct tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	u16 res1:4, doff:4, fin:1, syn:1, rst:1, psh:1, ack:1, urg:1, ece:1, cwr:1;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};
union tcp_word_hdr { struct tcphdr hdr; __be32 words[5]; };
#define tcp_flag_word(tp) (((union tcp_word_hdr *)(tp))->words[3])
static inline unsigned int __tcp_hdrlen(const struct tcphdr *th) { return th->doff * 4; }
struct icmphdr {
	u8 type;
	u8 code;
	__sum16 checksum;
	union {
		struct { __be16 id; __be16 sequence; } echo;
		__be32 gateway;
	} un;
};
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMP_TIMESTAMP 13
#define ICMP_TIMESTAMPREPLY 14
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
struct gre_base_hdr { __be16 flags; __be16 protocol; } __packed;
struct gre_full_hdr { struct gre_base_hdr fixed_header; __be16 csum; __be16 reserved1;
	__be32 key; __be32 seq; } __packed;
struct pptp_gre_header { struct gre_base_hdr gre_hd; __be16 payload_len; __be16 call_id;
	__be32 seq; __be32 ack; } __packed;
static inline u8 ipv6_get_dsfield(const struct ipv6hdr *ipv6h)
{
	return ntohs(*(const __be16 *)ipv6h) >> 4;
}

/* protocols the driver never sends: types for the verbatim code to compile */
struct mpls_label { __be32 entry; };
#define MPLS_LS_LABEL_MASK 0xFFFFF000
#define MPLS_LS_LABEL_SHIFT 12
#define MPLS_LS_TC_MASK 0x00000E00
#define MPLS_LS_TC_SHIFT 9
#define MPLS_LS_S_MASK 0x00000100
#define MPLS_LS_S_SHIFT 8
#define MPLS_LS_TTL_MASK 0x000000FF
#define MPLS_LS_TTL_SHIFT 0
#define MPLS_LABEL_ENTROPY 7
static inline void ether_addr_copy(u8 *dst, const u8 *src) { memcpy(dst, src, ETH_ALEN); }
struct arphdr { __be16 ar_hrd; __be16 ar_pro; u8 ar_hln; u8 ar_pln; __be16 ar_op; };
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
struct pppoe_hdr { u8 type:4, ver:4; u8 code; __be16 sid; __be16 length; } __packed;
static inline bool ppp_proto_is_valid(u16 proto) { (void)proto; abort(); }
struct tipc_basic_hdr { __be32 w[4]; };
static inline __be32 tipc_hdr_rps_key(struct tipc_basic_hdr *hdr) { (void)hdr; abort(); }
struct ptp_header { u8 b[4]; __be16 message_length; };
struct hsr_tag { __be16 path_and_LSDU_size; __be16 sequence_nr; __be16 encap_proto; };
struct batadv_unicast_packet { u8 packet_type; u8 version; u8 ttl; u8 ttvn; u8 dest[6]; };
struct l2tp_hdr { __be32 session_id; };
#define BATADV_COMPAT_VERSION 15
#define BATADV_UNICAST 0x40

/* ---------------------------------------------------------------- kernel objects */
struct netns_bpf;
struct net;

struct net_device {
	u64 features;
	unsigned int mtu;		/* psched_mtu() = mtu + hard_header_len */
	unsigned short hard_header_len;
};
struct cred { kuid_t fsuid; kgid_t fsgid; };
struct file { const struct cred *f_cred; };
struct socket { struct file *file; };
struct sock { struct socket *sk_socket; };
struct user_namespace { int unused; };
static struct user_namespace init_user_ns;
#if KV >= KERNEL_VERSION(3, 10, 0)
static inline unsigned int from_kuid(struct user_namespace *ns, kuid_t u) { (void)ns; return u.val; }
static inline unsigned int from_kgid(struct user_namespace *ns, kgid_t g) { (void)ns; return g.val; }
#endif
struct dst_entry { u32 tclassid; };

struct sk_buff {
	struct sk_buff *next;	/* first, as the kernel's sk_buff_head lists require */
	struct sk_buff *prev;
	unsigned char *head;
	unsigned char *data;
	unsigned int len;
	unsigned int data_len;
	u16 mac_len;
	__be16 protocol;
	__be16 vlan_proto;
	u16 vlan_tci;
	u8 vlan_present;
	u8 l4_hash;
	u8 sw_hash;
	u16 network_header;
	u32 hash;
	u32 rxhash;		/* skb->hash before 3.14 */
	u8 l4_rxhash;		/* skb->l4_hash before 3.14 */
	u32 priority;
	u32 mark;
	int skb_iif;
	int iif;		/* skb->skb_iif before 2.6.36 */
	struct sock *sk;
	struct net_device *dev;
	unsigned long _skb_refdst;
	void *dst;		/* skb->dst before skb_dst() (2.6.31) */
	char cb[48] __aligned(8);
};
/* the qdisc layer's view of skb->cb (include/net/sch_generic.h): the members the copied code
 * touches; sfq keeps its dissected flow_keys in data[] (3.3-4.1) */
struct qdisc_skb_cb {
	unsigned int pkt_len;
	u16 slave_dev_queue_mapping;
	u16 tc_classid;
	unsigned char data[20];
	struct bpf_flow_keys *flow_keys;
};
static inline struct qdisc_skb_cb *qdisc_skb_cb(const struct sk_buff *skb)
{
	return (struct qdisc_skb_cb *)skb->cb;
}
static inline void qdisc_cb_private_validate(const struct sk_buff *skb, int sz)
{
	(void)skb;
	if (sz > (int)sizeof(((struct qdisc_skb_cb *)0)->data))
		abort();
}
/* BPF's use of the control block (include/linux/filter.h, 4.20-5.0) */
struct bpf_skb_data_end { struct qdisc_skb_cb qdisc_cb; void *data_meta; void *data_end; };
static inline unsigned int skb_headlen(const struct sk_buff *skb) { return skb->len - skb->data_len; }
/* the frame is one linear buffer: pulling succeeds exactly when the bytes are there */
static inline int pskb_may_pull(struct sk_buff *skb, unsigned int len) { return len <= skb_headlen(skb); }
static inline unsigned char *skb_network_header(const struct sk_buff *skb)
{
	return skb->head + skb->network_header;
}
static inline int skb_network_offset(const struct sk_buff *skb)
{
	return (skb->head + skb->network_header) - skb->data;
}
static inline struct ethhdr *eth_hdr(const struct sk_buff *skb) { return (struct ethhdr *)skb->data; }
static inline int pskb_network_may_pull(struct sk_buff *skb, unsigned int len)
{
	return pskb_may_pull(skb, skb_network_offset(skb) + len);
}
static inline struct iphdr *ip_hdr(const struct sk_buff *skb)
{
	return (struct iphdr *)skb_network_header(skb);
}
static inline struct ipv6hdr *ipv6_hdr(const struct sk_buff *skb)
{
	return (struct ipv6hdr *)skb_network_header(skb);
}
static inline struct dst_entry *skb_dst(const struct sk_buff *skb)
{
	return (struct dst_entry *)skb->_skb_refdst;
}
static inline struct sock *skb_to_full_sk(const struct sk_buff *skb) { return skb->sk; }
static inline int skb_copy_bits(const struct sk_buff *skb, int offset, void *to, int len)
{
	if (offset < 0 || len < 0 || (unsigned int)(offset + len) > skb->len)
		return -EFAULT;
	memcpy(to, skb->data + offset, len);
	return 0;
}
static inline void *skb_header_pointer(const struct sk_buff *skb, int offset, int len,
				       void *buffer)
{
	if (offset >= 0 && (int)skb_headlen(skb) - offset >= len)
		return skb->data + offset;
	if (skb_copy_bits(skb, offset, buffer, len) < 0)
		return NULL;
	return buffer;
}
static inline void __skb_set_sw_hash(struct sk_buff *skb, u32 hash, bool is_l4)
{
	skb->l4_hash = is_l4;
	skb->sw_hash = 1;
	skb->hash = hash;
}
static inline bool eth_proto_is_802_3(__be16 proto) { return ntohs(proto) >= ETH_P_802_3_MIN; }

/* RCU, lists: single-threaded harness */
#define rcu_read_lock() do { } while (0)
#define rcu_read_unlock() do { } while (0)
#define rcu_dereference(p) (p)
#define rcu_dereference_bh(p) (p)
struct list_head { struct list_head *next, *prev; };
struct rcu_head { void *unused; };
struct rcu_work { void *unused; };
struct work_struct { void *unused; };
/* timers never fire in the harness: the qdiscs' perturb timers are set up and left alone */
struct timer_list { void (*function)(unsigned long); unsigned long data; };
static inline void init_timer_deferrable(struct timer_list *t) { (void)t; }
typedef struct { int unused; } spinlock_t;
#define spin_lock_init(l) do { (void)(l); } while (0)
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_for_each_entry(pos, head, member) list_for_each_entry_rcu(pos, head, member)
#define list_for_each_entry_rcu(pos, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))

/* BPF flow dissector: never attached */
struct bpf_prog;
struct bpf_flow_keys { u16 nhoff; u16 thoff; };
#define clamp_t(type, v, lo, hi) min_t(type, max_t(type, v, lo), hi)
#define BPF_PROG_RUN(prog, ctx) ({ (void)(prog); (void)(ctx); abort(); 0; })
static inline void bpf_compute_data_pointers(struct sk_buff *skb) { (void)skb; abort(); }
struct bpf_flow_dissector;
struct bpf_prog_array_item { struct bpf_prog *prog; };
struct bpf_prog_array { struct bpf_prog_array_item items[1]; };
enum netns_bpf_attach_type { NETNS_BPF_FLOW_DISSECTOR, MAX_NETNS_BPF_ATTACH_TYPE };
struct netns_bpf { struct bpf_prog_array *run_array[MAX_NETNS_BPF_ATTACH_TYPE]; };
/* where a BPF flow dissector would be attached: net->bpf (5.7+), net->flow_dissector_prog
 * (5.0-5.6); both stay NULL */
struct net { struct netns_bpf bpf; struct bpf_prog *flow_dissector_prog; };
static struct net init_net;
static inline struct net *dev_net(const struct net_device *dev) { (void)dev; return &init_net; }
static inline struct net *sock_net(const struct sock *sk) { (void)sk; return &init_net; }
#define BPF_OK 0
#define BPF_FLOW_DISSECTOR_CONTINUE 129
/* bpf_flow_dissect(prog, ctx, proto, nhoff, hlen[, flags]): never reached */
static inline u32 oracle_bpf_flow_dissect(void) { abort(); }
#define bpf_flow_dissect(...) oracle_bpf_flow_dissect()

/* tc: one classifier, no actions, no ematches */
struct tcf_result { unsigned long class; u32 classid; };
struct tcf_proto {
	void *root;
	int (*classify)(struct sk_buff *, const struct tcf_proto *, struct tcf_result *);
};
struct tcf_block;
struct tcf_exts { int unused; };
struct tcf_ematch_tree { int unused; };
static inline int tcf_em_tree_match(struct sk_buff *skb, struct tcf_ematch_tree *t, void *info)
{
	(void)skb; (void)t; (void)info;
	return 1;
}
static inline int tcf_exts_exec(struct sk_buff *skb, struct tcf_exts *e, struct tcf_result *r)
{
	(void)skb; (void)e; (void)r;
	return TC_ACT_OK;
}
/* tc_classify / tcf_classify: (skb, tp, res) to 4.4, (skb, tp, res, compat) 4.5-5.12,
 * (skb, block, tp, res, compat) from 5.13: picked by the number of arguments */
static inline int oracle_classify(struct sk_buff *skb, const struct tcf_proto *tp,
				  struct tcf_result *res)
{
	return tp->classify(skb, (struct tcf_proto *)tp, res);
}
#define ORACLE_NARGS(...) ORACLE_NARGS_(__VA_ARGS__, 5, 4, 3, 2, 1)
#define ORACLE_NARGS_(a, b, c, d, e, n, ...) n
#define ORACLE_CAT(a, b) ORACLE_CAT_(a, b)
#define ORACLE_CAT_(a, b) a##b
#define oracle_classify_3(skb, tp, res) oracle_classify(skb, tp, res)
#define oracle_classify_4(skb, tp, res, compat) oracle_classify(skb, tp, res)
#define oracle_classify_5(skb, block, tp, res, compat) oracle_classify(skb, tp, res)
#define tcf_classify(...) ORACLE_CAT(oracle_classify_, ORACLE_NARGS(__VA_ARGS__))(__VA_ARGS__)
#define tc_classify(...) ORACLE_CAT(oracle_classify_, ORACLE_NARGS(__VA_ARGS__))(__VA_ARGS__)
/* the members of struct Qdisc the copied qdisc code touches; private data sized for the
 * largest sfq_sched_data with its arrays inline (2.6.x) */
struct Qdisc {
	u32 handle;
	u32 flags;
	struct net_device *dev_queue_dev;
	struct { u32 qlen; } q;
	struct { u32 backlog, drops, requeues, overlimits; } qstats;
	struct { u64 bytes; u32 packets; } bstats;
	long privdata[2048] __aligned(64);
};
static inline struct net_device *qdisc_dev(const struct Qdisc *q) { return q->dev_queue_dev; }
static inline unsigned int psched_mtu(const struct net_device *dev)
{
	return dev->mtu + dev->hard_header_len;
}
static inline void *qdisc_priv(struct Qdisc *q) { return q->privdata; }

#endif
