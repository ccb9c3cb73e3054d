/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Traffic a VM needs to exist on the network, accepted before any rule and
 * before conntrack, in both directions whatever the rules say, and never
 * tracked (the same as secgroup_policy::implicit_allow):
 *  - ICMPv6 neighbour discovery (133-137) and MLD (130, 131, 132, 143);
 *  - the DHCPv4 client (egress udp 68 -> 67, ingress udp 67 -> 68);
 *  - the DHCPv6 client (egress udp 546 -> 547, ingress udp 547 -> 546).
 */
#ifndef SG_IMPLICIT_H
#define SG_IMPLICIT_H

#include "common.h"
#include "parse.h"

static __always_inline bool sg_implicit_allowed(const struct sg_pkt *pkt, const __u8 dir)
{
	const struct sg_tuple *t = &pkt->t;
	__be16 client, server;

	/* A later fragment has no ports: it goes through frag.h instead. */
	if (pkt->frag == SG_FRAG_LATER)
		return false;

	if (t->proto == IPPROTO_ICMPV6 && t->family == SG_AF_INET6) {
		__u8 type = pkt->icmp_type;

		return (type >= SG_ICMP6_MLD_QUERY && type <= SG_ICMP6_NDP_REDIRECT) ||
		       type == SG_ICMP6_MLD2_REPORT;
	}
	if (t->proto != IPPROTO_UDP)
		return false;

	/* The VM is the client: its port is the source when it sends. */
	client = dir == SG_DIR_EGRESS ? t->sport : t->dport;
	server = dir == SG_DIR_EGRESS ? t->dport : t->sport;
	if (t->family == SG_AF_INET)
		return client == bpf_htons(SG_DHCP4_CLIENT) && server == bpf_htons(SG_DHCP4_SERVER);
	return client == bpf_htons(SG_DHCP6_CLIENT) && server == bpf_htons(SG_DHCP6_SERVER);
}

#endif /* SG_IMPLICIT_H */
