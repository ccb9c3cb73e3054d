/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Wire formats the UAPI headers do not offer without libc (VLAN tag, ICMP,
 * IPv6 extension and fragment headers) and the protocol numbers used.
 */
#ifndef SG_PROTO_H
#define SG_PROTO_H

#include "common.h"
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct sg_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* First 8 bytes of ICMP and ICMPv6: the echo fields, or unused/MTU/pointer. */
struct sg_icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};

/* Hop-by-hop, routing, destination options, AH: the common first bytes. */
struct sg_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* An Ethernet/IPv4 ARP packet (RFC 826): the only kind port security
 * lets a VM send. */
struct sg_arp_hdr {
	__be16 htype;      /* 1: Ethernet */
	__be16 ptype;      /* 0x0800: IPv4 */
	__u8 hlen;         /* 6 */
	__u8 plen;         /* 4 */
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

#define SG_ARP_HTYPE_ETHER 1

struct sg_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;   /* offset in 8-byte units << 3 | M flag */
	__be32 id;
};

#define SG_IP_MF     0x2000
#define SG_IP_OFFSET 0x1fff
#define SG_IP6_MF    0x0001
#define SG_IP6_OFFSET_MASK 0xfff8

/* TCP flags byte (offset 13). */
#define SG_TCP_FIN 0x01
#define SG_TCP_SYN 0x02
#define SG_TCP_RST 0x04
#define SG_TCP_ACK 0x10

/* ICMP types. */
#define SG_ICMP_ECHOREPLY    0
#define SG_ICMP_DEST_UNREACH 3
#define SG_ICMP_SOURCE_QUENCH 4
#define SG_ICMP_REDIRECT     5
#define SG_ICMP_ECHO         8
#define SG_ICMP_TIME_EXCEEDED 11
#define SG_ICMP_PARAMETERPROB 12

/* ICMPv6 types. */
#define SG_ICMP6_DEST_UNREACH  1
#define SG_ICMP6_PKT_TOOBIG    2
#define SG_ICMP6_TIME_EXCEED   3
#define SG_ICMP6_PARAMPROB     4
#define SG_ICMP6_ECHO_REQUEST  128
#define SG_ICMP6_ECHO_REPLY    129
#define SG_ICMP6_MLD_QUERY     130
#define SG_ICMP6_MLD_REPORT    131
#define SG_ICMP6_MLD_DONE      132
#define SG_ICMP6_ROUTER_SOLICIT 133
#define SG_ICMP6_ROUTER_ADVERT 134
#define SG_ICMP6_NEIGH_SOLICIT 135
#define SG_ICMP6_NEIGH_ADVERT  136
#define SG_ICMP6_NDP_REDIRECT  137
#define SG_ICMP6_MLD2_REPORT   143

/* Neighbour solicitations and advertisements: the target after the 4
 * reserved/flag bytes that follow the ICMPv6 header's first 4. */
#define SG_ND_TARGET_OFF 8

/* DHCP client/server ports. */
#define SG_DHCP4_SERVER 67
#define SG_DHCP4_CLIENT 68
#define SG_DHCP6_CLIENT 546
#define SG_DHCP6_SERVER 547

/* At most this many IPv6 extension headers are walked (see parse.h). */
#ifndef SG_IPV6_MAX_EXT
#define SG_IPV6_MAX_EXT 6
#endif

static __always_inline bool sg_ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT ||
	       nexthdr == IPPROTO_AH;
}

#endif /* SG_PROTO_H */
