//! Walking the given paths and reading files, within the size limit.

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secgroup_model::Limits;

use crate::kept::{self, KeptFiles, Stamp};
use crate::{EntryError, LoadedFile, RulesDirError, Sources, Unreadable};

/// Reads the rule files under `paths` with the default size limit.
pub fn read_sources(paths: &[PathBuf]) -> Result<Sources, RulesDirError> {
    read_sources_limited(paths, Limits::default().max_file_bytes)
}

/// Reads the rule files under `paths`, never more than `max_file_bytes + 1`
/// bytes of one file. A file reached twice (a directory and a file in it)
/// is read once. Fails only when a given path cannot be read (or a given
/// directory listed); a directory's entries that cannot be read are listed
/// in [`Sources::unreadable`].
pub fn read_sources_limited(
    paths: &[PathBuf],
    max_file_bytes: usize,
) -> Result<Sources, RulesDirError> {
    read_sources_kept(paths, max_file_bytes, &mut KeptFiles::default())
}

/// [`read_sources_limited`], taking from `kept` the bytes of every file
/// whose metadata says they are still its contents (see `kept.rs`) and
/// leaving in `kept` what this read can offer the next one. The same
/// result as reading every file.
pub fn read_sources_kept(
    paths: &[PathBuf],
    max_file_bytes: usize,
    kept: &mut KeptFiles,
) -> Result<Sources, RulesDirError> {
    // Before anything is looked at: a file changed after this instant has
    // timestamps too recent to be trusted next time.
    let started_ns = kept::now_ns();
    kept.begin();
    let mut reader = Reader {
        max_file_bytes,
        kept,
        started_ns,
    };
    let mut sources = Sources::default();
    // Canonical paths catch the same file reached two ways.
    let mut seen = HashSet::new();
    for path in paths {
        let access = |source| RulesDirError::Access {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(access)?;
        if meta.is_file() {
            if seen.insert(fs::canonicalize(path).map_err(access)?) {
                let file =
                    reader
                        .read(path, Some(&meta))
                        .map_err(|source| RulesDirError::Read {
                            path: path.to_owned(),
                            source,
                        })?;
                sources.files.push(file);
            }
        } else if meta.is_dir() {
            let canonical_dir = fs::canonicalize(path).map_err(access)?;
            for (entry, plain) in rule_file_entries(path)? {
                // A plain file's canonical path is the directory's and its
                // name: no `stat` and `realpath` per file (a thousand files
                // are read on every change).
                let canonical = match (plain, entry.file_name()) {
                    (true, Some(name)) => Some(canonical_dir.join(name)),
                    _ => None,
                };
                match reader.entry(&entry, canonical, &mut seen) {
                    Ok(Some(file)) => sources.files.push(file),
                    Ok(None) => {}
                    Err(error) => sources.unreadable.push(Unreadable {
                        name: entry.display().to_string(),
                        path: entry,
                        error,
                    }),
                }
            }
        } else {
            return Err(RulesDirError::NotAFile {
                path: path.to_owned(),
            });
        }
    }
    let read: foldhash::HashSet<&std::ffi::OsStr> =
        sources.files.iter().map(|f| f.path.as_os_str()).collect();
    reader.kept.retain(&read);
    Ok(sources)
}

/// Whether a directory entry is a rule file: `*.json`, not hidden, not an
/// editor's lock or autosave file (`.#x.json`, `#x.json#`; backups such
/// as `x.json~` and `.x.json.swp` fail the suffix test already).
pub fn is_rule_file_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with(['.', '#'])
}

/// The entries of `dir` named like rule files, in name order, each with
/// whether the directory says it is a regular file (not a link or
/// anything else).
fn rule_file_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, RulesDirError> {
    let read_dir_error = |source| RulesDirError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name();
        // Names that are not UTF-8 cannot end in ".json" as a str.
        if name.to_str().is_some_and(is_rule_file_name) {
            // From the directory entry itself where the file system says
            // (else one `lstat`); an error means "look closer".
            let plain = entry.file_type().is_ok_and(|t| t.is_file());
            names.push((name, plain));
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|(name, plain)| (dir.join(name), plain))
        .collect())
}

/// Reads files, through what was kept from the last read.
struct Reader<'k> {
    max_file_bytes: usize,
    kept: &'k mut KeptFiles,
    started_ns: i128,
}

impl Reader<'_> {
    /// One directory entry: `None` when it was read already by another
    /// path. `canonical`: its canonical path when the directory listing
    /// says it is a regular file; anything else is looked at closer.
    fn entry(
        &mut self,
        path: &Path,
        canonical: Option<PathBuf>,
        seen: &mut HashSet<PathBuf>,
    ) -> Result<Option<LoadedFile>, EntryError> {
        let (canonical, meta) = match canonical {
            Some(canonical) => (canonical, None),
            None => {
                // Follows symlinks: a link to a rule file is a rule file.
                let meta = fs::metadata(path).map_err(io_error)?;
                if !meta.is_file() {
                    return Err(EntryError::NotAFile(describe(&meta)));
                }
                (fs::canonicalize(path).map_err(io_error)?, Some(meta))
            }
        };
        if !seen.insert(canonical) {
            return Ok(None);
        }
        self.read(path, meta.as_ref()).map(Some).map_err(io_error)
    }

    /// The file at `path`: its kept bytes if its metadata (`meta` if
    /// already looked up, links followed) says they are still what it
    /// holds, else read now.
    fn read(&mut self, path: &Path, meta: Option<&Metadata>) -> std::io::Result<LoadedFile> {
        let file = |bytes| LoadedFile {
            name: path.display().to_string(),
            path: path.to_owned(),
            bytes,
        };
        if self.kept.holds(path) {
            let looked_up;
            let meta = match meta {
                Some(meta) => Some(meta),
                None => {
                    looked_up = fs::metadata(path).ok();
                    looked_up.as_ref()
                }
            };
            if let Some(bytes) = meta.and_then(|meta| self.kept.reuse(path, meta)) {
                return Ok(file(bytes));
            }
        }
        let opened = File::open(path)?;
        // From the open file, before its bytes: a write after this shows
        // in the next stamp (see `kept.rs`).
        let stamp = Stamp::of(&opened.metadata()?);
        let limit = u64::try_from(self.max_file_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut bytes = Vec::new();
        opened.take(limit).read_to_end(&mut bytes)?;
        self.kept.record(path, stamp, self.started_ns, &bytes);
        Ok(file(bytes))
    }
}

fn io_error(e: std::io::Error) -> EntryError {
    EntryError::Io(Arc::new(e))
}

/// What a file that is not a regular file is, for messages.
fn describe(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something else"
    }
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
