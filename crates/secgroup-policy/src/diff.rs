//! What a reload changed, summarised for one log line.
//!
//! Rules are compared by position within their group and direction, after
//! resolution: inserting a rule at the top of a group therefore counts as
//! one rule added and every later one changed, and a new member of a
//! referenced group changes every rule that references it. Both are what
//! the data plane sees.

use std::fmt;

use secgroup_model::{Direction, InstanceId, SgId};

use crate::compiled::{EffectiveRule, GroupPolicy, InstancePolicy, Policy, Shared};

/// Keys present only in the new policy, only in the old one, and in both
/// but different. Each list is sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<K> {
    pub added: Vec<K>,
    pub removed: Vec<K>,
    pub changed: Vec<K>,
}

impl<K> Default for Changes<K> {
    fn default() -> Self {
        Changes {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        }
    }
}

impl<K> Changes<K> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl RuleCounts {
    pub fn is_empty(&self) -> bool {
        *self == RuleCounts::default()
    }
}

/// The difference between two compiled policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    pub groups: Changes<SgId>,
    pub instances: Changes<InstanceId>,
    /// Rules of all security groups, bound or not.
    pub rules: RuleCounts,
    /// Instances in both policies whose ingress list differs.
    pub ingress_changed: Vec<InstanceId>,
    /// Instances in both policies whose egress list differs.
    pub egress_changed: Vec<InstanceId>,
    /// Instances in both policies whose port security differs (turned on
    /// or off, a new MAC, address or address pair).
    pub port_security_changed: Vec<InstanceId>,
}

impl PolicyDiff {
    pub fn is_empty(&self) -> bool {
        *self == PolicyDiff::default()
    }

    pub fn lists_changed(&self, direction: Direction) -> &[InstanceId] {
        match direction {
            Direction::Ingress => &self.ingress_changed,
            Direction::Egress => &self.egress_changed,
        }
    }
}

/// Compares two compiled policies.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let groups = changes(&old.security_groups, &new.security_groups);

    let mut rules = RuleCounts::default();
    for (id, new_group) in &new.security_groups {
        match old.security_groups.get(id) {
            // Shared with the old policy (see `recompile`): unchanged.
            Some(_) if shared(&old.security_groups, &new.security_groups, id) => {}
            Some(old_group) => count_group(old_group, new_group, &mut rules),
            None => rules.added += rule_count(new_group),
        }
    }
    for (id, old_group) in &old.security_groups {
        if !new.security_groups.contains_key(id) {
            rules.removed += rule_count(old_group);
        }
    }

    let lists_changed = |direction: Direction| -> Vec<InstanceId> {
        let mut groups = GroupChanges::new(old, new, direction);
        new.instances
            .iter()
            .filter(|(id, instance)| {
                old.instances.get(*id).is_some_and(|before| {
                    if shared(&old.instances, &new.instances, id) {
                        return false;
                    }
                    if before.security_groups == instance.security_groups {
                        // The same groups in the same order: the list is
                        // their lists concatenated, and rules of two groups
                        // never compare equal (their origins differ), so it
                        // changed iff one of theirs did.
                        return instance.security_groups.iter().any(|g| groups.changed(g));
                    }
                    before.rules(direction) != instance.rules(direction)
                })
            })
            .map(|(id, _)| id.clone())
            .collect()
    };

    let port_security_changed = new
        .instances
        .iter()
        .filter(|(id, instance)| {
            old.instances.get(*id).is_some_and(|before| {
                !shared(&old.instances, &new.instances, id)
                    && before.port_security != instance.port_security
            })
        })
        .map(|(id, _)| id.clone())
        .collect();

    // An instance changed iff something besides its lists did or one of
    // its lists did (worked out above without comparing whole lists).
    let (ingress_changed, egress_changed) = (
        lists_changed(Direction::Ingress),
        lists_changed(Direction::Egress),
    );
    let mut instances = changes_by(&old.instances, &new.instances, |id, before, after| {
        !same_but_lists(before, after)
            || ingress_changed.binary_search(id).is_ok()
            || egress_changed.binary_search(id).is_ok()
    });
    instances.changed.sort();

    PolicyDiff {
        groups,
        instances,
        rules,
        ingress_changed,
        egress_changed,
        port_security_changed,
    }
}

/// Whether each group's list of one direction differs between two
/// policies, worked out once per group: a change to a group a thousand
/// instances are bound to is one comparison, not a thousand.
struct GroupChanges<'p> {
    old: &'p Policy,
    new: &'p Policy,
    direction: Direction,
    known: std::collections::HashMap<&'p SgId, bool>,
}

impl<'p> GroupChanges<'p> {
    fn new(old: &'p Policy, new: &'p Policy, direction: Direction) -> GroupChanges<'p> {
        GroupChanges {
            old,
            new,
            direction,
            known: std::collections::HashMap::new(),
        }
    }

    fn changed(&mut self, id: &'p SgId) -> bool {
        let (old, new, direction) = (self.old, self.new, self.direction);
        *self.known.entry(id).or_insert_with(|| {
            if shared(&old.security_groups, &new.security_groups, id) {
                return false;
            }
            // Present in one only: its rules came or went.
            match (old.security_groups.get(id), new.security_groups.get(id)) {
                (Some(a), Some(b)) => a.rules(direction) != b.rules(direction),
                (None, None) => false,
                _ => true,
            }
        })
    }
}

/// Whether both policies hold the same allocation for `key` (see
/// `recompile`): then it is unchanged, without comparing.
fn shared<K: Ord, V>(old: &Shared<K, V>, new: &Shared<K, V>, key: &K) -> bool {
    old.shares(new, key)
}

/// An instance's fields but its two lists.
fn same_but_lists(a: &InstancePolicy, b: &InstancePolicy) -> bool {
    a.id == b.id
        && a.interface == b.interface
        && a.mac == b.mac
        && a.ips == b.ips
        && a.security_groups == b.security_groups
        && a.port_security == b.port_security
        && a.log == b.log
        && a.enforcement == b.enforcement
}

fn changes<K: Ord + Clone, V: PartialEq>(old: &Shared<K, V>, new: &Shared<K, V>) -> Changes<K> {
    changes_by(old, new, |_, before, after| before != after)
}

/// [`changes`], with `differ` saying whether a key's two values (not the
/// same allocation) differ.
fn changes_by<K: Ord + Clone, V>(
    old: &Shared<K, V>,
    new: &Shared<K, V>,
    differ: impl Fn(&K, &V, &V) -> bool,
) -> Changes<K> {
    let mut changes = Changes::default();
    for (key, value) in new {
        match old.get(key) {
            None => changes.added.push(key.clone()),
            Some(_) if shared(old, new, key) => {}
            Some(before) if differ(key, before, value) => changes.changed.push(key.clone()),
            Some(_) => {}
        }
    }
    changes.removed = old
        .keys()
        .filter(|key| !new.contains_key(*key))
        .cloned()
        .collect();
    changes
}

fn rule_count(group: &GroupPolicy) -> usize {
    group.ingress.rules.len() + group.egress.rules.len()
}

fn count_group(old: &GroupPolicy, new: &GroupPolicy, counts: &mut RuleCounts) {
    for direction in Direction::ALL {
        count_rules(
            &old.rules(direction).rules,
            &new.rules(direction).rules,
            counts,
        );
    }
}

fn count_rules(old: &[EffectiveRule], new: &[EffectiveRule], counts: &mut RuleCounts) {
    let common = old.len().min(new.len());
    counts.changed += old[..common]
        .iter()
        .zip(&new[..common])
        .filter(|(a, b)| a != b)
        .count();
    counts.added += new.len() - common;
    counts.removed += old.len() - common;
}

/// How many ids a log line names before it summarises the rest.
const IDS_SHOWN: usize = 5;

fn write_ids<K: fmt::Display>(f: &mut fmt::Formatter<'_>, ids: &[K]) -> fmt::Result {
    if ids.is_empty() {
        return f.write_str("none");
    }
    for (i, id) in ids.iter().take(IDS_SHOWN).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{id}")?;
    }
    if ids.len() > IDS_SHOWN {
        write!(f, " and {} more", ids.len() - IDS_SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for PolicyDiff {
    /// `groups +1 -0 ~2, instances +0 -0 ~1, rules +3 -0 ~1; ingress lists
    /// changed: ins-a; egress lists changed: none`, then `; port security
    /// changed: ins-b` if it did, or `no changes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let (g, i, r) = (&self.groups, &self.instances, self.rules);
        write!(
            f,
            "groups +{} -{} ~{}, instances +{} -{} ~{}, rules +{} -{} ~{}; ",
            g.added.len(),
            g.removed.len(),
            g.changed.len(),
            i.added.len(),
            i.removed.len(),
            i.changed.len(),
            r.added,
            r.removed,
            r.changed
        )?;
        f.write_str("ingress lists changed: ")?;
        write_ids(f, &self.ingress_changed)?;
        f.write_str("; egress lists changed: ")?;
        write_ids(f, &self.egress_changed)?;
        if !self.port_security_changed.is_empty() {
            f.write_str("; port security changed: ")?;
            write_ids(f, &self.port_security_changed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile;
    use crate::testing::*;

    fn base() -> secgroup_model::RuleSet {
        rule_set(
            vec![
                group(
                    "sg-web",
                    vec![accept(tcp("80"), anywhere())],
                    vec![accept(all(), anywhere())],
                ),
                group("sg-db", vec![accept(tcp("5432"), sg_ref("sg-web"))], vec![]),
            ],
            vec![
                instance("ins-web", Some("tap0"), &["198.51.100.10"], &["sg-web"]),
                instance("ins-db", Some("tap1"), &["198.51.100.20"], &["sg-db"]),
            ],
        )
    }

    fn check(edit: impl FnOnce(&mut secgroup_model::RuleSet), expected: &str) {
        let old = compile(&base());
        let mut rules = base();
        edit(&mut rules);
        let new = compile(&rules);
        assert_eq!(diff(&old, &new).to_string(), expected);
    }

    #[test]
    fn diff_table() {
        check(|_| {}, "no changes");
        check(
            |rules| {
                let web = rules
                    .security_groups
                    .get_mut(&sg_id("sg-web"))
                    .unwrap_or_else(|| panic!("sg-web"));
                web.ingress.insert(0, drop(tcp("22"), anywhere()));
            },
            "groups +0 -0 ~1, instances +0 -0 ~1, rules +1 -0 ~1; \
             ingress lists changed: ins-web; egress lists changed: none",
        );
        check(
            |rules| {
                let web = rules
                    .security_groups
                    .get_mut(&sg_id("sg-web"))
                    .unwrap_or_else(|| panic!("sg-web"));
                web.egress.clear();
            },
            "groups +0 -0 ~1, instances +0 -0 ~1, rules +0 -1 ~0; \
             ingress lists changed: none; egress lists changed: ins-web",
        );
        // A new member of sg-web changes the rule of sg-db that references it.
        check(
            |rules| {
                let web2 = instance("ins-web2", None, &["203.0.113.10"], &["sg-web"]);
                rules.instances.insert(web2.id.clone(), web2);
            },
            "groups +0 -0 ~1, instances +1 -0 ~1, rules +0 -0 ~1; \
             ingress lists changed: ins-db; egress lists changed: none",
        );
        check(
            |rules| {
                rules.instances.remove(&instance_id("ins-db"));
                rules.security_groups.remove(&sg_id("sg-db"));
                let new = group(
                    "sg-new",
                    vec![accept(all(), anywhere())],
                    vec![accept(all(), anywhere())],
                );
                rules.security_groups.insert(new.id.clone(), new);
            },
            "groups +1 -1 ~0, instances +0 -1 ~0, rules +2 -1 ~0; \
             ingress lists changed: none; egress lists changed: none",
        );
        // Port security is the instance's, not a rule's.
        check(
            |rules| {
                let web = rules
                    .instances
                    .get_mut(&instance_id("ins-web"))
                    .unwrap_or_else(|| panic!("ins-web"));
                web.port_security = false;
            },
            "groups +0 -0 ~0, instances +0 -0 ~1, rules +0 -0 ~0; \
             ingress lists changed: none; egress lists changed: none; \
             port security changed: ins-web",
        );
        check(
            |rules| {
                let db = rules
                    .instances
                    .get_mut(&instance_id("ins-db"))
                    .unwrap_or_else(|| panic!("ins-db"));
                db.allowed_address_pairs
                    .push(secgroup_model::AllowedAddressPair {
                        net: net("198.51.100.64/28"),
                        mac: None,
                    });
            },
            "groups +0 -0 ~0, instances +0 -0 ~1, rules +0 -0 ~0; \
             ingress lists changed: none; egress lists changed: none; \
             port security changed: ins-db",
        );
        // Rebinding changes the instance, not the groups: nothing refers
        // to sg-db, so its new member changes no rule.
        check(
            |rules| {
                let web = rules
                    .instances
                    .get_mut(&instance_id("ins-web"))
                    .unwrap_or_else(|| panic!("ins-web"));
                web.security_groups = vec![sg_id("sg-db"), sg_id("sg-web")];
            },
            "groups +0 -0 ~0, instances +0 -0 ~1, rules +0 -0 ~0; \
             ingress lists changed: ins-web; egress lists changed: none",
        );
    }

    #[test]
    fn names_are_summarised() {
        let ids: Vec<InstanceId> = (0..7).map(|i| instance_id(&format!("ins-{i}"))).collect();
        let d = PolicyDiff {
            ingress_changed: ids.clone(),
            ..PolicyDiff::default()
        };
        assert_eq!(
            d.to_string(),
            "groups +0 -0 ~0, instances +0 -0 ~0, rules +0 -0 ~0; \
             ingress lists changed: ins-0, ins-1, ins-2, ins-3, ins-4 and 2 more; \
             egress lists changed: none"
        );
        assert_eq!(d.lists_changed(Direction::Ingress), &ids[..]);
        assert!(d.lists_changed(Direction::Egress).is_empty());
    }
}
