//! Stable 32-bit ids for rules, the key of the per-rule hit counters.
//!
//! A rule is identified by its group, direction and key
//! ([`secgroup_policy::RuleKey`]: its `id`, or its content), never by its
//! position: inserting a rule above another must not move the other's
//! counts onto it. The id is a hash of that identity, so the same rules
//! directory yields the same ids after a daemon restart and the pinned
//! counters carry over. The rare collision is resolved by probing, in
//! registration order.

use std::collections::HashMap;

use secgroup_model::{Direction, SgId};
use secgroup_policy::{RuleKey, RuleOrigin};

/// What a uid stands for: a rule's identity, wherever it sits.
type Ident = (SgId, Direction, RuleKey);

#[derive(Debug, Default)]
pub(crate) struct RuleUids {
    by_ident: HashMap<Ident, u32>,
    /// Every uid handed out: never given to another rule, even once its
    /// own is gone (the kernel may still hold its counts).
    taken: HashMap<u32, Ident>,
    /// Where each uid's rule was last registered. A rule whose place was
    /// taken by another since is left out: it is no longer in that list.
    origins: HashMap<u32, RuleOrigin>,
    /// Which uid last registered at each position.
    at: HashMap<(SgId, Direction, usize), u32>,
    /// While an apply may still be undone: what each change to `origins`
    /// and `at` replaced, in order. A journal rather than a copy: an apply
    /// that writes one table of a thousand touches a hundred entries of
    /// tens of thousands.
    journal: Option<Vec<Undo>>,
    /// Counts the changes to `origins`: an owner that copied them need not
    /// copy them again while it stays.
    version: u64,
}

type Place = (SgId, Direction, usize);

/// One entry of [`RuleUids::journal`]: the value a key had before.
#[derive(Debug)]
enum Undo {
    Origin(u32, Option<RuleOrigin>),
    At(Place, Option<u32>),
}

/// Where the rules sat when an apply began ([`RuleUids::placement`]):
/// [`RuleUids::restore`] puts them back if it fails, keeping the uids
/// handed out since (never reused); [`RuleUids::settle`] if it succeeds.
#[must_use]
pub(crate) struct Placement(());

impl RuleUids {
    /// Starts recording where rules move, to [`restore`](Self::restore)
    /// after a failed apply.
    pub fn placement(&mut self) -> Placement {
        self.journal = Some(Vec::new());
        Placement(())
    }

    /// Puts the rules back where they were at [`placement`](Self::placement).
    pub fn restore(&mut self, _placement: Placement) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        self.version += 1;
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Origin(uid, Some(origin)) => {
                    self.origins.insert(uid, origin);
                }
                Undo::Origin(uid, None) => {
                    self.origins.remove(&uid);
                }
                Undo::At(place, Some(uid)) => {
                    self.at.insert(place, uid);
                }
                Undo::At(place, None) => {
                    self.at.remove(&place);
                }
            }
        }
    }

    /// The apply succeeded: where the rules sit now stays.
    pub fn settle(&mut self, _placement: Placement) {
        self.journal = None;
    }

    fn set_origin(&mut self, uid: u32, origin: Option<RuleOrigin>) {
        self.version += 1;
        let before = match origin {
            Some(origin) => self.origins.insert(uid, origin),
            None => self.origins.remove(&uid),
        };
        if let Some(journal) = &mut self.journal {
            journal.push(Undo::Origin(uid, before));
        }
    }

    fn set_at(&mut self, place: Place, uid: u32) -> Option<u32> {
        let before = self.at.insert(place.clone(), uid);
        if let Some(journal) = &mut self.journal {
            journal.push(Undo::At(place, before));
        }
        before
    }

    /// The uid of `origin`'s rule, the same wherever it sits in its list;
    /// records that it now sits at `origin.index`.
    pub fn uid(&mut self, origin: &RuleOrigin) -> u32 {
        let ident = ident(origin);
        let uid = match self.by_ident.get(&ident) {
            Some(uid) => *uid,
            None => {
                let mut salt = 0u32;
                let uid = loop {
                    let candidate = hash_ident(&ident, salt);
                    // 0 is kept free so a zeroed key never names a rule.
                    if candidate != 0 && !self.taken.contains_key(&candidate) {
                        break candidate;
                    }
                    salt += 1;
                };
                self.by_ident.insert(ident.clone(), uid);
                self.taken.insert(uid, ident);
                uid
            }
        };
        if self.origins.get(&uid) != Some(origin) {
            self.set_origin(uid, Some(origin.clone()));
        }
        let place = (origin.sg.clone(), origin.direction, origin.index);
        let before = match self.at.get(&place) {
            Some(&at) if at == uid => Some(uid),
            _ => self.set_at(place, uid),
        };
        if let Some(before) = before
            && before != uid
            && self.origins.get(&before).is_some_and(|o| {
                o.sg == origin.sg && o.direction == origin.direction && o.index == origin.index
            })
        {
            self.set_origin(before, None);
        }
        uid
    }

    pub fn get(&self, origin: &RuleOrigin) -> Option<u32> {
        self.by_ident.get(&ident(origin)).copied()
    }

    pub fn origin(&self, uid: u32) -> Option<&RuleOrigin> {
        self.origins.get(&uid)
    }

    /// Every uid handed out whose rule is still where it was last
    /// registered, with its origin.
    pub fn all(&self) -> HashMap<u32, RuleOrigin> {
        self.origins.clone()
    }

    /// Changes whenever [`all`](Self::all) may have.
    pub fn version(&self) -> u64 {
        self.version
    }
}

fn ident(origin: &RuleOrigin) -> Ident {
    (origin.sg.clone(), origin.direction, origin.key.clone())
}

/// FNV-1a over the identity's byte form: stable across processes and
/// builds, unlike std's randomly keyed hasher.
fn hash_ident((sg, direction, key): &Ident, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    eat(sg.as_str().as_bytes());
    eat(&[0, *direction as u8]);
    match key {
        RuleKey::Id(id) => {
            eat(&[1]);
            eat(id.as_str().as_bytes());
            eat(&[0]);
        }
        RuleKey::Content { digest, nth } => {
            eat(&[2]);
            eat(&digest.to_le_bytes());
            eat(&nth.to_le_bytes());
        }
    }
    eat(&salt.to_le_bytes());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::RuleId;

    fn origin(sg: &str, direction: Direction, index: usize, key: RuleKey) -> RuleOrigin {
        RuleOrigin {
            sg: SgId::new(sg).unwrap_or_else(|| panic!("bad sg id {sg}")),
            direction,
            index,
            key,
        }
    }

    fn content(n: u64) -> RuleKey {
        RuleKey::Content { digest: n, nth: 0 }
    }

    /// A restore puts every rule back where it sat at the placement, after
    /// moves, replacements and new rules; the new rules keep their uids.
    #[test]
    fn restore_undoes_every_move_since_the_placement() {
        let mut uids = RuleUids::default();
        let d = Direction::Ingress;
        for index in 0..5 {
            uids.uid(&origin("sg-a", d, index, content(index as u64)));
        }
        let before = (uids.origins.clone(), uids.at.clone());
        let placement = uids.placement();
        // Rule 0 moves to 3 (taking rule 3's place), a new rule at 0, rule
        // 4 registered again where it is.
        uids.uid(&origin("sg-a", d, 3, content(0)));
        let new = uids.uid(&origin("sg-a", d, 0, content(99)));
        uids.uid(&origin("sg-a", d, 4, content(4)));
        assert_ne!((uids.origins.clone(), uids.at.clone()), before);
        uids.restore(placement);
        assert_eq!((uids.origins.clone(), uids.at.clone()), before);
        assert_eq!(uids.get(&origin("sg-a", d, 0, content(99))), Some(new));
        assert!(uids.journal.is_none());

        // After a settle, what moved stays.
        let placement = uids.placement();
        uids.uid(&origin("sg-a", d, 3, content(0)));
        let moved = (uids.origins.clone(), uids.at.clone());
        uids.settle(placement);
        assert_eq!((uids.origins.clone(), uids.at.clone()), moved);
        assert!(uids.journal.is_none());
    }

    #[test]
    fn uids_are_stable_distinct_and_nonzero() {
        let mut a = RuleUids::default();
        let mut b = RuleUids::default();
        let mut seen = std::collections::HashSet::new();
        for sg in ["sg-a", "sg-b", "sg-web"] {
            for direction in Direction::ALL {
                for index in 0..200 {
                    let o = origin(sg, direction, index, content(index as u64));
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

    #[test]
    fn uids_follow_the_key_not_the_position() {
        let mut uids = RuleUids::default();
        let b = |index| origin("sg-a", Direction::Ingress, index, content(7));
        let uid_b = uids.uid(&b(0));
        // Rule A is inserted above B: B keeps its uid, A gets another,
        // and B's uid now names B at its new place.
        let a = origin("sg-a", Direction::Ingress, 0, content(8));
        let uid_a = uids.uid(&a);
        assert_eq!(uids.uid(&b(1)), uid_b);
        assert_ne!(uid_a, uid_b);
        assert_eq!(uids.origin(uid_b), Some(&b(1)));
        assert_eq!(uids.origin(uid_a), Some(&a));
        // The same key in another group or direction is another rule.
        let other = origin("sg-a", Direction::Egress, 1, content(7));
        assert_ne!(uids.uid(&other), uid_b);
        // Ids hash apart from content keys and from each other.
        let id = |s: &str| RuleKey::Id(RuleId::new(s).unwrap_or_else(|| panic!("{s}")));
        let named = uids.uid(&origin("sg-a", Direction::Ingress, 2, id("web")));
        assert_ne!(
            named,
            uids.uid(&origin("sg-a", Direction::Ingress, 3, id("ssh")))
        );
        assert_eq!(
            named,
            RuleUids::default().uid(&origin("sg-a", Direction::Ingress, 9, id("web")))
        );
    }

    #[test]
    fn a_removed_rule_stops_naming_its_old_place() {
        let mut uids = RuleUids::default();
        let a = origin("sg-a", Direction::Ingress, 0, content(1));
        let b = |index| origin("sg-a", Direction::Ingress, index, content(2));
        let (uid_a, uid_b) = (uids.uid(&a), uids.uid(&b(1)));
        // A is deleted: B moves up to 0 and A's counts must not be shown as
        // B's, but A's uid is never handed to another rule.
        assert_eq!(uids.uid(&b(0)), uid_b);
        assert_eq!(uids.origin(uid_a), None);
        assert!(!uids.all().contains_key(&uid_a));
        assert_eq!(uids.all().get(&uid_b), Some(&b(0)));
        // Two rules that swap places both stay.
        let c = |index| origin("sg-a", Direction::Egress, index, content(3));
        let d = |index| origin("sg-a", Direction::Egress, index, content(4));
        let (uid_c, uid_d) = (uids.uid(&c(0)), uids.uid(&d(1)));
        uids.uid(&d(0));
        uids.uid(&c(1));
        assert_eq!(uids.origin(uid_c), Some(&c(1)));
        assert_eq!(uids.origin(uid_d), Some(&d(0)));
    }
}
