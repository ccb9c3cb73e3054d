//! Each list's [`reach`] kept from one lint to the next. The reach of a
//! list is most of a lint (a thousand instances' lists of 110 rules: a
//! few hundred milliseconds), and a reload that changes one VM's group
//! keeps every other group and instance of the previous policy as the
//! same allocation (`recompile` shares them). A kept reach is reused only
//! for that very allocation (held here, so it cannot be freed and its
//! address reused): the same list, so the same reach.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use secgroup_model::Direction;

use super::reach::{Reach, reach};
use crate::compiled::{GroupPolicy, InstancePolicy, RuleList};

/// What has lists whose reach is kept.
pub(super) trait Lists {
    fn list(&self, direction: Direction) -> &RuleList;
}

impl Lists for GroupPolicy {
    fn list(&self, direction: Direction) -> &RuleList {
        self.rules(direction)
    }
}

impl Lists for InstancePolicy {
    fn list(&self, direction: Direction) -> &RuleList {
        self.rules(direction)
    }
}

struct Kept<T> {
    of: Arc<T>,
    /// Per direction (`Direction::ALL`'s order), once worked out.
    reach: [Option<Arc<[Reach]>>; 2],
}

impl<T> Kept<T> {
    fn new(of: &Arc<T>) -> Kept<T> {
        Kept {
            of: Arc::clone(of),
            reach: [None, None],
        }
    }
}

/// The reaches of one kind of object (groups, instances) by id: those of
/// the last lint, and those this one asked for.
pub(super) struct Memo<K, T> {
    last: HashMap<K, Kept<T>>,
    now: HashMap<K, Kept<T>>,
}

impl<K, T> Default for Memo<K, T> {
    fn default() -> Self {
        Memo {
            last: HashMap::new(),
            now: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, T: Lists> Memo<K, T> {
    /// The reach of `of`'s list in `direction`: kept if `of` is the
    /// allocation it was worked out for, else worked out now.
    pub(super) fn reach(&mut self, id: &K, of: &Arc<T>, direction: Direction) -> Arc<[Reach]> {
        let last = &mut self.last;
        let kept = self.now.entry(id.clone()).or_insert_with(|| {
            last.remove(id)
                .filter(|kept| Arc::ptr_eq(&kept.of, of))
                .unwrap_or_else(|| Kept::new(of))
        });
        if !Arc::ptr_eq(&kept.of, of) {
            *kept = Kept::new(of);
        }
        let d = usize::from(direction == Direction::Egress);
        Arc::clone(kept.reach[d].get_or_insert_with(|| reach(of.list(direction)).into()))
    }

    /// Ends a lint: what it asked for is what the next one may reuse.
    pub(super) fn finish(&mut self) {
        self.last = std::mem::take(&mut self.now);
    }
}
