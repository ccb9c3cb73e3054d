//! The compiled policy: what one instance enforces, per direction, as one
//! flat first-match list with every reference resolved.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

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
///
/// The rules are shared: a clone is a pointer, and a list compared with a
/// clone of itself is equal at once (the pointers are compared first).
/// That is what makes a reload of one file at a thousand VMs
/// cheap: the instances it does not touch keep their lists' allocations
/// (see [`recompile`](crate::recompile)), and the data plane, which keeps
/// a clone of every list it wrote a table for, recognises them without
/// comparing 110 rules each.
#[derive(Debug, Clone, Default, Eq)]
pub struct RuleList {
    pub rules: Arc<[EffectiveRule]>,
}

impl PartialEq for RuleList {
    /// The pointer first: `Arc`'s own equality skips that for slices.
    fn eq(&self, other: &RuleList) -> bool {
        self.same_allocation(other) || self.rules == other.rules
    }
}

impl From<Vec<EffectiveRule>> for RuleList {
    fn from(rules: Vec<EffectiveRule>) -> RuleList {
        RuleList {
            rules: rules.into(),
        }
    }
}

impl RuleList {
    /// Whether `self` and `other` share their rules' allocation (then they
    /// are equal; unequal pointers say nothing).
    pub fn same_allocation(&self, other: &RuleList) -> bool {
        Arc::ptr_eq(&self.rules, &other.rules)
    }

    /// The rules to change in place: copied first if shared.
    pub fn rules_mut(&mut self) -> &mut [EffectiveRule] {
        Arc::make_mut(&mut self.rules)
    }
}

impl Hash for RuleList {
    /// Hashes where each rule comes from and its action, not its resolved
    /// prefixes and services: equal lists have equal origins, so this
    /// agrees with `Eq`, and lists that differ almost always differ there
    /// (other groups, other rules). A group's id is hashed once per run of
    /// its rules. The data plane finds a list's table by hashing the list,
    /// for every binding of every apply: hashing whole rules was 30 ms of
    /// a one-VM change at a thousand VMs.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.rules.len());
        let mut group: Option<(&SgId, Direction)> = None;
        for rule in self.rules.iter() {
            let here = (&rule.origin.sg, rule.origin.direction);
            if group != Some(here) {
                here.hash(state);
                group = Some(here);
            }
            let accept = u64::from(rule.action == Action::Accept);
            state.write_u64(((rule.origin.index as u64) << 1) | accept);
        }
    }
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
///
/// Instances and groups are shared ([`Shared`]): a reload that recompiles
/// a few of them ([`recompile`](crate::recompile)) keeps the others of the
/// previous policy, and comparing the two is cheap where they are the
/// same allocation (`Arc`'s equality tries the pointer first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub instances: Shared<InstanceId, InstancePolicy>,
    /// Every security group, bound to an instance or not.
    pub security_groups: Shared<SgId, GroupPolicy>,
}

/// A map whose values are shared (`Arc`) between policies: what
/// [`recompile`](crate::recompile) did not compile again is the previous
/// policy's allocation. Reads see plain values, as in a `BTreeMap<K, V>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared<K, V>(BTreeMap<K, Arc<V>>);

impl<K, V> Default for Shared<K, V> {
    fn default() -> Self {
        Shared(BTreeMap::new())
    }
}

impl<K: Ord, V> Shared<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key).map(Arc::as_ref)
    }

    /// The value's allocation, to tell whether two policies share it.
    pub fn get_shared(&self, key: &K) -> Option<&Arc<V>> {
        self.0.get(key)
    }

    /// Whether both maps hold the same allocation for `key`: then its
    /// value is the same without comparing.
    pub fn shares(&self, other: &Shared<K, V>, key: &K) -> bool {
        match (self.0.get(key), other.0.get(key)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }

    pub fn insert(&mut self, key: K, value: V) {
        self.0.insert(key, Arc::new(value));
    }

    pub fn insert_shared(&mut self, key: K, value: Arc<V>) {
        self.0.insert(key, value);
    }

    pub fn remove(&mut self, key: &K) -> Option<Arc<V>> {
        self.0.remove(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.0.keys()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.0.values().map(Arc::as_ref)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.0.iter().map(|(k, v)| (k, v.as_ref()))
    }

    /// Each key with its value's allocation (what a lint's memo keys on).
    pub fn shared(&self) -> impl DoubleEndedIterator<Item = (&K, &Arc<V>)> + ExactSizeIterator {
        self.0.iter()
    }

    /// The value of `key`, to change: copied first if another policy
    /// shares it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V>
    where
        V: Clone,
    {
        self.0.get_mut(key).map(Arc::make_mut)
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for Shared<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Shared(iter.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl<K: Ord, V> Shared<K, V> {
    /// From values some of which another policy may share.
    pub fn from_shared(iter: impl IntoIterator<Item = (K, Arc<V>)>) -> Self {
        Shared(iter.into_iter().collect())
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a Shared<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<
        std::collections::btree_map::Iter<'a, K, Arc<V>>,
        fn((&'a K, &'a Arc<V>)) -> (&'a K, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v.as_ref()))
    }
}

impl<K: Ord, V> std::ops::Index<&K> for Shared<K, V> {
    type Output = V;

    /// Panics if `key` is absent, as a `BTreeMap`'s.
    fn index(&self, key: &K) -> &V {
        &self.0[key]
    }
}
