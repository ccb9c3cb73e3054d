/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The verdict of one packet (struct sg_decision, abi.h) and how it is
 * reported back to BPF_PROG_TEST_RUN callers, and to nobody else: only a
 * run whose input carries SG_DECISION_REQUEST gets a report (see abi.h).
 * Such a run is a question (trace, the tests), not traffic: it updates no
 * counter (sg_rule_hits, sg_if_stats). Conntrack, fragments and the
 * verdict are the same with or without the request. Each entry function
 * checks for the request once, first (sg_requested_tc/_xdp), and hands
 * the answer to the counting and reporting steps.
 *  - TC: request in __sk_buff->cb[4], report in cb[0..3]; test runs take
 *    cb from ctx_in and return it in ctx_out. On real traffic cb holds
 *    whatever the layer above left there; in the rare case it happens to
 *    match the request, the report lands in scratch space that qdiscs
 *    initialise at enqueue, after TCX has run, and that packet goes
 *    uncounted: harmless.
 *  - XDP: request and report in the metadata area in front of the frame,
 *    which a test run fills from data_in (ctx_in.data = its length) and
 *    returns at the start of data_out. Frames from veth and tap arrive
 *    with empty metadata, so real traffic fails the bounds check (two
 *    context loads and a compare); only metadata an earlier XDP program
 *    left (one that redirected the frame into a veth) gets as far as the
 *    request word. The metadata is never grown.
 */
#ifndef SG_DECISION_H
#define SG_DECISION_H

#include "common.h"

_Static_assert(sizeof(struct sg_decision) == 16, "sg_decision must fill cb[0..3]");

static __always_inline void sg_decision_init(struct sg_decision *d, const __u8 dir)
{
	d->magic = SG_DECISION_MAGIC;
	d->rule_pos = SG_NO_RULE;
	d->table = SG_NO_TABLE;
	d->reason = SG_REASON_DROP_MALFORMED;
	d->action = SG_ACTION_DROP;
	d->dir = dir;
	d->pad = 0;
}

static __always_inline void sg_accept(struct sg_decision *d, __u8 reason)
{
	d->reason = reason;
	d->action = SG_ACTION_ACCEPT;
}

static __always_inline void sg_drop(struct sg_decision *d, __u8 reason)
{
	d->reason = reason;
	d->action = SG_ACTION_DROP;
}

/* Whether a TC run asked for the report: one context load and a compare. */
static __always_inline long sg_requested_tc(const struct __sk_buff *skb)
{
	return unlikely(skb->cb[4] == SG_DECISION_REQUEST);
}

/* Only for a run sg_requested_tc() said yes to. */
static __always_inline void sg_report_tc(struct __sk_buff *skb, const struct sg_decision *d)
{
	/* Through a union so the cb words hold the struct's bytes in memory
	 * order on either endianness. */
	union {
		struct sg_decision d;
		__u32 w[4];
	} u;

	u.d = *d;
	skb->cb[0] = u.w[0];
	skb->cb[1] = u.w[1];
	skb->cb[2] = u.w[2];
	skb->cb[3] = u.w[3];
}

/*
 * The metadata a test run supplies: a slot for the report, then the
 * request word, then the frame. A repeated run (BPF_PROG_TEST_RUN with
 * repeat) reuses one buffer: every run finds the request still there and
 * overwrites the slot, so data_out holds exactly one report, the last
 * run's.
 */
struct sg_decision_meta {
	struct sg_decision report;
	__u32 request;
};

/* Whether an XDP run asked for the report. Real traffic stops at the
 * bounds check: two context loads and a compare. */
static __always_inline long sg_requested_xdp(const struct xdp_md *ctx)
{
	const struct sg_decision_meta *meta = (void *)(long)ctx->data_meta;

	if (likely((void *)(meta + 1) > (void *)(long)ctx->data))
		return 0;
	return meta->request == SG_DECISION_REQUEST;
}

/*
 * Only for a run sg_requested_xdp() said yes to. The packet pointers are
 * derived again (the calls in between may have invalidated them for the
 * verifier); the bounds check is what lets the store through, and the
 * request word cannot have changed.
 */
static __always_inline void sg_report_xdp(struct xdp_md *ctx, const struct sg_decision *d)
{
	struct sg_decision_meta *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return;
	meta->report = *d;
}

#endif /* SG_DECISION_H */
