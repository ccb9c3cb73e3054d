/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one contract between the BPF programs and userspace.
 *
 * Every map key and value, every code that crosses the boundary, is defined
 * here and nowhere else. crates/secgroup-dataplane/src/abi.rs mirrors it
 * with #[repr(C)] types and a test compares both layouts against the BTF of
 * the compiled object: change one side and that test fails until the other
 * follows.
 *
 * Types only: no maps, no code. Fixed-width types, explicit padding, no
 * bitfields, so the layout is the same for clang -target bpf and rustc.
 */
#ifndef SECGROUP_ABI_H
#define SECGROUP_ABI_H

#include <linux/types.h>

/* ---- Limits ---------------------------------------------------------- */

/* Rules one table (one instance, one direction) can hold. */
#define SG_MAX_RULES 4096
#define SG_RULESET_WORDS (SG_MAX_RULES / 64)

/* No-rule marker in sg_decision.rule_pos. */
#define SG_NO_RULE 0xffffffffu

/* Table id 0 is never allocated: it means "no table". */
#define SG_NO_TABLE 0u

/* ---- Directions (seen from the VM) ------------------------------------ */

enum sg_direction {
	SG_DIR_INGRESS = 0, /* to the VM: TC egress on its tap */
	SG_DIR_EGRESS = 1,  /* from the VM: XDP on its tap */
	SG_DIR_MAX = 2,
};

/* ---- Rule actions ---------------------------------------------------- */

enum sg_action {
	SG_ACTION_DROP = 0,
	SG_ACTION_ACCEPT = 1,
};

/*
 * ---- Reasons ---------------------------------------------------------
 *
 * Why a packet got its verdict. Indexes sg_iface_stats.packets and is
 * reported in sg_decision.reason; userspace prints the names (abi.rs).
 * Append only: the numbers are part of pinned state.
 */
enum sg_reason {
	SG_REASON_ACCEPT_RULE = 0,      /* new flow accepted by a rule */
	SG_REASON_ACCEPT_ESTABLISHED,   /* tracked flow, original direction */
	SG_REASON_ACCEPT_REPLY,         /* tracked flow, reply direction */
	SG_REASON_ACCEPT_RELATED,       /* ICMP error about a tracked flow */
	SG_REASON_ACCEPT_FRAGMENT,      /* later fragment of an accepted datagram */
	SG_REASON_ACCEPT_IMPLICIT,      /* NDP/MLD, DHCP/DHCPv6 client */
	SG_REASON_PASS_NON_IP,          /* ARP and other non-IP ethertypes */
	SG_REASON_DROP_RULE,            /* a drop rule matched */
	SG_REASON_DROP_DEFAULT,         /* no rule matched */
	SG_REASON_DROP_MALFORMED,       /* truncated or inconsistent headers */
	SG_REASON_DROP_FRAGMENT,        /* fragment of no accepted datagram */
	SG_REASON_DROP_NO_POLICY,       /* hook attached, no sg_ifaces entry */
	SG_REASON_DROP_REVOKED,         /* tracked flow the new rules refuse */
	SG_REASON_DROP_UNSUPPORTED,     /* e.g. IPv6 extension chain too long */
	/* Port security (XDP only, portsec.h): what a VM may not send at all.
	 * Named as secgroup_policy::SpoofReason. */
	SG_REASON_DROP_SPOOFED_MAC,     /* source MAC not the instance's or a pair's */
	SG_REASON_DROP_SPOOFED_IP,      /* IPv4/IPv6 source not allowed for the MAC */
	SG_REASON_DROP_SPOOFED_ARP,     /* foreign ARP sender, or not Ethernet/IPv4 ARP */
	SG_REASON_DROP_SPOOFED_ND,      /* neighbour advertisement for a foreign target */
	SG_REASON_DROP_ROUTER_ADVERT,   /* ICMPv6 router advertisement or redirect */
	SG_REASON_DROP_DHCP_SERVER,     /* DHCPv4/DHCPv6 server reply */
	SG_REASON_DROP_ETHERTYPE,       /* not IPv4/IPv6/ARP, or two VLAN tags */
	/* Audit (SG_IFACE_F_AUDIT): what enforcement would have dropped, passed.
	 * Each names the drop reason it stands for. */
	SG_REASON_WOULD_DROP_RULE,      /* a drop rule matched: passed, tracked */
	SG_REASON_WOULD_DROP_DEFAULT,   /* no rule matched: passed, tracked */
	SG_REASON_WOULD_DROP_REVOKED,   /* the new rules refuse a tracked flow: kept */
	SG_REASON_MAX,
};

/* ---- Conntrack ------------------------------------------------------- */

enum sg_ct_state {
	SG_CT_NEW = 0,          /* non-TCP: seen one way only */
	SG_CT_REPLIED,          /* non-TCP: seen both ways */
	SG_CT_TCP_SYN_SENT,     /* SYN from the originator */
	SG_CT_TCP_SYN_RECV,     /* SYN-ACK from the responder */
	SG_CT_TCP_ESTABLISHED,
	SG_CT_TCP_FIN_WAIT,     /* one side sent FIN */
	SG_CT_TCP_CLOSING,      /* both sides sent FIN */
	SG_CT_TCP_CLOSED,       /* RST seen */
	SG_CT_STATE_MAX,
};

/* Indexes sg_config.ct_timeout_ns. */
enum sg_ct_timeout {
	SG_CT_TIMEOUT_TCP_SYN = 0,      /* default 60 s */
	SG_CT_TIMEOUT_TCP_ESTABLISHED,  /* default 5 days */
	SG_CT_TIMEOUT_TCP_CLOSING,      /* FIN seen: default 120 s */
	SG_CT_TIMEOUT_TCP_CLOSED,       /* RST seen: default 10 s */
	SG_CT_TIMEOUT_UDP,              /* one way: default 30 s */
	SG_CT_TIMEOUT_UDP_STREAM,       /* replied: default 180 s */
	SG_CT_TIMEOUT_ICMP,             /* default 30 s */
	SG_CT_TIMEOUT_OTHER,            /* default 600 s */
	SG_CT_TIMEOUT_FRAGMENT,         /* sg_frags entries: default 30 s */
	SG_CT_TIMEOUT_MAX,
};

/* sg_ct_entry.flags */
#define SG_CT_F_SEEN_REPLY   (1u << 0)
#define SG_CT_F_FIN_ORIGINAL (1u << 1) /* FIN from the originator */
#define SG_CT_F_FIN_REPLY    (1u << 2) /* FIN from the responder */

/*
 * One flow on one interface (the zone), keyed from the VM's point of view so
 * both directions find the same entry: "local" is the VM's side.
 * Ports are in network byte order; for ICMP echo both hold the echo id; for
 * portless protocols both are 0. IPv4 addresses use the first 4 bytes of
 * the 16, the rest zero.
 */
struct sg_ct_key {
	__u32 ifindex;
	__u8 family;        /* AF_INET (2) or AF_INET6 (10) */
	__u8 proto;
	__u16 pad;
	__be16 local_port;
	__be16 remote_port;
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/*
 * The key of an IPv4 flow in sg_ct4: sg_ct_key with 4-byte addresses. IPv4
 * flows live in a map of their own so that a lookup hashes and compares
 * 20 bytes instead of 44 (hashing the key was a third of an established
 * packet's cost); IPv6 flows stay in sg_ct. Both hold struct sg_ct_entry.
 */
struct sg_ct4_key {
	__u32 ifindex;
	__u8 family;        /* AF_INET */
	__u8 proto;
	__u16 pad;
	__be16 local_port;
	__be16 remote_port;
	__u8 local_addr[4];
	__u8 remote_addr[4];
};

struct sg_ct_entry {
	__u64 created_ns;
	__u64 expires_ns;       /* sg clock; past it the entry is dead */
	__u64 packets[SG_DIR_MAX];
	__u64 bytes[SG_DIR_MAX];
	/* The table that accepted the flow, in origin_dir. A table id changes
	 * whenever that direction's rules change, so a mismatch with the
	 * interface's current table means: re-check before trusting. */
	__u32 table;
	__u32 rule_pos;         /* position in that table of the accepting rule */
	__u8 origin_dir;        /* enum sg_direction of the first packet */
	__u8 state;             /* enum sg_ct_state */
	__u8 flags;             /* SG_CT_F_* */
	__u8 pad[5];
};

/* Later fragments of an accepted IPv4/IPv6 datagram. */
struct sg_frag_key {
	__u32 ifindex;
	__u32 id;               /* IPv4 id (zero-extended) or IPv6 frag id,
				 * host byte order */
	__u8 family;
	__u8 proto;             /* IPv4 protocol, or the next header named by
				 * the IPv6 fragment header */
	__u8 dir;               /* enum sg_direction */
	__u8 pad;
	__u8 src[16];
	__u8 dst[16];
};

struct sg_frag_entry {
	__u64 expires_ns;
};

/* ---- Classifier tables ------------------------------------------------ */

/*
 * A table is one instance-direction's compiled first-match list. It lives in
 * the maps below under its id; see ARCHITECTURE.md for the algorithm. Every
 * lookup key starts with the table id so many tables share the maps and a
 * new table is written beside the old one before any interface points to it.
 */

/* LPM key for remote IPv4 addresses: prefixlen counts the 32 table bits. */
struct sg_v4_key {
	__u32 prefixlen;
	__u32 table;
	__u8 addr[4];
};

struct sg_v6_key {
	__u32 prefixlen;
	__u32 table;
	__u8 addr[16];
};

/*
 * Exact-match keys for a table's full-length remote prefixes (/32, /128):
 * the host addresses of address sets and security-group references, which
 * can be tens of thousands per table. They live in sg_v4_hosts /
 * sg_v6_hosts instead of the tries, so a host costs one hash lookup, not a
 * walk down a trie of 10,000 leaves. A full-length hit is the longest
 * match there is, and userspace folds every shorter covering prefix's
 * rules into each entry's class, so the hash answers exactly what the trie
 * would. Both keys are whole 32-bit words: no padding to zero.
 */
struct sg_v4_host_key {
	__u32 table;
	__u8 addr[4];
};

struct sg_v6_host_key {
	__u32 table;
	__u8 addr[16];
};

/*
 * LPM key for protocol + destination port: prefixlen counts the 32 table
 * bits, then 8 protocol bits, then 16 port bits (network order). "all
 * protocols" is prefixlen 32, "tcp any port" 40, "tcp 80" 56. Packets of
 * portless protocols look up port 0.
 */
struct sg_l4_key {
	__u32 prefixlen;
	__u32 table;
	__u8 proto;
	__u8 port[2];
	__u8 pad;
};

/* What an LPM entry leads to: one of the table's distinct rule sets. */
struct sg_class_ref {
	__u32 class_id;
};

struct sg_class_key {
	__u32 table;
	__u32 class_id;
};

/*
 * A set of rule positions. summary bit i is set iff words[i] != 0, so an AND
 * of two sets finds its lowest common bit by visiting only the words both
 * summaries mark.
 */
struct sg_ruleset {
	__u64 summary;
	__u64 words[SG_RULESET_WORDS];
};

struct sg_rule_key {
	__u32 table;
	__u32 pos;
};

/* sg_rule_meta.flags */
#define SG_RULE_F_LOG (1u << 0) /* a packet this rule decides is an event */

struct sg_rule_meta {
	__u32 rule_uid;         /* stable id of (sg, direction, key): counters, events */
	__u8 action;            /* enum sg_action */
	__u8 flags;             /* SG_RULE_F_* */
	__u8 pad[2];
};

/* ---- Interfaces ------------------------------------------------------- */

/* sg_iface.flags */
#define SG_IFACE_F_KEEP_ESTABLISHED (1u << 0) /* rule changes spare tracked flows */
/* Hooked because its name matches a guarded pattern, bound by no instance:
 * no tables, so it drops IP traffic. For userspace; the programs need not
 * look (SG_NO_TABLE already drops). */
#define SG_IFACE_F_GUARD            (1u << 1)
/* Port security: what the VM sends is checked against sg_iface.mac and the
 * allowed-source set sg_iface.psec_set before its egress rules (portsec.h). */
#define SG_IFACE_F_PORT_SECURITY    (1u << 2)
/* sg_iface.mac is the instance's MAC: other source MACs need an sg_psec_macs
 * entry. Without it, any source MAC. */
#define SG_IFACE_F_HAS_MAC          (1u << 3)
/* The set holds sources allowed from any MAC (SG_PSEC_ANY_MAC entries):
 * looked up first. */
#define SG_IFACE_F_PSEC_ANY_MAC     (1u << 4)
/* Events (sg_events) for the instance's packets, besides those of rules
 * flagged SG_RULE_F_LOG: every drop (and would-drop), or every drop and
 * every new flow a rule accepts. */
#define SG_IFACE_F_LOG_DROPS        (1u << 5)
#define SG_IFACE_F_LOG_ALL          (1u << 6)
/* Audit: rules and the default are evaluated as usual, but what they would
 * drop passes (SG_REASON_WOULD_DROP_*) and is tracked like an accepted
 * flow. Port security, parse and fragment drops are still enforced. */
#define SG_IFACE_F_AUDIT            (1u << 7)
/* With port security: sg_iface.own_v4 / own_v6 is a source the set allows
 * from sg_iface.mac (from any MAC without SG_IFACE_F_HAS_MAC), so a frame
 * from that MAC and address needs no sg_psec_v4/v6 lookup. */
#define SG_IFACE_F_OWN_V4           (1u << 8)
#define SG_IFACE_F_OWN_V6           (1u << 9)

/*
 * Interfaces count their verdicts in sg_slot_stats at slot * SG_DIR_MAX +
 * dir: a dense index userspace hands out (a per-CPU array lookup costs no
 * hash). Packets of an interface without an sg_ifaces entry (no policy),
 * or whose entry has no slot (SG_NO_SLOT: more interfaces than slots),
 * count in sg_if_stats by ifindex instead.
 */
#define SG_MAX_IFACE_SLOTS 4096
#define SG_NO_SLOT 0xffffffffu

/*
 * What an interface enforces. Replaced whole, never edited in place: the map
 * is BPF_F_NO_PREALLOC so a reader holding the old value keeps a valid copy
 * until it finishes (a preallocated hash would recycle it at once).
 */
struct sg_iface {
	__u32 table[SG_DIR_MAX];  /* by enum sg_direction; SG_NO_TABLE drops */
	__u32 flags;              /* SG_IFACE_F_* */
	__u32 instance_uid;       /* for userspace bookkeeping */
	/* With SG_IFACE_F_PORT_SECURITY: the allowed-source set (sg_psec_*);
	 * SG_NO_PSEC_SET otherwise. Part of the same value as the MAC and the
	 * flags, so a packet sees one spec whole: old or new, never a mix. */
	__u32 psec_set;
	/* Index of the interface's verdict counters in sg_slot_stats, below
	 * SG_MAX_IFACE_SLOTS, or SG_NO_SLOT; kept while the interface keeps
	 * an entry. */
	__u32 slot;
	__u8 mac[6];              /* with SG_IFACE_F_HAS_MAC: the instance's MAC */
	__u8 pad[2];
	/* Words, not bytes, so the programs compare them with wide loads;
	 * network order, as on the wire (userspace writes the octets). */
	__u32 own_v6[4];          /* with SG_IFACE_F_OWN_V6 */
	__be32 own_v4;            /* with SG_IFACE_F_OWN_V4 */
};

/* ---- Port security: allowed sources ------------------------------------ */

/*
 * A set is one instance's compiled port-security spec (its allowed sources
 * and their MACs), written under a fresh id from the table-id counter before
 * any interface names it and deleted only after a grace period once none
 * does: the same life cycle as a classifier table. Id 0 is never allocated.
 */
#define SG_NO_PSEC_SET 0u

/* sg_psec_v4_key.any */
#define SG_PSEC_BOUND   0 /* allowed only from `mac` */
#define SG_PSEC_ANY_MAC 1 /* allowed from any MAC; `mac` is zero */

/*
 * LPM key of an allowed IPv4 source: prefixlen counts the 96 bits of set,
 * any, pad and mac, then the address prefix. The MAC is part of the key
 * rather than the value because several sources of one set may overlap with
 * different MACs (an own /32 inside a pair's CIDR bound to a VRRP MAC): a
 * lookup with the frame's MAC finds an entry iff some source containing the
 * address is allowed from that MAC, which no single longest match over
 * addresses alone could say.
 */
struct sg_psec_v4_key {
	__u32 prefixlen;
	__u32 set;
	__u8 any;                 /* SG_PSEC_BOUND or SG_PSEC_ANY_MAC */
	__u8 pad;
	__u8 mac[6];
	__u8 addr[4];
};

struct sg_psec_v6_key {
	__u32 prefixlen;
	__u32 set;
	__u8 any;
	__u8 pad;
	__u8 mac[6];
	__u8 addr[16];
};

/* Bits of an sg_psec_v4/v6 key before the address prefix. */
#define SG_PSEC_KEY_BITS 96

/* A MAC other than sg_iface.mac that a set allows (an address pair's). */
struct sg_psec_mac_key {
	__u32 set;
	__u8 mac[6];
	__u8 pad[2];
};

/* ---- Counters ---------------------------------------------------------- */

/* Per-CPU hits of one rule on one interface (new flows classified). */
struct sg_rule_counter_key {
	__u32 ifindex;
	__u32 rule_uid;
};

struct sg_rule_counter {
	__u64 packets;
	__u64 bytes;
	__u64 last_hit_ns;      /* sg clock */
};

struct sg_iface_stats_key {
	__u32 ifindex;
	__u32 dir;
};

struct sg_iface_stats {
	__u64 packets[SG_REASON_MAX];
	__u64 bytes[SG_REASON_MAX];
};

/* ---- Global configuration (sg_config, one element) ------------------- */

struct sg_config {
	/* 0 selects the default noted in enum sg_ct_timeout. */
	__u64 ct_timeout_ns[SG_CT_TIMEOUT_MAX];
	/* Added to bpf_ktime_get_boot_ns(): the one clock every timeout reads,
	 * so tests can move time forward. Zero in production. Each CPU reads
	 * the boot clock at most once per jiffy, so the sg clock runs up to
	 * one tick (1-10 ms) behind CLOCK_BOOTTIME, never ahead. */
	__u64 clock_offset_ns;
	/* Each interface's event rate limit (events.h): a token bucket of
	 * event_burst tokens refilled at event_rate per second. 0 selects
	 * SG_EVENT_RATE_DEFAULT / SG_EVENT_BURST_DEFAULT. */
	__u32 event_rate;
	__u32 event_burst;
};

/* ---- Pin-directory metadata (sg_meta, one element) ------------------- */

/*
 * The version of every pinned layout in this header. Bump it whenever a
 * pinned map's key, value or size changes (a reason appended to enum
 * sg_reason grows sg_iface_stats, for one): a daemon refuses to adopt pins
 * whose sg_meta carries another version rather than misread them. (An
 * enum, not a #define, so that it is in the BTF the layout test reads.)
 */
enum sg_abi {
	SG_ABI_VERSION = 5,
	SG_META_SOCKET_LEN = 108, /* sizeof(sockaddr_un.sun_path) */
	/* In every sg_l4 value of a table (sg_class_ref.class_id), above the
	 * class id: the table has IPv4 / IPv6 host entries (sg_v4_hosts,
	 * sg_v6_hosts). A table without skips the host lookup, so remotes
	 * that are not hosts pay for it only where hosts exist. The l4
	 * lookup comes first anyway: it costs nothing to carry them there. */
	SG_L4_F_V4_HOSTS = 1 << 30,
	SG_L4_F_V6_HOSTS = 1 << 29,
	SG_CLASS_ID_MASK = (1 << 29) - 1,
};

/*
 * Owned by userspace; the programs never read it. It lives in the pins so
 * that what must survive a restart survives exactly as long as the state
 * it describes: table ids are handed out from next_table_id and never
 * reused while a table, an interface or a conntrack entry may name them;
 * the policy generation only grows; owner_token changes with every daemon
 * start, so a daemon that finds another token in place knows someone else
 * wrote its maps.
 */
struct sg_meta {
	__u32 abi_version;      /* SG_ABI_VERSION of whoever created the pins */
	__u32 pad;
	__u64 next_table_id;    /* the next table id to hand out */
	__u64 generation;       /* the last policy generation applied */
	__u64 owner_token;      /* random, chosen by the owner at start */
	__u64 owner_pid;        /* process holding the pin directory's lock */
	__u64 owner_started_ms; /* unix time the owner took over */
	char owner_socket[SG_META_SOCKET_LEN]; /* its API socket, NUL-padded */
	__u32 pad2;
};

/* ---- Decision report ---------------------------------------------------- */

/*
 * A BPF_PROG_TEST_RUN caller asks for the verdict by putting
 * SG_DECISION_REQUEST in the 32-bit word after a report-sized slot: XDP
 * metadata = slot (16 bytes), request word, then the frame; TC: slot in
 * __sk_buff->cb[0..3], request word in cb[4]. The program then fills the
 * slot with its sg_decision and leaves the request word alone, so repeated
 * runs each report again. Real traffic carries no request and gets no
 * report. That is how tests, the differential checker and `secgroupctl
 * trace` learn which rule decided, from the program itself.
 */
#define SG_DECISION_MAGIC 0x53474456u   /* "SGDV" */
#define SG_DECISION_REQUEST 0x53474452u /* "SGDR" */

struct sg_decision {
	__u32 magic;            /* SG_DECISION_MAGIC */
	__u32 rule_pos;         /* winning position, or SG_NO_RULE */
	__u32 table;            /* table consulted, or SG_NO_TABLE */
	__u8 reason;            /* enum sg_reason */
	__u8 action;            /* enum sg_action: what the packet got */
	__u8 dir;               /* enum sg_direction */
	__u8 pad;
};

/* ---- Verdict events (sg_events ring buffer) ----------------------------- */

enum sg_event_verdict {
	SG_EVENT_ACCEPT = 0,
	SG_EVENT_DROP = 1,
	SG_EVENT_WOULD_DROP = 2,   /* audit: passed, enforcement would drop */
	SG_EVENT_VERDICT_MAX,
};

/* Defaults of sg_config.event_rate (events per second per interface) and
 * event_burst (events at once). */
enum sg_event_limits {
	SG_EVENT_RATE_DEFAULT = 100,
	SG_EVENT_BURST_DEFAULT = 200,
};

/*
 * One packet that was to be logged: the first packet of a flow a logged
 * rule decided (or any rule, with SG_IFACE_F_LOG_ALL), or a drop on an
 * interface with SG_IFACE_F_LOG_DROPS/ALL. Never for a requested test run.
 * Addresses as in sg_ct_key (IPv4 in the first 4 bytes); family 0 when the
 * packet was not parsed that far (a malformed one).
 */
struct sg_event {
	__u64 time_ns;          /* bpf_ktime_get_boot_ns(), no test offset */
	__u32 ifindex;
	__u32 instance_uid;     /* sg_iface.instance_uid */
	__u32 table;            /* as in sg_decision */
	__u32 rule_pos;         /* as in sg_decision; SG_NO_RULE */
	__u32 rule_uid;         /* the deciding rule's; 0 when no rule decided */
	/* Events this interface lost (rate limit, or the ring full) since its
	 * previous event that was delivered. */
	__u32 suppressed;
	__u8 dir;               /* enum sg_direction */
	__u8 verdict;           /* enum sg_event_verdict */
	__u8 reason;            /* enum sg_reason, as counted */
	__u8 family;            /* AF_INET, AF_INET6, or 0 */
	__u8 proto;
	__u8 icmp_type;         /* ICMP/ICMPv6 only */
	__u8 icmp_code;
	__u8 pad;
	__be16 sport;           /* TCP/UDP; for ICMP echo the id */
	__be16 dport;
	__u8 src[16];
	__u8 dst[16];
	__u32 pad2;
};

/*
 * Per interface (sg_log_state, keyed by ifindex): the event rate limit and
 * what it let through. Written by the programs only, shared by all CPUs
 * (atomic operations); created on an interface's first event.
 */
struct sg_log_bucket {
	/* Generic cell rate algorithm: the time the bucket is full again; an
	 * event is admitted while it lies at most (burst - 1) intervals ahead
	 * of now, and pushes it one interval further. Boot clock. */
	__u64 tat_ns;
	__u64 emitted;          /* events written to sg_events */
	__u64 suppressed;       /* refused by the rate limit */
	__u64 lost;             /* admitted, but sg_events was full */
	__u64 pending;          /* suppressed + lost since the last emitted */
};

#endif /* SECGROUP_ABI_H */
