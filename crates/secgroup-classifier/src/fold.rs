//! The fold: from "rule r names prefix P" to "LPM entry P → the set of every
//! rule one of whose prefixes encloses P".

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::classes::Classes;
use crate::{L4Prefix, RuleSet};

/// A prefix of one field. The order must list a prefix before every prefix
/// it covers, and must keep the prefixes a prefix covers contiguous after
/// it: (first value, length) does both, for prefixes without host bits.
pub(crate) trait Prefix: Copy + Ord {
    /// Whether every value of `other` lies in `self`.
    fn covers(&self, other: &Self) -> bool;
}

impl Prefix for Ipv4Net {
    fn covers(&self, other: &Ipv4Net) -> bool {
        self.contains(other)
    }
}

impl Prefix for Ipv6Net {
    fn covers(&self, other: &Ipv6Net) -> bool {
        self.contains(other)
    }
}

impl Prefix for L4Prefix {
    fn covers(&self, other: &L4Prefix) -> bool {
        L4Prefix::covers(*self, *other)
    }
}

/// Turns `(prefix, group)` pairs ("every rule of `groups[group]` names
/// `prefix`") into LPM entries sorted by prefix, each with the class of the
/// rules that name the prefix or any prefix enclosing it.
///
/// Sorted, the prefixes are a pre-order walk of their containment tree, so
/// a stack holds the chain of inserted prefixes enclosing the current one
/// and the top's class already includes every ancestor's rules: each
/// prefix's set is its parent's plus its own groups, O(64 words) per
/// distinct prefix whatever the depth.
///
/// An entry whose set equals its parent's is left out: the lookup would
/// then land on the parent and find the same set. The entry kept for the
/// outermost prefixes is never empty, so "no entry" still means "no rule".
///
/// Most prefixes of a big security group have the same parent and the same
/// groups (thousands of /32 members): `memo` interns each (parent, groups)
/// combination once instead of building and hashing a 520-byte set per
/// member.
pub(crate) fn fold<P: Prefix>(
    mut pairs: Vec<(P, u32)>,
    groups: &[RuleSet],
    classes: &mut Classes,
) -> Vec<(P, u32)> {
    pairs.sort_unstable();
    pairs.dedup();
    let mut entries = Vec::new();
    let mut enclosing: Vec<(P, u32)> = Vec::new();
    let mut memo: HashMap<(Option<u32>, Vec<u32>), u32> = HashMap::new();
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        let prefix = run[0].0;
        while enclosing
            .last()
            .is_some_and(|(outer, _)| !outer.covers(&prefix))
        {
            enclosing.pop();
        }
        let parent = enclosing.last().map(|&(_, class)| class);
        let own: Vec<u32> = run.iter().map(|&(_, group)| group).collect();
        let class = match memo.entry((parent, own)) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(new) => {
                let mut set = parent.map_or(RuleSet::EMPTY, |class| classes.get(class).clone());
                for &group in &new.key().1 {
                    set.union_with(&groups[group as usize]);
                }
                *new.insert(classes.intern(set))
            }
        };
        if Some(class) != parent {
            entries.push((prefix, class));
            enclosing.push((prefix, class));
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap_or_else(|e| panic!("bad net {s}: {e}"))
    }

    /// `pairs` as (prefix, group); group g holds rule g only.
    fn check(pairs: &[(&str, u32)], expected: &[(&str, &[usize])]) {
        let groups: Vec<RuleSet> = (0..8).map(|g| [g].into_iter().collect()).collect();
        let mut classes = Classes::default();
        let input = pairs.iter().map(|&(p, g)| (net(p), g)).collect();
        let entries = fold(input, &groups, &mut classes);
        let got: Vec<(String, Vec<usize>)> = entries
            .iter()
            .map(|&(p, c)| (p.to_string(), classes.get(c).iter().collect()))
            .collect();
        let expected: Vec<(String, Vec<usize>)> = expected
            .iter()
            .map(|&(p, s)| (p.to_owned(), s.to_vec()))
            .collect();
        if got != expected {
            panic!("fold({pairs:?}):\n  got      {got:?}\n  expected {expected:?}");
        }
    }

    #[test]
    fn folds_enclosing_prefixes() {
        check(
            &[
                ("10.0.0.0/8", 0),
                ("10.1.0.0/16", 1),
                ("0.0.0.0/0", 2),
                ("10.2.0.0/16", 2),
            ],
            &[
                ("0.0.0.0/0", &[2]),
                ("10.0.0.0/8", &[0, 2]),
                ("10.1.0.0/16", &[0, 1, 2]),
                // Rule 2 already reaches 10.2/16 through 0/0: nothing new.
            ],
        );
    }

    #[test]
    fn siblings_do_not_leak() {
        check(
            &[
                ("10.0.0.0/24", 0),
                ("10.0.1.0/24", 1),
                ("10.0.0.128/25", 1),
                ("10.0.1.0/24", 2),
            ],
            &[
                ("10.0.0.0/24", &[0]),
                ("10.0.0.128/25", &[0, 1]),
                ("10.0.1.0/24", &[1, 2]),
            ],
        );
    }

    #[test]
    fn duplicate_pairs() {
        check(
            &[("192.0.2.1/32", 3), ("192.0.2.1/32", 3)],
            &[("192.0.2.1/32", &[3])],
        );
    }
}
