/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Port security: what a VM may send at all, judged in XDP on the frame
 * before implicit allows, conntrack and its egress rules see it, for an
 * interface whose sg_iface carries SG_IFACE_F_PORT_SECURITY. The same as
 * secgroup_policy::PortSecurity::check, the specification; checked in its
 * order, the first failure names the reason:
 *
 *   1. source MAC      the instance's (sg_iface.mac) or a pair's
 *                      (sg_psec_macs); any without SG_IFACE_F_HAS_MAC
 *   2. ethertype       at most one 802.1Q tag, then IPv4, IPv6 or ARP
 *   3. ARP             Ethernet/IPv4, sender an allowed source for the
 *                      sender MAC, or 0.0.0.0 from an allowed MAC
 *   4. source IP       allowed for the frame's MAC; 0.0.0.0 only for a
 *                      DHCPv4 client (udp 68 -> 67), :: only for DAD (NS)
 *                      and MLD reports/dones (131, 132, 143)
 *   5. RA, redirect    ICMPv6 134 and 137: a VM is no router
 *   6. NA              ICMPv6 136 whose target is allowed for the MAC
 *   7. DHCP server     udp 67 -> 68 (IPv4), 547 -> 546 (IPv6)
 *
 * Before the implicit allows because they accept ICMPv6 130-137 whatever
 * the rules say: a VM's router advertisement must never get that far.
 *
 * What the parser could not read is not judged here: a frame too short for
 * Ethernet, an IP header too short or inconsistent to hold a source (no
 * t.family) pass on to the parser's own drop. A transport header that was
 * not read (a later fragment, a truncated one) leaves the packet judged on
 * its addresses alone, so the unspecified source is refused for it.
 *
 * Cost: the common frame (own MAC, own address) is a compare with the
 * address sg_iface carries (SG_IFACE_F_OWN_V4/V6), no lookup; another
 * allowed source is one LPM lookup; a pair's MAC adds one hash lookup; an
 * instance without a MAC looks up its any-MAC sources first.
 *
 * Every lookup uses the set id of the one sg_iface value the packet read:
 * a spec is replaced by pointing the interface at a complete new set (see
 * abi.h), so a packet is judged wholly by the old spec or wholly by the
 * new one.
 */
#ifndef SG_PORTSEC_H
#define SG_PORTSEC_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* sg_psec_check()'s "may be sent": no drop reason is 0. */
#define SG_PSEC_PASS 0

static __always_inline bool sg_mac_eq(const __u8 *a, const __u8 *b)
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) |
		 (a[4] ^ b[4]) | (a[5] ^ b[5]));
}

/* PortSecurity::allows_mac. */
static __always_inline bool sg_psec_mac_ok(const struct sg_iface *iface, const __u8 *mac)
{
	struct sg_psec_mac_key k = {};

	if (!(iface->flags & SG_IFACE_F_HAS_MAC) || sg_mac_eq(mac, iface->mac))
		return true;
	k.set = iface->psec_set;
	__builtin_memcpy(k.mac, mac, sizeof(k.mac));
	return bpf_map_lookup_elem(&sg_psec_macs, &k) != NULL;
}

/*
 * PortSecurity::allows_source for IPv4: some source of the set contains
 * @addr and is allowed from @mac or from any MAC. With the MAC in the key,
 * a hit is exactly that (abi.h, sg_psec_v4_key).
 */
/*
 * The instance's own address from its own MAC (or any MAC, without one):
 * a source the set allows (userspace picks it, abi.h SG_IFACE_F_OWN_V4),
 * so a compare stands in for the lookup. Every other frame is looked up.
 */
static __always_inline bool sg_psec_own_mac(const struct sg_iface *iface, const __u8 *mac)
{
	return !(iface->flags & SG_IFACE_F_HAS_MAC) || sg_mac_eq(mac, iface->mac);
}

static __always_inline bool sg_psec_v4_ok(const struct sg_iface *iface, __be32 addr,
					  const __u8 *mac)
{
	struct sg_psec_v4_key k = {};

	if ((iface->flags & SG_IFACE_F_OWN_V4) && addr == iface->own_v4 &&
	    sg_psec_own_mac(iface, mac))
		return true;
	k.prefixlen = SG_PSEC_KEY_BITS + 32;
	k.set = iface->psec_set;
	__builtin_memcpy(k.addr, &addr, sizeof(k.addr));
	if (iface->flags & SG_IFACE_F_PSEC_ANY_MAC) {
		k.any = SG_PSEC_ANY_MAC;
		if (bpf_map_lookup_elem(&sg_psec_v4, &k))
			return true;
		k.any = SG_PSEC_BOUND;
	}
	__builtin_memcpy(k.mac, mac, sizeof(k.mac));
	return bpf_map_lookup_elem(&sg_psec_v4, &k) != NULL;
}

static __always_inline bool sg_psec_v6_ok(const struct sg_iface *iface, const union sg_addr *addr,
					  const __u8 *mac)
{
	struct sg_psec_v6_key k = {};
	const __u32 *own = iface->own_v6;

	if ((iface->flags & SG_IFACE_F_OWN_V6) &&
	    ((own[0] ^ addr->w[0]) | (own[1] ^ addr->w[1]) | (own[2] ^ addr->w[2]) |
	     (own[3] ^ addr->w[3])) == 0 &&
	    sg_psec_own_mac(iface, mac))
		return true;
	k.prefixlen = SG_PSEC_KEY_BITS + 128;
	k.set = iface->psec_set;
	__builtin_memcpy(k.addr, addr, sizeof(k.addr));
	if (iface->flags & SG_IFACE_F_PSEC_ANY_MAC) {
		k.any = SG_PSEC_ANY_MAC;
		if (bpf_map_lookup_elem(&sg_psec_v6, &k))
			return true;
		k.any = SG_PSEC_BOUND;
	}
	__builtin_memcpy(k.mac, mac, sizeof(k.mac));
	return bpf_map_lookup_elem(&sg_psec_v6, &k) != NULL;
}

static __always_inline int sg_psec_arp(const struct sg_pkt *pkt, const struct sg_iface *iface)
{
	bool ok;

	if (!(pkt->psec_flags & SG_PKT_ARP))
		return SG_REASON_DROP_SPOOFED_ARP;
	/* A probe (RFC 5227) claims no address yet, only its MAC. */
	if (pkt->arp_spa == 0)
		ok = sg_psec_mac_ok(iface, pkt->arp_sha);
	else
		ok = sg_psec_v4_ok(iface, pkt->arp_spa, pkt->arp_sha);
	return ok ? SG_PSEC_PASS : SG_REASON_DROP_SPOOFED_ARP;
}

static __always_inline bool sg_psec_udp(const struct sg_pkt *pkt, __u16 sport, __u16 dport)
{
	/* A later fragment's ports are 0: never a DHCP port pair. */
	return pkt->t.proto == IPPROTO_UDP && pkt->t.sport == bpf_htons(sport) &&
	       pkt->t.dport == bpf_htons(dport);
}

static __always_inline int sg_psec_ipv4(const struct sg_pkt *pkt, const struct sg_iface *iface)
{
	__be32 src = pkt->t.src.w[0];

	/* DHCPDISCOVER and DHCPREQUEST before the lease: from 0.0.0.0. */
	if (!(src == 0 && sg_psec_udp(pkt, SG_DHCP4_CLIENT, SG_DHCP4_SERVER)) &&
	    !sg_psec_v4_ok(iface, src, pkt->src_mac))
		return SG_REASON_DROP_SPOOFED_IP;
	if (sg_psec_udp(pkt, SG_DHCP4_SERVER, SG_DHCP4_CLIENT))
		return SG_REASON_DROP_DHCP_SERVER;
	return SG_PSEC_PASS;
}

static __always_inline int sg_psec_ipv6(const struct sg_pkt *pkt, const struct sg_iface *iface)
{
	const union sg_addr *src = &pkt->t.src;
	__u8 type = 0;
	bool from_unspecified;

	/* icmp_type is 0 unless the ICMPv6 header was read (not for a later
	 * fragment), and 0 is no type looked at here. */
	if (pkt->t.proto == IPPROTO_ICMPV6)
		type = pkt->icmp_type;
	/* RFC 4862 DAD and RFC 3590 MLD before an address is usable. */
	from_unspecified = type == SG_ICMP6_NEIGH_SOLICIT || type == SG_ICMP6_MLD_REPORT ||
			   type == SG_ICMP6_MLD_DONE || type == SG_ICMP6_MLD2_REPORT;
	if (!(from_unspecified && (src->d[0] | src->d[1]) == 0) &&
	    !sg_psec_v6_ok(iface, src, pkt->src_mac))
		return SG_REASON_DROP_SPOOFED_IP;
	if (type == SG_ICMP6_ROUTER_ADVERT || type == SG_ICMP6_NDP_REDIRECT)
		return SG_REASON_DROP_ROUTER_ADVERT;
	if (type == SG_ICMP6_NEIGH_ADVERT) {
		if (!(pkt->psec_flags & SG_PKT_ND_TARGET) ||
		    !sg_psec_v6_ok(iface, &pkt->nd_target, pkt->src_mac))
			return SG_REASON_DROP_SPOOFED_ND;
		return SG_PSEC_PASS;
	}
	if (sg_psec_udp(pkt, SG_DHCP6_SERVER, SG_DHCP6_CLIENT))
		return SG_REASON_DROP_DHCP_SERVER;
	return SG_PSEC_PASS;
}

/*
 * SG_PSEC_PASS when the VM may send @pkt (the policy then decides), else
 * the enum sg_reason that drops it. @iface has SG_IFACE_F_PORT_SECURITY.
 */
static __always_inline int sg_psec_check(const struct sg_pkt *pkt, const struct sg_iface *iface)
{
	__be16 proto = pkt->l2_proto;

	if (!(pkt->psec_flags & SG_PKT_ETH))
		return SG_PSEC_PASS;
	if (!sg_psec_mac_ok(iface, pkt->src_mac))
		return SG_REASON_DROP_SPOOFED_MAC;
	if (pkt->vlan_tags > 1)
		return SG_REASON_DROP_ETHERTYPE;
	if (proto == bpf_htons(ETH_P_ARP))
		return sg_psec_arp(pkt, iface);
	if (proto == bpf_htons(ETH_P_IP))
		return pkt->t.family == SG_AF_INET ? sg_psec_ipv4(pkt, iface) : SG_PSEC_PASS;
	if (proto == bpf_htons(ETH_P_IPV6))
		return pkt->t.family == SG_AF_INET6 ? sg_psec_ipv6(pkt, iface) : SG_PSEC_PASS;
	return SG_REASON_DROP_ETHERTYPE;
}

#endif /* SG_PORTSEC_H */
