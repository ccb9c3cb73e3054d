//! A table: the LPM entries and classes of one rule list, how it is built,
//! and the simulated kernel lookup.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use secgroup_model::Action;
use secgroup_policy::{RuleList, RuleOrigin};

use crate::classes::Classes;
use crate::fold::fold;
use crate::group::{Groups, group_identical};
use crate::l4::service_prefixes;
use crate::{ClassifierError, L4Prefix, MAX_RULES, RuleSet};

/// What the data plane needs of a rule besides its match: the verdict,
/// where it came from (counters are attributed to origins), and whether
/// the packets it decides are logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRule {
    pub action: Action,
    pub origin: RuleOrigin,
    pub log: bool,
}

/// One rule list as the eBPF maps hold it.
///
/// Entry lists are sorted by (first address, prefix length) and hold each
/// prefix once; the `u32` of an entry is a class id, an index into
/// `classes`. Every class is non-empty and distinct from the others.
///
/// Equality (and [`Table::fingerprint`]) is over the whole content, origins
/// included: two lists with the same matches but different origins count
/// hits differently, so they are different tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Table {
    /// Position `i` is bit `i` of every class.
    pub rules: Vec<TableRule>,
    pub v4: Vec<(Ipv4Net, u32)>,
    pub v6: Vec<(Ipv6Net, u32)>,
    pub l4: Vec<(L4Prefix, u32)>,
    pub classes: Vec<RuleSet>,
}

/// The size of a table, for map sizing and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub rules: usize,
    pub classes: usize,
    pub v4_entries: usize,
    pub v6_entries: usize,
    pub l4_entries: usize,
}

impl TableStats {
    /// Bytes of `struct sg_ruleset` values the classes take.
    pub fn class_bytes(&self) -> usize {
        self.classes * std::mem::size_of::<RuleSet>()
    }
}

impl fmt::Display for TableStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rules, {} classes ({} KiB), entries: {} v4, {} v6, {} l4",
            self.rules,
            self.classes,
            self.class_bytes().div_ceil(1024),
            self.v4_entries,
            self.v6_entries,
            self.l4_entries
        )
    }
}

/// Builds the table of `list`. Fails only when the list has more than
/// [`MAX_RULES`] rules.
pub fn build(list: &RuleList) -> Result<Table, ClassifierError> {
    if list.rules.len() > MAX_RULES {
        return Err(ClassifierError::TooManyRules {
            rules: list.rules.len(),
            max: MAX_RULES,
        });
    }
    let mut classes = Classes::default();

    let remotes = group_identical(list.rules.iter().map(|rule| rule.remotes.as_slice()));
    let remote_rules = rules_of(&remotes);
    let mut v4_pairs = Vec::new();
    let mut v6_pairs = Vec::new();
    for (group, nets) in remotes.lists.iter().enumerate() {
        for net in nets.iter() {
            // Compiled remotes carry no host bits; trunc() makes sure,
            // because the sort order below relies on it.
            match net.trunc() {
                IpNet::V4(net) => v4_pairs.push((net, group as u32)),
                IpNet::V6(net) => v6_pairs.push((net, group as u32)),
            }
        }
    }
    let v4 = fold(v4_pairs, &remote_rules, &mut classes);
    let v6 = fold(v6_pairs, &remote_rules, &mut classes);

    let services = group_identical(list.rules.iter().map(|rule| rule.services.as_slice()));
    let service_rules = rules_of(&services);
    let mut l4_pairs = Vec::new();
    let mut prefixes = Vec::new();
    for (group, services) in services.lists.iter().enumerate() {
        prefixes.clear();
        for service in services.iter() {
            service_prefixes(service, &mut prefixes);
        }
        l4_pairs.extend(prefixes.iter().map(|&prefix| (prefix, group as u32)));
    }
    let l4 = fold(l4_pairs, &service_rules, &mut classes);

    let rules = list
        .rules
        .iter()
        .map(|rule| TableRule {
            action: rule.action,
            origin: rule.origin.clone(),
            log: rule.log,
        })
        .collect();
    Ok(Table {
        rules,
        v4,
        v6,
        l4,
        classes: classes.into_sets(),
    })
}

/// For each group, the set of rule positions in it.
fn rules_of<T>(groups: &Groups<'_, T>) -> Vec<RuleSet> {
    let mut sets = vec![RuleSet::EMPTY; groups.lists.len()];
    for (pos, &group) in groups.of.iter().enumerate() {
        sets[group as usize].insert(pos);
    }
    sets
}

impl Table {
    /// The position of the first rule matching a packet, `None` for the
    /// default drop, found the way the BPF program finds it: a
    /// longest-prefix lookup per field, then the lowest common bit of the
    /// two classes, visiting only the words both summaries mark.
    ///
    /// `dst_port` is 0 for protocols other than TCP and UDP, as in the
    /// kernel; it does not matter for them, since their rules cover every
    /// port.
    pub fn classify(&self, protocol: u8, dst_port: u16, remote: IpAddr) -> Option<usize> {
        let remote_class = match remote {
            IpAddr::V4(addr) => longest_match(&self.v4, v4_enclosing(addr)),
            IpAddr::V6(addr) => longest_match(&self.v6, v6_enclosing(addr)),
        }?;
        let l4_class = longest_match(&self.l4, L4Prefix::enclosing(protocol, dst_port))?;
        let remote_rules = self.classes.get(remote_class as usize)?;
        let l4_rules = self.classes.get(l4_class as usize)?;
        remote_rules.first_common(l4_rules)
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            rules: self.rules.len(),
            classes: self.classes.len(),
            v4_entries: self.v4.len(),
            v6_entries: self.v6.len(),
            l4_entries: self.l4.len(),
        }
    }

    /// A hash of the whole content, equal for equal tables within one
    /// process (not across builds of the program: do not persist it). Lets
    /// the data plane share one table among interfaces with identical lists
    /// and skip rewriting a table that did not change.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// The class of the longest prefix in `entries` (sorted) among
/// `candidates`, which enumerate a value's prefixes longest first.
fn longest_match<P: Ord>(
    entries: &[(P, u32)],
    mut candidates: impl Iterator<Item = P>,
) -> Option<u32> {
    candidates.find_map(|prefix| {
        entries
            .binary_search_by(|(entry, _)| entry.cmp(&prefix))
            .ok()
            .map(|i| entries[i].1)
    })
}

fn v4_enclosing(addr: Ipv4Addr) -> impl Iterator<Item = Ipv4Net> {
    (0..=32)
        .rev()
        .filter_map(move |len| Ipv4Net::new(addr, len).ok())
        .map(|net| net.trunc())
}

fn v6_enclosing(addr: Ipv6Addr) -> impl Iterator<Item = Ipv6Net> {
    (0..=128)
        .rev()
        .filter_map(move |len| Ipv6Net::new(addr, len).ok())
        .map(|net| net.trunc())
}
