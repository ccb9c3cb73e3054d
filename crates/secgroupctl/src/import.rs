//! `secgroupctl import FILE`: make FILE's security group the one the rules
//! directory defines. As in Tencent's console, import overwrites the
//! group's rules (export first to keep them; a copy of the replaced file
//! is kept in `.backups/` anyway).
//!
//! Import writes one file, the group's own: the file that defines the
//! group and nothing else, or `ID.json` for a new group. It never
//! rewrites another file: a group that shares a file with other objects
//! is refused (move it to a file of its own first). Rules are kept as written: a native FILE is
//! copied as it is; a Tencent FILE is written in the native format, where
//! the pair of policies Tencent needs for "anywhere" (`CidrBlock`
//! 0.0.0.0/0 next to `Ipv6CidrBlock` ::/0, otherwise alike) is one rule
//! again, as it was before `export --format tencent` split it.
//!
//! The whole resulting directory is validated before anything is written;
//! errors point into FILE and the untouched files, and change nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use secgroup_model::{Limits, ObjectKind, Remote, Rule, SecurityGroup, SgId, render};
use secgroup_rulesdir::LoadedFile;

use crate::cli::{Format, ImportArgs};
use crate::fmt;
use crate::outcome::{Output, Result, json};
use crate::report::refused;
use crate::rulesdir::{RulesDir, write_atomically};

const INVALID: &str = "in the resulting rules directory; nothing was changed";

pub fn run(args: &ImportArgs, rules_dir: &Path, as_json: bool) -> Result<Output> {
    let import = read_import(&args.file)?;
    let dir = RulesDir::read(rules_dir)?;
    if let Ok(canonical) = fs::canonicalize(&args.file)
        && dir
            .files()
            .iter()
            .any(|f| fs::canonicalize(&f.path).is_ok_and(|p| p == canonical))
    {
        return Err(anyhow!(
            "{} is one of the rule files of {} already; import a file from elsewhere",
            args.file.display(),
            dir.dir.display()
        )
        .into());
    }
    let outline = secgroup_model::outline(&import.source(), &Limits::default());
    let Some(file_format) = outline.format.filter(|_| outline.errors.is_empty()) else {
        // Not even a well-formed rule file: the model says exactly what is
        // wrong, with the place.
        return match dir.load_changed(None, std::slice::from_ref(&import)) {
            Err(diagnostics) => Ok(refused(&diagnostics, INVALID, as_json)),
            Ok(_) => Err(anyhow!(
                "{} defines no security group; a file to import defines exactly one",
                args.file.display()
            )
            .into()),
        };
    };
    let format = match file_format {
        secgroup_model::Format::Tencent => Format::Tencent,
        secgroup_model::Format::Native => Format::Native,
    };
    if let Some(wanted) = args.format
        && wanted != format
    {
        return Err(anyhow!(
            "{} is in {} format, not {} (--format)",
            args.file.display(),
            format_name(format),
            format_name(wanted)
        )
        .into());
    }
    let groups = outline.count(ObjectKind::SecurityGroup);
    let others = outline.definitions.len() - groups;
    let id = match outline.definitions.as_slice() {
        [only] if only.kind == ObjectKind::SecurityGroup => only.id.clone(),
        _ => {
            return Err(anyhow!(
                "{} defines {} and {}; a file to import defines exactly one security group and nothing else",
                args.file.display(),
                fmt::count(groups, "security group"),
                fmt::count(others, "other object")
            )
            .into());
        }
    };
    let plan = plan(&dir, &id)?;
    let current = dir.load();

    // The directory with FILE as the group's file: what is checked, and
    // what the errors point into.
    let checked = match dir.load_changed(plan.replaces(), std::slice::from_ref(&import)) {
        Ok(rules) => rules,
        Err(diagnostics) => return Ok(refused(&diagnostics, INVALID, as_json)),
    };
    let sg = SgId::new(&id).with_context(|| format!("{id:?} is not a security group id"))?;
    let imported = checked
        .security_groups
        .get(&sg)
        .with_context(|| format!("{} does not define {id}", args.file.display()))?;
    let (group, contents) = match format {
        Format::Native => (imported.clone(), import.bytes.clone()),
        Format::Tencent => {
            let group = join_anywhere(imported);
            let contents = render::security_group_file(&group).into_bytes();
            (group, contents)
        }
    };
    let unchanged = current
        .as_ref()
        .is_ok_and(|rules| rules.security_groups.get(&sg) == Some(&group));
    if unchanged {
        return summary(as_json, &id, format, &group, &plan.path, &Change::None);
    }
    // What will be on disk must give what was checked.
    let written_file = dir.file(&plan.name, contents.clone());
    let written_rules = dir.load_changed(plan.replaces(), &[written_file]).ok();
    if written_rules
        .as_ref()
        .and_then(|rules| rules.security_groups.get(&sg))
        != Some(&group)
    {
        return Err(anyhow!(
            "writing {} would not give the group that was checked (a bug in secgroupctl); nothing was changed",
            plan.path.display()
        )
        .into());
    }
    let written = write_atomically(&plan.path, &contents, fmt::now_ms())?;
    let change = Change::Written {
        backup: written.backup,
    };
    summary(as_json, &id, format, &group, &written.path, &change)
}

/// The group with each pair of rules that says "anywhere" the way
/// Tencent must (0.0.0.0/0 next to ::/0, otherwise alike) made one rule
/// with remote "anywhere": the same packets, in the same order.
fn join_anywhere(group: &SecurityGroup) -> SecurityGroup {
    fn join(rules: &[Rule]) -> Vec<Rule> {
        let all = |rule: &Rule| -> Option<u8> {
            match rule.remote.to_string().as_str() {
                "0.0.0.0/0" => Some(4),
                "::/0" => Some(6),
                _ => None,
            }
        };
        let alike = |a: &Rule, b: &Rule| {
            let bare = |r: &Rule| Rule {
                id: None,
                remote: Remote::Anywhere,
                ..r.clone()
            };
            bare(a) == bare(b) && (a.id.is_none() || b.id.is_none())
        };
        let mut joined = Vec::with_capacity(rules.len());
        let mut i = 0;
        while i < rules.len() {
            let rule = &rules[i];
            match (rules.get(i + 1), all(rule)) {
                (Some(next), Some(family))
                    if all(next).is_some_and(|f| f != family) && alike(rule, next) =>
                {
                    joined.push(Rule {
                        id: rule.id.clone().or_else(|| next.id.clone()),
                        remote: Remote::Anywhere,
                        ..rule.clone()
                    });
                    i += 2;
                }
                _ => {
                    joined.push(rule.clone());
                    i += 1;
                }
            }
        }
        joined
    }
    SecurityGroup {
        ingress: join(&group.ingress),
        egress: join(&group.egress),
        ..group.clone()
    }
}

/// What import did to the directory.
enum Change {
    /// The group is already defined that way.
    None,
    Written {
        /// The copy of the replaced file.
        backup: Option<PathBuf>,
    },
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Native => "native",
        Format::Tencent => "tencent",
    }
}

/// FILE, read the way the rules directory is (size limit included).
fn read_import(path: &Path) -> anyhow::Result<LoadedFile> {
    let meta = fs::metadata(path).with_context(|| format!("cannot access {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let mut sources = secgroup_rulesdir::read_sources_limited(
        &[path.to_owned()],
        Limits::default().max_file_bytes,
    )?;
    sources
        .files
        .pop()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// The one file import writes: the group's own (the file that defines
/// it and nothing else), else `ID.json`.
struct Plan {
    name: String,
    path: PathBuf,
    /// The file exists and is replaced.
    exists: bool,
}

impl Plan {
    fn replaces(&self) -> Option<&Path> {
        self.exists.then_some(self.path.as_path())
    }
}

fn plan(dir: &RulesDir, id: &str) -> anyhow::Result<Plan> {
    if let Some((file, outline)) = dir.file_defining(id) {
        if outline.definitions.len() > 1 {
            bail!(
                "{} defines {id} among {}; import never rewrites another file: move {id} to a file of \
                 its own (such as {id}.json), then import again",
                file.path.display(),
                fmt::count(outline.definitions.len() - 1, "other object")
            );
        }
        let name = file
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no file name", file.path.display()))?
            .to_owned();
        return Ok(Plan {
            name,
            path: file.path.clone(),
            exists: true,
        });
    }
    let name = format!("{id}.json");
    let path = dir.dir.join(&name);
    let existing = dir.files().iter().find(|f| f.path == path);
    if let Some(file) = existing
        && !secgroup_model::outline(&file.source(), &Limits::default())
            .definitions
            .is_empty()
    {
        bail!(
            "{} exists and defines other objects than {id}; move them, then import again",
            path.display()
        );
    }
    // A file named after the group that is unreadable or empty is the
    // group's file gone wrong: replacing it is what the operator wants.
    Ok(Plan {
        exists: existing.is_some(),
        name,
        path,
    })
}

fn summary(
    as_json: bool,
    id: &str,
    format: Format,
    group: &SecurityGroup,
    path: &Path,
    change: &Change,
) -> Result<Output> {
    let backup = match change {
        Change::Written {
            backup: Some(backup),
            ..
        } => Some(backup),
        _ => None,
    };
    if as_json {
        return json(&serde_json::json!({
            "imported": id,
            "format": format_name(format),
            "file": path.display().to_string(),
            "written_format": "native",
            "changed": matches!(change, Change::Written { .. }),
            "backup": backup.map(|b| b.display().to_string()),
            "ingress_rules": group.ingress.len(),
            "egress_rules": group.egress.len(),
        }));
    }
    let counts = format!(
        "{}, {}",
        fmt::count(group.ingress.len(), "ingress rule"),
        fmt::count(group.egress.len(), "egress rule")
    );
    let mut text = match change {
        Change::None => format!(
            "{id} in {} is this group already ({counts}); nothing was written\n",
            path.display()
        ),
        Change::Written { .. } => format!(
            "imported {id} ({} format, {counts}) into {}{}\n",
            format_name(format),
            path.display(),
            match format {
                Format::Native => "",
                Format::Tencent => ", written in the native format",
            }
        ),
    };
    if let Some(backup) = backup {
        text.push_str(&format!(
            "the replaced file is kept as {}\n",
            backup.display()
        ));
    }
    Ok(Output::success(text))
}

#[cfg(test)]
mod tests {
    use secgroup_model::RuleSet;

    use super::*;

    #[test]
    fn unchanged_groups_compare_equal() {
        // The "nothing was written" path relies on model equality; make
        // sure a group loaded twice compares equal.
        let load = |text: &str| -> RuleSet {
            secgroup_model::load(
                &[secgroup_model::SourceFile {
                    name: "x.json",
                    bytes: text.as_bytes(),
                }],
                &Limits::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let native = load(
            r#"{"security_groups": [{"id": "sg-a", "ingress": [{"action": "accept", "protocol": "tcp", "port": "22", "remote": "203.0.113.0/24"}]}]}"#,
        );
        let tencent = load(
            r#"{"SecurityGroupId": "sg-a", "SecurityGroupPolicySet": {"Ingress": [{"Protocol": "TCP", "Port": "22", "CidrBlock": "203.0.113.0/24", "Action": "ACCEPT"}]}}"#,
        );
        assert_eq!(native, tencent);
    }
}
