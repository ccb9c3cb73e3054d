//! The compiled policy: what one instance enforces, per direction, as one
//! flat first-match list with every reference resolved.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use secgroup_model::{Action, Direction, Enforcement, InstanceId, LogMode, MacAddr, Service, SgId};

use crate::key::RuleKey;
use crate::port_security::PortSecurity;

/// Where an effective rule came from: rule `index` (0-based) of
/// `direction` in security group `sg`, known there by `key`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleOrigin {
    pub sg: SgId,
    pub direction: Direction,
    /// The rule's position in its group's list: for display only, since
    /// it changes whenever a rule is inserted above.
    pub index: usize,
    /// The rule's identity within `sg` and `direction`, which stays when
    /// other rules are inserted, removed or moved: what hit counters follow.
    pub key: RuleKey,
}

/// One rule of an instance's concatenated list, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EffectiveRule {
    pub origin: RuleOrigin,
    pub action: Action,
    /// The rule matches a packet whose protocol/port any of these match.
    /// More than one when the rule names a service set (group). Empty when
    /// that set is empty: the rule then matches nothing.
    pub services: Vec<Service>,
    /// The rule matches a packet whose remote address lies in any of these
    /// prefixes: literals, ranges split into CIDRs, address sets and
    /// security-group members resolved. Sorted, without duplicates or
    /// prefixes covered by another. Empty (a group with no members) matches
    /// nothing.
    pub remotes: Vec<IpNet>,
    /// The rule's `"log"`: the packets it decides are reported as events.
    pub log: bool,
}

/// An ordered first-match list for one instance and direction: the rules of
/// its security groups concatenated in binding order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RuleList {
    pub rules: Vec<EffectiveRule>,
}

/// What one instance enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePolicy {
    pub id: InstanceId,
    /// `None` for instances on other hosts (they only lend their addresses
    /// to security-group references).
    pub interface: Option<String>,
    pub mac: Option<MacAddr>,
    pub ips: Vec<IpAddr>,
    pub security_groups: Vec<SgId>,
    /// What it may send at all, checked before `egress` (enforced only on
    /// this host's instances).
    pub port_security: PortSecurity,
    /// Which verdicts are reported besides those of logged rules.
    pub log: LogMode,
    /// Whether rule and default drops are enforced or only reported
    /// (audit); port security is enforced either way.
    pub enforcement: Enforcement,
    pub ingress: RuleList,
    pub egress: RuleList,
}

impl InstancePolicy {
    pub fn rules(&self, direction: Direction) -> &RuleList {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// One security group's rules, compiled once and copied into the list of
/// every instance bound to it. Kept so that a reload can be diffed group by
/// group and a group can be shown on its own, bound or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPolicy {
    pub id: SgId,
    pub name: Option<String>,
    pub ingress: RuleList,
    pub egress: RuleList,
}

impl GroupPolicy {
    pub fn rules(&self, direction: Direction) -> &RuleList {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// The compiled policy of the whole rules directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub instances: BTreeMap<InstanceId, InstancePolicy>,
    /// Every security group, bound to an instance or not.
    pub security_groups: BTreeMap<SgId, GroupPolicy>,
}
