//! Decoded files kept from one load to the next, so that a reload
//! decodes (parses the JSON and reads the raw objects) only the files
//! whose bytes changed. The daemon reloads a directory of a thousand
//! files when one of them changes; decoding was a large part of it.
//!
//! Keyed by file name and checked against the exact bytes: a file is
//! reused only if it is byte for byte what was decoded, so a load through
//! the cache is exactly a load without one. Validation across files
//! still runs on every load (see [`load_with_cache`](crate::load_with_cache)):
//! a reload is applied only if the whole directory is valid.

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, Document, Limits, Shape};
use crate::outline::{ObjectKind, Outline};
use crate::raw::RawFile;

struct Decoded {
    bytes: Vec<u8>,
    /// A file, or the kind and id of one object.
    object: Option<(ObjectKind, String)>,
    raw: Option<RawFile>,
    errors: Vec<Diagnostic>,
    outline: Outline,
}

/// The decoded form of the files of the last load(s).
#[derive(Default)]
pub struct DecodeCache {
    /// The limits the entries were decoded under (they bound decoding).
    limits: Option<Limits>,
    files: HashMap<String, Decoded>,
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

    /// How many files the last load had to decode (the others were
    /// reused).
    pub fn decoded_last(&self) -> usize {
        self.decoded_last
    }

    /// Makes the cache hold exactly `files`, decoding those that are new
    /// or changed.
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
            if self.files.get(file.name).is_some_and(|d| {
                d.bytes == file.bytes && d.object.as_ref().map(|(k, i)| (*k, i.as_str())) == object
            }) {
                continue;
            }
            let mut errors = Vec::new();
            let raw = crate::source::decode(file, limits, &mut errors);
            let outline = Outline::new(file.name, raw.as_ref(), errors.clone());
            self.files.insert(
                file.name.to_owned(),
                Decoded {
                    bytes: file.bytes.to_vec(),
                    object: object.map(|(k, i)| (k, i.to_owned())),
                    raw,
                    errors,
                    outline,
                },
            );
            self.decoded_last += 1;
        }
    }

    /// The decoded file named `name`: its raw objects (if it decoded), its
    /// own errors and its outline. Only after [`refresh`](Self::refresh)
    /// with it.
    pub(crate) fn get(&self, name: &str) -> Option<(Option<&RawFile>, &[Diagnostic], &Outline)> {
        self.files
            .get(name)
            .map(|d| (d.raw.as_ref(), d.errors.as_slice(), &d.outline))
    }
}
