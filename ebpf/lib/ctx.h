/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One view of a packet for both hooks, so parsing and policy are written
 * once: XDP and TC differ only in how the view is filled and in how a
 * verdict is reported (decision.h).
 *
 * Bounds: every header is reached through sg_hdr(), which checks it both
 * against the logical end of its layer (IP total length: a header past it
 * is truncated, hence malformed) and against data_end (what is readable).
 * In TC the readable (linear) part can be shorter than the packet; then
 * sg_hdr() reports SG_PARSE_PULL and the TC program pulls and parses again
 * (tc_ingress.c). XDP programs without the frags flag only ever see linear
 * frames, so there the two ends coincide and SG_PARSE_PULL cannot happen.
 */
#ifndef SG_CTX_H
#define SG_CTX_H

#include "common.h"

/*
 * Header offsets beyond this are refused: the verifier only tracks packet
 * ranges for pointers whose offset stays below 64 KiB (MAX_PACKET_OFF), so
 * the bound must be explicit. No legitimate header chain comes close.
 */
#define SG_HDR_OFF_MAX 0x3fff

enum sg_parse_status {
	SG_PARSE_OK = 0,
	SG_PARSE_NON_IP,      /* not IPv4/IPv6: passed unfiltered */
	SG_PARSE_MALFORMED,   /* truncated or inconsistent headers */
	SG_PARSE_UNSUPPORTED, /* valid but beyond what is parsed */
	SG_PARSE_PULL,        /* TC: a header lies outside the linear data */
	SG_PARSE_L4,          /* internal: network layer done, transport next */
};

struct sg_ctx {
	void *data;
	void *data_end;   /* end of the directly readable bytes */
	__u32 len;        /* bytes of the whole packet, linear or not */
	__u32 ifindex;
	__u32 need;       /* after SG_PARSE_PULL: bytes that must be linear */
	bool gso;         /* TC GSO packet: IP length fields may be 0 */
};

static __always_inline void sg_ctx_xdp(struct sg_ctx *c, const struct xdp_md *xdp)
{
	c->data = (void *)(long)xdp->data;
	c->data_end = (void *)(long)xdp->data_end;
	c->len = c->data_end - c->data;
	c->ifindex = xdp->ingress_ifindex;
	c->need = 0;
	c->gso = false;
}

/* Called again after bpf_skb_pull_data(): that invalidates data/data_end. */
static __always_inline void sg_ctx_tc(struct sg_ctx *c, const struct __sk_buff *skb)
{
	c->data = (void *)(long)skb->data;
	c->data_end = (void *)(long)skb->data_end;
	c->len = skb->len;
	c->ifindex = skb->ifindex;
	c->need = 0;
	/* BIG TCP super-packets carry 0 in tot_len / payload_len. */
	c->gso = skb->gso_size != 0;
}

/*
 * A pointer to @size readable bytes at offset @off, or NULL with *st set.
 * @end is the logical end of the enclosing layer (never beyond c->len).
 * @size must be a constant at every call site: the verifier then learns
 * that [p, p + size) is readable from the single data_end comparison.
 */
static __always_inline void *sg_hdr(struct sg_ctx *c, __u32 off, __u32 size, __u32 end, int *st)
{
	void *p;

	if (off + size > end) {
		*st = SG_PARSE_MALFORMED;
		return NULL;
	}
	if (off > SG_HDR_OFF_MAX) {
		*st = SG_PARSE_UNSUPPORTED;
		return NULL;
	}
	p = c->data + off;
	if (p + size > c->data_end) {
		/* In the packet (off + size <= end <= len) but not linear. */
		c->need = off + size;
		*st = SG_PARSE_PULL;
		return NULL;
	}
	return p;
}

#endif /* SG_CTX_H */
