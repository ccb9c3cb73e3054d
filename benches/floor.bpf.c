// SPDX-License-Identifier: GPL-2.0
/*
 * The physical floor of the per-packet benchmark: programs that do nothing
 * but let the frame through. BPF_PROG_TEST_RUN of these measures what the
 * kernel spends around any program (context setup, the indirect call, the
 * timer), so every secgroup figure is reported as a multiple of it.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

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

char _license[] SEC("license") = "GPL";
