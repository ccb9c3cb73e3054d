//! Reads rule files from disk for [`secgroup_model::load_with`]: the file
//! I/O the pure model crate leaves out, shared by `secgroupctl` and the
//! daemon.
//!
//! A path may be a directory, whose `*.json` files directly inside it are
//! read in name order (dotfiles and editor leftovers skipped), or a file,
//! read whatever its name. A path that cannot be read is an error; an
//! entry of a directory that cannot be read is one more located problem
//! of the rule files, reported with all the others.

mod kept;
mod read;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secgroup_model::{
    DecodeCache, Diagnostic, Diagnostics, Document, HostView, Index, Limits, RuleSet, SourceFile,
};

pub use kept::{KeptFiles, RACY_MARGIN};
pub use read::{is_rule_file_name, read_sources, read_sources_kept, read_sources_limited};

/// Where the daemon and `secgroupctl` look when given no path.
pub const DEFAULT_RULES_DIR: &str = "/etc/secgroup/rules.d";

/// One rule file as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// How diagnostics name the file: its path as reached from the given one.
    pub name: String,
    pub path: PathBuf,
    /// At most the size limit plus one byte: enough for the model to see
    /// that a file is too large without reading all of it.
    pub bytes: Vec<u8>,
}

impl LoadedFile {
    pub fn source(&self) -> SourceFile<'_> {
        SourceFile {
            name: &self.name,
            bytes: &self.bytes,
        }
    }
}

/// A directory entry that looks like a rule file but cannot be read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// How diagnostics name it, as [`LoadedFile::name`].
    pub name: String,
    pub path: PathBuf,
    pub error: EntryError,
}

impl Unreadable {
    /// The problem as the model reports its own: at the start of the file.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic {
            file: self.name.clone(),
            line: 1,
            column: 1,
            path: "$".to_owned(),
            message: self.error.to_string(),
        }
    }
}

/// Why a directory entry named like a rule file cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntryError {
    /// Its metadata, its canonical path or its bytes cannot be read (a
    /// symlink loop, a dangling symlink, no permission, an I/O error).
    /// Shared so that a [`Sources`] can be copied and edited.
    #[error("cannot read the file: {0}")]
    Io(#[source] Arc<io::Error>),
    /// It is a directory, a FIFO, a socket or a device.
    #[error("{0}, not a regular file; only regular files (or links to them) are rule files")]
    NotAFile(&'static str),
}

/// Everything read from a set of paths: the rule files, and the entries
/// that could not be read. Tools that change the rules directory check
/// the result first by loading an edited copy.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// In the order found: paths in the order given, a directory's files
    /// in name order.
    pub files: Vec<LoadedFile>,
    pub unreadable: Vec<Unreadable>,
}

/// A valid set of rule files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub rules: RuleSet,
    /// What each file defines, and where.
    pub index: Index,
    /// The paths of the files read, in the order found: what to pass as
    /// `known` to the next load.
    pub files: Vec<PathBuf>,
    /// What is valid but suspicious (sorted); never fails a load.
    pub warnings: Vec<secgroup_model::Diagnostic>,
}

impl Sources {
    /// Validates the files as one rule set. `known` are the paths of the
    /// previous successful load ([`Loaded::files`]), or nothing: a conflict
    /// with a file that is not among them is reported in that file (see
    /// [`secgroup_model::load_with`]). Fails, with every problem, if any
    /// entry was unreadable or any file is invalid.
    pub fn load(&self, limits: &Limits, known: &[PathBuf]) -> Result<Loaded, Diagnostics> {
        self.load_cached(limits, known, &mut DecodeCache::default())
    }

    /// [`load`](Self::load), decoding only the files `cache` does not
    /// already hold with the same bytes (see
    /// [`secgroup_model::load_with_cache`]): the same result, less work
    /// when few files changed since the last load.
    pub fn load_cached(
        &self,
        limits: &Limits,
        known: &[PathBuf],
        cache: &mut DecodeCache,
    ) -> Result<Loaded, Diagnostics> {
        self.load_with_documents(limits, known, cache, &Extra::default(), HostView::Fleet)
    }

    /// [`load_cached`](Self::load_cached) of these files and `extra`
    /// documents (a store's objects) merged, for the host `view` says.
    /// The extra documents' names are what [`Loaded::files`] and `known`
    /// hold for them (as paths).
    pub fn load_with_documents(
        &self,
        limits: &Limits,
        known: &[PathBuf],
        cache: &mut DecodeCache,
        extra: &Extra<'_>,
        view: HostView<'_>,
    ) -> Result<Loaded, Diagnostics> {
        let known: HashSet<&Path> = known.iter().map(PathBuf::as_path).collect();
        let known_names: Vec<&str> = self
            .files
            .iter()
            .filter(|f| known.contains(f.path.as_path()))
            .map(|f| f.name.as_str())
            .chain(
                extra
                    .documents
                    .iter()
                    .map(|d| d.name)
                    .filter(|name| known.contains(Path::new(name))),
            )
            .collect();
        let sources: Vec<Document<'_>> = self
            .files
            .iter()
            .map(|f| Document::from(f.source()))
            .chain(extra.documents.iter().copied())
            .collect();
        let result = secgroup_model::load_documents(&sources, limits, &known_names, cache, view);
        let mut errors: Vec<Diagnostic> =
            self.unreadable.iter().map(Unreadable::diagnostic).collect();
        errors.extend(extra.errors.iter().cloned());
        match result {
            Ok(loaded) if errors.is_empty() => Ok(Loaded {
                rules: loaded.rules,
                index: loaded.index,
                files: self
                    .files
                    .iter()
                    .map(|f| f.path.clone())
                    .chain(extra.documents.iter().map(|d| PathBuf::from(d.name)))
                    .collect(),
                warnings: loaded.warnings,
            }),
            Ok(_) => {
                errors.sort();
                errors.dedup();
                Err(Diagnostics(errors))
            }
            Err(Diagnostics(more)) => {
                errors.extend(more);
                errors.sort();
                errors.dedup();
                Err(Diagnostics(errors))
            }
        }
    }

    /// What each readable file defines, whether or not they validate.
    pub fn index(&self, limits: &Limits) -> Index {
        Index::new(
            self.files
                .iter()
                .map(|f| secgroup_model::outline(&f.source(), limits))
                .collect(),
        )
    }
}

/// Documents from elsewhere than files (a store's values) to load with
/// the files, and the problems found before decoding them (a key that is
/// no object's key), reported with the others.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    pub documents: Vec<Document<'a>>,
    pub errors: Vec<Diagnostic>,
}

/// Why rule files could not be read or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesDirError {
    /// A given path does not exist or its metadata cannot be read.
    #[error("cannot access {}: {source}", path.display())]
    Access { path: PathBuf, source: io::Error },
    /// A directory could not be listed.
    #[error("cannot list directory {}: {source}", path.display())]
    ReadDir { path: PathBuf, source: io::Error },
    /// A file given by path could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A given path is neither a regular file nor a directory (a FIFO, a
    /// device).
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// The files were read but are not a valid rule set, or some entries
    /// of a directory could not be read: every problem, located.
    #[error("invalid rule files:\n{0}")]
    Invalid(#[from] Diagnostics),
}

/// What [`load_paths`] fails with: reading or validation.
pub type LoadError = RulesDirError;

/// Reads and validates the rule files under `paths`, with no knowledge of
/// an earlier load.
pub fn load_paths(paths: &[PathBuf], limits: &Limits) -> Result<RuleSet, LoadError> {
    load_paths_with(paths, limits, &[]).map(|loaded| loaded.rules)
}

/// Reads and validates the rule files under `paths`. `known` are the
/// files of the previous successful load ([`Loaded::files`]; empty for
/// none); see [`Sources::load`].
pub fn load_paths_with(
    paths: &[PathBuf],
    limits: &Limits,
    known: &[PathBuf],
) -> Result<Loaded, LoadError> {
    load_paths_cached(paths, limits, known, &mut DecodeCache::default())
}

/// [`load_paths_with`] through a [`DecodeCache`] kept between calls.
pub fn load_paths_cached(
    paths: &[PathBuf],
    limits: &Limits,
    known: &[PathBuf],
    cache: &mut DecodeCache,
) -> Result<Loaded, LoadError> {
    let sources = read_sources_limited(paths, limits.max_file_bytes)?;
    Ok(sources.load_cached(limits, known, cache)?)
}
