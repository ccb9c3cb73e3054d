//! `#[repr(C)]` mirrors of `ebpf/include/abi.h`, the one contract between the
//! BPF programs and userspace. The `layout` test compares every struct here
//! with the BTF clang emitted for the C side, so the two cannot drift apart
//! silently.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_RULES: usize = 4096;
pub const RULESET_WORDS: usize = MAX_RULES / 64;
pub const NO_RULE: u32 = u32::MAX;
pub const NO_TABLE: u32 = 0;
pub const DECISION_MAGIC: u32 = 0x5347_4456;
/// Asks a test run for its decision report (abi.h `SG_DECISION_REQUEST`).
pub const DECISION_REQUEST: u32 = 0x5347_4452;

pub const IFACE_F_KEEP_ESTABLISHED: u32 = 1 << 0;

pub const CT_F_SEEN_REPLY: u8 = 1 << 0;
pub const CT_F_FIN_ORIGINAL: u8 = 1 << 1;
pub const CT_F_FIN_REPLY: u8 = 1 << 2;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

pub const DIR_INGRESS: u8 = 0;
pub const DIR_EGRESS: u8 = 1;
pub const DIR_MAX: usize = 2;

pub const ACTION_DROP: u8 = 0;
pub const ACTION_ACCEPT: u8 = 1;

macro_rules! named_codes {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $value:literal => $text:literal,)* } max = $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $($variant = $value,)*
        }

        impl $name {
            /// Number of codes: the length of arrays indexed by them.
            pub const COUNT: usize = $max;
            pub const ALL: [$name; $max] = [$($name::$variant,)*];

            pub fn from_u8(value: u8) -> Option<$name> {
                match value {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The word operators see in counters and logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_codes!(
    /// `enum sg_reason`: why a packet got its verdict.
    Reason {
        AcceptRule = 0 => "accept-rule",
        AcceptEstablished = 1 => "accept-established",
        AcceptReply = 2 => "accept-reply",
        AcceptRelated = 3 => "accept-related",
        AcceptFragment = 4 => "accept-fragment",
        AcceptImplicit = 5 => "accept-implicit",
        PassNonIp = 6 => "pass-non-ip",
        DropRule = 7 => "drop-rule",
        DropDefault = 8 => "drop-default",
        DropMalformed = 9 => "drop-malformed",
        DropFragment = 10 => "drop-fragment",
        DropNoPolicy = 11 => "drop-no-policy",
        DropRevoked = 12 => "drop-revoked",
        DropUnsupported = 13 => "drop-unsupported",
    } max = 14
);

impl Reason {
    pub fn is_accept(self) -> bool {
        matches!(
            self,
            Reason::AcceptRule
                | Reason::AcceptEstablished
                | Reason::AcceptReply
                | Reason::AcceptRelated
                | Reason::AcceptFragment
                | Reason::AcceptImplicit
                | Reason::PassNonIp
        )
    }
}

named_codes!(
    /// `enum sg_ct_state`.
    CtState {
        New = 0 => "new",
        Replied = 1 => "replied",
        TcpSynSent = 2 => "syn-sent",
        TcpSynRecv = 3 => "syn-recv",
        TcpEstablished = 4 => "established",
        TcpFinWait = 5 => "fin-wait",
        TcpClosing = 6 => "closing",
        TcpClosed = 7 => "closed",
    } max = 8
);

named_codes!(
    /// `enum sg_ct_timeout`: indexes [`Config::ct_timeout_ns`].
    CtTimeout {
        TcpSyn = 0 => "tcp-syn",
        TcpEstablished = 1 => "tcp-established",
        TcpClosing = 2 => "tcp-closing",
        TcpClosed = 3 => "tcp-closed",
        Udp = 4 => "udp",
        UdpStream = 5 => "udp-stream",
        Icmp = 6 => "icmp",
        Other = 7 => "other",
        Fragment = 8 => "fragment",
    } max = 9
);

/// Marks a type as plain old data for aya's map accessors.
///
/// # Safety
/// Only for `#[repr(C)]` structs of integers and integer arrays with
/// explicit padding: every bit pattern is valid and there are no holes.
macro_rules! pod {
    ($($ty:ty),* $(,)?) => {
        // SAFETY: see the macro's doc: repr(C), integers only, no implicit padding.
        $(unsafe impl aya::Pod for $ty {})*
    };
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub pad: u16,
    /// Network byte order.
    pub local_port: u16,
    /// Network byte order.
    pub remote_port: u16,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

impl CtKey {
    /// The key the programs use for a flow seen from the VM: zone =
    /// `ifindex`, ports in host order here (stored in network order), IPv4
    /// addresses in the first four of the sixteen bytes. Portless
    /// protocols use port 0; ICMP echo uses the echo id for both.
    pub fn new(
        ifindex: u32,
        proto: u8,
        local: IpAddr,
        local_port: u16,
        remote: IpAddr,
        remote_port: u16,
    ) -> CtKey {
        CtKey {
            ifindex,
            family: if local.is_ipv6() { AF_INET6 } else { AF_INET },
            proto,
            pad: 0,
            local_port: local_port.to_be(),
            remote_port: remote_port.to_be(),
            local_addr: addr_bytes(local),
            remote_addr: addr_bytes(remote),
        }
    }

    pub fn local(&self) -> IpAddr {
        bytes_addr(self.family, self.local_addr)
    }

    pub fn remote(&self) -> IpAddr {
        bytes_addr(self.family, self.remote_addr)
    }

    /// Host byte order.
    pub fn local_port(&self) -> u16 {
        u16::from_be(self.local_port)
    }

    /// Host byte order.
    pub fn remote_port(&self) -> u16 {
        u16::from_be(self.remote_port)
    }
}

fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

fn bytes_addr(family: u8, bytes: [u8; 16]) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub created_ns: u64,
    pub expires_ns: u64,
    pub packets: [u64; DIR_MAX],
    pub bytes: [u64; DIR_MAX],
    pub table: u32,
    pub rule_pos: u32,
    pub origin_dir: u8,
    pub state: u8,
    pub flags: u8,
    pub pad: [u8; 5],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub ifindex: u32,
    pub id: u32,
    pub family: u8,
    pub proto: u8,
    pub dir: u8,
    pub pad: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragEntry {
    pub expires_ns: u64,
}

/// The data part of `struct sg_v4_key` (aya's `lpm_trie::Key` adds the
/// leading `prefixlen`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V4KeyData {
    pub table: u32,
    pub addr: [u8; 4],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct V6KeyData {
    pub table: u32,
    pub addr: [u8; 16],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct L4KeyData {
    pub table: u32,
    pub proto: u8,
    /// Network byte order.
    pub port: [u8; 2],
    pub pad: u8,
}

/// Bits of an LPM key that the table id takes; the prefix proper follows.
pub const LPM_TABLE_BITS: u32 = 32;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClassRef {
    pub class_id: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassKey {
    pub table: u32,
    pub class_id: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleSetBits {
    pub summary: u64,
    pub words: [u64; RULESET_WORDS],
}

impl Default for RuleSetBits {
    fn default() -> Self {
        RuleSetBits {
            summary: 0,
            words: [0; RULESET_WORDS],
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    pub table: u32,
    pub pos: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RuleMeta {
    pub rule_uid: u32,
    pub action: u8,
    pub pad: [u8; 3],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Iface {
    pub table: [u32; DIR_MAX],
    pub flags: u32,
    pub instance_uid: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleCounterKey {
    pub ifindex: u32,
    pub rule_uid: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounter {
    pub packets: u64,
    pub bytes: u64,
    pub last_hit_ns: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceStatsKey {
    pub ifindex: u32,
    pub dir: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceStats {
    pub packets: [u64; Reason::COUNT],
    pub bytes: [u64; Reason::COUNT],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    pub ct_timeout_ns: [u64; CtTimeout::COUNT],
    pub clock_offset_ns: u64,
}

/// `enum sg_abi`: the version of every pinned layout (see [`Meta`]).
pub const ABI_VERSION: u32 = 2;
pub const META_SOCKET_LEN: usize = 108;

/// `struct sg_meta`: owned by userspace, never read by the programs.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub abi_version: u32,
    pub pad: u32,
    pub next_table_id: u64,
    pub generation: u64,
    pub owner_token: u64,
    pub owner_pid: u64,
    pub owner_started_ms: u64,
    pub owner_socket: [u8; META_SOCKET_LEN],
    pub pad2: u32,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            abi_version: 0,
            pad: 0,
            next_table_id: 0,
            generation: 0,
            owner_token: 0,
            owner_pid: 0,
            owner_started_ms: 0,
            owner_socket: [0; META_SOCKET_LEN],
            pad2: 0,
        }
    }
}

impl Meta {
    /// The owner's socket path as written (NUL padding removed).
    pub fn socket(&self) -> String {
        let end = self
            .owner_socket
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(META_SOCKET_LEN);
        String::from_utf8_lossy(&self.owner_socket[..end]).into_owned()
    }

    /// Stores `path`, cut to fit with room for a NUL.
    pub fn set_socket(&mut self, path: &str) {
        self.owner_socket = [0; META_SOCKET_LEN];
        let bytes = path.as_bytes();
        let n = bytes.len().min(META_SOCKET_LEN - 1);
        self.owner_socket[..n].copy_from_slice(&bytes[..n]);
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    pub magic: u32,
    pub rule_pos: u32,
    pub table: u32,
    pub reason: u8,
    pub action: u8,
    pub dir: u8,
    pub pad: u8,
}

impl Decision {
    pub const SIZE: usize = size_of::<Decision>();

    /// Reads a decision from the bytes a program wrote; `None` unless the
    /// magic is there (the program did not report).
    pub fn from_bytes(bytes: &[u8]) -> Option<Decision> {
        let field = |at: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let magic = field(0)?;
        if magic != DECISION_MAGIC {
            return None;
        }
        Some(Decision {
            magic,
            rule_pos: field(4)?,
            table: field(8)?,
            reason: *bytes.get(12)?,
            action: *bytes.get(13)?,
            dir: *bytes.get(14)?,
            pad: *bytes.get(15)?,
        })
    }
}

pod!(
    CtKey,
    CtEntry,
    FragKey,
    FragEntry,
    V4KeyData,
    V6KeyData,
    L4KeyData,
    ClassRef,
    ClassKey,
    RuleSetBits,
    RuleKey,
    RuleMeta,
    Iface,
    RuleCounterKey,
    RuleCounter,
    IfaceStatsKey,
    IfaceStats,
    Config,
    Meta,
    Decision,
);

#[cfg(test)]
mod layout {
    //! The drift detector: every mirrored struct must have the size and
    //! field offsets that clang gave its C twin, read from the object's BTF.
    use super::*;
    use crate::btf::StructLayouts;
    use std::mem::offset_of;

    fn check(layouts: &StructLayouts, c_name: &str, size: usize, fields: &[(&str, usize)]) {
        let c = layouts
            .get(c_name)
            .unwrap_or_else(|| panic!("struct {c_name} is not in the object's BTF"));
        assert_eq!(
            c.size, size,
            "size of struct {c_name}: C says {}, Rust says {size}",
            c.size
        );
        assert_eq!(
            c.members.len(),
            fields.len(),
            "struct {c_name} has members {:?} in C; the Rust mirror lists {fields:?}",
            c.members
        );
        for (name, offset) in fields {
            let c_offset = c
                .members
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, o)| *o)
                .unwrap_or_else(|| panic!("struct {c_name} has no member {name} in C"));
            assert_eq!(
                c_offset, *offset,
                "offset of {c_name}.{name}: C says {c_offset}, Rust says {offset}"
            );
        }
    }

    macro_rules! fields {
        ($ty:ty; $($c:ident => $rust:ident),* $(,)?) => {
            &[$((stringify!($c), offset_of!($ty, $rust))),*]
        };
    }

    #[test]
    fn rust_mirrors_match_the_c_abi() {
        let layouts = StructLayouts::from_object(crate::object::BYTES)
            .unwrap_or_else(|e| panic!("reading BTF from the BPF object: {e}"));
        check(
            &layouts,
            "sg_ct_key",
            size_of::<CtKey>(),
            fields!(CtKey;
            ifindex => ifindex, family => family, proto => proto, pad => pad,
            local_port => local_port, remote_port => remote_port,
            local_addr => local_addr, remote_addr => remote_addr),
        );
        check(
            &layouts,
            "sg_ct_entry",
            size_of::<CtEntry>(),
            fields!(CtEntry;
            created_ns => created_ns, expires_ns => expires_ns, packets => packets,
            bytes => bytes, table => table, rule_pos => rule_pos, origin_dir => origin_dir,
            state => state, flags => flags, pad => pad),
        );
        check(
            &layouts,
            "sg_frag_key",
            size_of::<FragKey>(),
            fields!(FragKey;
            ifindex => ifindex, id => id, family => family, proto => proto, dir => dir,
            pad => pad, src => src, dst => dst),
        );
        check(
            &layouts,
            "sg_frag_entry",
            size_of::<FragEntry>(),
            fields!(FragEntry; expires_ns => expires_ns),
        );
        // LPM keys: the Rust side holds the data part, aya adds the u32 prefixlen.
        check(
            &layouts,
            "sg_v4_key",
            4 + size_of::<V4KeyData>(),
            &[
                ("prefixlen", 0),
                ("table", 4 + offset_of!(V4KeyData, table)),
                ("addr", 4 + offset_of!(V4KeyData, addr)),
            ],
        );
        check(
            &layouts,
            "sg_v6_key",
            4 + size_of::<V6KeyData>(),
            &[
                ("prefixlen", 0),
                ("table", 4 + offset_of!(V6KeyData, table)),
                ("addr", 4 + offset_of!(V6KeyData, addr)),
            ],
        );
        check(
            &layouts,
            "sg_l4_key",
            4 + size_of::<L4KeyData>(),
            &[
                ("prefixlen", 0),
                ("table", 4 + offset_of!(L4KeyData, table)),
                ("proto", 4 + offset_of!(L4KeyData, proto)),
                ("port", 4 + offset_of!(L4KeyData, port)),
                ("pad", 4 + offset_of!(L4KeyData, pad)),
            ],
        );
        check(
            &layouts,
            "sg_class_ref",
            size_of::<ClassRef>(),
            fields!(ClassRef; class_id => class_id),
        );
        check(
            &layouts,
            "sg_class_key",
            size_of::<ClassKey>(),
            fields!(ClassKey; table => table, class_id => class_id),
        );
        check(
            &layouts,
            "sg_ruleset",
            size_of::<RuleSetBits>(),
            fields!(RuleSetBits; summary => summary, words => words),
        );
        check(
            &layouts,
            "sg_rule_key",
            size_of::<RuleKey>(),
            fields!(RuleKey; table => table, pos => pos),
        );
        check(
            &layouts,
            "sg_rule_meta",
            size_of::<RuleMeta>(),
            fields!(RuleMeta;
            rule_uid => rule_uid, action => action, pad => pad),
        );
        check(
            &layouts,
            "sg_iface",
            size_of::<Iface>(),
            fields!(Iface;
            table => table, flags => flags, instance_uid => instance_uid),
        );
        check(
            &layouts,
            "sg_rule_counter_key",
            size_of::<RuleCounterKey>(),
            fields!(RuleCounterKey;
            ifindex => ifindex, rule_uid => rule_uid),
        );
        check(
            &layouts,
            "sg_rule_counter",
            size_of::<RuleCounter>(),
            fields!(RuleCounter;
            packets => packets, bytes => bytes, last_hit_ns => last_hit_ns),
        );
        check(
            &layouts,
            "sg_iface_stats_key",
            size_of::<IfaceStatsKey>(),
            fields!(IfaceStatsKey;
            ifindex => ifindex, dir => dir),
        );
        check(
            &layouts,
            "sg_iface_stats",
            size_of::<IfaceStats>(),
            fields!(IfaceStats;
            packets => packets, bytes => bytes),
        );
        check(
            &layouts,
            "sg_config",
            size_of::<Config>(),
            fields!(Config;
            ct_timeout_ns => ct_timeout_ns, clock_offset_ns => clock_offset_ns),
        );
        check(
            &layouts,
            "sg_meta",
            size_of::<Meta>(),
            fields!(Meta;
            abi_version => abi_version, pad => pad, next_table_id => next_table_id,
            generation => generation, owner_token => owner_token, owner_pid => owner_pid,
            owner_started_ms => owner_started_ms, owner_socket => owner_socket, pad2 => pad2),
        );
        check(
            &layouts,
            "sg_decision",
            size_of::<Decision>(),
            fields!(Decision;
            magic => magic, rule_pos => rule_pos, table => table, reason => reason,
            action => action, dir => dir, pad => pad),
        );
    }

    #[test]
    fn enum_values_match_the_c_abi() {
        let layouts = StructLayouts::from_object(crate::object::BYTES)
            .unwrap_or_else(|e| panic!("reading BTF from the BPF object: {e}"));
        let check_enum = |c_name: &str, rust: &[(&str, u8)], max: (&str, usize)| {
            let values = layouts
                .enum_values(c_name)
                .unwrap_or_else(|| panic!("enum {c_name} is not in the object's BTF"));
            for (name, value) in rust
                .iter()
                .map(|(n, v)| (*n, i64::from(*v)))
                .chain([(max.0, max.1 as i64)])
            {
                let c_value = values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("enum {c_name} has no {name}"));
                assert_eq!(
                    c_value, value,
                    "{c_name}::{name}: C says {c_value}, Rust says {value}"
                );
            }
        };
        let reasons: Vec<(String, u8)> = Reason::ALL
            .iter()
            .map(|r| {
                (
                    format!("SG_REASON_{}", r.as_str().replace('-', "_").to_uppercase()),
                    *r as u8,
                )
            })
            .collect();
        let reasons: Vec<(&str, u8)> = reasons.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        check_enum("sg_reason", &reasons, ("SG_REASON_MAX", Reason::COUNT));
        let timeouts: Vec<(String, u8)> = CtTimeout::ALL
            .iter()
            .map(|t| {
                (
                    format!(
                        "SG_CT_TIMEOUT_{}",
                        t.as_str().replace('-', "_").to_uppercase()
                    ),
                    *t as u8,
                )
            })
            .collect();
        let timeouts: Vec<(&str, u8)> = timeouts.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        check_enum(
            "sg_ct_timeout",
            &timeouts,
            ("SG_CT_TIMEOUT_MAX", CtTimeout::COUNT),
        );
        let states = [
            ("SG_CT_NEW", CtState::New),
            ("SG_CT_REPLIED", CtState::Replied),
            ("SG_CT_TCP_SYN_SENT", CtState::TcpSynSent),
            ("SG_CT_TCP_SYN_RECV", CtState::TcpSynRecv),
            ("SG_CT_TCP_ESTABLISHED", CtState::TcpEstablished),
            ("SG_CT_TCP_FIN_WAIT", CtState::TcpFinWait),
            ("SG_CT_TCP_CLOSING", CtState::TcpClosing),
            ("SG_CT_TCP_CLOSED", CtState::TcpClosed),
        ];
        let states: Vec<(&str, u8)> = states.iter().map(|(n, s)| (*n, *s as u8)).collect();
        check_enum("sg_ct_state", &states, ("SG_CT_STATE_MAX", CtState::COUNT));
        check_enum(
            "sg_direction",
            &[
                ("SG_DIR_INGRESS", DIR_INGRESS),
                ("SG_DIR_EGRESS", DIR_EGRESS),
            ],
            ("SG_DIR_MAX", DIR_MAX),
        );
        let abi = layouts
            .enum_values("sg_abi")
            .unwrap_or_else(|| panic!("enum sg_abi is not in the object's BTF"));
        for (name, value) in [
            ("SG_ABI_VERSION", i64::from(ABI_VERSION)),
            ("SG_META_SOCKET_LEN", META_SOCKET_LEN as i64),
        ] {
            assert!(
                abi.iter().any(|(n, v)| n == name && *v == value),
                "sg_abi::{name}: C says {abi:?}, Rust says {value}"
            );
        }
        check_enum(
            "sg_action",
            &[
                ("SG_ACTION_DROP", ACTION_DROP),
                ("SG_ACTION_ACCEPT", ACTION_ACCEPT),
            ],
            ("SG_ACTION_ACCEPT", 1),
        );
    }
}
