/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet decision, shared by both hooks. Stages, first verdict
 * wins:
 *
 *   port security  egress (XDP) only, on interfaces that enable it: what
 *               the VM may not send at all is dropped, non-IP included,
 *               before anything else looks at it (portsec.h).
 *   parse       non-IP passes; an IP packet on an interface without an
 *               sg_ifaces entry is dropped (fail closed); malformed or
 *               unsupported headers are dropped.
 *   implicit    NDP/MLD and DHCP clients: accepted, not tracked.
 *   fragment    a later fragment passes iff its first fragment passed.
 *   related     an ICMP error quoting a tracked flow passes.
 *   conntrack   a packet of a live flow passes (after a re-check if the
 *               rules changed since the flow was accepted).
 *   classify    the first matching rule of the direction's table decides;
 *               no match drops. An accepted new flow is tracked. In
 *               audit mode what would drop passes, tracked.
 *   record      an accepted first fragment admits its later fragments.
 *
 * After the verdict, a packet that is to be logged (events.h) becomes an
 * event, in a branch that logging off never takes.
 *
 * Implicit allows come before conntrack so they never depend on, or
 * create, state; conntrack comes before the rules so replies pass
 * whatever the rules of their own direction say.
 */
#ifndef SG_PIPELINE_H
#define SG_PIPELINE_H

#include "common.h"
#include "maps.h"
#include "ctx.h"
#include "env.h"
#include "parse.h"
#include "clock.h"
#include "portsec.h"
#include "implicit.h"
#include "classify.h"
#include "conntrack.h"
#include "frag.h"
#include "counters.h"
#include "decision.h"
#include "events.h"

/*
 * The stages in order. @envp->iface is set first, whatever happens; @mp
 * holds the rule that classified the packet or refused its flow, if one
 * did. Audit (SG_IFACE_F_AUDIT): what the rules or the default would drop
 * passes as a SG_REASON_WOULD_DROP_* and is tracked like an accepted
 * flow, so its replies and later packets pass as established.
 */
static __always_inline void sg_judge(const struct sg_pkt *pkt, const __u8 dir,
				     struct sg_decision *d, const long requested,
				     struct sg_env *envp, struct sg_match *mp)
{
	struct sg_match m;
	struct sg_query q;
	struct sg_ct_key key SG_KEY_ALIGNED;
	struct sg_env env;
	__u32 ifindex = pkt->ifindex;
	int st = pkt->status;
	/* What a new flow gets: accepted, or (audit) would-drop. */
	__u8 reason = SG_REASON_ACCEPT_RULE;

	sg_decision_init(d, dir);
	env.iface = bpf_map_lookup_elem(&sg_ifaces, &ifindex);
	envp->iface = env.iface;
	/* dir is a constant: TC compiles this away. */
	if (dir == SG_DIR_EGRESS && env.iface && (env.iface->flags & SG_IFACE_F_PORT_SECURITY)) {
		int spoof = sg_psec_check(pkt, env.iface);

		if (spoof != SG_PSEC_PASS) {
			sg_drop(d, spoof);
			return;
		}
	}
	if (st == SG_PARSE_NON_IP) {
		sg_accept(d, SG_REASON_PASS_NON_IP);
		return;
	}
	if (!env.iface) {
		sg_drop(d, SG_REASON_DROP_NO_POLICY);
		return;
	}
	if (st != SG_PARSE_OK) {
		sg_drop(d, st == SG_PARSE_MALFORMED ? SG_REASON_DROP_MALFORMED :
						      SG_REASON_DROP_UNSUPPORTED);
		return;
	}
	env.cfg = sg_config_get();
	if (!env.cfg) {
		sg_drop(d, SG_REASON_DROP_UNSUPPORTED);
		return;
	}
	env.now = sg_now(env.cfg);
	env.ifindex = ifindex;
	env.len = pkt->len;
	env.dir = dir;

	if (sg_implicit_allowed(pkt, dir)) {
		sg_accept(d, SG_REASON_ACCEPT_IMPLICIT);
		goto accepted;
	}

	if (pkt->frag == SG_FRAG_LATER) {
		if (sg_frag_accepted(&env, pkt))
			sg_accept(d, SG_REASON_ACCEPT_FRAGMENT);
		else
			sg_drop(d, SG_REASON_DROP_FRAGMENT);
		return;
	}

	if (sg_ct_related(&env, pkt, &key, d))
		goto accepted;

	if (sg_ct_tracked(pkt)) {
		sg_ct_key_init(&key, ifindex, &pkt->t, dir == SG_DIR_EGRESS);
		switch (sg_ct_process(&env, pkt, &key, d, mp)) {
		case SG_CT_PASS:
			goto accepted;
		case SG_CT_REVOKED:
			return;
		}
	}

	/* A new flow: the remote is the source of what comes in, the
	 * destination of what goes out. */
	q.table = env.iface->table[dir];
	d->table = q.table;
	if (q.table == SG_NO_TABLE) {
		if (likely(!(env.iface->flags & SG_IFACE_F_AUDIT))) {
			sg_drop(d, SG_REASON_DROP_DEFAULT);
			return;
		}
		reason = SG_REASON_WOULD_DROP_DEFAULT;
		goto track;
	}
	__builtin_memcpy(q.remote, dir == SG_DIR_INGRESS ? pkt->t.src.w : pkt->t.dst.w,
			 sizeof(q.remote));
	q.family = pkt->t.family;
	q.proto = pkt->t.proto;
	q.port = sg_rule_port(pkt->t.proto, pkt->t.dport);
	sg_match_init(&m);
	if (!sg_classify(&q, &m)) {
		if (likely(!(env.iface->flags & SG_IFACE_F_AUDIT))) {
			sg_drop(d, SG_REASON_DROP_DEFAULT);
			return;
		}
		reason = SG_REASON_WOULD_DROP_DEFAULT;
		goto track;
	}
	*mp = m;
	d->rule_pos = m.pos;
	if (likely(!requested))
		sg_count_rule(ifindex, m.rule_uid, env.len, env.now);
	if (m.action != SG_ACTION_ACCEPT) {
		if (likely(!(env.iface->flags & SG_IFACE_F_AUDIT))) {
			sg_drop(d, SG_REASON_DROP_RULE);
			return;
		}
		reason = SG_REASON_WOULD_DROP_RULE;
	}

track:
	/* Accepted, or audited: what would drop is tracked as accepted (at
	 * the refusing rule's position, or none), so its replies pass. */
	if (sg_ct_tracked(pkt) && sg_ct_creates(pkt))
		sg_ct_create(&env, pkt, &key, d->table, d->rule_pos);
	sg_accept(d, reason);

accepted:
	if (pkt->frag == SG_FRAG_FIRST)
		sg_frag_record(&env, pkt);
}

/*
 * @pkt comes from a hook's parse subprogram; @dir is a constant per
 * program; @requested: a test run that asked for the report (decision.h),
 * which counts nothing and is never an event. Counting happens here, where
 * the interface's entry (and so its counter slot) is at hand.
 */
static __always_inline void sg_decide(const struct sg_pkt *pkt, const __u8 dir,
				      struct sg_decision *d, const long requested)
{
	struct sg_match m;
	struct sg_env env;

	sg_match_init(&m);
	sg_judge(pkt, dir, d, requested, &env, &m);
	if (likely(!requested))
		sg_count_iface(env.iface, pkt->ifindex, dir, d->reason, pkt->len);
	/* With logging off this is all it costs: one test of flags the
	 * packet has read already, after the verdict. */
	if (unlikely(env.iface && ((env.iface->flags & SG_IFACE_F_LOGGING) |
				   (m.flags & SG_RULE_F_LOG))) &&
	    likely(!requested) && sg_event_wanted(env.iface->flags, &m, d))
		sg_event_consider(pkt, d, env.iface, &m);
}

#endif /* SG_PIPELINE_H */
