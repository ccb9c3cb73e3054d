//! Interning of rule sets: each distinct set is stored once and named by
//! its index, the class id the LPM entries store.

use std::collections::HashMap;

use crate::RuleSet;

#[derive(Debug, Default)]
pub(crate) struct Classes {
    sets: Vec<RuleSet>,
    ids: HashMap<RuleSet, u32>,
}

impl Classes {
    /// The id of `set`, allocating the next one if it is new.
    pub(crate) fn intern(&mut self, set: RuleSet) -> u32 {
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        // At most one class per inserted prefix, and prefixes are far fewer
        // than 2^32 (each comes from the rule list in memory).
        let id = self.sets.len() as u32;
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &RuleSet {
        &self.sets[id as usize]
    }

    pub(crate) fn into_sets(self) -> Vec<RuleSet> {
        self.sets
    }
}
