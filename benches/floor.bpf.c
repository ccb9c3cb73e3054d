// SPDX-License-Identifier: GPL-2.0
/*
 * The floors of the per-packet benchmark.
 *
 * floor_xdp / floor_tc do nothing but let the frame through.
 * BPF_PROG_TEST_RUN of these measures what the kernel spends around any
 * program (context setup, the indirect call, the timer), so every
 * secgroup figure is reported as a multiple of it.
 *
 * The stateful floors are the cheapest program that can know a flow with
 * a BPF hash, so an established packet's cost can be compared with what
 * any hash-based conntrack must pay: parse Ethernet, IPv4 and UDP, then
 * one lookup in an LRU hash with sg_ct4's key, value and size
 * (floor_ct_*), or first the interface's entry in a hash like sg_ifaces
 * and then that lookup (floor_ct_iface_*). The key is built as the data
 * plane builds it (64-bit words, local = the VM: the source of what XDP
 * sees, the destination of what TC sees). The frame passes only if every
 * lookup hits: the benchmark writes the entries and checks the verdict,
 * so the figure cannot silently measure a miss. Nothing else is done:
 * no expiry, no state, no counters, no checks of fragments or options.
 */
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>

/* The data plane's UAPI includes, ABI and sg_u64_of(); not its maps: the
 * floors create only the two they look up in (a copy of each definition
 * below), not the data plane's preallocated conntrack and counters. */
#include "lib/common.h"

SEC("xdp")
int floor_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("classifier")
int floor_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* As sg_ct4 (ebpf/lib/maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sg_ct4_key);
	__type(value, struct sg_ct_entry);
	__uint(max_entries, 262144);
} floor_ct4 SEC(".maps");

/* As sg_ifaces. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct sg_iface);
	__uint(max_entries, 65536);
} floor_ifaces SEC(".maps");

/*
 * Whether the frame is IPv4/UDP and every lookup hits. @local_is_src: XDP
 * (what the VM sends), so the key's local side is the source.
 */
static __always_inline int floor_stateful(void *data, void *data_end, __u32 ifindex,
					  const bool local_is_src, const bool iface)
{
	struct sg_ct4_key k SG_KEY_ALIGNED;
	const struct ethhdr *eth = data;
	const struct iphdr *ip;
	const struct udphdr *uh;
	__u32 ports, local, remote;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	uh = (void *)(ip + 1);
	if ((void *)(uh + 1) > data_end)
		return 0;
	if (iface && !bpf_map_lookup_elem(&floor_ifaces, &ifindex))
		return 0;
	ports = *(const __u32 *)&uh->source;
	local = local_is_src ? ip->saddr : ip->daddr;
	remote = local_is_src ? ip->daddr : ip->saddr;
	if (!local_is_src)
		ports = (ports >> 16) | (ports << 16);
	/* ifindex, family, protocol, pad; ports, local; remote. */
	((__u64 *)&k)[0] = sg_u64_of(ifindex, SG_AF_INET | (__u32)IPPROTO_UDP << 8);
	((__u64 *)&k)[1] = sg_u64_of(ports, local);
	((__u32 *)&k)[4] = remote;
	return bpf_map_lookup_elem(&floor_ct4, &k) != NULL;
}

SEC("xdp")
int floor_ct_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	return floor_stateful(data, end, ctx->ingress_ifindex, true, false) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int floor_ct_iface_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	return floor_stateful(data, end, ctx->ingress_ifindex, true, true) ? XDP_PASS : XDP_DROP;
}

SEC("classifier")
int floor_ct_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	return floor_stateful(data, end, skb->ifindex, false, false) ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("classifier")
int floor_ct_iface_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;

	return floor_stateful(data, end, skb->ifindex, false, true) ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
