/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters: rule hits (new flows a rule decided) and per-interface
 * packets and bytes by reason (every packet, by the interface's slot). A test run that asks for the
 * decision report (a trace) is not traffic and counts in neither: the
 * callers skip these on the request check decision.h makes once per
 * packet.
 *
 * Per-CPU values need no atomics: a BPF program runs with migration
 * disabled and is not re-entered on the same CPU for the same hook. An
 * entry missing on first use is created from the program; creating with
 * BPF_NOEXIST zeroes the other CPUs' slots. If another CPU created it in
 * between, the create fails with -EEXIST and the packet is counted in the
 * existing entry.
 */
#ifndef SG_COUNTERS_H
#define SG_COUNTERS_H

#include "common.h"
#include "maps.h"

#define SG_EEXIST 17

static __always_inline void sg_count_rule(__u32 ifindex, __u32 rule_uid, __u32 len, __u64 now)
{
	struct sg_rule_counter_key k SG_KEY_ALIGNED;
	struct sg_rule_counter *c;

	/* One 64-bit store (sg_u64_of() in common.h). */
	_Static_assert(sizeof(k) == 8 && __builtin_offsetof(struct sg_rule_counter_key, rule_uid) == 4,
		       "sg_rule_counter_key: ifindex, then rule uid");
	*(__u64 *)&k = sg_u64_of(ifindex, rule_uid);

	c = bpf_map_lookup_elem(&sg_rule_hits, &k);
	if (unlikely(!c)) {
		struct sg_rule_counter init = { .packets = 1, .bytes = len, .last_hit_ns = now };

		if (bpf_map_update_elem(&sg_rule_hits, &k, &init, BPF_NOEXIST) != -SG_EEXIST)
			return;
		c = bpf_map_lookup_elem(&sg_rule_hits, &k);
		if (!c)
			return;
	}
	c->packets++;
	c->bytes += len;
	c->last_hit_ns = now;
}

/* An interface without an sg_ifaces entry: by ifindex, in a hash. */
static __always_inline void sg_count_unbound(__u32 ifindex, const __u8 dir, __u8 reason, __u32 len)
{
	struct sg_iface_stats_key k = { .ifindex = ifindex, .dir = dir };
	struct sg_iface_stats *s;

	s = bpf_map_lookup_elem(&sg_if_stats, &k);
	if (unlikely(!s)) {
		/* Cold path, once per interface and direction. */
		struct sg_scratch *scratch = sg_scratch_get();

		if (!scratch)
			return;
		__builtin_memset(&scratch->zero_stats, 0, sizeof(scratch->zero_stats));
		bpf_map_update_elem(&sg_if_stats, &k, &scratch->zero_stats, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sg_if_stats, &k);
		if (!s)
			return;
	}
	if (reason < SG_REASON_MAX) {
		s->packets[reason]++;
		s->bytes[reason] += len;
	}
}

/*
 * Every packet's verdict: in its interface's slot of sg_slot_stats (an
 * array lookup the verifier inlines), or by ifindex when @iface is NULL or
 * has no slot.
 */
static __always_inline void sg_count_iface(const struct sg_iface *iface, __u32 ifindex,
					   const __u8 dir, __u8 reason, __u32 len)
{
	struct sg_iface_stats *s;
	__u32 idx;

	if (unlikely(!iface || iface->slot >= SG_MAX_IFACE_SLOTS)) {
		sg_count_unbound(ifindex, dir, reason, len);
		return;
	}
	idx = iface->slot * SG_DIR_MAX + dir;
	s = bpf_map_lookup_elem(&sg_slot_stats, &idx);
	if (!s || reason >= SG_REASON_MAX)
		return;
	s->packets[reason]++;
	s->bytes[reason] += len;
}

#endif /* SG_COUNTERS_H */
