//! The validated rule model.
//!
//! Every value here has passed validation: ids are well formed and unique,
//! references resolve, ranges are ordered, CIDRs carry no host bits. Types are
//! built so that an invalid state cannot be expressed (a [`PortRange`] with
//! `lo > hi` cannot be constructed). Nothing in this module knows about JSON;
//! the raw, serde-facing mirror of the file format lives in `raw` and is
//! turned into these types by `validate`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

/// Which way traffic flows, seen from the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Traffic arriving at the instance; `remote` is the packet's source.
    Ingress,
    /// Traffic leaving the instance; `remote` is the packet's destination.
    Egress,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a matching rule does with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Drop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Drop => "drop",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// IP protocol numbers the file format names.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
}

/// The protocol a rule or service matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Every IP protocol (`"all"`).
    All,
    /// One IP protocol number; `tcp`, `udp`, `icmp`, `icmpv6` and `gre` are
    /// stored as their numbers (6, 17, 1, 58, 47).
    Number(u8),
}

impl Protocol {
    /// Only TCP and UDP rules may name ports.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Number(proto::TCP | proto::UDP))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::All => f.write_str("all"),
            Protocol::Number(proto::TCP) => f.write_str("tcp"),
            Protocol::Number(proto::UDP) => f.write_str("udp"),
            Protocol::Number(proto::ICMP) => f.write_str("icmp"),
            Protocol::Number(proto::ICMPV6) => f.write_str("icmpv6"),
            Protocol::Number(proto::GRE) => f.write_str("gre"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

/// An inclusive destination-port range, `1 <= lo <= hi <= 65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

impl PortRange {
    /// `None` when the range is empty, reversed or contains port 0.
    pub fn new(lo: u16, hi: u16) -> Option<PortRange> {
        (lo >= 1 && lo <= hi).then_some(PortRange { lo, hi })
    }

    pub fn single(port: u16) -> Option<PortRange> {
        PortRange::new(port, port)
    }

    pub fn lo(self) -> u16 {
        self.lo
    }

    pub fn hi(self) -> u16 {
        self.hi
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Destination ports a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ports {
    /// Every port (`"all"`, the default, and the only value for non-TCP/UDP).
    All,
    /// A non-empty list of ranges, in the order written.
    List(Vec<PortRange>),
}

impl Ports {
    pub fn contains(&self, port: u16) -> bool {
        match self {
            Ports::All => true,
            Ports::List(ranges) => ranges.iter().any(|r| r.contains(port)),
        }
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::All => f.write_str("all"),
            Ports::List(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// A protocol with its ports: one element of a rule's or service set's
/// traffic. Invariant: `ports` is `Ports::All` unless `protocol.has_ports()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    pub protocol: Protocol,
    pub ports: Ports,
}

/// An inclusive address range `first-last` of one family, `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange {
    first: IpAddr,
    last: IpAddr,
}

impl AddressRange {
    /// `None` when the ends are of different families or reversed.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<AddressRange> {
        let ordered = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
            (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
            _ => false,
        };
        ordered.then_some(AddressRange { first, last })
    }

    pub fn first(self) -> IpAddr {
        self.first
    }

    pub fn last(self) -> IpAddr {
        self.last
    }

    pub fn contains(self, addr: IpAddr) -> bool {
        match (self.first, self.last, addr) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// One entry of an address set, or a literal remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressBlock {
    /// A CIDR without host bits; a bare address is a /32 or /128.
    Net(IpNet),
    Range(AddressRange),
}

impl AddressBlock {
    pub fn contains(self, addr: IpAddr) -> bool {
        match self {
            AddressBlock::Net(net) => net.contains(&addr),
            AddressBlock::Range(range) => range.contains(addr),
        }
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressBlock::Net(net) => write!(f, "{net}"),
            AddressBlock::Range(range) => write!(f, "{range}"),
        }
    }
}

// Ids are shared strings (`Arc<str>`), not owned ones: every reload
// copies them into the merged rule set's keys, each instance's bindings
// and every compiled rule's origin (220,000 at a thousand VMs), where a
// clone is now a reference count, not an allocation.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// `None` unless `id` is `PREFIX` followed by one or more of
            /// `[A-Za-z0-9_.-]`, at most 64 bytes in all.
            pub fn new(id: &str) -> Option<$name> {
                let rest = id.strip_prefix($prefix)?;
                let valid = !rest.is_empty()
                    && id.len() <= 64
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                valid.then(|| $name(Arc::from(id)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A security group id, `sg-…`.
    SgId,
    "sg-"
);
id_type!(
    /// An address set id, `ipm-…`.
    AddressSetId,
    "ipm-"
);
id_type!(
    /// An address set group id, `ipmg-…`.
    AddressSetGroupId,
    "ipmg-"
);
id_type!(
    /// A service set id, `ppm-…`.
    ServiceSetId,
    "ppm-"
);
id_type!(
    /// A service set group id, `ppmg-…`.
    ServiceSetGroupId,
    "ppmg-"
);

/// An instance id. Free-form (`ins-…` by convention): instances come from
/// the cloud controller's inventory, not from us.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// `None` unless `id` is 1–64 bytes of `[A-Za-z0-9_.-]`.
    pub fn new(id: &str) -> Option<InstanceId> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        valid.then(|| InstanceId(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule's own id (`"id"` in a native rule): what its hit counters follow
/// when rules are inserted, moved or edited. Unique within its group and
/// direction; free-form, without a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(Arc<str>);

impl RuleId {
    /// `None` unless `id` is 1–64 bytes of `[A-Za-z0-9_.-]`.
    pub fn new(id: &str) -> Option<RuleId> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        valid.then(|| RuleId(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a rule talks to: the source of an ingress packet, the destination of
/// an egress packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Remote {
    /// A literal CIDR, address or range (`0.0.0.0/0` matches IPv4 only).
    Block(AddressBlock),
    /// Both `0.0.0.0/0` and `::/0`: what an omitted `remote` means.
    Anywhere,
    /// The addresses of every instance bound to this group.
    SecurityGroup(SgId),
    AddressSet(AddressSetId),
    AddressSetGroup(AddressSetGroupId),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Block(block) => write!(f, "{block}"),
            Remote::Anywhere => f.write_str("anywhere"),
            Remote::SecurityGroup(id) => write!(f, "{id}"),
            Remote::AddressSet(id) => write!(f, "{id}"),
            Remote::AddressSetGroup(id) => write!(f, "{id}"),
        }
    }
}

/// What traffic a rule matches besides its remote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Traffic {
    /// `protocol` + `port` written in the rule.
    Service(Service),
    ServiceSet(ServiceSetId),
    ServiceSetGroup(ServiceSetGroupId),
}

/// One line of a security group's ingress or egress list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The rule's own id, if the file gives one. Without one, a rule is
    /// known by its content (see `secgroup_policy::RuleKey`).
    pub id: Option<RuleId>,
    pub action: Action,
    pub traffic: Traffic,
    pub remote: Remote,
    pub description: Option<String>,
    /// Whether the packets this rule decides are reported as verdict
    /// events (`"log": true`; default `false`). Not part of the rule's
    /// identity: turning logging on keeps its counters.
    pub log: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: SgId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

impl SecurityGroup {
    pub fn rules(&self, direction: Direction) -> &[Rule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// A MAC address, as written `52:54:00:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An extra source an instance may send from besides its own `ips`: a
/// VRRP or keepalived virtual address, a range it routes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedAddressPair {
    /// An address (a /32 or /128) or a CIDR without host bits.
    pub net: IpNet,
    /// The MAC the VM must send these addresses from; `None`: the
    /// instance's own `mac`.
    pub mac: Option<MacAddr>,
}

/// A VM. With `interface` it lives on this host and is enforced here;
/// without, it lives elsewhere and only lends its addresses to
/// security-group references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    /// The hypervisor it runs on, as written (`"host"`); none: the host
    /// of the rules directory.
    pub host: Option<String>,
    /// Its interface on this host; `None` for an instance elsewhere
    /// (another host's, as the load's `HostView` says, or none at all).
    pub interface: Option<String>,
    pub mac: Option<MacAddr>,
    /// Unique among the instances of this host (those with an
    /// `interface`).
    pub ips: Vec<IpAddr>,
    /// Extra sources it may send from; no two are the same address with
    /// the same MAC. Not lent to security-group references.
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    /// Whether what the VM sends is checked against its MAC and addresses
    /// (anti-spoofing) before its egress rules; `true` unless the file says
    /// `"port_security": false`. Only instances on this host are enforced.
    pub port_security: bool,
    /// In binding order, never empty.
    pub security_groups: Vec<SgId>,
    /// Which of its verdicts are reported as events besides those of
    /// rules with `"log": true`.
    pub log: LogMode,
    /// Whether its rules' drops are enforced or only reported.
    pub enforcement: Enforcement,
}

/// An instance's `"log"`: which verdicts are reported as events, on top
/// of those decided by a rule with `"log": true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogMode {
    /// `"none"`: only logged rules.
    #[default]
    None,
    /// `"drops"`: every drop (by a rule, the default, or port security)
    /// and every would-drop of audit mode.
    Drops,
    /// `"all"`: every verdict of a new flow and every drop.
    All,
}

impl LogMode {
    pub const ALL: [LogMode; 3] = [LogMode::None, LogMode::Drops, LogMode::All];

    /// The word of the rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogMode::None => "none",
            LogMode::Drops => "drops",
            LogMode::All => "all",
        }
    }

    pub fn parse(word: &str) -> Option<LogMode> {
        LogMode::ALL.into_iter().find(|mode| mode.as_str() == word)
    }

    /// Whether a drop (or would-drop) is reported whatever rule decided.
    pub fn logs_drops(self) -> bool {
        self != LogMode::None
    }
}

impl fmt::Display for LogMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An instance's `"enforcement"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Enforcement {
    /// `"enforce"`: drops drop.
    #[default]
    Enforce,
    /// `"audit"`: rules and the default are evaluated as usual, but what
    /// they would drop passes (and is reported as a would-drop). Port
    /// security is not audited: spoofed frames are still dropped.
    Audit,
}

impl Enforcement {
    pub const ALL: [Enforcement; 2] = [Enforcement::Enforce, Enforcement::Audit];

    /// The word of the rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::Audit => "audit",
        }
    }

    pub fn parse(word: &str) -> Option<Enforcement> {
        Enforcement::ALL.into_iter().find(|e| e.as_str() == word)
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSet {
    pub id: AddressSetId,
    pub addresses: Vec<AddressBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSetGroup {
    pub id: AddressSetGroupId,
    pub sets: Vec<AddressSetId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSet {
    pub id: ServiceSetId,
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSetGroup {
    pub id: ServiceSetGroupId,
    pub sets: Vec<ServiceSetId>,
}

/// Everything the rules directory defines, merged and validated: every id
/// is unique and every reference resolves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub security_groups: BTreeMap<SgId, SecurityGroup>,
    pub instances: BTreeMap<InstanceId, Instance>,
    pub address_sets: BTreeMap<AddressSetId, AddressSet>,
    pub address_set_groups: BTreeMap<AddressSetGroupId, AddressSetGroup>,
    pub service_sets: BTreeMap<ServiceSetId, ServiceSet>,
    pub service_set_groups: BTreeMap<ServiceSetGroupId, ServiceSetGroup>,
}
