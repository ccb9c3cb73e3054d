/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the data plane. Keys and values are the ABI types of abi.h.
 *
 * No map carries a `pinning` attribute: userspace decides. The daemon pins
 * all but sg_scratch and sg_rcu_barrier under its bpffs directory so a
 * restarted daemon adopts the running state (tables, conntrack, counters);
 * tests load private, unpinned copies side by side. (aya would pin a
 * LIBBPF_PIN_BY_NAME map in /sys/fs/bpf even for a private instance.)
 *
 * Flags, and why:
 *  - BPF_F_NO_PREALLOC on the plain hashes: elements are freed after an RCU
 *    grace period, so a program holding a value pointer while userspace
 *    replaces the element keeps reading a valid, consistent old copy. A
 *    preallocated hash recycles the element at once and the reader could
 *    see a half-written new value.
 *  - LPM tries require BPF_F_NO_PREALLOC.
 *  - The per-CPU counter hashes are BPF_F_NO_PREALLOC too: preallocation
 *    costs max_entries * value size * possible CPUs, hundreds of MiB for
 *    sg_if_stats on a large host, for entries that mostly never exist.
 *  - The LRU hashes (conntrack, fragments) are preallocated by nature:
 *    when full, the least recently used flow is evicted rather than a new
 *    flow refused.
 */
#ifndef SG_MAPS_H
#define SG_MAPS_H

#include "common.h"

/* Interface (ifindex) -> what it enforces. Replaced whole by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct sg_iface);
	__uint(max_entries, 65536);
} sg_ifaces SEC(".maps");

/* {table, remote IPv4 prefix} -> class of the rules that prefix matches. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_v4_key);
	__type(value, struct sg_class_ref);
	__uint(max_entries, 1 << 20);
} sg_v4 SEC(".maps");

/* {table, remote IPv6 prefix} -> class. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_v6_key);
	__type(value, struct sg_class_ref);
	__uint(max_entries, 1 << 20);
} sg_v6 SEC(".maps");

/* {table, remote IPv4 host} -> class: the /32 entries of a table, looked
 * up before sg_v4 (abi.h, struct sg_v4_host_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_v4_host_key);
	__type(value, struct sg_class_ref);
	__uint(max_entries, 1 << 20);
} sg_v4_hosts SEC(".maps");

/* {table, remote IPv6 host} -> class: the /128 entries, before sg_v6. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_v6_host_key);
	__type(value, struct sg_class_ref);
	__uint(max_entries, 1 << 20);
} sg_v6_hosts SEC(".maps");

/* {table, protocol, destination port prefix} -> class. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_l4_key);
	__type(value, struct sg_class_ref);
	__uint(max_entries, 1 << 20);
} sg_l4 SEC(".maps");

/* {table, class} -> the set of rule positions of that class. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_class_key);
	__type(value, struct sg_ruleset);
	__uint(max_entries, 1 << 20);
} sg_classes SEC(".maps");

/* {table, position} -> action and stable rule id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_rule_key);
	__type(value, struct sg_rule_meta);
	__uint(max_entries, 1 << 20);
} sg_rules SEC(".maps");

/*
 * Port security (portsec.h): {set, MAC or "any", source prefix} -> 1 for
 * every allowed source of every set. The value carries nothing: the key
 * is the fact. Sized for a few sources per instance on a full host.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_psec_v4_key);
	__type(value, __u32);
	__uint(max_entries, 262144);
} sg_psec_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_psec_v6_key);
	__type(value, __u32);
	__uint(max_entries, 262144);
} sg_psec_v6 SEC(".maps");

/* {set, MAC} -> 1 for the MACs of a set's address pairs that differ from
 * the instance's: looked up only for frames not from sg_iface.mac. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_psec_mac_key);
	__type(value, __u32);
	__uint(max_entries, 65536);
} sg_psec_macs SEC(".maps");

/* Tracked IPv6 flows, keyed from the VM's point of view. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sg_ct_key);
	__type(value, struct sg_ct_entry);
	__uint(max_entries, 262144);
} sg_ct SEC(".maps");

/* Tracked IPv4 flows: the same with a key of 20 bytes (abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sg_ct4_key);
	__type(value, struct sg_ct_entry);
	__uint(max_entries, 262144);
} sg_ct4 SEC(".maps");

/* Datagrams whose first fragment was accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sg_frag_key);
	__type(value, struct sg_frag_entry);
	__uint(max_entries, 16384);
} sg_frags SEC(".maps");

/* Per-CPU hits of each rule on each interface. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_rule_counter_key);
	__type(value, struct sg_rule_counter);
	__uint(max_entries, 131072);
} sg_rule_hits SEC(".maps");

/*
 * Per-CPU packets and bytes by reason, per interface slot and direction
 * (index slot * SG_DIR_MAX + dir, abi.h): every packet of an interface
 * with an sg_ifaces entry counts here, through an inlined array lookup
 * instead of a hash. Preallocated: 4096 slots cost 3 MiB per CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sg_iface_stats);
	__uint(max_entries, SG_MAX_IFACE_SLOTS * SG_DIR_MAX);
} sg_slot_stats SEC(".maps");

/* The same by ifindex and direction, for packets of a hooked interface
 * without an sg_ifaces entry (no policy) or without a slot (more than
 * SG_MAX_IFACE_SLOTS interfaces): rare, so a hash. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sg_iface_stats_key);
	__type(value, struct sg_iface_stats);
	__uint(max_entries, 65536);
} sg_if_stats SEC(".maps");

/*
 * Verdict events for the daemon (events.h): one struct sg_event per logged
 * packet. 1 MiB holds ~13,000 events: several seconds of every interface
 * at its burst, should the reader fall behind. Pinned, so a restarted
 * daemon reads on where the previous one stopped.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} sg_events SEC(".maps");

/* Per interface: the event rate limit's bucket and its counts. Updated in
 * place with atomics by every CPU; created by the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct sg_log_bucket);
	__uint(max_entries, 65536);
} sg_log_state SEC(".maps");

/* Timeouts and the clock offset; one element, written by userspace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sg_config);
	__uint(max_entries, 1);
} sg_config SEC(".maps");

/* Layout version, table-id counter, generation and owner of the pins
 * (abi.h, struct sg_meta). Userspace only: no program reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sg_meta);
	__uint(max_entries, 1);
} sg_meta SEC(".maps");

/*
 * Per-CPU state private to the programs: not part of the ABI, not pinned
 * (nothing worth keeping across restarts), never read by userspace.
 */
struct sg_scratch {
	/* sg_now()'s cache: the boot clock as read at one jiffy (clock.h). */
	__u64 clock_jiffies;
	__u64 clock_boot_ns;
	/* Zeroed value to create an sg_if_stats entry with: too big for the
	 * 512-byte stack next to everything else (counters.h). */
	struct sg_iface_stats zero_stats;
	/* Never written: the zero value an sg_log_state entry is created
	 * from, off the stack of the event path (events.h). */
	struct sg_log_bucket zero_bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sg_scratch);
	__uint(max_entries, 1);
} sg_scratch SEC(".maps");

static __always_inline struct sg_scratch *sg_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sg_scratch, &zero);
}

/*
 * Never read by the programs. Updating a map-in-map slot from userspace
 * makes the kernel wait for an RCU grace period before the syscall
 * returns, and every program here runs inside one RCU read-side section.
 * So once userspace has pointed the interfaces at a new table and then
 * updated this slot, no program can still be reading the old table: it is
 * safe to delete. The map only has to exist; the loader creates every map
 * of .maps whether a program references it or not.
 */
struct sg_rcu_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 1);
	__array(values, struct sg_rcu_inner);
} sg_rcu_barrier SEC(".maps");

#endif /* SG_MAPS_H */
