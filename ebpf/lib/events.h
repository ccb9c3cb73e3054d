/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Verdict events: a packet that is to be logged becomes a struct sg_event
 * (abi.h) in the sg_events ring buffer, for the daemon to read.
 *
 * What is logged, decided once per packet after its verdict:
 *  - a packet a rule flagged SG_RULE_F_LOG decided: a classified packet
 *    (the first of a flow; every packet of an untracked kind) it accepted,
 *    dropped or would drop, or a tracked flow it refused after a change;
 *  - with SG_IFACE_F_LOG_DROPS: every drop and would-drop of the interface
 *    (port security, parse, fragment, default, rule, revoked);
 *  - with SG_IFACE_F_LOG_ALL: those, and every new flow a rule accepted.
 * Established, reply, related, implicit and fragment passes never are: one
 * event per new flow and per drop, not per packet. A test run that asked
 * for the report (a trace) never is, and touches no event counter.
 *
 * Rate limit: each interface has a token bucket (sg_log_state, on the sg
 * clock) of sg_config.event_burst events refilled at event_rate per
 * second, kept as the generic cell rate algorithm's one timestamp so that
 * all CPUs share it through compare-and-swap without a lock. An event the bucket refuses
 * is counted as suppressed; one admitted while the ring is full, as lost.
 * The next event that gets through carries both (sg_event.suppressed), so
 * a flooding VM empties only its own bucket and the others' events still
 * arrive.
 *
 * All of it runs only in the branch logging off never takes (pipeline.h).
 */
#ifndef SG_EVENTS_H
#define SG_EVENTS_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "clock.h"
#include "classify.h"

#define SG_IFACE_F_LOGGING (SG_IFACE_F_LOG_DROPS | SG_IFACE_F_LOG_ALL)

static __always_inline bool sg_would_drop(__u8 reason)
{
	return reason >= SG_REASON_WOULD_DROP_RULE && reason <= SG_REASON_WOULD_DROP_REVOKED;
}

/* Whether @d's verdict is an event on an interface with @flags; @m is the
 * rule that classified the packet or refused its flow, if any. */
static __always_inline bool sg_event_wanted(__u32 flags, const struct sg_match *m,
					    const struct sg_decision *d)
{
	__u8 r = d->reason;
	bool by_rule = r == SG_REASON_ACCEPT_RULE || r == SG_REASON_DROP_RULE ||
		       r == SG_REASON_WOULD_DROP_RULE ||
		       ((r == SG_REASON_DROP_REVOKED || r == SG_REASON_WOULD_DROP_REVOKED) &&
			m->pos != SG_NO_RULE);

	if (by_rule && (m->flags & SG_RULE_F_LOG))
		return true;
	if (d->action == SG_ACTION_DROP || sg_would_drop(r))
		return flags & SG_IFACE_F_LOGGING;
	return r == SG_REASON_ACCEPT_RULE && (flags & SG_IFACE_F_LOG_ALL);
}

/*
 * Takes one token from @b at @now: admitted while the bucket's "full
 * again" time lies at most burst - 1 intervals ahead. Two CPUs taking a
 * token at once: one compare-and-swap fails and tries again; losing twice
 * (a third CPU) counts the event as suppressed.
 */
static __always_inline bool sg_event_admit(struct sg_log_bucket *b, const struct sg_config *cfg,
					   __u64 now)
{
	__u64 rate = cfg->event_rate ? cfg->event_rate : SG_EVENT_RATE_DEFAULT;
	__u64 burst = cfg->event_burst ? cfg->event_burst : SG_EVENT_BURST_DEFAULT;
	__u64 interval = SG_SEC / rate;
	__u64 tolerance = interval * (burst - 1);
	__u64 tat, start;
	int i;

	for (i = 0; i < 2; i++) {
		tat = *(volatile __u64 *)&b->tat_ns;
		start = tat > now ? tat : now;
		if (start - now > tolerance)
			return false;
		if (__sync_val_compare_and_swap(&b->tat_ns, tat, start + interval) == tat)
			return true;
	}
	return false;
}

/* The interface's bucket, created on its first event. */
static __always_inline struct sg_log_bucket *sg_log_bucket_get(__u32 ifindex)
{
	struct sg_log_bucket *b = bpf_map_lookup_elem(&sg_log_state, &ifindex);
	struct sg_scratch *scratch;

	if (b)
		return b;
	scratch = sg_scratch_get();
	if (!scratch)
		return NULL;
	/* -EEXIST: another CPU created it meanwhile; use that one. */
	bpf_map_update_elem(&sg_log_state, &ifindex, &scratch->zero_bucket, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sg_log_state, &ifindex);
}

static __always_inline void sg_event_fill(struct sg_event *e, const struct sg_pkt *pkt,
					  const struct sg_decision *d,
					  const struct sg_iface *iface, const struct sg_match *m,
					  __u64 now)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now;
	e->ifindex = pkt->ifindex;
	e->instance_uid = iface->instance_uid;
	e->table = d->table;
	e->rule_pos = d->rule_pos;
	e->rule_uid = d->rule_pos != SG_NO_RULE ? m->rule_uid : 0;
	e->dir = d->dir;
	e->verdict = sg_would_drop(d->reason) ? SG_EVENT_WOULD_DROP :
			d->action == SG_ACTION_ACCEPT ? SG_EVENT_ACCEPT : SG_EVENT_DROP;
	e->reason = d->reason;
	e->family = pkt->t.family;
	e->proto = pkt->t.proto;
	if (e->family == SG_AF_INET || e->family == SG_AF_INET6) {
		__builtin_memcpy(e->src, &pkt->t.src, sizeof(e->src));
		__builtin_memcpy(e->dst, &pkt->t.dst, sizeof(e->dst));
		if ((e->proto == IPPROTO_ICMP && e->family == SG_AF_INET) ||
		    (e->proto == IPPROTO_ICMPV6 && e->family == SG_AF_INET6)) {
			e->icmp_type = pkt->icmp_type;
			e->icmp_code = pkt->icmp_code;
		}
		e->sport = pkt->t.sport;
		e->dport = pkt->t.dport;
	}
}

/*
 * Cold: a verdict sg_event_wanted() said is an event. Not inlined: the hot
 * path carries only its call, and its code exists once.
 */
static __attribute__((noinline)) void sg_event_consider(const struct sg_pkt *pkt,
							const struct sg_decision *d,
							const struct sg_iface *iface,
							const struct sg_match *m)
{
	const struct sg_config *cfg;
	struct sg_log_bucket *b;
	struct sg_event *e;
	__u64 now, pending;

	cfg = sg_config_get();
	if (!cfg)
		return;
	b = sg_log_bucket_get(pkt->ifindex);
	if (!b)
		return;
	/* The bucket runs on sg_now() (a tick's precision is plenty for a
	 * rate, and a flood of refused events pays no clock read); an event
	 * that gets through reads the real clock: its time is read by
	 * people. */
	if (!sg_event_admit(b, cfg, sg_now(cfg))) {
		__sync_fetch_and_add(&b->suppressed, 1);
		__sync_fetch_and_add(&b->pending, 1);
		return;
	}
	e = bpf_ringbuf_reserve(&sg_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&b->lost, 1);
		__sync_fetch_and_add(&b->pending, 1);
		return;
	}
	now = bpf_ktime_get_boot_ns();
	sg_event_fill(e, pkt, d, iface, m, now);
	pending = __sync_lock_test_and_set(&b->pending, 0);
	e->suppressed = pending > 0xffffffffull ? 0xffffffffu : (__u32)pending;
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&b->emitted, 1);
}

#endif /* SG_EVENTS_H */
