//! The rules directory as `import` and `sg clone` change it: read it,
//! validate what it would become, then write one file atomically (temp
//! file, fsync, rename, fsync of the directory) keeping a copy of what it
//! replaces. The daemon watches the directory and sees either the old file
//! or the new one, never half of one, and never a directory that fails
//! validation because of us.
//!
//! Nothing is locked: a controller writing the same directory at the same
//! moment could interleave. Each write is still atomic.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secgroup_model::{
    AddressSetGroupId, AddressSetId, Diagnostics, InstanceId, Limits, RuleSet, ServiceSetGroupId,
    ServiceSetId, SgId, SourceFile,
};
use secgroup_rulesdir::LoadedFile;

use crate::outcome::{Code, Output};

/// Where the copies of replaced files go, inside the rules directory (a
/// hidden directory: the loader reads neither it nor its files).
pub const BACKUP_DIR: &str = ".backups";

pub struct RulesDir {
    pub dir: PathBuf,
    pub files: Vec<LoadedFile>,
}

impl RulesDir {
    pub fn read(dir: &Path) -> anyhow::Result<RulesDir> {
        let meta = fs::metadata(dir)
            .with_context(|| format!("cannot access the rules directory {}", dir.display()))?;
        if !meta.is_dir() {
            bail!("the rules directory {} is not a directory", dir.display());
        }
        let files = secgroup_rulesdir::read_sources_limited(
            &[dir.to_owned()],
            Limits::default().max_file_bytes,
        )
        .context("cannot read the rules directory")?;
        Ok(RulesDir {
            dir: dir.to_owned(),
            files,
        })
    }

    /// The directory as it is, validated as the daemon would.
    pub fn load(&self) -> Result<RuleSet, Diagnostics> {
        self.load_changed(None, &[])
    }

    /// The directory as it would be with the file at `without` gone and
    /// `added` in.
    pub fn load_changed(
        &self,
        without: Option<&Path>,
        added: &[LoadedFile],
    ) -> Result<RuleSet, Diagnostics> {
        let sources: Vec<SourceFile<'_>> = self
            .files
            .iter()
            .filter(|f| Some(f.path.as_path()) != without)
            .chain(added)
            .map(LoadedFile::source)
            .collect();
        secgroup_model::load(&sources, &Limits::default())
    }

    /// The rule file that defines security group `id`, with what it
    /// defines. Unreadable files are skipped: validation reports them.
    pub fn file_defining(&self, id: &str) -> Option<(&LoadedFile, Inventory)> {
        self.files.iter().find_map(|f| {
            let inventory = Inventory::of(&f.bytes)?;
            inventory
                .groups
                .iter()
                .any(|g| g == id)
                .then_some((f, inventory))
        })
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

/// What one rule file defines, by id, judged from its keys only. The model
/// validates files as a whole and keeps no record of which file defined
/// what; `import` needs exactly that to know which file to replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Tencent's format (one group per file).
    pub tencent: bool,
    pub groups: Vec<String>,
    /// Everything else, as (top-level key, id).
    pub others: Vec<(String, String)>,
}

/// Keys that make a file Tencent's format (the same rule as the model's).
const TENCENT_KEYS: [&str; 4] = [
    "SecurityGroupId",
    "SecurityGroupName",
    "SecurityGroupDesc",
    "SecurityGroupPolicySet",
];

impl Inventory {
    /// `None` unless the bytes are a JSON object whose objects all have a
    /// string id.
    pub fn of(bytes: &[u8]) -> Option<Inventory> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let object = value.as_object()?;
        if TENCENT_KEYS.iter().any(|k| object.contains_key(*k)) {
            let id = object.get("SecurityGroupId")?.as_str()?;
            return Some(Inventory {
                tencent: true,
                groups: vec![id.to_owned()],
                others: Vec::new(),
            });
        }
        let mut inventory = Inventory::default();
        for (key, items) in object {
            for item in items.as_array()? {
                let id = item.get("id")?.as_str()?.to_owned();
                if key == "security_groups" {
                    inventory.groups.push(id);
                } else {
                    inventory.others.push((key.clone(), id));
                }
            }
        }
        Some(inventory)
    }

    /// The objects of this file taken from `rules`, leaving out security
    /// group `without`; `None` if one of them is not in `rules`.
    pub fn subset(&self, rules: &RuleSet, without: &str) -> Option<RuleSet> {
        fn take<K: Ord + Clone, V: Clone>(
            from: &BTreeMap<K, V>,
            into: &mut BTreeMap<K, V>,
            key: Option<K>,
        ) -> Option<()> {
            let key = key?;
            into.insert(key.clone(), from.get(&key)?.clone());
            Some(())
        }
        let mut subset = RuleSet::default();
        for id in self.groups.iter().filter(|g| *g != without) {
            take(
                &rules.security_groups,
                &mut subset.security_groups,
                SgId::new(id),
            )?;
        }
        for (key, id) in &self.others {
            match key.as_str() {
                "instances" => take(&rules.instances, &mut subset.instances, InstanceId::new(id)),
                "address_sets" => take(
                    &rules.address_sets,
                    &mut subset.address_sets,
                    AddressSetId::new(id),
                ),
                "address_set_groups" => take(
                    &rules.address_set_groups,
                    &mut subset.address_set_groups,
                    AddressSetGroupId::new(id),
                ),
                "service_sets" => take(
                    &rules.service_sets,
                    &mut subset.service_sets,
                    ServiceSetId::new(id),
                ),
                "service_set_groups" => take(
                    &rules.service_set_groups,
                    &mut subset.service_set_groups,
                    ServiceSetGroupId::new(id),
                ),
                _ => None,
            }?;
        }
        Some(subset)
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

/// The answer when a rules directory is invalid: every located problem,
/// then `closing` (what that means for this command).
pub fn refused(diagnostics: &Diagnostics, closing: &str, as_json: bool) -> Output {
    let n = diagnostics.0.len();
    if as_json {
        let text = serde_json::to_string_pretty(&crate::validate::diagnostics_json(diagnostics))
            .unwrap_or_default();
        return Output::success(format!("{text}\n")).with_code(Code::No);
    }
    let mut stderr = String::new();
    for d in &diagnostics.0 {
        stderr.push_str(&format!("{d}\n"));
    }
    stderr.push_str(&format!(
        "secgroupctl: {n} error{} {closing}\n",
        if n == 1 { "" } else { "s" }
    ));
    Output::success("").with_stderr(stderr).with_code(Code::No)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Tencent?, group ids, other (key, id)s)
    type Expected<'a> = (bool, &'a [&'a str], &'a [(&'a str, &'a str)]);

    #[test]
    fn inventories() {
        let check = |text: &str, expected: Option<Expected<'_>>| {
            let expected = expected.map(|(tencent, groups, others)| Inventory {
                tencent,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                others: others
                    .iter()
                    .map(|(k, i)| ((*k).to_owned(), (*i).to_owned()))
                    .collect(),
            });
            assert_eq!(Inventory::of(text.as_bytes()), expected, "{text}");
        };
        check("{}", Some((false, &[], &[])));
        check(
            r#"{"security_groups": [{"id": "sg-a"}, {"id": "sg-b"}], "instances": [{"id": "i-1"}]}"#,
            Some((false, &["sg-a", "sg-b"], &[("instances", "i-1")])),
        );
        check(
            "\u{feff}{\"SecurityGroupId\": \"sg-t\", \"SecurityGroupPolicySet\": {}}",
            Some((true, &["sg-t"], &[])),
        );
        check(r#"{"SecurityGroupName": "x"}"#, None);
        check(r#"{"security_groups": [{"name": "x"}]}"#, None);
        check(r#"{"security_groups": 1}"#, None);
        check("[]", None);
        check("{", None);
    }

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
