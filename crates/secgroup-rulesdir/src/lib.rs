//! Reads rule files from disk for [`secgroup_model::load`]: the file I/O the
//! pure model crate leaves out, shared by `secgroupctl` and the daemon.
//!
//! A path may be a directory, whose `*.json` files directly inside it are
//! read in name order (dotfiles and editor leftovers skipped), or a file,
//! read whatever its name.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use secgroup_model::{Diagnostics, Limits, RuleSet, SourceFile};

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

/// Why rule files could not be read or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesDirError {
    /// A path does not exist or its metadata cannot be read.
    #[error("cannot access {}: {source}", path.display())]
    Access { path: PathBuf, source: io::Error },
    /// A directory could not be listed.
    #[error("cannot list directory {}: {source}", path.display())]
    ReadDir { path: PathBuf, source: io::Error },
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A path is neither a regular file nor a directory (a FIFO, a device,
    /// a directory named `*.json` inside the rules directory).
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// The files were read but are not a valid rule set.
    #[error("invalid rule files:\n{0}")]
    Invalid(#[from] Diagnostics),
}

/// What [`load_paths`] fails with: reading or validation.
pub type LoadError = RulesDirError;

/// Reads the rule files under `paths` with the default size limit.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<LoadedFile>, RulesDirError> {
    read_sources_limited(paths, Limits::default().max_file_bytes)
}

/// Reads the rule files under `paths`, never more than `max_file_bytes + 1`
/// bytes of one file. A file reached twice (a directory and a file in it)
/// is read once.
pub fn read_sources_limited(
    paths: &[PathBuf],
    max_file_bytes: usize,
) -> Result<Vec<LoadedFile>, RulesDirError> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        for file in candidates(path)? {
            // Canonical paths catch the same file reached two ways.
            let key = fs::canonicalize(&file).map_err(|source| RulesDirError::Access {
                path: file.clone(),
                source,
            })?;
            if seen.insert(key) {
                files.push(read_limited(&file, max_file_bytes)?);
            }
        }
    }
    Ok(files)
}

/// Reads and validates the rule files under `paths`.
pub fn load_paths(paths: &[PathBuf], limits: &Limits) -> Result<RuleSet, LoadError> {
    let files = read_sources_limited(paths, limits.max_file_bytes)?;
    let sources: Vec<SourceFile<'_>> = files.iter().map(LoadedFile::source).collect();
    Ok(secgroup_model::load(&sources, limits)?)
}

/// Whether a directory entry is a rule file: `*.json`, not hidden, not an
/// editor's lock or autosave file (`.#x.json`, `#x.json#`; backups such
/// as `x.json~` and `.x.json.swp` fail the suffix test already).
pub fn is_rule_file_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with(['.', '#'])
}

/// The files `path` stands for, in the order to read them.
fn candidates(path: &Path) -> Result<Vec<PathBuf>, RulesDirError> {
    let meta = fs::metadata(path).map_err(|source| RulesDirError::Access {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if !meta.is_dir() {
        return Err(RulesDirError::NotAFile {
            path: path.to_owned(),
        });
    }
    let read_dir_error = |source| RulesDirError::ReadDir {
        path: path.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name();
        // Names that are not UTF-8 cannot end in ".json" as a str.
        if name.to_str().is_some_and(is_rule_file_name) {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let file = path.join(name);
        // Follows symlinks: a link to a rule file is a rule file.
        let meta = fs::metadata(&file).map_err(|source| RulesDirError::Access {
            path: file.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(RulesDirError::NotAFile { path: file });
        }
        files.push(file);
    }
    Ok(files)
}

fn read_limited(path: &Path, max_file_bytes: usize) -> Result<LoadedFile, RulesDirError> {
    let read_error = |source| RulesDirError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let limit = u64::try_from(max_file_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    Ok(LoadedFile {
        name: path.display().to_string(),
        path: path.to_owned(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_file_names() {
        let cases = [
            ("web.json", true),
            ("10-base.json", true),
            (".web.json", false),
            (".#web.json", false),
            ("#web.json#", false),
            ("web.json~", false),
            (".web.json.swp", false),
            ("web.json.bak", false),
            ("web.JSON", false),
            (".json", false),
            ("README.md", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_rule_file_name(name), expected, "{name}");
        }
    }
}
