//! `#[repr(C)]` mirrors of `ebpf/include/abi.h`, the one contract between the
//! BPF programs and userspace. The `layout` test compares every struct here
//! with the BTF clang emitted for the C side, so the two cannot drift apart
//! silently.

use std::fmt;

use secgroup_policy::SpoofReason;

pub const MAX_RULES: usize = 4096;
pub const RULESET_WORDS: usize = MAX_RULES / 64;
pub const NO_RULE: u32 = u32::MAX;
pub const NO_TABLE: u32 = 0;
pub const DECISION_MAGIC: u32 = 0x5347_4456;
/// Asks a test run for its decision report (abi.h `SG_DECISION_REQUEST`).
pub const DECISION_REQUEST: u32 = 0x5347_4452;

pub const IFACE_F_KEEP_ESTABLISHED: u32 = 1 << 0;
pub const IFACE_F_GUARD: u32 = 1 << 1;
/// Port security on: what the VM sends is checked before its egress rules.
pub const IFACE_F_PORT_SECURITY: u32 = 1 << 2;
/// [`Iface::mac`] is the instance's MAC; without it, any source MAC.
pub const IFACE_F_HAS_MAC: u32 = 1 << 3;
/// The set holds sources allowed from any MAC.
pub const IFACE_F_PSEC_ANY_MAC: u32 = 1 << 4;
/// Every drop and would-drop of the interface is an event.
pub const IFACE_F_LOG_DROPS: u32 = 1 << 5;
/// Every drop, would-drop and new flow a rule accepted is an event.
pub const IFACE_F_LOG_ALL: u32 = 1 << 6;
/// Audit: what the rules or the default would drop passes, tracked.
pub const IFACE_F_AUDIT: u32 = 1 << 7;
/// [`Iface::own_v4`] is a source the port-security set allows from
/// [`Iface::mac`] (any MAC without [`IFACE_F_HAS_MAC`]): compared, not
/// looked up.
pub const IFACE_F_OWN_V4: u32 = 1 << 8;
/// The same for [`Iface::own_v6`].
pub const IFACE_F_OWN_V6: u32 = 1 << 9;
/// Interface counter slots (`sg_slot_stats` holds `MAX_IFACE_SLOTS *
/// DIR_MAX` entries); interfaces beyond count by ifindex in `sg_if_stats`.
pub const MAX_IFACE_SLOTS: u32 = 4096;
/// [`Iface::slot`] of an interface without one.
pub const NO_SLOT: u32 = u32::MAX;

/// `sg_rule_meta.flags`: a packet this rule decides is an event.
pub const RULE_F_LOG: u8 = 1 << 0;

/// No port-security set (abi.h `SG_NO_PSEC_SET`).
pub const NO_PSEC_SET: u32 = 0;
/// `sg_psec_v4_key.any`: the source is allowed only from the key's MAC.
pub const PSEC_BOUND: u8 = 0;
/// `sg_psec_v4_key.any`: the source is allowed from any MAC (zero in the key).
pub const PSEC_ANY_MAC: u8 = 1;
/// Bits of a port-security LPM key before the address prefix: set, any,
/// pad, MAC.
pub const PSEC_KEY_BITS: u32 = 96;

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
        DropSpoofedMac = 14 => "drop-spoofed-mac",
        DropSpoofedIp = 15 => "drop-spoofed-ip",
        DropSpoofedArp = 16 => "drop-spoofed-arp",
        DropSpoofedNd = 17 => "drop-spoofed-nd",
        DropRouterAdvert = 18 => "drop-router-advert",
        DropDhcpServer = 19 => "drop-dhcp-server",
        DropEthertype = 20 => "drop-ethertype",
        WouldDropRule = 21 => "would-drop-rule",
        WouldDropDefault = 22 => "would-drop-default",
        WouldDropRevoked = 23 => "would-drop-revoked",
    } max = 24
);

impl Reason {
    /// Whether the packet passed (would-drops pass: audit mode).
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
                | Reason::WouldDropRule
                | Reason::WouldDropDefault
                | Reason::WouldDropRevoked
        )
    }

    /// Audit mode passed what enforcement would have dropped.
    pub fn is_would_drop(self) -> bool {
        matches!(
            self,
            Reason::WouldDropRule | Reason::WouldDropDefault | Reason::WouldDropRevoked
        )
    }

    /// What enforcement decides: a would-drop's drop reason, else itself.
    pub fn enforced(self) -> Reason {
        match self {
            Reason::WouldDropRule => Reason::DropRule,
            Reason::WouldDropDefault => Reason::DropDefault,
            Reason::WouldDropRevoked => Reason::DropRevoked,
            other => other,
        }
    }

    /// The port-security reason this is, if it is one.
    pub fn spoof(self) -> Option<SpoofReason> {
        SpoofReason::ALL
            .into_iter()
            .find(|s| Reason::from(*s) == self)
    }
}

impl From<SpoofReason> for Reason {
    /// The reason the data plane counts a port-security drop under; its
    /// name is [`SpoofReason::as_str`].
    fn from(reason: SpoofReason) -> Reason {
        match reason {
            SpoofReason::SpoofedMac => Reason::DropSpoofedMac,
            SpoofReason::SpoofedIp => Reason::DropSpoofedIp,
            SpoofReason::SpoofedArp => Reason::DropSpoofedArp,
            SpoofReason::SpoofedNd => Reason::DropSpoofedNd,
            SpoofReason::RouterAdvert => Reason::DropRouterAdvert,
            SpoofReason::DhcpServer => Reason::DropDhcpServer,
            SpoofReason::Ethertype => Reason::DropEthertype,
        }
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
/// In every `sg_l4` value of a table, above the class id: the table has
/// IPv4 host entries (`sg_v4_hosts`); without it the program skips that
/// lookup.
pub const L4_F_V4_HOSTS: u32 = 1 << 30;
/// The same for IPv6 (`sg_v6_hosts`).
pub const L4_F_V6_HOSTS: u32 = 1 << 29;
/// The class id part of an `sg_l4` value.
pub const CLASS_ID_MASK: u32 = (1 << 29) - 1;

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
    /// [`RULE_F_LOG`].
    pub flags: u8,
    pub pad: [u8; 2],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Iface {
    pub table: [u32; DIR_MAX],
    pub flags: u32,
    pub instance_uid: u32,
    /// The port-security set, or [`NO_PSEC_SET`].
    pub psec_set: u32,
    /// Index of the interface's verdict counters in `sg_slot_stats`
    /// (`slot * DIR_MAX + dir`), below [`MAX_IFACE_SLOTS`], or [`NO_SLOT`].
    pub slot: u32,
    /// With [`IFACE_F_HAS_MAC`]: the instance's MAC.
    pub mac: [u8; 6],
    pub pad: [u8; 2],
    /// With [`IFACE_F_OWN_V6`]: an IPv6 source the set allows from `mac`.
    pub own_v6: [u8; 16],
    /// With [`IFACE_F_OWN_V4`]: an IPv4 source the set allows from `mac`.
    pub own_v4: [u8; 4],
}

/// The data part of `struct sg_psec_v4_key` (aya adds `prefixlen`): an
/// allowed IPv4 source of a port-security set, with its MAC in the key.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PsecV4KeyData {
    pub set: u32,
    /// [`PSEC_BOUND`] or [`PSEC_ANY_MAC`].
    pub any: u8,
    pub pad: u8,
    pub mac: [u8; 6],
    pub addr: [u8; 4],
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PsecV6KeyData {
    pub set: u32,
    pub any: u8,
    pub pad: u8,
    pub mac: [u8; 6],
    pub addr: [u8; 16],
}

/// `struct sg_psec_mac_key`: a MAC other than the instance's that a set
/// allows.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PsecMacKey {
    pub set: u32,
    pub mac: [u8; 6],
    pub pad: [u8; 2],
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
    /// Events per second per interface; 0: [`EVENT_RATE_DEFAULT`].
    pub event_rate: u32,
    /// Events at once per interface; 0: [`EVENT_BURST_DEFAULT`].
    pub event_burst: u32,
}

/// `enum sg_abi`: the version of every pinned layout (see [`Meta`]).
pub const ABI_VERSION: u32 = 5;
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
    Ct4Key,
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
    PsecV4KeyData,
    PsecV6KeyData,
    PsecMacKey,
    RuleCounterKey,
    RuleCounter,
    IfaceStatsKey,
    IfaceStats,
    Config,
    Meta,
    Decision,
);

mod conntrack;
mod events;
pub use conntrack::*;
pub use events::*;

#[cfg(test)]
mod layout;
