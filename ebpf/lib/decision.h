/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The verdict of one packet (struct sg_decision, abi.h) and how it is
 * reported back to BPF_PROG_TEST_RUN callers:
 *  - TC: in __sk_buff->cb[0..3], which test runs return in ctx_out. The
 *    control block is scratch space for the current layer; qdiscs that use
 *    it initialise it at enqueue, after TCX has run.
 *  - XDP: in the metadata area right in front of the frame, grown with
 *    bpf_xdp_adjust_meta(); test runs return it at the start of data_out
 *    (16 bytes of metadata, then the frame).
 *    Drivers without metadata support (tun among them) refuse to grow it:
 *    the report is then skipped, the verdict stands.
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

static __always_inline void sg_report_tc(struct __sk_buff *skb, const struct sg_decision *d)
{
	/* Through a union so the cb words hold the struct's bytes in memory
	 * order on either endianness. */
	union {
		struct sg_decision d;
		__u32 w[4];
	} u = { .d = *d };

	skb->cb[0] = u.w[0];
	skb->cb[1] = u.w[1];
	skb->cb[2] = u.w[2];
	skb->cb[3] = u.w[3];
}

/*
 * Last thing an XDP program does: growing the metadata invalidates every
 * packet pointer.
 *
 * Metadata is empty when a frame arrives, so the report grows it by 16
 * bytes. A repeated test run (BPF_PROG_TEST_RUN with repeat) reuses one
 * buffer: from the second run on, the 16 bytes are already there and are
 * overwritten. data_out then always starts with exactly one report, the
 * last run's.
 */
static __always_inline void sg_report_xdp(struct xdp_md *ctx, const struct sg_decision *d)
{
	struct sg_decision *out = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;

	if ((void *)(out + 1) > data) {
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*d)))
			return;
		data = (void *)(long)ctx->data;
		out = (void *)(long)ctx->data_meta;
		if ((void *)(out + 1) > data)
			return;
	}
	*out = *d;
}

#endif /* SG_DECISION_H */
