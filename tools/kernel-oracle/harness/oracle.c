/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qoslab's kernel oracle: runs the kernel's own hash, dissector, classifier and
 * qdisc-selection functions (extracted verbatim into kernel/<era>/) on the frames of a pcap.
 *
 *   oracle CAPTURE.pcap META JOBS
 *
 * CAPTURE: classic pcap, Ethernet link type. META: one line per frame, "priority mark"
 * (decimal): what skb->priority and skb->mark hold when the packet reaches the qdisc.
 * JOBS: one job per line (numbers in hex without 0x unless noted):
 *
 *   hashrnd W0 W1 [W2 W3]     the global flow-hash secret (siphash key words / u32 seed)
 *   skbhash                   skb_get_hash()
 *   flow MODE KEYMASK DIVISOR BASECLASS HASHRND MASK XOR RSHIFT ADDEND
 *                             a cls_flow filter: prints the class minor, or -1
 *   keys KEYMASK              cls_flow flow_key_get() of each key in KEYMASK, in bit order
 *   sfq DIVISOR HANDLE FILTER P0 P1 [P2 P3]
 *                             sfq_classify() - 1 (bucket; -1 = dropped), FILTER = index of a
 *                             flow job above or -1; P = perturbation
 *   fqcodel FLOWS HANDLE FILTER
 *                             fq_codel_classify() - 1
 *   band                      pfifo_fast band of rt_tos2priority(outer IPv4 TOS)
 *
 * Output: one line per frame, the jobs' values (decimal) separated by spaces.
 *
 * Packet model (what the driver's qoslab side assumes too): the frame is at the egress qdisc
 * of an Ethernet device, skb->data at the MAC header, the network header right after it.
 * An 802.1Q tag is carried out of band (VLAN acceleration: skb->vlan_tci, vlan_proto 0x8100,
 * skb->protocol the encapsulated EtherType, the device has NETIF_F_HW_VLAN_CTAG_TX), as the
 * kernel's VLAN devices hand packets to a VLAN-offloading NIC. No socket, no route
 * (skb->sk and skb_dst are NULL: addr_fold() gives 0), no conntrack, skb->hash unset.
 */
#include "shim.h"

#ifndef KV
#error "compile with -DKV=KERNEL_VERSION(a,b,c)"
#endif

/* ------------------------------------------------------------------ the kernel's code */
/*
 * Which files an era has decides what is included (__has_include); the few signatures that
 * changed between eras are bridged by the ORACLE_* macros below, each keyed on KV and
 * documented. Three generations:
 *   ORACLE_FLOW_KEYS  4.2+   struct flow_keys filled by the flow dissector, hashed whole
 *   ORACLE_DISSECTOR3 3.3-4.1 the first flow dissector (include/net/flow_keys.h: src, dst,
 *                             ports, ip_proto), hashed with jhash_3words
 *   ORACLE_DIRECT     <= 3.2  no dissector: cls_flow and SFQ read the headers themselves;
 *                             rxhash (2.6.37+) in net/core/dev.c
 */
#if KV >= KERNEL_VERSION(4, 2, 0)
#define ORACLE_FLOW_KEYS 1
#elif KV >= KERNEL_VERSION(3, 3, 0)
#define ORACLE_DISSECTOR3 1
#else
#define ORACLE_DIRECT 1
#endif

#if __has_include("include/uapi/linux/pkt_sched.h")
#include "include/uapi/linux/pkt_sched.h"
#else
#include "include/linux/pkt_sched.h"
#endif
#if __has_include("include/linux/jhash.h")  /* SFQ folds its own hash before 2.6.23 */
#include "include/linux/jhash.h"
#endif
#if __has_include("include/linux/siphash.h")
#include "include/linux/siphash.h"
#include "lib/siphash.c"
#endif
#if __has_include("include/linux/math.h")
#include "include/linux/math.h"
#elif __has_include("include/linux/kernel.h")
#include "include/linux/kernel.h"
#endif
#if __has_include("include/linux/in.h")  /* proto_ports_offset: 2.6.37+ */
#include "include/linux/in.h"
#endif
#if __has_include("include/net/ip.h")  /* ip_is_fragment: 3.1+ */
#include "include/net/ip.h"
#endif
#if __has_include("include/net/ipv6.h")
#include "include/net/ipv6.h"
#endif

#ifdef ORACLE_FLOW_KEYS
#include "include/net/flow_dissector.h"
/* declared in include/linux/skbuff.h (not copied where the era lacks the prototype there) */
void __skb_get_hash(struct sk_buff *skb);
extern struct flow_dissector flow_keys_dissector;
/* the BPF flow dissector is never attached (see shim.h) */
static void __skb_flow_bpf_to_target(const struct bpf_flow_keys *flow_keys,
				     struct flow_dissector *flow_dissector,
				     void *target_container)
{
	(void)flow_keys; (void)flow_dissector; (void)target_container;
	abort();
}

#include "include/linux/skbuff.h"
#include "include/linux/if_vlan.h"
#if __has_include("include/net/pkt_sched.h")
#include "include/net/pkt_sched.h"
#endif
#include "net/core/flow_dissector.c"
#include "net/sched/cls_flow.c"

/* skb_flow_dissect_flow_keys() gained its flags argument in 4.3 */
#if KV >= KERNEL_VERSION(4, 3, 0)
#define ORACLE_CLS_FLOW_DISSECT(skb, keys) skb_flow_dissect_flow_keys(skb, keys, 0)
#else
#define ORACLE_CLS_FLOW_DISSECT(skb, keys) skb_flow_dissect_flow_keys(skb, keys)
#endif
#define ORACLE_FLOW_KEY_GET(skb, key, keys) flow_key_get(skb, key, keys)
#define ORACLE_SKB_HASH(skb) skb_get_hash(skb)
#endif /* ORACLE_FLOW_KEYS */

#ifdef ORACLE_DISSECTOR3
#include "include/net/flow_keys.h"
/* declared in include/linux/skbuff.h */
#if KV >= KERNEL_VERSION(3, 14, 0)
void __skb_get_hash(struct sk_buff *skb);
#define ORACLE_SKB_HASH(skb) skb_get_hash(skb)
#else
void __skb_get_rxhash(struct sk_buff *skb);
#define ORACLE_SKB_HASH(skb) skb_get_rxhash(skb)
#endif
#include "include/linux/skbuff.h"
#include "include/linux/if_vlan.h"
#if __has_include("include/net/pkt_sched.h")
#include "include/net/pkt_sched.h"
#endif
#include "net/core/flow_dissector.c"
#if __has_include("net/core/dev.c")
#include "net/core/dev.c"
#endif
#include "net/sched/cls_flow.c"
#define ORACLE_CLS_FLOW_DISSECT(skb, keys) skb_flow_dissect(skb, keys)
#define ORACLE_FLOW_KEY_GET(skb, key, keys) flow_key_get(skb, key, keys)
#endif /* ORACLE_DISSECTOR3 */

#ifdef ORACLE_DIRECT
/* no dissector: cls_flow's keys need no struct flow_keys (the "keys" job declares one) */
struct flow_keys { int unused; };
#if __has_include("net/core/dev.c")  /* __skb_get_rxhash: 2.6.37+ */
#if KV >= KERNEL_VERSION(3, 2, 0)
void __skb_get_rxhash(struct sk_buff *skb);
#else
__u32 __skb_get_rxhash(struct sk_buff *skb);
#endif
#include "include/linux/skbuff.h"
#define ORACLE_SKB_HASH(skb) skb_get_rxhash(skb)
#else
#define ORACLE_SKB_HASH(skb) ({ (void)(skb); abort(); 0u; })  /* no skb hash: never asked */
#endif
#if __has_include("include/linux/if_vlan.h")
#include "include/linux/if_vlan.h"
#endif
#if __has_include("net/core/dev.c")
#include "net/core/dev.c"
#else
static u32 hashrnd;  /* before 2.6.37 no flow-hash secret; gives oracle_seed_t its u32 type */
#endif
#if __has_include("net/sched/cls_flow.c")  /* cls_flow arrives in 2.6.25 */
#include "net/sched/cls_flow.c"
#else
#define ORACLE_NO_CLS_FLOW 1
#endif
#define ORACLE_CLS_FLOW_DISSECT(skb, keys) ((void)(keys))
#define ORACLE_FLOW_KEY_GET(skb, key, keys) flow_key_get(skb, key)
#endif /* ORACLE_DIRECT */

/* the flow-hash secret and the qdiscs' perturbation have the same type in every era:
 * u32 (jhash) or siphash_key_t */
typedef __typeof__(hashrnd) oracle_seed_t;

/* the fields of the qdiscs' private data that sfq_classify / fq_codel_classify read */
struct sfq_sched_data {
	unsigned int divisor;
	oracle_seed_t perturbation;
	struct tcf_proto __rcu *filter_list;
};
struct fq_codel_sched_data {
	struct tcf_proto __rcu *filter_list;
	u32 flows_cnt;
	oracle_seed_t perturbation;
};
#include "net/sched/sch_sfq.c"
/* the bucket SFQ's enqueue picks: sfq_classify() from 2.6.25 (skb->priority and filters
 * first), sfq_hash() alone before */
#if KV >= KERNEL_VERSION(2, 6, 25)
#define ORACLE_SFQ_CLASSIFY(skb, sch, qerr) sfq_classify(skb, sch, qerr)
#else
#define ORACLE_SFQ_CLASSIFY(skb, sch, qerr) \
	(sfq_hash((struct sfq_sched_data *)qdisc_priv(sch), skb) + 1)
#endif
#if __has_include("net/sched/sch_fq_codel.c")  /* fq_codel arrives in 3.5 */
#define ORACLE_FQ_CODEL 1
#include "net/sched/sch_fq_codel.c"
#endif
#include "net/sched/sch_generic.c"
#include "net/ipv4/route.c"
#include "include/net/route.h"

/* ------------------------------------------------------------------ harness */
#define MAX_JOBS 64
#define MAX_FILTERS 16
#define MAX_FRAME 65536

enum job_kind { J_HASHRND, J_SKBHASH, J_FLOW, J_KEYS, J_SFQ, J_FQCODEL, J_BAND };
struct job {
	enum job_kind kind;
	unsigned long long a[10];
	int n;
	int filter; /* J_FLOW: its filter index; J_SFQ/J_FQCODEL: attached filter or -1 */
};

static struct job jobs[MAX_JOBS];
static int njobs;
#ifndef ORACLE_NO_CLS_FLOW
static struct flow_head heads[MAX_FILTERS];
static struct flow_filter filters[MAX_FILTERS];
#endif
static struct tcf_proto protos[MAX_FILTERS];
static int nfilters;
static struct net_device the_dev = { .features = NETIF_F_HW_VLAN_CTAG_TX };

/* a seed from the job's words: the first 8 (u32) or 16 (siphash_key_t) bytes of the little-
 * endian words w[0], w[1] (siphash keys are two u64 words, as qoslab takes them) */
static void set_seed(oracle_seed_t *seed, const unsigned long long *w)
{
	u64 words[2] = { w[0], w[1] };
	_Static_assert(sizeof(*seed) <= sizeof(words), "seed too large");
	memcpy(seed, words, sizeof(*seed));
}

static void die(const char *what)
{
	fprintf(stderr, "oracle: %s\n", what);
	exit(2);
}

static void read_jobs(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], word[32];
	if (!f)
		die("cannot open the jobs file");
	while (fgets(line, sizeof(line), f)) {
		struct job *j;
		int off = 0, used;
		if (sscanf(line, "%31s%n", word, &off) != 1)
			continue;
		if (njobs == MAX_JOBS)
			die("too many jobs");
		j = &jobs[njobs++];
		j->filter = -1;
		if (!strcmp(word, "hashrnd")) j->kind = J_HASHRND;
		else if (!strcmp(word, "skbhash")) j->kind = J_SKBHASH;
		else if (!strcmp(word, "flow")) j->kind = J_FLOW;
		else if (!strcmp(word, "keys")) j->kind = J_KEYS;
		else if (!strcmp(word, "sfq")) j->kind = J_SFQ;
		else if (!strcmp(word, "fqcodel")) j->kind = J_FQCODEL;
		else if (!strcmp(word, "band")) j->kind = J_BAND;
		else die("unknown job");
		while (j->n < 10 && sscanf(line + off, "%llx%n", &j->a[j->n], &used) == 1) {
			j->n++;
			off += used;
		}
#ifdef ORACLE_NO_CLS_FLOW
		if (j->kind == J_FLOW || j->kind == J_KEYS)
			die("this era has no cls_flow");
#else
		if (j->kind == J_FLOW) {
			struct flow_filter *ff;
			if (nfilters == MAX_FILTERS || j->n != 9)
				die("bad flow job");
			j->filter = nfilters;
			ff = &filters[nfilters];
			memset(ff, 0, sizeof(*ff));
			ff->mode = (u32)j->a[0];
			ff->keymask = (u32)j->a[1];
			ff->nkeys = __builtin_popcount(ff->keymask);
			ff->divisor = (u32)j->a[2];
			ff->baseclass = (u32)j->a[3];
			ff->hashrnd = (u32)j->a[4];
			ff->mask = (u32)j->a[5];
			ff->xor = (u32)j->a[6];
			ff->rshift = (u32)j->a[7];
			ff->addend = (u32)j->a[8];
			heads[nfilters].filters.next = &ff->list;
			heads[nfilters].filters.prev = &ff->list;
			ff->list.next = &heads[nfilters].filters;
			ff->list.prev = &heads[nfilters].filters;
			protos[nfilters].root = &heads[nfilters];
			protos[nfilters].classify = flow_classify;
			nfilters++;
		}
#endif
		if ((j->kind == J_SFQ || j->kind == J_FQCODEL) && j->n >= 3 &&
		    (long long)j->a[2] >= 0 && j->a[2] < (unsigned long long)nfilters)
			j->filter = (int)j->a[2];
	}
	fclose(f);
}

/* skb for one frame, VLAN tag moved out of band (see the packet model above) */
static void make_skb(struct sk_buff *skb, unsigned char *buf, const unsigned char *frame,
		     unsigned int len, u32 priority, u32 mark)
{
	memset(skb, 0, sizeof(*skb));
	memcpy(buf, frame, len);
	if (len >= 18 && buf[12] == 0x81 && buf[13] == 0x00) {
		u16 tci = (u16)((buf[14] << 8) | buf[15]);
		/* the era's own accessor: how its VLAN device hands the tag to the NIC (before
		 * 2.6.27 the tag rode in skb->cb, which nothing compared here reads) */
#if KV >= KERNEL_VERSION(3, 10, 0)
		__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), tci);
#elif KV >= KERNEL_VERSION(2, 6, 27)
		__vlan_hwaccel_put_tag(skb, tci);
#else
		(void)tci;
#endif
		memmove(buf + 12, buf + 16, len - 16);
		len -= 4;
	}
	skb->head = skb->data = buf;
	skb->len = len;
	skb->protocol = len >= 14 ? (__be16)(buf[12] | (buf[13] << 8)) : 0;
	skb->network_header = ETH_HLEN;
	skb->priority = priority;
	skb->mark = mark;
	skb->dev = &the_dev;
}

static u32 outer_tos_priority(const struct sk_buff *skb)
{
	const struct iphdr *iph = (const struct iphdr *)(skb->data + ETH_HLEN);
	if (skb->protocol != htons(ETH_P_IP) || skb->len < ETH_HLEN + 20)
		return 0;
	return (u32)(u8)rt_tos2priority(iph->tos);
}

static void run_frame(const unsigned char *frame, unsigned int len, u32 priority, u32 mark)
{
	static unsigned char buf[MAX_FRAME];
	struct sk_buff skb;
	struct Qdisc sch;
	int k, qerr;

	for (k = 0; k < njobs; k++) {
		struct job *j = &jobs[k];
		make_skb(&skb, buf, frame, len, priority, mark);
		switch (j->kind) {
		case J_HASHRND:
			set_seed(&hashrnd, j->a);
			break;
		case J_SKBHASH:
			printf(" %u", ORACLE_SKB_HASH(&skb));
			break;
#ifndef ORACLE_NO_CLS_FLOW
		case J_FLOW: {
			struct tcf_result res = { 0, 0 };
			int r = flow_classify(&skb, &protos[j->filter], &res);
			printf(" %d", r < 0 ? -1 : (int)TC_H_MIN(res.classid));
			break;
		}
		case J_KEYS: {
			u32 mask = (u32)j->a[0];
			struct flow_keys flow_keys;
			ORACLE_CLS_FLOW_DISSECT(&skb, &flow_keys);
			while (mask) {
				int key = ffs(mask) - 1;
				mask &= ~(1u << key);
				make_skb(&skb, buf, frame, len, priority, mark);
				printf(" %u", ORACLE_FLOW_KEY_GET(&skb, key, &flow_keys));
			}
			break;
		}
#endif
		case J_SFQ: {
			struct sfq_sched_data *q = qdisc_priv(&sch);
			memset(&sch, 0, sizeof(sch));
			sch.handle = (u32)j->a[1];
			q->divisor = (unsigned int)j->a[0];
			set_seed(&q->perturbation, &j->a[3]);
			q->filter_list = j->filter >= 0 ? &protos[j->filter] : NULL;
			qerr = 0;
			printf(" %d", (int)ORACLE_SFQ_CLASSIFY(&skb, &sch, &qerr) - 1);
			break;
		}
#ifdef ORACLE_FQ_CODEL
		case J_FQCODEL: {
			struct fq_codel_sched_data *q = qdisc_priv(&sch);
			memset(&sch, 0, sizeof(sch));
			sch.handle = (u32)j->a[1];
			q->flows_cnt = (u32)j->a[0];
			set_seed(&q->perturbation, &j->a[3]);
			q->filter_list = j->filter >= 0 ? &protos[j->filter] : NULL;
			qerr = 0;
			printf(" %d", (int)fq_codel_classify(&skb, &sch, &qerr) - 1);
			break;
		}
#endif
		case J_BAND:
			printf(" %u", (u32)prio2band[outer_tos_priority(&skb) & TC_PRIO_MAX]);
			break;
		}
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	static unsigned char frame[MAX_FRAME];
	unsigned char gh[24], rh[16];
	FILE *pcap, *meta;
	char line[128];

	if (argc != 4)
		die("usage: oracle CAPTURE.pcap META JOBS");
#ifdef ORACLE_FLOW_KEYS
	skb_flow_dissector_init(&flow_keys_dissector, flow_keys_dissector_keys,
				ARRAY_SIZE(flow_keys_dissector_keys));
#endif
	read_jobs(argv[3]);
	pcap = fopen(argv[1], "rb");
	meta = fopen(argv[2], "r");
	if (!pcap || !meta)
		die("cannot open the capture or the meta file");
	if (fread(gh, 1, 24, pcap) != 24 || gh[0] != 0xd4 || gh[1] != 0xc3 || gh[20] != 1)
		die("expected a little-endian microsecond pcap with Ethernet link type");
	while (fread(rh, 1, 16, pcap) == 16) {
		u32 caplen = rh[8] | rh[9] << 8 | rh[10] << 16 | (u32)rh[11] << 24;
		unsigned int priority = 0, mark = 0;
		if (caplen > MAX_FRAME || fread(frame, 1, caplen, pcap) != caplen)
			die("truncated capture");
		if (!fgets(line, sizeof(line), meta) || sscanf(line, "%u %u", &priority, &mark) != 2)
			die("meta file has fewer lines than the capture has frames");
		run_frame(frame, caplen, priority, mark);
	}
	return 0;
}
