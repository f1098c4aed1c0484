/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qoslab's SFQ scheduler oracle: runs the kernel's own sfq_enqueue / sfq_dequeue (and the
 * sfq_drop, sfq_inc, sfq_dec, sfq_link they call), extracted verbatim into kernel/sfq-<era>/,
 * on a script of operations, so that qoslab.qdiscs' SFQ runtimes can be compared packet by
 * packet.
 *
 *   sfq_sched LIMIT QUANTUM OPS
 *
 * Before 3.3 the qdisc is set up by the era's sfq_init() without options (quantum =
 * psched_mtu() of a device whose mtu + hard_header_len is QUANTUM), then LIMIT is applied as
 * that sfq_change() does (q->limit = min(limit, SFQ_DEPTH - 1)); from 3.3 sfq_init() gets the
 * options (limit, quantum) as a netlink struct tc_sfq_qopt and applies them with the era's own
 * sfq_change(). OPS: one operation per line:
 *
 *   e ID BUCKET LEN   enqueue packet ID (LEN bytes, qdisc_pkt_len) into BUCKET: the bucket is
 *                     pinned through sfq_classify's skb->priority override (major = the qdisc
 *                     handle, minor = BUCKET + 1), so the hash never decides
 *   d                 dequeue
 *
 * Output: one line per operation: "e RET" (sfq_enqueue's return) or "d ID" (-1: nothing),
 * with " xID" for every packet dropped during the operation, in the order of the drops.
 */
#include "shim.h"

#ifndef KV
#error "compile with -DKV=KERNEL_VERSION(a,b,c)"
#endif

#define NET_XMIT_CN 0x02
#define HZ 1000
static unsigned long jiffies;
static inline u32 net_random(void) { return 0; } /* the perturbation: buckets are pinned */
/* the perturb timer is never armed (no perturb period) and never fires here */
static inline int mod_timer(struct timer_list *t, unsigned long expires)
{
	(void)t; (void)expires;
	abort();
}

static void free_packet(struct sk_buff *skb)
{
	printf(" x%u", skb->mark);
	free(skb->head);
	free(skb);
}

/* memory for sfq_init's tables (2.6.39+) */
#define GFP_KERNEL 0
#define PAGE_SIZE 4096
#define kmalloc(size, flags) malloc(size)
#define vmalloc(size) malloc(size)
#define kvmalloc(size, flags) calloc(1, size)
#define kfree(p) free(p)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define TCQ_F_CAN_BYPASS 4
/* byte and packet counters are not compared */
#define qdisc_bstats_update(sch, skb) do { (void)(sch); (void)(skb); } while (0)

#if __has_include("include/linux/siphash.h")
#include "include/linux/siphash.h"
#endif

#if KV < KERNEL_VERSION(3, 3, 0)
/* the packets the kernel frees: the scheduler's drops (kfree_skb in sfq_drop, qdisc_drop) */
static void kfree_skb(struct sk_buff *skb) { free_packet(skb); }
/* sfq_change() parses netlink options: never called (sfq_init gets no options) */
struct nlattr;
static int sfq_change(struct Qdisc *sch, struct nlattr *opt)
{
	(void)sch; (void)opt;
	abort();
}
#else
/* netlink: one attribute holding struct tc_sfq_qopt (include/net/netlink.h) */
struct nlattr { u16 nla_len; u16 nla_type; };
#define NLA_HDRLEN 4
static inline void *nla_data(const struct nlattr *nla) { return (char *)nla + NLA_HDRLEN; }
static inline int nla_attr_size(int payload) { return NLA_HDRLEN + payload; }
struct netlink_ext_ack;
/* locks, timers, statistics the scheduler's decisions do not depend on */
#define sch_tree_lock(sch) do { (void)(sch); } while (0)
#define sch_tree_unlock(sch) do { (void)(sch); } while (0)
#define qdisc_tree_reduce_backlog(sch, n, len) do { (void)(sch); } while (0)
#define qstats_drop_inc(qstats) ((qstats)->drops++)
#define TIMER_DEFERRABLE 0
#define timer_setup(timer, fn, flags) do { (timer)->function = NULL; (void)(fn); } while (0)
#define del_timer(timer) do { (void)(timer); } while (0)
#define get_random_bytes(buf, n) memset(buf, 0, n)
#define is_power_of_2(n) ((n) != 0 && (((n) & ((n) - 1)) == 0))
typedef s64 ktime_t;
struct reciprocal_value { u32 m; u8 sh1, sh2; };
#define RED_STAB_SIZE 256
struct tcf_block;
static inline int tcf_block_get(struct tcf_block **b, struct tcf_proto __rcu **fl,
				struct Qdisc *sch, struct netlink_ext_ack *extack)
{
	(void)sch; (void)extack;
	*b = NULL;
	*fl = NULL;
	return 0;
}
/* the dropped packets (sfq_change's, before any is queued: none) */
static void rtnl_kfree_skbs(struct sk_buff *head, struct sk_buff *tail)
{
	(void)tail;
	if (head)
		abort();
}
/* RED and ECN marking (never configured here: q->red_parms stays NULL) */
enum { RED_DONT_MARK, RED_PROB_MARK, RED_HARD_MARK };
#define red_calc_qavg_no_idle_time(p, v, backlog) ({ abort(); 0UL; })
#define red_action(p, v, qavg) ({ abort(); 0; })
#define red_check_params(...) ({ abort(); false; })
#define red_set_parms(...) abort()
#define INET_ECN_set_ce(skb) ({ abort(); 0; })
/* the hash: never computed (buckets are pinned through skb->priority) */
static inline u32 skb_get_hash_perturb(const struct sk_buff *skb, const siphash_key_t *p)
{
	(void)skb; (void)p;
	abort();
}
static void sfq_perturbation(struct timer_list *t) { (void)t; abort(); }
#endif

#if __has_include("include/uapi/linux/pkt_sched.h")
#include "include/uapi/linux/pkt_sched.h"
#else
#include "include/linux/pkt_sched.h"
#endif
#if __has_include("include/linux/jhash.h")
#include "include/linux/jhash.h"
#endif
#if __has_include("include/linux/in.h")
#include "include/linux/in.h"
#endif
#if __has_include("include/linux/skbuff.h")
#include "include/linux/skbuff.h"
#endif
#if __has_include("include/net/red.h")
#include "include/net/red.h"
#endif
#include "include/net/sch_generic.h"
#include "net/sched/sch_sfq.c"

#define HANDLE 0x10000

static struct sk_buff *make_packet(unsigned int id, unsigned int bucket, unsigned int len)
{
	struct sk_buff *skb = calloc(1, sizeof(*skb));
	unsigned char *buf = calloc(1, 64);
	if (!skb || !buf)
		abort();
	/* an IPv4 header is enough for sfq_hash, which the pinned bucket bypasses anyway */
	skb->head = skb->data = buf;
	skb->len = 64;
	skb->protocol = htons(ETH_P_IP);
	skb->network_header = ETH_HLEN;
	skb->mark = id;
	skb->priority = HANDLE | (bucket + 1);
	qdisc_skb_cb(skb)->pkt_len = len;
	return skb;
}

int main(int argc, char **argv)
{
	static struct Qdisc sch;
	static struct net_device dev;
	struct sfq_sched_data *q;
	FILE *ops;
	char line[128];

	if (argc != 4)
		return 2;
	dev.mtu = (unsigned int)atoi(argv[2]);
	dev.hard_header_len = 0;
	sch.handle = HANDLE;
	sch.dev_queue_dev = &dev;
#if KV < KERNEL_VERSION(3, 3, 0)
	if (sfq_init(&sch, NULL))
		return 2;
	q = qdisc_priv(&sch);
	q->limit = min_t(u32, (u32)atoi(argv[1]), SFQ_DEPTH - 1);
#else
	{
		struct { struct nlattr nla; struct tc_sfq_qopt qopt; } opt;
		memset(&opt, 0, sizeof(opt));
		opt.nla.nla_len = nla_attr_size(sizeof(opt.qopt));
		opt.qopt.quantum = dev.mtu;
		opt.qopt.limit = (u32)atoi(argv[1]);
		if (sfq_init(&sch, &opt.nla, NULL))
			return 2;
	}
	q = qdisc_priv(&sch);
#endif
	(void)q;
	ops = fopen(argv[3], "r");
	if (!ops)
		return 2;
	while (fgets(line, sizeof(line), ops)) {
		unsigned int id, bucket, len;
		if (sscanf(line, "e %u %u %u", &id, &bucket, &len) == 3) {
			struct sk_buff *skb = make_packet(id, bucket, len);
			printf("e");
#if KV < KERNEL_VERSION(3, 3, 0)
			printf(" %d", sfq_enqueue(skb, &sch));
#else
			{
				struct sk_buff *to_free = NULL, *order[8];
				int ret = sfq_enqueue(skb, &sch, &to_free), n = 0;
				/* __qdisc_drop pushes on the front: free in the order of the drops */
				for (; to_free && n < 8; to_free = to_free->next)
					order[n++] = to_free;
				if (to_free)
					abort();
				while (n)
					free_packet(order[--n]);
				printf(" %d", ret);
			}
#endif
		} else if (line[0] == 'd') {
			struct sk_buff *skb = sfq_dequeue(&sch);
			printf("d %d", skb ? (int)skb->mark : -1);
			if (skb) {
				free(skb->head);
				free(skb);
			}
		} else {
			continue;
		}
		printf("\n");
	}
	return 0;
}
