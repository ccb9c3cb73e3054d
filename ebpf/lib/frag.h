/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * IP fragments. Only the first fragment carries the transport header, so
 * only it is classified (or matched against conntrack); when it is
 * accepted its datagram is remembered in sg_frags, and later fragments of
 * that datagram (same interface, direction, addresses, protocol and id)
 * pass. Later fragments of any other datagram are dropped: without the
 * first one nobody decided about them.
 *
 * Order: the first fragment usually arrives first. If a later one
 * overtakes it, it is dropped and the sender retransmits the datagram;
 * correctness over completeness.
 */
#ifndef SG_FRAG_H
#define SG_FRAG_H

#include "common.h"
#include "maps.h"
#include "env.h"
#include "parse.h"
#include "clock.h"

static __always_inline void sg_frag_key_init(struct sg_frag_key *k, const struct sg_env *env,
					     const struct sg_pkt *pkt)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->ifindex = env->ifindex;
	k->id = pkt->frag_id;
	k->family = pkt->t.family;
	k->proto = pkt->frag_proto;
	k->dir = env->dir;
	__builtin_memcpy(k->src, &pkt->t.src, sizeof(k->src));
	__builtin_memcpy(k->dst, &pkt->t.dst, sizeof(k->dst));
}

/* Whether the datagram of this later fragment had its first one accepted. */
static __always_inline bool sg_frag_accepted(const struct sg_env *env, const struct sg_pkt *pkt)
{
	const struct sg_frag_entry *e;
	struct sg_frag_key k;

	/*
	 * RFC 1858: a TCP fragment at offset 8 bytes overlaps the header and
	 * could rewrite the flags or ports the rules saw. Nothing honest sends
	 * one.
	 */
	if (pkt->t.proto == IPPROTO_TCP && pkt->frag_off == 1)
		return false;
	sg_frag_key_init(&k, env, pkt);
	e = bpf_map_lookup_elem(&sg_frags, &k);
	return e && e->expires_ns > env->now;
}

/* After a first fragment was accepted, by whatever stage. */
static __always_inline void sg_frag_record(const struct sg_env *env, const struct sg_pkt *pkt)
{
	struct sg_frag_entry v = {
		.expires_ns = env->now + sg_timeout(env->cfg, SG_CT_TIMEOUT_FRAGMENT),
	};
	struct sg_frag_key k;

	sg_frag_key_init(&k, env, pkt);
	bpf_map_update_elem(&sg_frags, &k, &v, BPF_ANY);
}

#endif /* SG_FRAG_H */
