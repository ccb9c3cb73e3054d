//! Instance → interface, the reverse of [`InForce::bound`](crate::state::InForce::bound),
//! built once per snapshot on first use. A status of a thousand
//! instances asked for each one's interface: a scan of `bound` per
//! instance made every read quadratic (about 40% of a 2-core host's CPU
//! while a client polled the status during a reload).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use secgroup_model::InstanceId;

#[derive(Debug, Default)]
pub struct BoundIndex(OnceLock<HashMap<InstanceId, u32>>);

/// A copy starts empty: the copy's `bound` may change before its first
/// use, the original's index would then be stale.
impl Clone for BoundIndex {
    fn clone(&self) -> Self {
        BoundIndex::default()
    }
}

impl BoundIndex {
    /// The lowest ifindex `bound` gives `id` (as a scan in order would).
    pub fn get(&self, bound: &BTreeMap<u32, InstanceId>, id: &InstanceId) -> Option<u32> {
        let index = self.0.get_or_init(|| {
            let mut index = HashMap::with_capacity(bound.len());
            for (ifindex, id) in bound {
                index.entry(id.clone()).or_insert(*ifindex);
            }
            index
        });
        index.get(id).copied()
    }

    /// Call after changing `bound`.
    pub fn clear(&mut self) {
        self.0 = OnceLock::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::new(s).unwrap_or_else(|| panic!("bad id {s}"))
    }

    #[test]
    fn finds_the_first_binding_and_forgets_on_clear_and_clone() {
        let mut bound = BTreeMap::from([(9, id("ins-a")), (4, id("ins-b")), (7, id("ins-a"))]);
        let mut index = BoundIndex::default();
        assert_eq!(index.get(&bound, &id("ins-a")), Some(7));
        assert_eq!(index.get(&bound, &id("ins-b")), Some(4));
        assert_eq!(index.get(&bound, &id("ins-c")), None);
        bound.insert(2, id("ins-c"));
        let copy = index.clone();
        assert_eq!(copy.get(&bound, &id("ins-c")), Some(2), "a copy is rebuilt");
        index.clear();
        assert_eq!(index.get(&bound, &id("ins-c")), Some(2), "cleared, rebuilt");
    }
}
