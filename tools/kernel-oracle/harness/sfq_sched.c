/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qoslab's SFQ scheduler oracle: runs the kernel's own sfq_enqueue / sfq_dequeue (and the
 * sfq_drop, sfq_inc, sfq_dec, sfq_link they call), extracted verbatim into kernel/sfq-<era>/,
 * on a script of operations, so that qoslab.qdiscs' SFQ runtimes can be compared packet by
 * packet.
 *
 *   sfq_sched LIMIT QUANTUM OPS
 *
 * The qdisc is set up by the era's sfq_init() without options (quantum = psched_mtu() of a
 * device whose mtu + hard_header_len is QUANTUM), then LIMIT is applied as sfq_change() does
 * (q->limit = min(limit, SFQ_DEPTH - 1)). OPS: one operation per line:
 *
 *   e ID BUCKET LEN   enqueue packet ID (LEN bytes, qdisc_pkt_len) into BUCKET: the bucket is
 *                     pinned through sfq_classify's skb->priority override (major = the qdisc
 *                     handle, minor = BUCKET + 1), so the hash never decides
 *   d                 dequeue
 *
 * Output: one line per operation: "e RET" (sfq_enqueue's return) or "d ID" (-1: nothing),
 * followed by " x ID" for every packet freed (dropped) during the operation, in order.
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

/* the packets the kernel frees: the scheduler's drops (kfree_skb in sfq_drop, qdisc_drop) */
static void kfree_skb(struct sk_buff *skb)
{
	printf(" x%u", skb->mark);
	free(skb->head);
	free(skb);
}

/* memory for sfq_init's hash table (2.6.39+) */
#define GFP_KERNEL 0
#define PAGE_SIZE 4096
#define kmalloc(size, flags) malloc(size)
#define vmalloc(size) malloc(size)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define TCQ_F_CAN_BYPASS 4
/* byte and packet counters are not compared */
#define qdisc_bstats_update(sch, skb) do { (void)(sch); (void)(skb); } while (0)

/* sfq_change() parses netlink options: never called (sfq_init gets no options) */
struct nlattr;
static int sfq_change(struct Qdisc *sch, struct nlattr *opt)
{
	(void)sch; (void)opt;
	abort();
}

#include "include/linux/pkt_sched.h"
#include "include/linux/jhash.h"
#if __has_include("include/linux/in.h")
#include "include/linux/in.h"
#endif
#include "include/linux/skbuff.h"
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
	if (sfq_init(&sch, NULL))
		return 2;
	q = qdisc_priv(&sch);
	q->limit = min_t(u32, (u32)atoi(argv[1]), SFQ_DEPTH - 1);
	ops = fopen(argv[3], "r");
	if (!ops)
		return 2;
	while (fgets(line, sizeof(line), ops)) {
		unsigned int id, bucket, len;
		if (sscanf(line, "e %u %u %u", &id, &bucket, &len) == 3) {
			struct sk_buff *skb = make_packet(id, bucket, len);
			printf("e");
			printf(" %d", sfq_enqueue(skb, &sch));
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
