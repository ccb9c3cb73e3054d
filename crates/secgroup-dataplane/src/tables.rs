//! Classifier tables in the kernel: writing one under a fresh id, deleting
//! one, and sweeping tables nobody references (after adopting pinned maps
//! whose contents this process did not write).
//!
//! Every key starts with the table id, so tables never overlap: a new table
//! is complete in the maps before any interface points at it, and an old one
//! is removed only after every interface has moved away and an RCU grace
//! period has passed.

use std::collections::{HashMap, HashSet};

use aya::maps::lpm_trie::Key;
use secgroup_classifier::Table;
use secgroup_model::Action;
use secgroup_policy::RuleList;

use crate::abi::*;
use crate::batch;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, names};
use crate::uids::RuleUids;

/// The tables this process has written, by content. Identical rule lists
/// (same rules, same origins) share one table whatever the number of
/// interfaces using it.
#[derive(Default)]
pub(crate) struct TableStore {
    by_list: HashMap<RuleList, u32>,
    tables: HashMap<u32, StoredTable>,
    next_id: u32,
}

/// A table in the kernel: its list, and the keys of its entries (to
/// delete it). Not the classifier table itself: its class values, 520
/// bytes each, are in the kernel, and kept here they were most of the
/// daemon's memory (a thousand VMs: about 330 MB).
pub(crate) struct StoredTable {
    pub list: RuleList,
    pub keys: TableKeys,
}

impl TableStore {
    pub fn with_next_id(next_id: u32) -> TableStore {
        TableStore {
            next_id: next_id.max(1),
            ..TableStore::default()
        }
    }

    pub fn id_of(&self, list: &RuleList) -> Option<u32> {
        self.by_list.get(list).copied()
    }

    pub fn get(&self, id: u32) -> Option<&StoredTable> {
        self.tables.get(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.tables.keys().copied()
    }

    /// Entries of the maps its tables hold.
    pub fn entries(&self) -> usize {
        self.tables
            .values()
            .map(|stored| stored.keys.entries())
            .sum()
    }

    pub fn allocate(&mut self) -> Result<u32, DataplaneError> {
        let id = self.next_id;
        if id == u32::MAX {
            return Err(DataplaneError::TableIdsExhausted);
        }
        self.next_id += 1;
        Ok(id)
    }

    /// The id the next [`allocate`](Self::allocate) returns.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// Forgets every table (their entries stay in the kernel, to be swept)
    /// and continues numbering from at least `next_id`.
    pub fn forget_all(&mut self, next_id: u32) {
        self.by_list.clear();
        self.tables.clear();
        self.next_id = self.next_id.max(next_id).max(1);
    }

    pub fn insert(&mut self, id: u32, list: RuleList, table: &Table) {
        self.by_list.insert(list.clone(), id);
        let keys = TableKeys::of(id, table);
        self.tables.insert(id, StoredTable { list, keys });
    }

    /// Table `id`, whose list is equal to `list`, keeps `list`'s
    /// allocation from now on (`false`: no such table here). A policy
    /// compiled again gives equal lists new allocations; once shared, the
    /// next apply that passes the same list recognises it by its pointer
    /// instead of comparing it rule by rule (a thousand lists per apply).
    pub fn share(&mut self, id: u32, list: &RuleList) -> bool {
        let Some(stored) = self.tables.get_mut(&id) else {
            return false;
        };
        if stored.list.same_allocation(list) {
            return true;
        }
        stored.list = list.clone();
        // An equal key stays in a map that is inserted into: take it out.
        if self.by_list.get(list) == Some(&id) {
            self.by_list.remove(list);
            self.by_list.insert(list.clone(), id);
        }
        true
    }

    pub fn remove(&mut self, id: u32) -> Option<StoredTable> {
        let stored = self.tables.remove(&id)?;
        self.by_list.remove(&stored.list);
        Some(stored)
    }
}

fn v4_key(table: u32, net: &ipnet::Ipv4Net) -> Key<V4KeyData> {
    Key::new(
        LPM_TABLE_BITS + u32::from(net.prefix_len()),
        V4KeyData {
            table,
            addr: net.network().octets(),
        },
    )
}

fn v6_key(table: u32, net: &ipnet::Ipv6Net) -> Key<V6KeyData> {
    Key::new(
        LPM_TABLE_BITS + u32::from(net.prefix_len()),
        V6KeyData {
            table,
            addr: net.network().octets(),
        },
    )
}

/// A table's remote entries as the maps hold them: full-length prefixes
/// (hosts) in the exact-match hashes, the others in the tries. The
/// classifier folds shorter prefixes' rules into every longer entry's
/// class, so a host's class is already what a trie walk ending at it
/// would give, and a miss in the hash leaves the trie's answer unchanged.
struct RemoteEntries<'t> {
    v4_hosts: Vec<(V4KeyData, &'t u32)>,
    v4: Vec<(Key<V4KeyData>, &'t u32)>,
    v6_hosts: Vec<(V6KeyData, &'t u32)>,
    v6: Vec<(Key<V6KeyData>, &'t u32)>,
}

impl<'t> RemoteEntries<'t> {
    fn of(id: u32, table: &'t Table) -> RemoteEntries<'t> {
        let mut entries = RemoteEntries {
            v4_hosts: Vec::new(),
            v4: Vec::new(),
            v6_hosts: Vec::new(),
            v6: Vec::new(),
        };
        for (net, class) in &table.v4 {
            let key = v4_key(id, net);
            if net.prefix_len() == net.max_prefix_len() {
                entries.v4_hosts.push((key.data(), class));
            } else {
                entries.v4.push((key, class));
            }
        }
        for (net, class) in &table.v6 {
            let key = v6_key(id, net);
            if net.prefix_len() == net.max_prefix_len() {
                entries.v6_hosts.push((key.data(), class));
            } else {
                entries.v6.push((key, class));
            }
        }
        entries
    }

    /// What every `sg_l4` value of the table carries above its class id:
    /// which host maps hold entries of the table.
    fn l4_flags(&self) -> u32 {
        let v4 = if self.v4_hosts.is_empty() {
            0
        } else {
            L4_F_V4_HOSTS
        };
        let v6 = if self.v6_hosts.is_empty() {
            0
        } else {
            L4_F_V6_HOSTS
        };
        v4 | v6
    }
}

fn l4_key(table: u32, prefix: &secgroup_classifier::L4Prefix) -> Key<L4KeyData> {
    Key::new(
        LPM_TABLE_BITS + u32::from(prefix.len),
        L4KeyData {
            table,
            proto: prefix.protocol,
            port: prefix.port.to_be_bytes(),
            pad: 0,
        },
    )
}

/// Writes every entry of `table` under `id`, one batch per map (see
/// `batch.rs`). On error the caller removes what was written with
/// [`delete`].
pub(crate) fn write(
    maps: &mut Maps,
    uids: &mut RuleUids,
    id: u32,
    table: &Table,
) -> Result<(), DataplaneError> {
    let mut rules = Vec::with_capacity(table.rules.len());
    for (pos, rule) in table.rules.iter().enumerate() {
        let meta = RuleMeta {
            rule_uid: uids.uid(&rule.origin),
            action: match rule.action {
                Action::Accept => ACTION_ACCEPT,
                Action::Drop => ACTION_DROP,
            },
            flags: if rule.log { RULE_F_LOG } else { 0 },
            pad: [0; 2],
        };
        let key = RuleKey {
            table: id,
            pos: pos as u32,
        };
        rules.push((key, meta));
    }
    batch::update(&maps.rules, &rules).map_err(map_err(names::RULES))?;
    let mut classes = Vec::with_capacity(table.classes.len());
    for (class_id, set) in table.classes.iter().enumerate() {
        let key = ClassKey {
            table: id,
            class_id: class_id as u32,
        };
        let bits = RuleSetBits {
            summary: set.summary,
            words: set.words,
        };
        classes.push((key, bits));
    }
    batch::update(&maps.classes, &classes).map_err(map_err(names::CLASSES))?;
    let class = |class_id: &u32| ClassRef {
        class_id: *class_id,
    };
    let remotes = RemoteEntries::of(id, table);
    macro_rules! write_entries {
        ($entries:expr, $map:expr, $name:expr) => {{
            let entries: Vec<_> = $entries.iter().map(|(k, c)| (*k, class(c))).collect();
            batch::update(&$map, &entries).map_err(map_err($name))?;
        }};
    }
    write_entries!(remotes.v4_hosts, maps.v4_hosts, names::V4_HOSTS);
    write_entries!(remotes.v4, maps.v4, names::V4);
    write_entries!(remotes.v6_hosts, maps.v6_hosts, names::V6_HOSTS);
    write_entries!(remotes.v6, maps.v6, names::V6);
    // Class ids are below the number of classes, which the map's size
    // (2^20) bounds well under the flags.
    debug_assert!(table.classes.len() <= CLASS_ID_MASK as usize);
    let flags = remotes.l4_flags();
    let l4: Vec<_> = (table.l4.iter())
        .map(|(prefix, c)| (l4_key(id, prefix), class(&(c | flags))))
        .collect();
    batch::update(&maps.l4, &l4).map_err(map_err(names::L4))?;
    Ok(())
}

/// Removes every entry of `table` stored under `id`, one batch per map.
/// Missing entries are fine (a half-written table is deleted this way
/// too).
pub(crate) fn delete(maps: &mut Maps, id: u32, table: &Table) {
    TableKeys::of(id, table).delete(maps);
}

/// The keys of a table's entries and nothing else: what is kept of a
/// table to delete it (its class values, 520 bytes each, are most of a
/// table's memory).
pub(crate) struct TableKeys {
    id: u32,
    v4_hosts: Vec<V4KeyData>,
    v4: Vec<Key<V4KeyData>>,
    v6_hosts: Vec<V6KeyData>,
    v6: Vec<Key<V6KeyData>>,
    l4: Vec<Key<L4KeyData>>,
    classes: u32,
    rules: u32,
}

impl TableKeys {
    pub fn of(id: u32, table: &Table) -> TableKeys {
        let remotes = RemoteEntries::of(id, table);
        fn keys<K, V>(entries: Vec<(K, V)>) -> Vec<K> {
            entries.into_iter().map(|(k, _)| k).collect()
        }
        TableKeys {
            id,
            v4_hosts: keys(remotes.v4_hosts),
            v4: keys(remotes.v4),
            v6_hosts: keys(remotes.v6_hosts),
            v6: keys(remotes.v6),
            l4: table.l4.iter().map(|(p, _)| l4_key(id, p)).collect(),
            classes: table.classes.len() as u32,
            rules: table.rules.len() as u32,
        }
    }

    /// Entries in the maps.
    pub fn entries(&self) -> usize {
        self.v4_hosts.len()
            + self.v4.len()
            + self.v6_hosts.len()
            + self.v6.len()
            + self.l4.len()
            + self.classes as usize
            + self.rules as usize
    }

    pub fn delete(&self, maps: &mut Maps) {
        // Errors here can only be ENOENT for entries a failed write never
        // made, which `batch::delete` skips.
        let _ = batch::delete(&maps.v4_hosts, &self.v4_hosts);
        let _ = batch::delete(&maps.v4, &self.v4);
        let _ = batch::delete(&maps.v6_hosts, &self.v6_hosts);
        let _ = batch::delete(&maps.v6, &self.v6);
        let _ = batch::delete(&maps.l4, &self.l4);
        let classes: Vec<_> = (0..self.classes)
            .map(|class_id| ClassKey {
                table: self.id,
                class_id,
            })
            .collect();
        let _ = batch::delete(&maps.classes, &classes);
        let rules: Vec<_> = (0..self.rules)
            .map(|pos| RuleKey {
                table: self.id,
                pos,
            })
            .collect();
        let _ = batch::delete(&maps.rules, &rules);
    }
}

/// The table ids found in the kernel.
pub(crate) struct KernelIds {
    /// Ids present in any table map or referenced by an interface.
    pub tables: HashSet<u32>,
    /// The highest id a conntrack entry carries (entries outlive tables).
    pub conntrack_max: Option<u32>,
    pub conntrack_entries: usize,
}

impl KernelIds {
    /// The highest id anything in the kernel may still name.
    pub fn max(&self) -> Option<u32> {
        self.tables.iter().copied().chain(self.conntrack_max).max()
    }
}

pub(crate) fn ids_in_kernel(maps: &Maps) -> Result<KernelIds, DataplaneError> {
    let mut ids = HashSet::new();
    for iface in maps.ifaces.iter() {
        let (_, iface) = iface.map_err(map_err(names::IFACES))?;
        ids.extend(iface.table.iter().copied().filter(|t| *t != NO_TABLE));
    }
    for key in maps.rules.keys() {
        ids.insert(key.map_err(map_err(names::RULES))?.table);
    }
    for key in maps.classes.keys() {
        ids.insert(key.map_err(map_err(names::CLASSES))?.table);
    }
    for key in maps.v4.keys() {
        ids.insert(key.map_err(map_err(names::V4))?.data().table);
    }
    for key in maps.v6.keys() {
        ids.insert(key.map_err(map_err(names::V6))?.data().table);
    }
    for key in maps.l4.keys() {
        ids.insert(key.map_err(map_err(names::L4))?.data().table);
    }
    for key in maps.v4_hosts.keys() {
        ids.insert(key.map_err(map_err(names::V4_HOSTS))?.table);
    }
    for key in maps.v6_hosts.keys() {
        ids.insert(key.map_err(map_err(names::V6_HOSTS))?.table);
    }
    let (conntrack_max, conntrack_entries) = conntrack_ids(maps);
    Ok(KernelIds {
        tables: ids,
        conntrack_max,
        conntrack_entries,
    })
}

/// The highest table id conntrack entries carry, and how many there are
/// (entries outlive tables), IPv6 (`sg_ct`) and IPv4 (`sg_ct4`) flows
/// alike. An entry that vanishes during the walk (LRU, expiry) is skipped.
pub(crate) fn conntrack_ids(maps: &Maps) -> (Option<u32>, usize) {
    let mut max = None;
    let mut count = 0;
    let v4 = maps.ct4.iter().filter_map(Result::ok).map(|(_, e)| e);
    for entry in maps
        .ct
        .iter()
        .filter_map(Result::ok)
        .map(|(_, e)| e)
        .chain(v4)
    {
        count += 1;
        max = max.max(Some(entry.table));
    }
    (max, count)
}

/// The table ids and port-security set id an interface entry names (one
/// id space: both come from the same counter).
pub(crate) fn ids_of(iface: &Iface) -> impl Iterator<Item = u32> + '_ {
    iface
        .table
        .iter()
        .copied()
        .filter(|t| *t != NO_TABLE)
        .chain((iface.psec_set != NO_PSEC_SET).then_some(iface.psec_set))
}

/// Reference counts of the table and port-security set ids a set of
/// interface entries use.
pub(crate) fn refs_of<'a>(ifaces: impl Iterator<Item = &'a Iface>) -> HashMap<u32, usize> {
    let mut refs = HashMap::new();
    for iface in ifaces {
        for id in ids_of(iface) {
            *refs.entry(id).or_default() += 1;
        }
    }
    refs
}

/// Deletes every table entry whose id is not in `keep`; returns how many
/// entries went. Used once after adopting pinned maps.
pub(crate) fn sweep(maps: &mut Maps, keep: &HashSet<u32>) -> Result<usize, DataplaneError> {
    let mut removed = 0;
    macro_rules! sweep_map {
        ($map:expr, $name:expr, |$key:ident| $table:expr) => {{
            let doomed: Vec<_> = $map
                .keys()
                .filter_map(Result::ok)
                .filter(|$key| !keep.contains(&$table))
                .collect();
            for key in &doomed {
                $map.remove(key).map_err(map_err($name))?;
            }
            removed += doomed.len();
        }};
    }
    sweep_map!(maps.v4, names::V4, |k| k.data().table);
    sweep_map!(maps.v6, names::V6, |k| k.data().table);
    sweep_map!(maps.v4_hosts, names::V4_HOSTS, |k| k.table);
    sweep_map!(maps.v6_hosts, names::V6_HOSTS, |k| k.table);
    sweep_map!(maps.l4, names::L4, |k| k.data().table);
    sweep_map!(maps.classes, names::CLASSES, |k| k.table);
    sweep_map!(maps.rules, names::RULES, |k| k.table);
    Ok(removed)
}
