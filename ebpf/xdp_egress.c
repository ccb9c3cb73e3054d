/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP on a VM's tap: sees every frame the VM sends, before the host stack
 * allocates an skb for it, and enforces the VM's EGRESS rules.
 */
#include "lib/common.h"
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/pipeline.h"
#include "lib/decision.h"

/* Stage 2 of parsing (see sg_parse_l3() in parse.h). */
SG_SUBPROG int sg_xdp_parse_l4(struct xdp_md *ctx, struct sg_pkt *pkt)
{
	struct sg_ctx c;

	if (!pkt)
		return SG_PARSE_MALFORMED;
	sg_ctx_xdp(&c, ctx);
	return sg_parse_l4(&c, pkt);
}

/*
 * XDP frames without the frags flag are linear: SG_PARSE_PULL cannot
 * happen, and would be refused as unsupported if it did.
 */
SG_SUBPROG int sg_xdp_parse(struct xdp_md *ctx, struct sg_pkt *pkt)
{
	struct sg_ctx c;
	int st;

	if (!pkt)
		return 0;
	sg_ctx_xdp(&c, ctx);
	/* The common packet in one pass, without the second subprogram. */
	if (sg_parse_fast(c.data, c.data_end, c.len, pkt)) {
		st = SG_PARSE_OK;
		goto done;
	}
	st = sg_parse_l3(&c, pkt);
	if (st == SG_PARSE_L4)
		st = sg_xdp_parse_l4(ctx, pkt);
done:
	pkt->status = st == SG_PARSE_PULL ? SG_PARSE_UNSUPPORTED : st;
	pkt->ifindex = c.ifindex;
	pkt->len = c.len;
	return 0;
}

/* @requested: a test run that asked for the report, which counts nowhere. */
SG_SUBPROG int sg_xdp_decide(const struct sg_pkt *pkt, struct sg_decision *d, long requested)
{
	if (!pkt || !d)
		return 0;
	sg_decide(pkt, SG_DIR_EGRESS, d, requested);
	return 0;
}

SEC("xdp")
int sg_xdp_egress(struct xdp_md *ctx)
{
	/* Zeroed: parsing relies on it, and the verifier wants initialised
	 * stack behind pointers handed to global subprograms. */
	struct sg_decision d = {};
	struct sg_pkt pkt = {};
	/* Once per packet, before anything can touch the context. */
	const long requested = sg_requested_xdp(ctx);

	sg_xdp_parse(ctx, &pkt);
	sg_xdp_decide(&pkt, &d, requested);
	if (unlikely(requested))
		sg_report_xdp(ctx, &d);
	return d.action == SG_ACTION_ACCEPT ? XDP_PASS : XDP_DROP;
}
