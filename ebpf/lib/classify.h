/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * First-match classification without a loop over rules.
 *
 * A table (one interface-direction's ordered rule list) is stored as:
 *  - sg_v4 / sg_v6: longest-prefix match on the remote address, giving the
 *    class of "rules whose remotes contain this address", with the
 *    full-length prefixes (hosts) in the exact-match sg_v4_hosts /
 *    sg_v6_hosts, looked up first;
 *  - sg_l4: longest-prefix match on protocol then destination port, giving
 *    the class of "rules whose services contain this protocol and port";
 *  - sg_classes: each class as a bit set over rule positions.
 * Userspace builds the tries so that the longest matching prefix's class
 * already includes every shorter prefix's rules. A rule matches iff its
 * bit is in both sets, and the first matching rule is the lowest common
 * bit. The summaries let the AND visit only words both sets populate, so a
 * lookup costs 2 trie walks (or 1 and a host hit), 3-4 hash lookups and a
 * few word ANDs, whatever the number of rules.
 *
 * Any miss (no prefix covers the address, no protocol entry, a class or
 * rule absent) means no rule matches: the caller drops by default.
 */
#ifndef SG_CLASSIFY_H
#define SG_CLASSIFY_H

#include "common.h"
#include "maps.h"
#include "parse.h"

#define SG_LPM_TABLE_BITS 32

_Static_assert(sizeof(struct sg_class_key) == 8 && __builtin_offsetof(struct sg_class_key, class_id) == 4 &&
		       sizeof(struct sg_rule_key) == 8 && __builtin_offsetof(struct sg_rule_key, pos) == 4,
	       "class and rule keys: two words, the table id first");

/* What a packet is classified by. */
struct sg_query {
	__u32 remote[4];  /* network order; IPv4 uses remote[0] */
	__u32 table;
	__u8 family;
	__u8 proto;
	__be16 port;      /* see sg_rule_port() */
};

struct sg_match {
	__u32 pos;       /* position in the table */
	__u32 rule_uid;
	__u8 action;     /* enum sg_action */
	__u8 flags;      /* SG_RULE_F_* */
	__u8 pad[2];
};

/*
 * Index of the lowest set bit of a non-zero word, without branches or
 * tables: the population count of the bits below it. BPF has no ctz
 * instruction and LLVM lowers __builtin_ctzll to a de Bruijn table in
 * .rodata; the empty asm hides the idiom so it is not recognised and
 * turned back into that table.
 */
static __always_inline __u32 sg_ctz64(__u64 x)
{
	__u64 v = (x & -x) - 1;

	asm volatile("" : "+r"(v));
	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (v * 0x0101010101010101ull) >> 56;
}

/*
 * Lowest rule position present in both sets, or SG_NO_RULE.
 *
 * Jumps to the first word both summaries mark, then walks the common
 * summary upwards one word at a time: a step costs a shift and a test, and
 * only marked words are loaded and ANDed. That is cheaper than a ctz per
 * marked word when summaries are dense (the worst case: 64 marked words
 * with no common rule until the last), and bounded by 64 steps either way.
 */
static __always_inline __u32 sg_ruleset_first(const struct sg_ruleset *a,
						const struct sg_ruleset *b)
{
	__u64 common = a->summary & b->summary;
	__u64 bits;
	__u32 i, w;

	if (!common)
		return SG_NO_RULE;
	w = sg_ctz64(common);
	common >>= w;
	for (i = 0; i < SG_RULESET_WORDS; i++) {
		if (common & 1) {
			/* w < 64 here; the mask tells the verifier. */
			bits = a->words[w & (SG_RULESET_WORDS - 1)] &
			       b->words[w & (SG_RULESET_WORDS - 1)];
			if (bits)
				return w * 64 + sg_ctz64(bits);
		}
		common >>= 1;
		if (!common)
			break;
		w++;
	}
	return SG_NO_RULE;
}

/*
 * LPM keys are built so that their data (the table id, then the address or
 * protocol and port) starts 8-byte aligned, and written in 64-bit words:
 * the trie compares a key 8 bytes at a time (see sg_u64_of() in common.h).
 * A lead word in front of the key puts its data, not its prefix length, on
 * the 8-byte boundary.
 *
 * The remote address is looked up as a host first (sg_v4_hosts,
 * sg_v6_hosts: the table's full-length prefixes) and only on a miss in the
 * trie, which then holds the shorter prefixes alone. A hit is the longest
 * match possible and its class already includes the shorter prefixes'
 * rules, so the answer is the trie's. The trie key's data, from the table
 * id on, is laid out exactly as the host key: one key serves both. The
 * host lookup is skipped for a table without hosts of the family
 * (SG_L4_F_*_HOSTS, abi.h): a miss would be certain.
 */
static __always_inline const struct sg_class_ref *sg_lookup_remote(__u32 table, __u8 family,
								    const __u32 *remote,
								    __u32 l4_flags)
{
	const struct sg_class_ref *host;

	_Static_assert(sizeof(struct sg_v4_host_key) == 8 && sizeof(struct sg_v6_host_key) == 20 &&
			       __builtin_offsetof(struct sg_v4_key, table) + sizeof(struct sg_v4_host_key) ==
				       sizeof(struct sg_v4_key) &&
			       __builtin_offsetof(struct sg_v6_key, table) + sizeof(struct sg_v6_host_key) ==
				       sizeof(struct sg_v6_key),
		       "host keys: the LPM keys without their prefix length");
	if (family == SG_AF_INET) {
		struct {
			__u32 lead;
			struct sg_v4_key k;
		} SG_KEY_ALIGNED u;

		u.k.prefixlen = SG_LPM_TABLE_BITS + 32;
		*(__u64 *)&u.k.table = sg_u64_of(table, remote[0]);
		if (l4_flags & SG_L4_F_V4_HOSTS) {
			host = bpf_map_lookup_elem(&sg_v4_hosts, &u.k.table);
			if (host)
				return host;
		}
		return bpf_map_lookup_elem(&sg_v4, &u.k);
	} else {
		struct {
			__u32 lead;
			struct sg_v6_key k;
		} SG_KEY_ALIGNED u;
		__u64 *data = (__u64 *)&u.k.table;

		u.k.prefixlen = SG_LPM_TABLE_BITS + 128;
		data[0] = sg_u64_of(table, remote[0]);
		data[1] = sg_u64_of(remote[1], remote[2]);
		((__u32 *)data)[4] = remote[3];
		if (l4_flags & SG_L4_F_V6_HOSTS) {
			host = bpf_map_lookup_elem(&sg_v6_hosts, &u.k.table);
			if (host)
				return host;
		}
		return bpf_map_lookup_elem(&sg_v6, &u.k);
	}
}

static __always_inline const struct sg_class_ref *sg_lookup_l4(__u32 table, __u8 proto, __be16 port)
{
	struct {
		__u32 lead;
		struct sg_l4_key k;
	} SG_KEY_ALIGNED u;
	__u32 l4;

	_Static_assert(sizeof(struct sg_l4_key) == 12 &&
			       __builtin_offsetof(struct sg_l4_key, proto) == 8,
		       "sg_l4_key: prefixlen, table, then one word of protocol and port");
	_Static_assert(__builtin_offsetof(struct sg_v4_key, table) == 4 &&
			       __builtin_offsetof(struct sg_v6_key, addr) == 8,
		       "LPM keys: prefixlen, table, then the address");
	u.k.prefixlen = SG_LPM_TABLE_BITS + 8 + 16;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	l4 = (__u32)proto | (__u32)port << 8;
#else
	l4 = (__u32)proto << 24 | (__u32)port << 8;
#endif
	*(__u64 *)&u.k.table = sg_u64_of(table, l4);
	return bpf_map_lookup_elem(&sg_l4, &u.k);
}

/*
 * The port rules match on: the destination port for TCP and UDP, 0 for
 * every other protocol (ICMP included: its echo id is no port).
 */
static __always_inline __be16 sg_rule_port(__u8 proto, __be16 dport)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ? dport : 0;
}

/* No match yet. Field by field: an initialiser list would be kept as a
 * constant in .rodata, an extra map for the loader. */
static __always_inline void sg_match_init(struct sg_match *m)
{
	__builtin_memset(m, 0, sizeof(*m));
	m->pos = SG_NO_RULE;
	m->action = SG_ACTION_DROP;
}

/*
 * Classifies @q. Returns 1 and fills @m when a rule matches, 0 otherwise.
 *
 * Tables are immutable once an interface points at them (a change writes a
 * new table under a new id), so the lookups here see one consistent table
 * even while userspace swaps tables: see sg_rcu_barrier in maps.h.
 *
 * A global subprogram: its 64-word loop is verified once, not once per
 * caller path.
 */
SG_SUBPROG int sg_classify(const struct sg_query *q, struct sg_match *m)
{
	const struct sg_class_ref *net, *l4;
	const struct sg_ruleset *a, *b;
	const struct sg_rule_meta *meta;
	/* Written as one 64-bit word each (sg_u64_of() in common.h). */
	struct sg_class_key ck SG_KEY_ALIGNED;
	struct sg_rule_key rk SG_KEY_ALIGNED;
	__u32 pos, l4_class, l4_value;

	if (!q || !m)
		return 0;
	l4 = sg_lookup_l4(q->table, q->proto, q->port);
	if (!l4)
		return 0;
	l4_value = l4->class_id;
	l4_class = l4_value & SG_CLASS_ID_MASK;
	net = sg_lookup_remote(q->table, q->family, q->remote, l4_value);
	if (!net)
		return 0;

	*(__u64 *)&ck = sg_u64_of(q->table, net->class_id);
	a = bpf_map_lookup_elem(&sg_classes, &ck);
	if (!a)
		return 0;
	if (l4_class == net->class_id) {
		b = a;
	} else {
		*(__u64 *)&ck = sg_u64_of(q->table, l4_class);
		b = bpf_map_lookup_elem(&sg_classes, &ck);
		if (!b)
			return 0;
	}

	pos = sg_ruleset_first(a, b);
	if (pos == SG_NO_RULE)
		return 0;
	*(__u64 *)&rk = sg_u64_of(q->table, pos);
	meta = bpf_map_lookup_elem(&sg_rules, &rk);
	if (!meta)
		return 0;
	m->pos = pos;
	m->rule_uid = meta->rule_uid;
	m->action = meta->action;
	m->flags = meta->flags;
	return 1;
}

#endif /* SG_CLASSIFY_H */
