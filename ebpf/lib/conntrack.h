/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: replies to accepted traffic pass without rules.
 *
 * One entry per flow and interface (ifindex is the zone), keyed from the
 * VM's side (local = the VM) so both directions find it. What is tracked:
 *  - TCP, with a small state machine for timeouts (no sequence checks);
 *  - UDP: NEW until a reply is seen, then REPLIED with a longer timeout;
 *  - ICMP/ICMPv6 echo, keyed by the echo id; only a request creates an
 *    entry, only a reply in the other direction uses it as a reply;
 *  - other protocols by addresses and protocol.
 * Other ICMP messages are never tracked: errors are RELATED when they
 * quote a tracked flow (sg_ct_related), and the rules decide the rest.
 *
 * Rule changes: an entry records the table that accepted its flow. When
 * the interface's table for the flow's origin direction differs (the rules
 * changed), the next packet re-classifies the flow's original tuple, unless
 * the interface keeps established flows (SG_IFACE_F_KEEP_ESTABLISHED).
 *
 * Races: the two directions of a flow can be processed on two CPUs at
 * once. Counters use atomic adds; state, flags and expiry are plain stores
 * where the last writer wins, so a transition may be lost and seen again
 * by the next packet. Entries are never freed under a reader: the LRU hash
 * frees elements after an RCU grace period.
 */
#ifndef SG_CONNTRACK_H
#define SG_CONNTRACK_H

#include "common.h"
#include "maps.h"
#include "env.h"
#include "parse.h"
#include "clock.h"
#include "classify.h"
#include "decision.h"

/*
 * How far a live entry's expiry may lag the last packet before a packet
 * stores the new one: one tick at HZ=100 (sg_now() itself lags by up to
 * that). Every timeout is seconds long.
 */
#define SG_CT_REFRESH_SLACK_NS 10000000ull

enum sg_ct_result {
	SG_CT_MISS = 0,    /* no live entry: the rules decide */
	SG_CT_PASS,        /* established or reply: *d filled */
	SG_CT_REVOKED,     /* the rules no longer accept the flow: *d filled */
};

static __always_inline bool sg_is_icmp(const struct sg_tuple *t)
{
	return (t->proto == IPPROTO_ICMP && t->family == SG_AF_INET) ||
	       (t->proto == IPPROTO_ICMPV6 && t->family == SG_AF_INET6);
}

static __always_inline bool sg_is_echo(const struct sg_pkt *pkt)
{
	return pkt->icmp_kind == SG_ICMP_ECHO_REQUEST || pkt->icmp_kind == SG_ICMP_ECHO_REPLY;
}

/* Whether conntrack is consulted at all for this packet. */
static __always_inline bool sg_ct_tracked(const struct sg_pkt *pkt)
{
	return !sg_is_icmp(&pkt->t) || sg_is_echo(pkt);
}

/*
 * Whether an accepted new-flow packet creates an entry: echo replies do
 * not (the request opens the flow), nor do TCP resets (they open nothing).
 */
static __always_inline bool sg_ct_creates(const struct sg_pkt *pkt)
{
	if (sg_is_icmp(&pkt->t))
		return pkt->icmp_kind == SG_ICMP_ECHO_REQUEST;
	if (pkt->t.proto == IPPROTO_TCP)
		return !(pkt->tcp_flags & SG_TCP_RST);
	return true;
}

/*
 * @local_is_src: whether the tuple's source is the VM, i.e. the packet is
 * leaving the VM (or, for a quoted packet, was sent by it).
 *
 * Written 64 bits at a time, as wide as the map's hash and compare read it
 * back (see sg_u64_of() in common.h). The tuple's port pair and
 * family/proto/pad words have the key's layout
 * (the parser leaves the tuple's pad zero); swapping the two ports of a
 * word is a rotation by 16 on either byte order.
 */
_Static_assert(__builtin_offsetof(struct sg_tuple, dport) ==
		       __builtin_offsetof(struct sg_tuple, sport) + 2 &&
		       __builtin_offsetof(struct sg_tuple, proto) ==
		       __builtin_offsetof(struct sg_tuple, family) + 1 &&
		       __builtin_offsetof(struct sg_tuple, sport) % 4 == 0 &&
		       __builtin_offsetof(struct sg_tuple, family) % 4 == 0,
	       "sg_tuple's port and protocol words must match sg_ct_key's");
_Static_assert(__builtin_offsetof(struct sg_ct_key, family) == 4 &&
		       __builtin_offsetof(struct sg_ct_key, local_port) == 8 &&
		       __builtin_offsetof(struct sg_ct_key, local_addr) == 12 &&
		       __builtin_offsetof(struct sg_ct_key, remote_addr) == 28 &&
		       sizeof(struct sg_ct_key) == 44 && sizeof(struct sg_ct4_key) == 20,
	       "sg_ct_key_init() writes the key word by word");

/* @k must be SG_KEY_ALIGNED: it is written in 64-bit words (common.h). */
static __always_inline void sg_ct_key_init(struct sg_ct_key *k, __u32 ifindex,
					   const struct sg_tuple *t, bool local_is_src)
{
	__u64 *q = (__u64 *)k;
	__u32 ports = *(const __u32 *)&t->sport;
	const __u32 *local = local_is_src ? t->src.w : t->dst.w;
	const __u32 *remote = local_is_src ? t->dst.w : t->src.w;

	if (!local_is_src)
		ports = (ports >> 16) | (ports << 16);
	q[0] = sg_u64_of(ifindex, *(const __u32 *)&t->family);
	q[1] = sg_u64_of(ports, local[0]);
	q[2] = sg_u64_of(local[1], local[2]);
	q[3] = sg_u64_of(local[3], remote[0]);
	q[4] = sg_u64_of(remote[1], remote[2]);
	((__u32 *)k)[10] = remote[3];
}

/*
 * The one place that picks the map of a flow: IPv4 in sg_ct4 under the
 * short key, IPv6 in sg_ct. Everything else handles struct sg_ct_key.
 * Copied in the words it was written in (sg_ct_key_init()).
 */
static __always_inline void sg_ct4_key_of(struct sg_ct4_key *k4, const struct sg_ct_key *k)
{
	const __u64 *q = (const __u64 *)k;
	__u64 *q4 = (__u64 *)k4;

	q4[0] = q[0];                        /* ifindex, family, proto, pad */
	q4[1] = q[1];                        /* ports, local address */
	((__u32 *)k4)[4] = ((const __u32 *)k)[7]; /* remote address */
}

static __always_inline struct sg_ct_entry *sg_ct_lookup(const struct sg_ct_key *k)
{
	struct sg_ct4_key k4 SG_KEY_ALIGNED;

	if (k->family != SG_AF_INET)
		return bpf_map_lookup_elem(&sg_ct, k);
	sg_ct4_key_of(&k4, k);
	return bpf_map_lookup_elem(&sg_ct4, &k4);
}

static __always_inline void sg_ct_store(const struct sg_ct_key *k, const struct sg_ct_entry *e)
{
	struct sg_ct4_key k4 SG_KEY_ALIGNED;

	if (k->family != SG_AF_INET) {
		bpf_map_update_elem(&sg_ct, k, e, BPF_ANY);
		return;
	}
	sg_ct4_key_of(&k4, k);
	bpf_map_update_elem(&sg_ct4, &k4, e, BPF_ANY);
}

static __always_inline void sg_ct_delete(const struct sg_ct_key *k)
{
	struct sg_ct4_key k4 SG_KEY_ALIGNED;

	if (k->family != SG_AF_INET) {
		bpf_map_delete_elem(&sg_ct, k);
		return;
	}
	sg_ct4_key_of(&k4, k);
	bpf_map_delete_elem(&sg_ct4, &k4);
}

static __always_inline __u32 sg_ct_timeout_idx(const struct sg_ct_key *k, __u8 state)
{
	if (k->proto == IPPROTO_TCP) {
		switch (state) {
		case SG_CT_TCP_ESTABLISHED:
			return SG_CT_TIMEOUT_TCP_ESTABLISHED;
		case SG_CT_TCP_FIN_WAIT:
		case SG_CT_TCP_CLOSING:
			return SG_CT_TIMEOUT_TCP_CLOSING;
		case SG_CT_TCP_CLOSED:
			return SG_CT_TIMEOUT_TCP_CLOSED;
		default:
			return SG_CT_TIMEOUT_TCP_SYN;
		}
	}
	if (k->proto == IPPROTO_UDP)
		return state == SG_CT_REPLIED ? SG_CT_TIMEOUT_UDP_STREAM : SG_CT_TIMEOUT_UDP;
	if ((k->proto == IPPROTO_ICMP && k->family == SG_AF_INET) ||
	    (k->proto == IPPROTO_ICMPV6 && k->family == SG_AF_INET6))
		return SG_CT_TIMEOUT_ICMP;
	return SG_CT_TIMEOUT_OTHER;
}

/*
 * TCP state after a packet with flags @tcp, sent by the originator when
 * @orig. Only what the timeouts need: opening, open, closing, reset.
 */
static __always_inline __u8 sg_tcp_next(__u8 state, __u8 *flags, __u8 tcp, bool orig)
{
	__u8 both = SG_CT_F_FIN_ORIGINAL | SG_CT_F_FIN_REPLY;

	if (tcp & SG_TCP_RST)
		return SG_CT_TCP_CLOSED;
	/* The responder's SYN-ACK (or its SYN, for a simultaneous open). */
	if (state == SG_CT_TCP_SYN_SENT && !orig && (tcp & SG_TCP_SYN))
		return SG_CT_TCP_SYN_RECV;
	/* The originator's ACK completing the handshake. */
	if (state == SG_CT_TCP_SYN_RECV && orig && (tcp & (SG_TCP_SYN | SG_TCP_ACK)) == SG_TCP_ACK)
		state = SG_CT_TCP_ESTABLISHED;
	if ((tcp & SG_TCP_FIN) && state >= SG_CT_TCP_SYN_RECV && state <= SG_CT_TCP_FIN_WAIT) {
		*flags |= orig ? SG_CT_F_FIN_ORIGINAL : SG_CT_F_FIN_REPLY;
		state = (*flags & both) == both ? SG_CT_TCP_CLOSING : SG_CT_TCP_FIN_WAIT;
	}
	return state;
}

/*
 * Re-classifies a tracked flow's original packet against @table, the
 * current table of its origin direction. The original destination port is
 * the remote's port when the VM opened the flow, the VM's own otherwise.
 */
static __always_inline bool sg_ct_recheck(const struct sg_ct_key *k, __u8 origin_dir, __u32 table,
					  struct sg_match *m)
{
	__be16 dport = origin_dir == SG_DIR_EGRESS ? k->remote_port : k->local_port;
	struct sg_query q;

	if (table == SG_NO_TABLE)
		return false;
	__builtin_memcpy(q.remote, k->remote_addr, sizeof(q.remote));
	q.table = table;
	q.family = k->family;
	q.proto = k->proto;
	q.port = sg_rule_port(k->proto, dport);
	return sg_classify(&q, m);
}

/* Counters, state and expiry of a live entry, for a packet it passed. */
static __always_inline void sg_ct_refresh(const struct sg_env *env, const struct sg_pkt *pkt,
					  const struct sg_ct_key *k, struct sg_ct_entry *e,
					  __u8 state, bool orig)
{
	__u8 flags = e->flags;
	__u8 nflags = flags;
	__u8 nstate = state;
	__u64 expires, old;

	__sync_fetch_and_add(&e->packets[env->dir], 1);
	__sync_fetch_and_add(&e->bytes[env->dir], env->len);

	if (!orig)
		nflags |= SG_CT_F_SEEN_REPLY;
	if (pkt->t.proto == IPPROTO_TCP)
		nstate = sg_tcp_next(state, &nflags, pkt->tcp_flags, orig);
	else if (!orig)
		nstate = SG_CT_REPLIED;

	/* Skip stores that change nothing: most packets change neither. */
	if (nstate != state)
		e->state = nstate;
	if (nflags != flags)
		e->flags = nflags;
	expires = env->now + sg_timeout(env->cfg, sg_ct_timeout_idx(k, nstate));
	/* The expiry moves on only once it has moved by more than a tick: a
	 * flow's packets within one tick all read the same cached clock, and
	 * a stream spread over CPUs does not bounce the line for nothing. A
	 * shorter timeout (a FIN, a reset) is always stored. */
	old = e->expires_ns;
	if (expires < old || expires - old > SG_CT_REFRESH_SLACK_NS)
		e->expires_ns = expires;
}

/*
 * Looks @k (built from the packet) up and, for a live entry, decides the
 * packet: ESTABLISHED or REPLY, or REVOKED after a failed re-check (the
 * entry is then deleted; in audit mode it follows the new table and the
 * packet passes as WOULD_DROP_REVOKED). MISS sends the packet to the
 * rules. @m receives the re-check's match, if there was one.
 */
static __always_inline int sg_ct_process(const struct sg_env *env, const struct sg_pkt *pkt,
					 const struct sg_ct_key *k, struct sg_decision *d,
					 struct sg_match *mp)
{
	struct sg_ct_entry *e;
	struct sg_match m;
	__u32 table, pos, cur;
	__u8 origin, state;
	__u8 reason = 0;  /* SG_REASON_WOULD_DROP_REVOKED, or as tracked */
	bool orig;

	e = sg_ct_lookup(k);
	if (!e)
		return SG_CT_MISS;
	/* Expired: the flow is over; if the rules accept this packet the new
	 * entry replaces the dead one. */
	if (e->expires_ns <= env->now)
		return SG_CT_MISS;

	origin = e->origin_dir & 1;
	orig = origin == env->dir;
	state = e->state;

	if (pkt->t.proto == IPPROTO_TCP) {
		/* A bare SYN after both FINs or a reset reuses the tuple for a
		 * new connection: the rules of its direction decide it. */
		if ((pkt->tcp_flags & (SG_TCP_SYN | SG_TCP_ACK)) == SG_TCP_SYN &&
		    (state == SG_CT_TCP_CLOSING || state == SG_CT_TCP_CLOSED))
			return SG_CT_MISS;
	} else if (sg_is_echo(pkt)) {
		/* Requests go the way the flow was opened, replies come back.
		 * A request from the other side is that side's own ping. */
		if ((pkt->icmp_kind == SG_ICMP_ECHO_REQUEST) != orig)
			return SG_CT_MISS;
	}

	table = e->table;
	pos = e->rule_pos;
	cur = env->iface->table[origin];
	if (table != cur && !(env->iface->flags & SG_IFACE_F_KEEP_ESTABLISHED)) {
		sg_match_init(&m);
		if (!sg_ct_recheck(k, origin, cur, &m) || m.action != SG_ACTION_ACCEPT) {
			*mp = m;
			if (likely(!(env->iface->flags & SG_IFACE_F_AUDIT))) {
				/* Deleting stops the flow in both directions; if
				 * the packet's own direction accepts it as a new
				 * flow later, a fresh entry is created then. */
				sg_ct_delete(k);
				d->table = cur;
				d->rule_pos = m.pos;  /* the drop rule, if one matched */
				sg_drop(d, SG_REASON_DROP_REVOKED);
				return SG_CT_REVOKED;
			}
			/* Audit: enforcement would cut the flow here. It goes
			 * on under the current table instead, so its next
			 * packets are established again. */
			reason = SG_REASON_WOULD_DROP_REVOKED;
		}
		/* Another CPU may do the same at once: both write the same. */
		table = cur;
		pos = m.pos;
		e->table = table;
		e->rule_pos = pos;
	}

	sg_ct_refresh(env, pkt, k, e, state, orig);
	d->table = table;
	d->rule_pos = pos;
	sg_accept(d, reason ? reason : orig ? SG_REASON_ACCEPT_ESTABLISHED : SG_REASON_ACCEPT_REPLY);
	return SG_CT_PASS;
}

/*
 * A new entry for a flow the rules accepted at @table / @pos. BPF_ANY:
 * it replaces a dead entry of the same tuple; two CPUs creating the same
 * flow at once both write an equivalent entry and the last one stays.
 */
static __always_inline void sg_ct_create(const struct sg_env *env, const struct sg_pkt *pkt,
					 const struct sg_ct_key *k, __u32 table, __u32 pos)
{
	struct sg_ct_entry e;
	__u8 state = SG_CT_NEW;
	__u8 flags = 0;

	if (pkt->t.proto == IPPROTO_TCP) {
		/* Loose pickup: a flow seen first mid-stream is open. */
		state = (pkt->tcp_flags & (SG_TCP_SYN | SG_TCP_ACK)) == SG_TCP_SYN ?
				SG_CT_TCP_SYN_SENT : SG_CT_TCP_ESTABLISHED;
		state = sg_tcp_next(state, &flags, pkt->tcp_flags, true);
	}

	__builtin_memset(&e, 0, sizeof(e));
	e.created_ns = env->now;
	e.expires_ns = env->now + sg_timeout(env->cfg, sg_ct_timeout_idx(k, state));
	e.packets[env->dir] = 1;
	e.bytes[env->dir] = env->len;
	e.table = table;
	e.rule_pos = pos;
	e.origin_dir = env->dir;
	e.state = state;
	e.flags = flags;
	sg_ct_store(k, &e);
}

/*
 * An ICMP error quoting a packet of a live flow is RELATED and passes
 * without touching the entry. An error arriving at the VM quotes a packet
 * the VM sent (local = quoted source); an error the VM sends quotes one it
 * received (local = quoted destination). The error's own source is not
 * checked: any router on the path may send one.
 *
 * @k is scratch space for the key.
 */
static __always_inline bool sg_ct_related(const struct sg_env *env, const struct sg_pkt *pkt,
					  struct sg_ct_key *k, struct sg_decision *d)
{
	const struct sg_ct_entry *e;
	__u8 origin;

	if (pkt->icmp_kind != SG_ICMP_ERROR || !pkt->inner.family)
		return false;
	sg_ct_key_init(k, env->ifindex, &pkt->inner, env->dir == SG_DIR_INGRESS);
	e = sg_ct_lookup(k);
	if (!e || e->expires_ns <= env->now)
		return false;
	/* A flow awaiting its re-check after a rule change vouches for
	 * nothing; its next own packet settles it. */
	origin = e->origin_dir & 1;
	if (e->table != env->iface->table[origin] &&
	    !(env->iface->flags & SG_IFACE_F_KEEP_ESTABLISHED))
		return false;
	d->table = e->table;
	d->rule_pos = e->rule_pos;
	sg_accept(d, SG_REASON_ACCEPT_RELATED);
	return true;
}

#endif /* SG_CONNTRACK_H */
