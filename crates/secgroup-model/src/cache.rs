//! Files decoded and checked, kept from one load to the next, so that a
//! reload decodes (parses the JSON, reads the raw objects) and checks by
//! itself only each file whose bytes changed. The daemon reloads a
//! directory of a thousand files when one of them changes; decoding and
//! checking every file was most of it.
//!
//! Keyed by file name and checked against the exact bytes: a file is
//! reused only if it is byte for byte what was decoded, and a file's own
//! check depends on nothing else (see `validate`), so a load through the
//! cache is exactly a load without one. The checks across files still run
//! on every load (see [`load_with_cache`](crate::load_with_cache)): a
//! reload is applied only if the whole set of files is valid.

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Document, Limits, Shape};
use crate::outline::{ObjectKind, Outline};
use crate::validate::{FileCheck, check_file};

/// One file decoded and checked by itself.
pub(crate) struct Checked {
    /// Decoding problems (the file's own check has its own).
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) outline: Arc<Outline>,
    /// Empty for a file that did not decode.
    pub(crate) check: FileCheck,
}

impl Checked {
    pub(crate) fn new(file: &Document<'_>, limits: &Limits) -> Checked {
        let mut errors = Vec::new();
        let raw = crate::source::decode(file, limits, &mut errors);
        let outline = Arc::new(Outline::new(file.name, raw.as_ref(), errors.clone()));
        let check = raw
            .as_ref()
            .map(|raw| check_file(raw, limits))
            .unwrap_or_default();
        Checked {
            errors,
            outline,
            check,
        }
    }
}

struct Entry {
    bytes: Vec<u8>,
    /// A file, or the kind and id of one object.
    object: Option<(ObjectKind, String)>,
    checked: Checked,
}

/// The decoded and checked form of the files of the last load(s).
#[derive(Default)]
pub struct DecodeCache {
    /// The limits the entries were checked under (they bound decoding and
    /// the checks).
    limits: Option<Limits>,
    files: HashMap<String, Entry>,
    /// Files decoded (not reused) by the last refresh.
    decoded_last: usize,
}

impl DecodeCache {
    /// Number of files held.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How many files the last load had to decode and check (the others
    /// were reused).
    pub fn decoded_last(&self) -> usize {
        self.decoded_last
    }

    /// Makes the cache hold exactly `files`, decoding and checking those
    /// that are new or changed.
    pub(crate) fn refresh(&mut self, files: &[Document<'_>], limits: &Limits) {
        if self.limits != Some(*limits) {
            self.files.clear();
            self.limits = Some(*limits);
        }
        let names: HashSet<&str> = files.iter().map(|f| f.name).collect();
        self.files.retain(|name, _| names.contains(name.as_str()));
        self.decoded_last = 0;
        for file in files {
            let object = match file.shape {
                Shape::File => None,
                Shape::Object { kind, id } => Some((kind, id)),
            };
            if self.files.get(file.name).is_some_and(|e| {
                e.bytes == file.bytes && e.object.as_ref().map(|(k, i)| (*k, i.as_str())) == object
            }) {
                continue;
            }
            let checked = Checked::new(file, limits);
            self.files.insert(
                file.name.to_owned(),
                Entry {
                    bytes: file.bytes.to_vec(),
                    object: object.map(|(k, i)| (k, i.to_owned())),
                    checked,
                },
            );
            self.decoded_last += 1;
        }
    }

    /// The file named `name`, decoded and checked. Only after
    /// [`refresh`](Self::refresh) with it.
    pub(crate) fn get(&self, name: &str) -> Option<&Checked> {
        self.files.get(name).map(|e| &e.checked)
    }
}
