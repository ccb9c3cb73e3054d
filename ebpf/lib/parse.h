/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing into struct sg_pkt: Ethernet with at most one VLAN tag,
 * IPv4 or IPv6 (bounded extension header walk), then TCP, UDP, ICMP or
 * ICMPv6; for ICMP errors also the quoted packet's addresses and ports.
 *
 * Status precedence: the first problem met wins, in header order. A header
 * that does not fit inside its layer's declared length is MALFORMED; a
 * quoted (inner) packet that is short or odd is not: the error is then just
 * not related to any flow and the rules decide.
 */
#ifndef SG_PARSE_H
#define SG_PARSE_H

#include "common.h"
#include "ctx.h"
#include "proto.h"

enum sg_frag_kind {
	SG_FRAG_NONE = 0,  /* not fragmented, or an IPv6 atomic fragment */
	SG_FRAG_FIRST,     /* offset 0, more fragments: has the L4 header */
	SG_FRAG_LATER,     /* offset > 0: no L4 header, ports unknown */
};

enum sg_icmp_kind {
	SG_ICMP_NONE = 0,     /* not ICMP, or another ICMP type */
	SG_ICMP_ECHO_REQUEST,
	SG_ICMP_ECHO_REPLY,
	SG_ICMP_ERROR,        /* quotes a packet: see sg_pkt.inner */
};

union sg_addr {
	__u8 b[16];
	__u32 w[4];
	__u64 d[2];
};

/*
 * Addresses and ports as on the wire. IPv4 addresses fill w[0], the rest
 * stays zero (the layout sg_ct_key wants). Ports are in network order; for
 * ICMP echo both are the echo id; for other protocols both are 0.
 */
struct sg_tuple {
	union sg_addr src;
	union sg_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 family;   /* SG_AF_INET, SG_AF_INET6, or 0 when absent */
	__u8 proto;
	__u8 pad[2];
};

/* sg_pkt.psec_flags: which of the facts port security reads were found. */
#define SG_PKT_ETH       (1u << 0) /* Ethernet header read: src_mac, l2_proto */
#define SG_PKT_ARP       (1u << 1) /* an Ethernet/IPv4 ARP packet: arp_sha, arp_spa */
#define SG_PKT_ND_TARGET (1u << 2) /* ICMPv6 NS/NA long enough for nd_target */

/*
 * A parsed packet, plus what the hook knows about it: the one thing the
 * per-hook parse subprograms hand to the policy (pipeline.h).
 */
struct sg_pkt {
	__u32 ifindex;          /* interface the hook runs on: the zone */
	__u32 len;              /* bytes of the whole packet */
	__s32 status;           /* enum sg_parse_status; the rest is valid
				 * only with SG_PARSE_OK */
	struct sg_tuple t;
	struct sg_tuple inner;  /* ICMP error: the quoted packet, if usable */
	__u32 frag_id;          /* host order; valid unless frag == NONE */
	__u16 frag_off;         /* in 8-byte units; valid for SG_FRAG_LATER */
	__u8 frag;              /* enum sg_frag_kind */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_kind;         /* enum sg_icmp_kind */
	/* What every fragment of the datagram names as its protocol: the IPv4
	 * protocol, or the IPv6 fragment header's next header (not t.proto,
	 * which for a first fragment may lie behind more extension headers). */
	__u8 frag_proto;
	__u8 icmp_code;         /* with icmp_type: for events */
	/* Parsing internals, carried between the two parse stages. */
	__u32 l4_off;           /* where the transport header starts */
	__u32 l4_end;           /* where the IP payload ends */
	__u32 need;             /* after SG_PARSE_PULL: bytes needed linear */
	/* What port security judges (portsec.h, XDP only), read whatever the
	 * status: a spoofed frame is named as such even when its headers are
	 * also malformed. */
	__u8 src_mac[6];
	/* The ethertype after at most one 802.1Q tag. Port security counts
	 * 802.1Q tags only: an outer 802.1ad tag stays 0x88a8 here (an
	 * ethertype it refuses) although the parser walks it. */
	__be16 l2_proto;
	__u8 vlan_tags;         /* 802.1Q tags: 0, 1, or 2 for two or more */
	__u8 psec_flags;        /* SG_PKT_* */
	__u8 arp_sha[6];        /* ARP sender MAC */
	__be32 arp_spa;         /* ARP sender IPv4 address */
	__u32 pad2;
	union sg_addr nd_target; /* neighbour solicitation/advertisement target */
};

static __always_inline bool sg_icmp_is_echo(__u8 family, __u8 type)
{
	if (family == SG_AF_INET)
		return type == SG_ICMP_ECHO || type == SG_ICMP_ECHOREPLY;
	return type == SG_ICMP6_ECHO_REQUEST || type == SG_ICMP6_ECHO_REPLY;
}

static __always_inline void sg_tuple_ports(struct sg_tuple *t, const void *l4)
{
	const __be16 *ports = l4;

	t->sport = ports[0];
	t->dport = ports[1];
}

/*
 * The first bytes of the quoted transport header: ports for TCP/UDP (the
 * first 4 bytes, always within the 8 that ICMP errors must quote), the id
 * for an echo request/reply. Other quoted protocols need no bytes.
 * Returns SG_PARSE_PULL, or OK with inner->family left 0 when unusable.
 */
static __always_inline int sg_parse_inner_l4(struct sg_ctx *c, struct sg_tuple *inner, __u32 off,
					     __u32 end, __u8 family)
{
	int st = SG_PARSE_OK;
	const struct sg_icmp_hdr *ih;
	const void *l4;

	switch (inner->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		l4 = sg_hdr(c, off, 4, end, &st);
		if (!l4)
			return st == SG_PARSE_PULL ? st : SG_PARSE_OK;
		sg_tuple_ports(inner, l4);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (inner->proto != (family == SG_AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6))
			break;
		ih = sg_hdr(c, off, sizeof(*ih), end, &st);
		if (!ih)
			return st == SG_PARSE_PULL ? st : SG_PARSE_OK;
		/* Only echo is tracked; a quoted error relates to no flow. */
		if (!sg_icmp_is_echo(family, ih->type))
			return SG_PARSE_OK;
		inner->sport = ih->id;
		inner->dport = ih->id;
		break;
	}
	inner->family = family;
	return SG_PARSE_OK;
}

static __always_inline int sg_parse_inner_ipv4(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off,
					       __u32 end)
{
	int st = SG_PARSE_OK;
	const struct iphdr *ip;
	struct sg_tuple *in = &pkt->inner;

	ip = sg_hdr(c, off, sizeof(*ip), end, &st);
	if (!ip)
		return st == SG_PARSE_PULL ? st : SG_PARSE_OK;
	if (ip->version != 4 || ip->ihl < 5)
		return SG_PARSE_OK;
	/* A quoted later fragment has no ports to match a flow with. */
	if (ip->frag_off & bpf_htons(SG_IP_OFFSET))
		return SG_PARSE_OK;
	in->src.w[0] = ip->saddr;
	in->dst.w[0] = ip->daddr;
	in->proto = ip->protocol;
	return sg_parse_inner_l4(c, in, off + ip->ihl * 4, end, SG_AF_INET);
}

/* Quoted extension headers are not walked: such an error relates to no flow. */
static __always_inline int sg_parse_inner_ipv6(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off,
					       __u32 end)
{
	int st = SG_PARSE_OK;
	const struct ipv6hdr *ip6;
	struct sg_tuple *in = &pkt->inner;

	ip6 = sg_hdr(c, off, sizeof(*ip6), end, &st);
	if (!ip6)
		return st == SG_PARSE_PULL ? st : SG_PARSE_OK;
	if (ip6->version != 6 || sg_ipv6_is_ext(ip6->nexthdr))
		return SG_PARSE_OK;
	__builtin_memcpy(&in->src, &ip6->saddr, sizeof(in->src));
	__builtin_memcpy(&in->dst, &ip6->daddr, sizeof(in->dst));
	in->proto = ip6->nexthdr;
	return sg_parse_inner_l4(c, in, off + sizeof(*ip6), end, SG_AF_INET6);
}

static __always_inline int sg_parse_icmp4(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off,
					  __u32 end)
{
	int st = SG_PARSE_OK;
	const struct sg_icmp_hdr *ih;

	ih = sg_hdr(c, off, sizeof(*ih), end, &st);
	if (!ih)
		return st;
	pkt->icmp_type = ih->type;
	pkt->icmp_code = ih->code;
	switch (ih->type) {
	case SG_ICMP_ECHO:
	case SG_ICMP_ECHOREPLY:
		pkt->icmp_kind = ih->type == SG_ICMP_ECHO ? SG_ICMP_ECHO_REQUEST : SG_ICMP_ECHO_REPLY;
		pkt->t.sport = ih->id;
		pkt->t.dport = ih->id;
		return SG_PARSE_OK;
	case SG_ICMP_DEST_UNREACH:
	case SG_ICMP_SOURCE_QUENCH:
	case SG_ICMP_REDIRECT:
	case SG_ICMP_TIME_EXCEEDED:
	case SG_ICMP_PARAMETERPROB:
		pkt->icmp_kind = SG_ICMP_ERROR;
		return sg_parse_inner_ipv4(c, pkt, off + sizeof(*ih), end);
	}
	return SG_PARSE_OK;
}

static __always_inline int sg_parse_icmp6(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off,
					  __u32 end)
{
	int st = SG_PARSE_OK;
	const struct sg_icmp_hdr *ih;
	const void *target;

	ih = sg_hdr(c, off, sizeof(*ih), end, &st);
	if (!ih)
		return st;
	pkt->icmp_type = ih->type;
	pkt->icmp_code = ih->code;
	switch (ih->type) {
	case SG_ICMP6_ECHO_REQUEST:
	case SG_ICMP6_ECHO_REPLY:
		pkt->icmp_kind = ih->type == SG_ICMP6_ECHO_REQUEST ? SG_ICMP_ECHO_REQUEST :
								     SG_ICMP_ECHO_REPLY;
		pkt->t.sport = ih->id;
		pkt->t.dport = ih->id;
		return SG_PARSE_OK;
	case SG_ICMP6_NEIGH_SOLICIT:
	case SG_ICMP6_NEIGH_ADVERT:
		/* For port security. A message too short for its target is
		 * not malformed to the parser: port security refuses such an
		 * advertisement by itself, and a solicitation needs none. */
		target = sg_hdr(c, off + SG_ND_TARGET_OFF, sizeof(pkt->nd_target), end, &st);
		if (target) {
			__builtin_memcpy(&pkt->nd_target, target, sizeof(pkt->nd_target));
			pkt->psec_flags |= SG_PKT_ND_TARGET;
		}
		return SG_PARSE_OK;
	case SG_ICMP6_DEST_UNREACH:
	case SG_ICMP6_PKT_TOOBIG:
	case SG_ICMP6_TIME_EXCEED:
	case SG_ICMP6_PARAMPROB:
		pkt->icmp_kind = SG_ICMP_ERROR;
		return sg_parse_inner_ipv6(c, pkt, off + sizeof(*ih), end);
	}
	return SG_PARSE_OK;
}

/*
 * Stage 2: the transport header at pkt->l4_off; pkt->l4_end is the end of
 * the IP payload. Returns a final enum sg_parse_status.
 */
static __always_inline int sg_parse_l4(struct sg_ctx *c, struct sg_pkt *pkt)
{
	int st = SG_PARSE_OK;
	const struct tcphdr *th;
	const struct udphdr *uh;
	__u32 off = pkt->l4_off;
	__u32 end = pkt->l4_end;
	__u32 doff;

	/*
	 * Stage 1 guarantees this; stage 2 gets the offset through memory, so
	 * the verifier must be told again. Bounding it here keeps every sum
	 * below 2^32, where 32-bit zero extension preserves the bounds.
	 */
	if (off > SG_HDR_OFF_MAX)
		return SG_PARSE_UNSUPPORTED;

	switch (pkt->t.proto) {
	case IPPROTO_TCP:
		th = sg_hdr(c, off, sizeof(*th), end, &st);
		if (!th)
			return st;
		/* Options must fit too: the header is what rules look at. */
		doff = th->doff * 4;
		if (doff < sizeof(*th) || off + doff > end)
			return SG_PARSE_MALFORMED;
		sg_tuple_ports(&pkt->t, th);
		pkt->tcp_flags = ((const __u8 *)th)[13];
		return SG_PARSE_OK;
	case IPPROTO_UDP:
		uh = sg_hdr(c, off, sizeof(*uh), end, &st);
		if (!uh)
			return st;
		sg_tuple_ports(&pkt->t, uh);
		return SG_PARSE_OK;
	case IPPROTO_ICMP:
		/* ICMP is only ICMP inside IPv4; elsewhere just a protocol. */
		if (pkt->t.family == SG_AF_INET)
			return sg_parse_icmp4(c, pkt, off, end);
		return SG_PARSE_OK;
	case IPPROTO_ICMPV6:
		if (pkt->t.family == SG_AF_INET6)
			return sg_parse_icmp6(c, pkt, off, end);
		return SG_PARSE_OK;
	}
	/* GRE and everything else: matched by protocol only. */
	return SG_PARSE_OK;
}

static __always_inline int sg_parse_ipv4(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off)
{
	int st = SG_PARSE_OK;
	const struct iphdr *ip;
	__u32 ihl, tot, frag;

	ip = sg_hdr(c, off, sizeof(*ip), c->len, &st);
	if (!ip)
		return st;
	if (ip->version != 4)
		return SG_PARSE_MALFORMED;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return SG_PARSE_MALFORMED;
	tot = bpf_ntohs(ip->tot_len);
	if (tot == 0 && c->gso)
		tot = c->len - off;
	/* Shorter than the frame is fine (Ethernet padding), longer is not. */
	if (tot < ihl || tot > c->len - off)
		return SG_PARSE_MALFORMED;

	pkt->t.family = SG_AF_INET;
	pkt->t.proto = ip->protocol;
	pkt->t.src.w[0] = ip->saddr;
	pkt->t.dst.w[0] = ip->daddr;

	frag = bpf_ntohs(ip->frag_off);
	if (frag & (SG_IP_OFFSET | SG_IP_MF)) {
		pkt->frag_id = bpf_ntohs(ip->id);
		pkt->frag_proto = ip->protocol;
	}
	if (frag & SG_IP_OFFSET) {
		pkt->frag = SG_FRAG_LATER;
		pkt->frag_off = frag & SG_IP_OFFSET;
		return SG_PARSE_OK;
	}
	if (frag & SG_IP_MF)
		pkt->frag = SG_FRAG_FIRST;
	pkt->l4_off = off + ihl;
	pkt->l4_end = off + tot;
	return SG_PARSE_L4;
}

static __always_inline int sg_parse_ipv6(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off)
{
	int st = SG_PARSE_OK;
	const struct ipv6hdr *ip6;
	const struct sg_frag_hdr *fh;
	const struct sg_ext_hdr *eh;
	bool seen_frag = false;
	__u32 end, fo;
	__u8 nexthdr;
	int i;

	ip6 = sg_hdr(c, off, sizeof(*ip6), c->len, &st);
	if (!ip6)
		return st;
	if (ip6->version != 6)
		return SG_PARSE_MALFORMED;
	end = off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (end == off + sizeof(*ip6) && c->gso)
		end = c->len;
	if (end > c->len)
		return SG_PARSE_MALFORMED;

	pkt->t.family = SG_AF_INET6;
	__builtin_memcpy(&pkt->t.src, &ip6->saddr, sizeof(pkt->t.src));
	__builtin_memcpy(&pkt->t.dst, &ip6->daddr, sizeof(pkt->t.dst));
	nexthdr = ip6->nexthdr;
	off += sizeof(*ip6);

	/*
	 * Bounded walk: each iteration consumes one extension header. A chain
	 * longer than SG_IPV6_MAX_EXT is refused rather than half-inspected.
	 */
	for (i = 0; i < SG_IPV6_MAX_EXT; i++) {
		if (!sg_ipv6_is_ext(nexthdr))
			break;
		if (nexthdr == IPPROTO_FRAGMENT) {
			fh = sg_hdr(c, off, sizeof(*fh), end, &st);
			if (!fh)
				return st;
			if (seen_frag)
				return SG_PARSE_MALFORMED;
			seen_frag = true;
			fo = bpf_ntohs(fh->frag_off);
			nexthdr = fh->nexthdr;
			off += sizeof(*fh);
			/* Offset 0 without M: an atomic fragment, a whole packet. */
			if (!(fo & (SG_IP6_OFFSET_MASK | SG_IP6_MF)))
				continue;
			pkt->frag_id = bpf_ntohl(fh->id);
			pkt->frag_proto = nexthdr;
			if (fo & SG_IP6_OFFSET_MASK) {
				/* The rest is payload: no more headers to see. */
				pkt->frag = SG_FRAG_LATER;
				pkt->frag_off = fo >> 3;
				pkt->t.proto = nexthdr;
				return SG_PARSE_OK;
			}
			pkt->frag = SG_FRAG_FIRST;
			continue;
		}
		eh = sg_hdr(c, off, sizeof(*eh), end, &st);
		if (!eh)
			return st;
		/* AH counts 4-byte units minus 2, the others 8-byte units minus 1. */
		if (nexthdr == IPPROTO_AH)
			off += (eh->hdrlen + 2) * 4;
		else
			off += (eh->hdrlen + 1) * 8;
		nexthdr = eh->nexthdr;
	}
	if (sg_ipv6_is_ext(nexthdr))
		return SG_PARSE_UNSUPPORTED;
	pkt->t.proto = nexthdr;
	pkt->l4_off = off;
	pkt->l4_end = end;
	return SG_PARSE_L4;
}

/*
 * The sender of an ARP packet, for port security; the status is never
 * affected (ARP passes as non-IP). One too short, or not Ethernet/IPv4, is
 * left without SG_PKT_ARP, which port security refuses.
 */
static __always_inline void sg_parse_arp(struct sg_ctx *c, struct sg_pkt *pkt, __u32 off)
{
	int st = SG_PARSE_OK;
	const struct sg_arp_hdr *arp;

	arp = sg_hdr(c, off, sizeof(*arp), c->len, &st);
	if (!arp)
		return;
	if (arp->htype != bpf_htons(SG_ARP_HTYPE_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4)
		return;
	__builtin_memcpy(pkt->arp_sha, arp->sha, sizeof(pkt->arp_sha));
	__builtin_memcpy(&pkt->arp_spa, arp->spa, sizeof(pkt->arp_spa));
	pkt->psec_flags |= SG_PKT_ARP;
}

/*
 * The common case in one pass, before (instead of) the two stages below:
 * Ethernet without a tag, IPv4 without options and not a fragment, TCP or
 * UDP, every header inside the IP total length and in the linear data.
 * @len is the whole packet's length (linear or not), as sg_ctx.len.
 * Fills @pkt, which the caller has zeroed, with exactly what
 * sg_parse_l3() and sg_parse_l4() would write for such a packet (the
 * caller sets ifindex, len and status SG_PARSE_OK), and returns true.
 * Anything else, valid or not, returns false with @pkt untouched, and the
 * full parse decides: this never judges a packet itself, it only saves
 * the common one two subprogram calls and the general code's branches.
 */
static __always_inline bool sg_parse_fast(void *data, void *data_end, __u32 len,
					  struct sg_pkt *pkt)
{
	const struct ethhdr *eth = data;
	const struct iphdr *ip = (const void *)(eth + 1);
	const __u8 *l4 = (const void *)(ip + 1);
	__u32 tot;
	__u8 proto, tcp_flags = 0;

	_Static_assert(sizeof(struct udphdr) == 8 && sizeof(struct tcphdr) == 20,
		       "UDP and TCP headers without options");
	if ((void *)(l4 + sizeof(struct udphdr)) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return false;
	/* Version 4, IHL 5: no options. */
	if (*(const __u8 *)ip != 0x45 || (ip->frag_off & bpf_htons(SG_IP_OFFSET | SG_IP_MF)))
		return false;
	/* As sg_parse_ipv4(): longer than the frame is malformed (the full
	 * parse says so), and a GSO packet's 0 is left to it too. */
	tot = bpf_ntohs(ip->tot_len);
	if (tot > len - sizeof(*eth))
		return false;
	proto = ip->protocol;
	if (proto == IPPROTO_UDP) {
		if (tot < sizeof(*ip) + sizeof(struct udphdr))
			return false;
	} else if (proto == IPPROTO_TCP) {
		/* The header and its options inside the datagram. */
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end ||
		    tot < sizeof(*ip) + sizeof(struct tcphdr) ||
		    ((const struct tcphdr *)l4)->doff < 5 ||
		    sizeof(*ip) + ((const struct tcphdr *)l4)->doff * 4 > tot)
			return false;
		tcp_flags = l4[13];
	} else {
		return false;
	}
	__builtin_memcpy(pkt->src_mac, eth->h_source, sizeof(pkt->src_mac));
	pkt->psec_flags = SG_PKT_ETH;
	pkt->l2_proto = eth->h_proto;
	pkt->t.family = SG_AF_INET;
	pkt->t.proto = proto;
	pkt->t.src.w[0] = ip->saddr;
	pkt->t.dst.w[0] = ip->daddr;
	sg_tuple_ports(&pkt->t, l4);
	pkt->tcp_flags = tcp_flags;
	pkt->l4_off = sizeof(*eth) + sizeof(*ip);
	pkt->l4_end = sizeof(*eth) + tot;
	return true;
}

/*
 * Parsing runs in two stages so the verifier sees the transport parse once
 * rather than once per network-layer path (each IPv6 extension chain length
 * is its own path): each hook wraps each stage in a global subprogram.
 *
 * Stage 1 parses Ethernet, VLAN and IP into @pkt, which the caller has
 * zeroed (fields a path does not set must read 0). It returns
 * SG_PARSE_L4 when the transport header at pkt->l4_off is to be parsed by
 * sg_parse_l4(), or a final enum sg_parse_status. The caller fills
 * ifindex, len and status.
 */
static __always_inline int sg_parse_l3(struct sg_ctx *c, struct sg_pkt *pkt)
{
	int st = SG_PARSE_OK;
	const struct ethhdr *eth;
	const struct sg_vlan_hdr *vlan;
	__u32 off = sizeof(*eth);
	__be16 proto;

	eth = sg_hdr(c, 0, sizeof(*eth), c->len, &st);
	if (!eth)
		return st;
	__builtin_memcpy(pkt->src_mac, eth->h_source, sizeof(pkt->src_mac));
	pkt->psec_flags = SG_PKT_ETH;
	proto = eth->h_proto;
	pkt->l2_proto = proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		vlan = sg_hdr(c, off, sizeof(*vlan), c->len, &st);
		if (!vlan)
			return st;
		if (proto == bpf_htons(ETH_P_8021Q)) {
			pkt->l2_proto = vlan->encap_proto;
			pkt->vlan_tags = vlan->encap_proto == bpf_htons(ETH_P_8021Q) ? 2 : 1;
		}
		proto = vlan->encap_proto;
		off += sizeof(*vlan);
		/* A second tag would hide IP from us: refuse, don't pass. */
		if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
			return SG_PARSE_UNSUPPORTED;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return sg_parse_ipv4(c, pkt, off);
	if (proto == bpf_htons(ETH_P_IPV6))
		return sg_parse_ipv6(c, pkt, off);
	if (proto == bpf_htons(ETH_P_ARP))
		sg_parse_arp(c, pkt, off);
	return SG_PARSE_NON_IP;
}

#endif /* SG_PARSE_H */
