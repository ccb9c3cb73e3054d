//! Rule keys: a rule's identity within its group and direction, which its
//! hit counters follow when other rules are inserted, removed or moved.
//!
//! A rule with an `id` is known by it. A rule without one is known by what
//! it says (action, traffic and remote as written; not its description),
//! plus how many identical rules without an id come before it in the same
//! list, to keep identical rules apart. So inserting, removing or moving a
//! *different* rule never changes another rule's key, and editing what a
//! rule matches gives it a new one (its old counts are not its new
//! behaviour's). Pure and stable across processes: the digest is FNV-1a,
//! not std's randomly keyed hasher, so pinned counters carry over restarts.

use std::collections::HashMap;
use std::fmt;

use secgroup_model::{Rule, RuleId, Traffic};

/// A rule's stable identity within its group and direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleKey {
    /// The rule's `id`, as written in the file.
    Id(RuleId),
    /// No `id`: a digest of the rule's content, and the number of
    /// identical rules without an id before it in the list (0 for the
    /// first).
    Content { digest: u64, nth: u32 },
}

impl RuleKey {
    /// The key of every rule of one group's list of one direction, in order.
    pub fn of_list(rules: &[Rule]) -> Vec<RuleKey> {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        rules
            .iter()
            .map(|rule| match &rule.id {
                Some(id) => RuleKey::Id(id.clone()),
                None => {
                    let digest = content_digest(rule);
                    let count = seen.entry(digest).or_default();
                    let nth = *count;
                    *count += 1;
                    RuleKey::Content { digest, nth }
                }
            })
            .collect()
    }
}

impl fmt::Display for RuleKey {
    /// `ssh-office` for an id; `~` and the digest in hex for content, with
    /// `+N` for the Nth repeat of an identical rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKey::Id(id) => write!(f, "{id}"),
            RuleKey::Content { digest, nth: 0 } => write!(f, "~{digest:016x}"),
            RuleKey::Content { digest, nth } => write!(f, "~{digest:016x}+{nth}"),
        }
    }
}

/// FNV-1a (64-bit) over the rule's content in a fixed text form: action,
/// traffic and remote as written, each followed by a NUL.
fn content_digest(rule: &Rule) -> u64 {
    let traffic = match &rule.traffic {
        Traffic::Service(service) => {
            format!("protocol {} port {}", service.protocol, service.ports)
        }
        Traffic::ServiceSet(id) => format!("service {id}"),
        Traffic::ServiceSetGroup(id) => format!("service {id}"),
    };
    let text = format!("{}\0{traffic}\0{}\0", rule.action, rule.remote);
    fnv1a64(text.as_bytes())
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn keys(rules: &[Rule]) -> Vec<RuleKey> {
        RuleKey::of_list(rules)
    }

    fn with_id(id: &str, rule: Rule) -> Rule {
        Rule {
            id: Some(RuleId::new(id).unwrap_or_else(|| panic!("bad rule id {id}"))),
            ..rule
        }
    }

    #[test]
    fn inserting_a_rule_keeps_every_other_key() {
        let a = accept(tcp("22"), anywhere());
        let b = accept(tcp("80"), block_net("198.51.100.0/24"));
        let c = drop(all(), anywhere());
        let before = keys(&[b.clone(), c.clone()]);
        for at in 0..=2 {
            let mut list = vec![b.clone(), c.clone()];
            list.insert(at, a.clone());
            let mut after = keys(&list);
            let inserted = after.remove(at);
            assert_eq!(after, before, "inserting at {at}");
            assert!(!before.contains(&inserted), "inserting at {at}");
        }
    }

    #[test]
    fn a_moved_rule_keeps_its_key() {
        let a = accept(tcp("22"), anywhere());
        let b = accept(udp("53"), anywhere());
        let ab = keys(&[a.clone(), b.clone()]);
        let ba = keys(&[b, a]);
        assert_eq!(ab, [ba[1].clone(), ba[0].clone()]);
    }

    #[test]
    fn identical_rules_are_told_apart_by_their_rank() {
        let a = accept(tcp("22"), anywhere());
        let x = drop(all(), anywhere());
        let got = keys(&[a.clone(), x.clone(), a.clone(), a.clone()]);
        let digest = |k: &RuleKey| match k {
            RuleKey::Content { digest, .. } => *digest,
            RuleKey::Id(id) => panic!("unexpected id {id}"),
        };
        assert_eq!(digest(&got[0]), digest(&got[2]));
        let ranks: Vec<u32> = got
            .iter()
            .map(|k| match k {
                RuleKey::Content { nth, .. } => *nth,
                RuleKey::Id(_) => panic!(),
            })
            .collect();
        assert_eq!(ranks, [0, 0, 1, 2]);
        // A different rule inserted between copies changes none of them.
        assert_eq!(
            keys(&[a.clone(), x.clone(), x, a.clone(), a])[..2],
            got[..2]
        );
    }

    #[test]
    fn editing_what_a_rule_matches_gives_a_new_key() {
        let base = accept(tcp("22"), anywhere());
        let original = keys(std::slice::from_ref(&base));
        let edits = [
            drop(tcp("22"), anywhere()),
            accept(tcp("23"), anywhere()),
            accept(udp("22"), anywhere()),
            accept(tcp("22"), block_net("0.0.0.0/0")),
            accept(tcp("22"), sg_ref("sg-a")),
        ];
        for edit in edits {
            assert_ne!(keys(std::slice::from_ref(&edit)), original, "{edit:?}");
        }
        // The description is not what the rule does.
        let described = Rule {
            description: Some("ssh".to_owned()),
            ..base
        };
        assert_eq!(keys(&[described]), original);
    }

    #[test]
    fn an_id_is_the_key_whatever_the_content() {
        let a = with_id("ssh", accept(tcp("22"), anywhere()));
        let edited = with_id("ssh", accept(tcp("2222"), block_net("198.51.100.0/24")));
        assert_eq!(keys(&[a]), keys(std::slice::from_ref(&edited)));
        assert_eq!(keys(&[edited])[0].to_string(), "ssh");
        // Rules with ids do not count as copies of an unnamed rule.
        let plain = accept(tcp("22"), anywhere());
        let named = with_id("first", plain.clone());
        assert_eq!(keys(&[named, plain.clone()])[1], keys(&[plain])[0]);
    }

    #[test]
    fn content_keys_are_stable_across_processes() {
        // Pinned counters outlive the daemon: this value must never change
        // by accident (a new hasher, a new text form).
        let got = keys(&[accept(tcp("22"), anywhere()), accept(tcp("22"), anywhere())]);
        assert_eq!(got[0].to_string(), "~f23e57d993b8f9b6");
        assert_eq!(got[1].to_string(), format!("{}+1", got[0]));
    }
}
