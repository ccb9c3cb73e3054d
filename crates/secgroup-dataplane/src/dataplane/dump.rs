//! Reading a table back from the kernel maps, entry by entry: what the
//! programs really look up under one table id, independent of this
//! process's own record of what it wrote. Tests compare the tables of an
//! incrementally updated data plane with those of a fresh one this way.
//! A walk of every table map: for tests and diagnosis, not the hot path.

use aya::maps::lpm_trie::Key;

use super::Dataplane;
use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::names;

/// An L4 trie key without its table id: prefix length, protocol, port.
pub type L4Entry = (u32, u8, [u8; 2]);

/// Every kernel entry of one table id, keys without the id, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDump {
    /// Position → action and rule uid.
    pub rules: Vec<(u32, RuleMeta)>,
    /// Class id → rule set.
    pub classes: Vec<(u32, RuleSetBits)>,
    /// (prefix length in the key, address) → class id.
    pub v4: Vec<((u32, [u8; 4]), u32)>,
    pub v6: Vec<((u32, [u8; 16]), u32)>,
    /// (prefix length in the key, protocol, port) → class id.
    pub l4: Vec<(L4Entry, u32)>,
}

impl TableDump {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
            && self.classes.is_empty()
            && self.v4.is_empty()
            && self.v6.is_empty()
            && self.l4.is_empty()
    }
}

impl Dataplane {
    /// What the kernel maps hold under table id `id` (empty for an id
    /// nothing was written under), without its header.
    pub fn dump_table(&self, id: u32) -> Result<TableDump, DataplaneError> {
        let mut dump = TableDump::default();
        for entry in self.maps.rules.iter() {
            let (key, meta) = entry.map_err(map_err(names::RULES))?;
            if key.table == id {
                dump.rules.push((key.pos, meta));
            }
        }
        for entry in self.maps.classes.iter() {
            let (key, bits) = entry.map_err(map_err(names::CLASSES))?;
            // The header is bookkeeping (`adopt.rs`), not a class.
            if key.table == id && key.class_id != super::adopt::HEADER_CLASS {
                dump.classes.push((key.class_id, bits));
            }
        }
        for entry in self.maps.v4.iter() {
            let (key, class): (Key<V4KeyData>, ClassRef) = entry.map_err(map_err(names::V4))?;
            if key.data().table == id {
                dump.v4
                    .push(((key.prefix_len(), key.data().addr), class.class_id));
            }
        }
        for entry in self.maps.v6.iter() {
            let (key, class): (Key<V6KeyData>, ClassRef) = entry.map_err(map_err(names::V6))?;
            if key.data().table == id {
                dump.v6
                    .push(((key.prefix_len(), key.data().addr), class.class_id));
            }
        }
        // Hosts as the full-length prefixes they are: the dump is the
        // table's entries, wherever the maps keep them.
        for entry in self.maps.v4_hosts.iter() {
            let (key, class) = entry.map_err(map_err(names::V4_HOSTS))?;
            if key.table == id {
                dump.v4
                    .push(((LPM_TABLE_BITS + 32, key.addr), class.class_id));
            }
        }
        for entry in self.maps.v6_hosts.iter() {
            let (key, class) = entry.map_err(map_err(names::V6_HOSTS))?;
            if key.table == id {
                dump.v6
                    .push(((LPM_TABLE_BITS + 128, key.addr), class.class_id));
            }
        }
        for entry in self.maps.l4.iter() {
            let (key, class): (Key<L4KeyData>, ClassRef) = entry.map_err(map_err(names::L4))?;
            let data = key.data();
            if data.table == id {
                dump.l4
                    .push(((key.prefix_len(), data.proto, data.port), class.class_id));
            }
        }
        dump.rules.sort_by_key(|(pos, _)| *pos);
        dump.classes.sort_by_key(|(class, _)| *class);
        dump.v4.sort_unstable();
        dump.v6.sort_unstable();
        dump.l4.sort_unstable();
        Ok(dump)
    }
}

impl Dataplane {
    /// Whether the kernel holds a complete-table header under `id` (see
    /// `adopt.rs`): what a restart needs to adopt it.
    pub fn table_has_header(&self, id: u32) -> bool {
        matches!(super::adopt::read_header(&self.maps, id), Some((true, _)))
    }
}
