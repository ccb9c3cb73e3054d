/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one clock (sg_now) and the timeouts every expiry is computed from.
 *
 * Boot time rather than monotonic time: it keeps counting while the host
 * is suspended, so a flow idle across a suspend expires as it should.
 * sg_config.clock_offset_ns is added so tests can move time forward; it is
 * zero in production.
 *
 * Reading the clock costs more than the rest of an established packet's
 * conntrack work, and every timeout is in seconds, so each CPU reads it at
 * most once per jiffy and reuses that reading until jiffies move on
 * (bpf_jiffies64() is a plain load). sg_now() is therefore the boot clock
 * as of the current tick: at most one tick (1-10 ms) behind, never ahead,
 * and monotonic per CPU.
 */
#ifndef SG_CLOCK_H
#define SG_CLOCK_H

#include "common.h"
#include "maps.h"

#define SG_SEC 1000000000ull

static __always_inline const struct sg_config *sg_config_get(void)
{
	__u32 zero = 0;

	/* An array element always exists; the check is for the verifier. */
	return bpf_map_lookup_elem(&sg_config, &zero);
}

static __always_inline __u64 sg_now(const struct sg_config *cfg)
{
	struct sg_scratch *cache = sg_scratch_get();
	__u64 jiffies = bpf_jiffies64();
	__u64 ns;

	if (unlikely(!cache))
		return bpf_ktime_get_boot_ns() + cfg->clock_offset_ns;
	if (cache->clock_jiffies != jiffies) {
		/*
		 * The reading first, then the tick it belongs to: a program
		 * preempting this one on the same CPU (PREEMPT_RT) either sees
		 * the old tick and reads the clock itself, or the new tick with
		 * its reading already stored.
		 */
		ns = bpf_ktime_get_boot_ns();
		cache->clock_boot_ns = ns;
		asm volatile("" ::: "memory");
		cache->clock_jiffies = jiffies;
	} else {
		ns = cache->clock_boot_ns;
	}
	return ns + cfg->clock_offset_ns;
}

/*
 * Used when sg_config holds 0 for a timeout (a config never written): a
 * zero timeout would expire every entry at once, so replies to accepted
 * flows would all be dropped.
 */
static __always_inline __u64 sg_timeout_default(__u32 idx)
{
	if (idx == SG_CT_TIMEOUT_TCP_SYN)
		return 60 * SG_SEC;
	if (idx == SG_CT_TIMEOUT_TCP_ESTABLISHED)
		return 5 * 24 * 3600 * SG_SEC;
	if (idx == SG_CT_TIMEOUT_TCP_CLOSING)
		return 120 * SG_SEC;
	if (idx == SG_CT_TIMEOUT_TCP_CLOSED)
		return 10 * SG_SEC;
	if (idx == SG_CT_TIMEOUT_UDP_STREAM)
		return 180 * SG_SEC;
	if (idx == SG_CT_TIMEOUT_OTHER)
		return 600 * SG_SEC;
	/* UDP, ICMP, FRAGMENT */
	return 30 * SG_SEC;
}

static __always_inline __u64 sg_timeout(const struct sg_config *cfg, __u32 idx)
{
	__u64 t;

	if (idx >= SG_CT_TIMEOUT_MAX)
		idx = SG_CT_TIMEOUT_OTHER;
	t = cfg->ct_timeout_ns[idx];
	return t ? t : sg_timeout_default(idx);
}

#endif /* SG_CLOCK_H */
