/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TC (attached with TCX) on the egress of a VM's tap: sees every packet
 * the host sends to the VM and enforces the VM's INGRESS rules.
 */
#include "lib/common.h"
#include "lib/ctx.h"
#include "lib/parse.h"
#include "lib/pipeline.h"
#include "lib/decision.h"

/*
 * Bytes pulled past the first header found outside the linear data, so
 * that one pull also covers the headers after it (IP options, the quoted
 * packet of an ICMP error, a few IPv6 extension headers).
 */
#define SG_TC_PULL_SLACK 256

/* Stage 2 of parsing (see sg_parse_l3() in parse.h). */
SG_SUBPROG int sg_tc_parse_l4(struct __sk_buff *skb, struct sg_pkt *pkt)
{
	struct sg_ctx c;
	int st;

	if (!pkt)
		return SG_PARSE_MALFORMED;
	sg_ctx_tc(&c, skb);
	st = sg_parse_l4(&c, pkt);
	if (st == SG_PARSE_PULL)
		pkt->need = c.need;
	return st;
}

/* Both stages over what is linear now; @pkt must be zeroed. */
SG_SUBPROG int sg_tc_parse_once(struct __sk_buff *skb, struct sg_pkt *pkt)
{
	struct sg_ctx c;
	int st;

	if (!pkt)
		return SG_PARSE_MALFORMED;
	sg_ctx_tc(&c, skb);
	st = sg_parse_l3(&c, pkt);
	if (st == SG_PARSE_PULL)
		pkt->need = c.need;
	if (st == SG_PARSE_L4)
		st = sg_tc_parse_l4(skb, pkt);
	return st;
}

/*
 * Forwarded packets often hold only the first headers in the linear area
 * (the rest sits in page fragments). Parse what is linear; only if a needed
 * header lies beyond it, pull once and parse again. Pulling costs a copy
 * (and unclones a cloned skb), so it is not done up front for every
 * packet. Headers still out of reach after the pull are refused
 * (UNSUPPORTED), never half-parsed.
 */
SG_SUBPROG int sg_tc_parse(struct __sk_buff *skb, struct sg_pkt *pkt)
{
	__u32 want, len;
	int st;

	if (!pkt)
		return 0;
	/* The common packet, when linear, in one pass (parse.h). */
	if (sg_parse_fast((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, pkt)) {
		st = SG_PARSE_OK;
		goto done;
	}
	st = sg_tc_parse_once(skb, pkt);
	if (unlikely(st == SG_PARSE_PULL)) {
		len = skb->len;
		want = pkt->need + SG_TC_PULL_SLACK;
		if (want > len)
			want = len;
		st = SG_PARSE_UNSUPPORTED;
		if (!bpf_skb_pull_data(skb, want)) {
			__builtin_memset(pkt, 0, sizeof(*pkt));
			st = sg_tc_parse_once(skb, pkt);
			if (st == SG_PARSE_PULL)
				st = SG_PARSE_UNSUPPORTED;
		}
	}
done:
	pkt->status = st;
	pkt->ifindex = skb->ifindex;
	pkt->len = skb->len;
	return 0;
}

/* @requested: a test run that asked for the report, which counts nowhere. */
SG_SUBPROG int sg_tc_decide(const struct sg_pkt *pkt, struct sg_decision *d, long requested)
{
	if (!pkt || !d)
		return 0;
	sg_decide(pkt, SG_DIR_INGRESS, d, requested);
	return 0;
}

SEC("classifier")
int sg_tc_ingress(struct __sk_buff *skb)
{
	/* Zeroed: parsing relies on it, and the verifier wants initialised
	 * stack behind pointers handed to global subprograms. */
	struct sg_decision d = {};
	struct sg_pkt pkt = {};
	/* Once per packet, before anything can touch the context. */
	const long requested = sg_requested_tc(skb);

	sg_tc_parse(skb, &pkt);
	sg_tc_decide(&pkt, &d, requested);
	if (unlikely(requested))
		sg_report_tc(skb, &d);
	return d.action == SG_ACTION_ACCEPT ? SG_TCX_NEXT : SG_TCX_DROP;
}
