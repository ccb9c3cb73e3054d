//! Stable 32-bit ids for rules, the key of the per-rule hit counters.
//!
//! A rule is identified by its origin (security group, direction, index).
//! The id is a hash of that origin, so the same rules directory yields the
//! same ids after a daemon restart and the pinned counters carry over. The
//! rare collision is resolved by probing, in registration order.

use std::collections::HashMap;

use secgroup_policy::RuleOrigin;

#[derive(Debug, Default)]
pub(crate) struct RuleUids {
    by_origin: HashMap<RuleOrigin, u32>,
    by_uid: HashMap<u32, RuleOrigin>,
}

impl RuleUids {
    pub fn uid(&mut self, origin: &RuleOrigin) -> u32 {
        if let Some(uid) = self.by_origin.get(origin) {
            return *uid;
        }
        let mut salt = 0u32;
        let uid = loop {
            let candidate = hash_origin(origin, salt);
            // 0 is kept free so a zeroed key never names a rule.
            if candidate != 0 && !self.by_uid.contains_key(&candidate) {
                break candidate;
            }
            salt += 1;
        };
        self.by_origin.insert(origin.clone(), uid);
        self.by_uid.insert(uid, origin.clone());
        uid
    }

    pub fn get(&self, origin: &RuleOrigin) -> Option<u32> {
        self.by_origin.get(origin).copied()
    }

    pub fn origin(&self, uid: u32) -> Option<&RuleOrigin> {
        self.by_uid.get(&uid)
    }

    /// Every uid handed out, with its origin.
    pub fn all(&self) -> HashMap<u32, RuleOrigin> {
        self.by_uid.clone()
    }
}

/// FNV-1a over the origin's text form: stable across processes and builds,
/// unlike std's randomly keyed hasher.
fn hash_origin(origin: &RuleOrigin, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    eat(origin.sg.as_str().as_bytes());
    eat(&[0, origin.direction as u8]);
    eat(&(origin.index as u64).to_le_bytes());
    eat(&salt.to_le_bytes());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::{Direction, SgId};

    fn origin(sg: &str, direction: Direction, index: usize) -> RuleOrigin {
        RuleOrigin {
            sg: SgId::new(sg).unwrap_or_else(|| panic!("bad sg id {sg}")),
            direction,
            index,
        }
    }

    #[test]
    fn uids_are_stable_distinct_and_nonzero() {
        let mut a = RuleUids::default();
        let mut b = RuleUids::default();
        let mut seen = std::collections::HashSet::new();
        for sg in ["sg-a", "sg-b", "sg-web"] {
            for direction in Direction::ALL {
                for index in 0..200 {
                    let o = origin(sg, direction, index);
                    let uid = a.uid(&o);
                    assert_ne!(uid, 0);
                    assert!(seen.insert(uid), "uid {uid} given twice");
                    assert_eq!(b.uid(&o), uid, "a second registry gave {o:?} another uid");
                    assert_eq!(a.uid(&o), uid, "asking again changed the uid of {o:?}");
                    assert_eq!(a.origin(uid), Some(&o));
                }
            }
        }
    }
}
