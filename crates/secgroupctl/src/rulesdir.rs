//! The rules directory as `import` and `sg clone` change it: read it,
//! validate what it would become, then write one file atomically (temp
//! file, fsync, rename, fsync of the directory) keeping a copy of what it
//! replaces. The daemon watches the directory and sees either the old file
//! or the new one, never half of one, and never a directory that fails
//! validation because of us.
//!
//! Nothing is locked: a controller writing the same directory at the same
//! moment could interleave. Each write is still atomic.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secgroup_api::{Status, paths};
use secgroup_model::{Diagnostics, Limits, ObjectKind, Outline, RuleSet};
use secgroup_rulesdir::{DEFAULT_RULES_DIR, LoadedFile, Sources};

use crate::cli::RulesDirArg;
use crate::daemon::Daemon;
use crate::outcome::{Output, Result};

/// Where the copies of replaced files go, inside the rules directory (a
/// hidden directory: the loader reads neither it nor its files).
pub const BACKUP_DIR: &str = ".backups";

/// The rules directory a file command works on, and the note to print
/// when it had to guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub dir: PathBuf,
    pub note: Option<String>,
}

/// `--rules-dir` (or `$SECGROUP_RULES_DIR`) when given, else the one the
/// running secgroupd reads (its `/v1/status`), else the default with a
/// note saying so.
pub fn resolve(arg: &RulesDirArg, daemon: &Daemon) -> Chosen {
    if let Some(dir) = &arg.rules_dir {
        return Chosen {
            dir: dir.clone(),
            note: None,
        };
    }
    match daemon.get::<Status>(paths::STATUS) {
        Ok(status) => Chosen {
            dir: PathBuf::from(status.rules_dir),
            note: None,
        },
        Err(e) => Chosen {
            dir: PathBuf::from(DEFAULT_RULES_DIR),
            note: Some(format!(
                "secgroupctl: note: no secgroupd answered ({e}); using the default rules directory \
                 {DEFAULT_RULES_DIR} (pass --rules-dir to choose)\n"
            )),
        },
    }
}

impl Chosen {
    /// Runs a file command on the directory; the note goes first on
    /// standard error, before the error if the command fails (which then
    /// likely explains it).
    pub fn run(self, command: impl FnOnce(&Path) -> Result<Output>) -> Result<Output> {
        let Some(note) = self.note else {
            return command(&self.dir);
        };
        let mut output = command(&self.dir).unwrap_or_else(|e| Output {
            stdout: String::new(),
            stderr: format!("secgroupctl: {e}\n"),
            code: e.code(),
        });
        output.stderr.insert_str(0, &note);
        Ok(output)
    }
}

pub struct RulesDir {
    pub dir: PathBuf,
    /// What the directory holds now, unreadable entries included.
    pub sources: Sources,
}

impl RulesDir {
    pub fn read(dir: &Path) -> anyhow::Result<RulesDir> {
        let meta = fs::metadata(dir)
            .with_context(|| format!("cannot access the rules directory {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("the rules directory {} is not a directory", dir.display());
        }
        let sources = secgroup_rulesdir::read_sources_limited(
            &[dir.to_owned()],
            Limits::default().max_file_bytes,
        )
        .context("cannot read the rules directory")?;
        Ok(RulesDir {
            dir: dir.to_owned(),
            sources,
        })
    }

    /// The rule files that could be read.
    pub fn files(&self) -> &[LoadedFile] {
        &self.sources.files
    }

    /// The directory as it is, validated as the daemon would.
    pub fn load(&self) -> Result<RuleSet, Diagnostics> {
        self.load_changed(None, &[])
    }

    /// The directory as it would be with the file at `without` gone and
    /// `added` in. As the daemon would see the change: a conflict between
    /// an added file and one already there is reported in the added one.
    pub fn load_changed(
        &self,
        without: Option<&Path>,
        added: &[LoadedFile],
    ) -> Result<RuleSet, Diagnostics> {
        let known: Vec<PathBuf> = self.files().iter().map(|f| f.path.clone()).collect();
        let mut changed = self.sources.clone();
        changed.files.retain(|f| Some(f.path.as_path()) != without);
        changed.files.extend_from_slice(added);
        changed
            .load(&Limits::default(), &known)
            .map(|loaded| loaded.rules)
    }

    /// The rule file that defines security group `id`, with what it
    /// defines, whether or not the directory is valid. Files that cannot
    /// be read are skipped: validation reports them.
    pub fn file_defining(&self, id: &str) -> Option<(&LoadedFile, Outline)> {
        let index = self.sources.index(&Limits::default());
        let (outline, _) = index.defining(ObjectKind::SecurityGroup, id)?;
        let file = self.files().iter().find(|f| f.name == outline.file)?;
        Some((file, outline.clone()))
    }

    /// A file in the directory, as the loader names it.
    pub fn file(&self, name: &str, contents: Vec<u8>) -> LoadedFile {
        let path = self.dir.join(name);
        LoadedFile {
            name: path.display().to_string(),
            path,
            bytes: contents,
        }
    }
}

/// What [`write_atomically`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// The copy of the file it replaced.
    pub backup: Option<PathBuf>,
}

/// Writes `contents` to `path`: a hidden temp file next to it, fsync,
/// a copy of the old file into [`BACKUP_DIR`], rename over, fsync of the
/// directory. A replaced file's permissions are kept; a new one gets 0644.
pub fn write_atomically(path: &Path, contents: &[u8], now_ms: u64) -> anyhow::Result<Written> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no directory", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no file name", path.display()))?;
    let old = match fs::metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot access {}", path.display())),
    };
    let tmp = dir.join(format!(".{name}.secgroupctl-{}.tmp", std::process::id()));
    let result = (|| -> anyhow::Result<Written> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        if let Some(old) = &old {
            file.set_permissions(old.permissions())
                .with_context(|| format!("cannot set the mode of {}", tmp.display()))?;
        }
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        let backup = match old {
            Some(_) => Some(backup(dir, name, path, now_ms)?),
            None => None,
        };
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the directory {}", dir.display()))?;
        Ok(Written {
            path: path.to_owned(),
            backup,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Copies `path` to `DIR/.backups/NAME.TIMESTAMP` and syncs it.
fn backup(dir: &Path, name: &str, path: &Path, now_ms: u64) -> anyhow::Result<PathBuf> {
    let backups = dir.join(BACKUP_DIR);
    fs::create_dir_all(&backups).with_context(|| format!("cannot create {}", backups.display()))?;
    let stamp = secgroup_api::rfc3339(now_ms);
    let mut target = backups.join(format!("{name}.{stamp}"));
    // Two imports within one millisecond: number the second.
    let mut n = 1;
    while target.exists() {
        target = backups.join(format!("{name}.{stamp}.{n}"));
        n += 1;
    }
    fs::copy(path, &target)
        .with_context(|| format!("cannot back up {} to {}", path.display(), target.display()))?;
    File::open(&target)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("secgroupctl-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    }

    #[test]
    fn atomic_writes_keep_backups() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("atomic");
        let path = dir.join("sg-a.json");
        let first = write_atomically(&path, b"one", 0).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(first.backup, None);
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640))
            .unwrap_or_else(|e| panic!("{e}"));
        let second = write_atomically(&path, b"two", 0).unwrap_or_else(|e| panic!("{e:#}"));
        let third = write_atomically(&path, b"three", 0).unwrap_or_else(|e| panic!("{e:#}"));
        let read =
            |p: &Path| fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(read(&path), "three");
        assert_eq!(mode(&path), Some(0o640));
        let backups = dir.join(BACKUP_DIR);
        assert_eq!(
            second.backup,
            Some(backups.join("sg-a.json.1970-01-01T00:00:00.000Z"))
        );
        assert_eq!(
            third.backup,
            Some(backups.join("sg-a.json.1970-01-01T00:00:00.000Z.1"))
        );
        assert_eq!(read(second.backup.as_deref().unwrap_or(&path)), "one");
        assert_eq!(read(third.backup.as_deref().unwrap_or(&path)), "two");
        // No temp file is left behind, and the loader sees one rule file.
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".backups", "sg-a.json"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn which_file_defines_a_group_even_when_the_directory_is_invalid() {
        let dir = scratch("defining");
        let write = |name: &str, text: &str| {
            fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
        };
        write(
            "a.json",
            r#"{"security_groups": [{"id": "sg-a"}], "instances": [{"id": "i-1", "ips": [], "security_groups": ["sg-a"]}]}"#,
        );
        write(
            "b.json",
            r#"{"SecurityGroupId": "sg-b", "SecurityGroupPolicySet": {}}"#,
        );
        write(
            "c.json",
            r#"{"security_groups": [{"id": "sg-c", "nmae": "c"}]}"#,
        );
        std::os::unix::fs::symlink("loop.json", dir.join("loop.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        let rules = RulesDir::read(&dir).unwrap_or_else(|e| panic!("{e:#}"));
        let defining = |id: &str| {
            rules.file_defining(id).map(|(file, outline)| {
                let name = file.path.strip_prefix(&dir).unwrap_or(&file.path);
                (
                    name.display().to_string(),
                    outline.format,
                    outline.definitions.len(),
                )
            })
        };
        let native = Some(secgroup_model::Format::Native);
        let tencent = Some(secgroup_model::Format::Tencent);
        assert_eq!(defining("sg-a"), Some(("a.json".to_owned(), native, 2)));
        assert_eq!(defining("sg-b"), Some(("b.json".to_owned(), tencent, 1)));
        // A file with a shape error still says what it defines.
        assert_eq!(defining("sg-c"), Some(("c.json".to_owned(), native, 1)));
        assert_eq!(defining("i-1"), None);
        let problems: Vec<String> = match rules.load() {
            Ok(_) => panic!("an invalid directory loaded"),
            Err(d) => {
                d.0.iter()
                    .map(|d| format!("{}:{}", d.file, d.message))
                    .collect()
            }
        };
        let name = |n: &str| dir.join(n).display().to_string();
        assert_eq!(
            problems,
            [
                format!(
                    "{}:unknown key \"nmae\"; expected one of id, name, description, ingress, egress (did you mean \"name\"?)",
                    name("c.json")
                ),
                format!(
                    "{}:cannot read the file: Too many levels of symbolic links (os error 40)",
                    name("loop.json")
                ),
            ]
        );
        // A file added to the directory is where its conflicts are, even
        // when it sorts first.
        let added = rules.file(
            "0.json",
            br#"{"security_groups": [{"id": "sg-a"}]}"#.to_vec(),
        );
        let problems = rules
            .load_changed(None, &[added])
            .err()
            .unwrap_or_else(|| panic!("a duplicate loaded"));
        assert_eq!(
            problems.0.first().map(ToString::to_string),
            Some(format!(
                "{}:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at {}:1:29",
                name("0.json"),
                name("a.json")
            ))
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn failed_writes_leave_nothing() {
        let dir = scratch("failed");
        let err = write_atomically(&dir.join("missing").join("x.json"), b"x", 0)
            .err()
            .unwrap_or_else(|| panic!("wrote into a missing directory"));
        assert!(format!("{err:#}").starts_with("cannot create "), "{err:#}");
        assert_eq!(fs::read_dir(&dir).map(|d| d.count()).ok(), Some(0));
        let _ = fs::remove_dir_all(&dir);
    }
}
