//! Trusting what a previous owner of the pins wrote, cheaply and soundly.
//!
//! A restart that compiles the same rules should not rewrite a thousand
//! tables, and should not walk a million map keys to find out what is
//! there. Two records in `sg_classes` (under class id [`HEADER_CLASS`],
//! which no trie entry ever names, so the programs never read them) make
//! that possible:
//!
//! - a **header** per table and per port-security set: a digest of what
//!   was written under the id (the rule list with every rule's uid, or the
//!   spec, and this build's stamp). It is written after the content is
//!   complete and deleted before any of it, so a header proves the id holds
//!   exactly that content. A restart adopts an id an interface names when
//!   the header's digest equals the digest of what it wants there; anything
//!   else (no header, another digest, another build) is written afresh
//!   and the old id swept: fail closed.
//! - a **marker** under table id [`NO_TABLE`]: the owner's token and
//!   whether it is *clean*, i.e. every table and set in the kernel is one
//!   an interface names (nothing half-written, nothing waiting to be
//!   freed). An owner marks it dirty before its first write of an apply and
//!   clean once the apply has freed what it replaced. A load that finds it
//!   clean and carrying the token `sg_meta` names (so the last owner was
//!   one that keeps it) knows every id from the interfaces and
//!   `sg_meta.next_table_id` alone; otherwise it walks every key, as
//!   before, and sweeps.
//!
//! The header is a record of completeness and identity, not a seal: like
//! `check_pins`, it guards against crashes and against forgetting, not
//! against a writer with root that forges it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use secgroup_policy::{PortSecurity, RuleList};

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, names};
use crate::uids::RuleUids;

/// The class id of headers and of the marker.
pub(crate) const HEADER_CLASS: u32 = u32::MAX;
const MAGIC: u64 = 0x5347_4844_5231_0001;
const KIND_TABLE: u64 = 1;
const KIND_PSEC: u64 = 2;
const KIND_MARKER: u64 = 3;

/// 128 bits of digest.
pub(crate) type Digest = [u64; 2];

/// What a load found to adopt: the ids interfaces name whose header
/// verified as complete, by the digest of their content. Emptied by the
/// first apply that succeeds; what it did not claim is swept.
#[derive(Default)]
pub(crate) struct Candidates {
    pub tables: HashMap<Digest, u32>,
    pub psec: HashMap<Digest, u32>,
}

/// Tables adopted from a previous owner: their rule lists, verified by
/// digest. Their classifier tables are built only if they are freed (to
/// know the keys), never at adoption: building two thousand is a good part
/// of a second.
/// One copy of each list, shared by both maps: copying 2,000 lists of a
/// hundred rules twice was a good part of a restart.
#[derive(Default)]
pub(crate) struct AdoptedTables {
    by_list: HashMap<Arc<RuleList>, u32>,
    lists: HashMap<u32, Arc<RuleList>>,
}

impl AdoptedTables {
    pub fn id_of(&self, list: &RuleList) -> Option<u32> {
        self.by_list.get(list).copied()
    }

    pub fn get(&self, id: u32) -> Option<&RuleList> {
        self.lists.get(&id).map(Arc::as_ref)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.lists.keys().copied()
    }

    /// The rules of its tables: a lower bound of the map entries they hold.
    pub fn rules(&self) -> usize {
        self.lists.values().map(|list| list.rules.len()).sum()
    }

    pub fn insert(&mut self, id: u32, list: RuleList) {
        let list = Arc::new(list);
        self.by_list.insert(list.clone(), id);
        self.lists.insert(id, list);
    }

    /// See [`TableStore::share`](crate::tables::TableStore::share).
    pub fn share(&mut self, id: u32, list: &RuleList) -> bool {
        let Some(stored) = self.lists.get(&id) else {
            return false;
        };
        if stored.same_allocation(list) {
            return true;
        }
        let list = Arc::new(list.clone());
        if self.by_list.get(&list) == Some(&id) {
            self.by_list.remove(&list);
            self.by_list.insert(list.clone(), id);
        }
        self.lists.insert(id, list);
        true
    }

    pub fn remove(&mut self, id: u32) -> Option<Arc<RuleList>> {
        let list = self.lists.remove(&id)?;
        self.by_list.remove(&list);
        Some(list)
    }

    pub fn clear(&mut self) {
        self.by_list.clear();
        self.lists.clear();
    }
}

/// The digest of a table for `list`: every rule whole (its origin,
/// action, services, resolved remotes and log flag) with the uid it gets
/// (registered in `uids` as a write would), under this build's stamp.
/// Not `RuleList`'s own `Hash`, which covers only origins and actions: a
/// rule known by its id whose address set changed has the same origin and
/// another table.
pub(crate) fn table_digest(uids: &mut RuleUids, list: &RuleList) -> Digest {
    let mut hasher = StableHasher::new(KIND_TABLE);
    hasher.write_usize(list.rules.len());
    for rule in list.rules.iter() {
        rule.hash(&mut hasher);
        hasher.write_u32(uids.uid(&rule.origin));
    }
    hasher.digest()
}

pub(crate) fn psec_digest(spec: &PortSecurity) -> Digest {
    let mut hasher = StableHasher::new(KIND_PSEC);
    spec.hash(&mut hasher);
    hasher.digest()
}

fn header_key(id: u32) -> ClassKey {
    ClassKey {
        table: id,
        class_id: HEADER_CLASS,
    }
}

fn record(kind: u64, a: u64, b: u64) -> RuleSetBits {
    let mut bits = RuleSetBits {
        summary: MAGIC,
        ..RuleSetBits::default()
    };
    bits.words[0] = kind;
    bits.words[1] = a;
    bits.words[2] = b;
    bits
}

/// Writes the header of a table (`table == true`) or set `id`, whose
/// content is complete in the maps.
pub(crate) fn write_header(
    maps: &mut Maps,
    id: u32,
    table: bool,
    digest: Digest,
) -> Result<(), DataplaneError> {
    let kind = if table { KIND_TABLE } else { KIND_PSEC };
    maps.classes
        .insert(header_key(id), record(kind, digest[0], digest[1]), 0)
        .map_err(map_err(names::CLASSES))
}

/// Deletes the header of `id`, before anything else of it goes. A missing
/// one is fine.
pub(crate) fn delete_header(maps: &mut Maps, id: u32) -> Result<(), DataplaneError> {
    match maps.classes.remove(&header_key(id)) {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(e) => Err(map_err(names::CLASSES)(e)),
    }
}

/// The header under `id`: whether it is a table's (else a set's) and its
/// digest. `None` for no header or anything that is not one.
pub(crate) fn read_header(maps: &Maps, id: u32) -> Option<(bool, Digest)> {
    let bits = maps.classes.get(&header_key(id), 0).ok()?;
    if bits.summary != MAGIC {
        return None;
    }
    match bits.words[0] {
        KIND_TABLE => Some((true, [bits.words[1], bits.words[2]])),
        KIND_PSEC => Some((false, [bits.words[1], bits.words[2]])),
        _ => None,
    }
}

/// The ids `ifaces` name whose header verifies, by digest.
pub(crate) fn candidates<'a>(maps: &Maps, ifaces: impl Iterator<Item = &'a Iface>) -> Candidates {
    let mut found = Candidates::default();
    for iface in ifaces {
        for id in crate::tables::ids_of(iface) {
            match read_header(maps, id) {
                Some((true, digest)) => {
                    found.tables.insert(digest, id);
                }
                Some((false, digest)) => {
                    found.psec.insert(digest, id);
                }
                None => {}
            }
        }
    }
    found
}

/// The marker: the token of the owner that wrote it and whether the pins
/// were clean.
pub(crate) fn read_marker(maps: &Maps) -> Option<(u64, bool)> {
    let bits = maps.classes.get(&header_key(NO_TABLE), 0).ok()?;
    (bits.summary == MAGIC && bits.words[0] == KIND_MARKER)
        .then_some((bits.words[1], bits.words[2] == 1))
}

pub(crate) fn write_marker(maps: &mut Maps, token: u64, clean: bool) -> Result<(), DataplaneError> {
    maps.classes
        .insert(
            header_key(NO_TABLE),
            record(KIND_MARKER, token, u64::from(clean)),
            0,
        )
        .map_err(map_err(names::CLASSES))
}

/// What a header's digest depends on besides the content: the layout
/// version and this build of the programs and of the crate. Another build
/// may lay a list out differently: its tables are rewritten, never
/// trusted to be what this one would write.
fn stamp() -> Digest {
    static STAMP: OnceLock<Digest> = OnceLock::new();
    *STAMP.get_or_init(|| {
        let mut hasher = StableHasher::new(0);
        hasher.write_u32(ABI_VERSION);
        hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
        hasher.write(crate::object::BYTES);
        hasher.digest()
    })
}

/// A 128-bit hash that is the same in every process of a build (std's
/// hashers are randomly keyed), taking input a word at a time. Not a
/// cryptographic hash: what it tells apart is different content, not a
/// forger (see the module's comment).
struct StableHasher {
    a: u64,
    b: u64,
}

impl StableHasher {
    fn new(kind: u64) -> StableHasher {
        let mut hasher = StableHasher {
            a: 0x243f_6a88_85a3_08d3,
            b: 0x1319_8a2e_0370_7344,
        };
        if kind != 0 {
            let [s0, s1] = stamp();
            hasher.word(s0);
            hasher.word(s1);
        }
        hasher.word(kind);
        hasher
    }

    fn word(&mut self, w: u64) {
        self.a = (self.a ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.a ^= self.a >> 29;
        self.b = (self.b ^ w.rotate_left(32)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        self.b = (self.b ^ (self.b >> 31)).wrapping_add(self.a);
    }

    fn digest(&self) -> Digest {
        [fmix(self.a ^ self.b.rotate_left(17)), fmix(self.b)]
    }
}

/// MurmurHash3's finaliser: every input bit reaches every output bit.
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Length first: writes of different lengths never collide by
        // padding.
        self.word(bytes.len() as u64);
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i) | 1 << 60);
    }

    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i) | 2 << 60);
    }

    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i) | 3 << 60);
    }

    fn write_u64(&mut self, i: u64) {
        self.word(4);
        self.word(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.digest()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(f: impl FnOnce(&mut StableHasher)) -> Digest {
        let mut h = StableHasher::new(KIND_TABLE);
        f(&mut h);
        h.digest()
    }

    #[test]
    fn same_input_same_digest_and_small_changes_differ() {
        let base = digest_of(|h| h.write(b"abc"));
        assert_eq!(base, digest_of(|h| h.write(b"abc")));
        let others = [
            digest_of(|h| h.write(b"abd")),
            digest_of(|h| h.write(b"abc\0")),
            digest_of(|h| {
                h.write(b"ab");
                h.write(b"c")
            }),
            digest_of(|h| h.write_u8(3)),
            digest_of(|h| h.write_u32(3)),
        ];
        for other in others {
            assert_ne!(base, other);
        }
        assert_ne!(digest_of(|h| h.write_u8(3)), digest_of(|h| h.write_u32(3)));
        let mut psec = StableHasher::new(KIND_PSEC);
        psec.write(b"abc");
        assert_ne!(base, psec.digest(), "the kind is part of the digest");
    }
}
