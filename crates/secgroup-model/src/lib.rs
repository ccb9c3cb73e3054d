//! The rule-file schema of secgroup: parsing, validation and the validated
//! model. Pure: no I/O beyond the bytes it is handed.
//!
//! Layers, outermost first (in the spirit of ripgrep's low/high args):
//! `json` (a span-preserving parser) → `raw` / `tencent` (the file exactly
//! as written, every value located) → `validate` (raw → [`model`], all
//! errors collected) → [`RuleSet`].

mod cache;
mod diagnostic;
mod json;
mod location;
pub mod model;
mod outline;
mod raw;
pub mod render;
mod source;
pub mod templates;
mod tencent;
mod validate;
mod values;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;

pub use cache::DecodeCache;
pub use diagnostic::{Diagnostic, Diagnostics, Document, HostView, Limits, Shape, SourceFile};
pub use model::*;
pub use outline::{
    Definition, Format, Index, ListPlaces, Location, ObjectKind, Outline, Parts, outline,
};

/// Parses, merges and validates rule files, with no knowledge of an
/// earlier load: [`load_with`] with no known files.
pub fn load(files: &[SourceFile<'_>], limits: &Limits) -> Result<RuleSet, Diagnostics> {
    load_with(files, limits, &[]).map(|loaded| loaded.rules)
}

/// A valid set of rule files: the rule set, what each file defines, and
/// what is questionable but valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub rules: RuleSet,
    pub index: Index,
    /// Located like errors and sorted the same way, but they never fail a
    /// load: an address on an instance of this host and on one elsewhere.
    pub warnings: Vec<Diagnostic>,
}

/// Parses, merges and validates rule files.
///
/// Every file may define any kind of object; ids must be unique across all
/// of them and every reference must resolve. Errors from all files are
/// collected and returned sorted by file name and position; the rule set
/// is returned only when there are none, with the warnings (sorted too).
///
/// `known` names the files of the previous successful load. A conflict
/// between two definitions (an id defined twice, an interface bound
/// twice) is reported at the later one in file-name order, except that
/// when exactly one of the two files is not `known` (it is new), it is
/// reported there: the file that brought the problem is the one to fix,
/// and the valid old one is named as "first defined at".
pub fn load_with(
    files: &[SourceFile<'_>],
    limits: &Limits,
    known: &[&str],
) -> Result<Loaded, Diagnostics> {
    load_with_cache(files, limits, known, &mut DecodeCache::default())
}

/// [`load_with`], decoding and checking by itself only each file that
/// `cache` does not hold with the same bytes, and leaving `cache` holding
/// exactly `files` (see `cache.rs`). The result is the same as
/// `load_with`'s: the checks across files (duplicate ids, references,
/// interfaces, addresses, quotas) run over every file on every call.
pub fn load_with_cache(
    files: &[SourceFile<'_>],
    limits: &Limits,
    known: &[&str],
    cache: &mut DecodeCache,
) -> Result<Loaded, Diagnostics> {
    let documents: Vec<Document<'_>> = files.iter().map(|f| Document::from(*f)).collect();
    load_documents(&documents, limits, known, cache, HostView::Fleet)
}

/// [`load_with_cache`] of documents that may also be single objects (a
/// shared store's values, see [`Shape`]), for the host `view` says (what
/// an instance's `"host"` means). Rule files and objects merge under the
/// same rules: an id defined twice is an error wherever each is. A
/// document's own check does not depend on the view (the cache keeps it
/// whatever the view); only the merge does.
pub fn load_documents(
    files: &[Document<'_>],
    limits: &Limits,
    known: &[&str],
    cache: &mut DecodeCache,
    view: HostView<'_>,
) -> Result<Loaded, Diagnostics> {
    let known: HashSet<&str> = known.iter().copied().collect();
    cache.refresh(files, limits);
    // The merge keeps the first definition it sees and reports later
    // ones: known files first, then new ones, each in file-name order.
    let mut ordered: Vec<&Document<'_>> = files.iter().collect();
    ordered.sort_by_key(|f| (!known.contains(f.name), f.name));
    // Two files of one name: the cache holds the last; check the others
    // here.
    let mut uses: HashMap<&str, usize> = HashMap::with_capacity(files.len());
    for file in files {
        *uses.entry(file.name).or_default() += 1;
    }
    let shared_name = |name: &str| uses.get(name).is_some_and(|n| *n > 1);
    let extra: Vec<cache::Checked> = ordered
        .iter()
        .filter(|f| shared_name(f.name))
        .map(|f| cache::Checked::new(f, limits))
        .collect();
    let mut checked: Vec<&cache::Checked> = Vec::with_capacity(files.len());
    let mut extra_left = extra.iter();
    for file in &ordered {
        let entry = if shared_name(file.name) {
            extra_left.next()
        } else {
            cache.get(file.name)
        };
        // `refresh` was given every file: only a name shared by several
        // could miss, and those were checked above.
        if let Some(entry) = entry {
            checked.push(entry);
        }
    }
    let checks: Vec<&validate::FileCheck> = checked.iter().map(|c| &c.check).collect();
    let (rules, mut errors, mut warnings) = validate::merge(&checks, limits, view);
    for entry in &checked {
        errors.extend_from_slice(&entry.errors);
    }
    match rules {
        Some(rules) if errors.is_empty() => {
            warnings.sort();
            warnings.dedup();
            Ok(Loaded {
                rules,
                index: Index::of_shared(checked.iter().map(|c| Arc::clone(&c.outline)).collect()),
                warnings,
            })
        }
        _ => {
            errors.sort();
            errors.dedup();
            Err(Diagnostics(errors))
        }
    }
}
