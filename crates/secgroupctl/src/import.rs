//! `secgroupctl import FILE`: make FILE's security group the one the rules
//! directory defines. As in Tencent's console, import overwrites the
//! group's rules (export first to keep them; a copy of the replaced file
//! is kept in `.backups/` anyway).
//!
//! Which file changes:
//! - the file that defines the group and nothing else is replaced by FILE
//!   as it is (its name is kept);
//! - a file that defines the group among other objects is rewritten, in
//!   the native format, with the group replaced and the rest unchanged;
//! - a group no file defines yet is written to `ID.json`.
//!
//! The whole resulting directory is validated before anything is written;
//! errors point into FILE and the untouched files, and change nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use secgroup_model::{Limits, ObjectKind, Outline, SecurityGroup, SgId, render};
use secgroup_rulesdir::LoadedFile;

use crate::cli::{Format, ImportArgs};
use crate::fmt;
use crate::outcome::{Output, Result, json};
use crate::report::refused;
use crate::rulesdir::{RulesDir, write_atomically};

const INVALID: &str = "in the resulting rules directory; nothing was changed";

pub fn run(args: &ImportArgs, as_json: bool) -> Result<Output> {
    let import = read_import(&args.file)?;
    let dir = RulesDir::read(&args.rules.rules_dir)?;
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

    // A shared file's other objects, to be written back around the group.
    let others = match &plan.rest {
        None => None,
        Some(rest) => {
            let rules = current.as_ref().map_err(|_| {
                anyhow!(
                    "{} defines {id} among other objects and must be rewritten, but the rules directory is invalid now; fix it first (secgroupctl validate {})",
                    plan.path.display(),
                    dir.dir.display()
                )
            })?;
            let mut subset = rest
                .objects_in(rules)
                .with_context(|| format!("cannot tell what {} defines", plan.path.display()))?;
            subset.security_groups.retain(|sg, _| sg.as_str() != id);
            Some(subset)
        }
    };
    // The directory with FILE standing in for the group: what is checked,
    // and what the errors point into.
    let mut added = vec![import.clone()];
    if let Some(others) = &others {
        added.push(dir.file(&plan.name, render::rule_file(others).into_bytes()));
    }
    let expected = match dir.load_changed(plan.replaces(), &added) {
        Ok(rules) => rules,
        Err(diagnostics) => return Ok(refused(&diagnostics, INVALID, as_json)),
    };
    let sg = SgId::new(&id).with_context(|| format!("{id:?} is not a security group id"))?;
    let group = expected
        .security_groups
        .get(&sg)
        .with_context(|| format!("{} does not define {id}", args.file.display()))?;
    let unchanged = current
        .as_ref()
        .is_ok_and(|rules| rules.security_groups.get(&sg) == Some(group));
    if unchanged {
        return summary(as_json, &id, format, group, &plan.path, &Change::None);
    }

    let contents = match others {
        Some(mut with_new) => {
            with_new.security_groups.insert(sg.clone(), group.clone());
            render::rule_file(&with_new).into_bytes()
        }
        None => import.bytes.clone(),
    };
    // What will be on disk must give what was checked.
    let written_file = dir.file(&plan.name, contents.clone());
    if dir
        .load_changed(plan.replaces(), &[written_file])
        .ok()
        .as_ref()
        != Some(&expected)
    {
        return Err(anyhow!(
            "rewriting {} would not give the rules that were checked (a bug in secgroupctl); nothing was changed",
            plan.path.display()
        )
        .into());
    }
    let written = write_atomically(&plan.path, &contents, fmt::now_ms())?;
    let change = Change::Written {
        backup: written.backup,
        rewritten: plan.rest.is_some(),
    };
    summary(as_json, &id, format, group, &written.path, &change)
}

/// What import did to the directory.
enum Change {
    /// The group is already defined that way.
    None,
    Written {
        /// The copy of the replaced file.
        backup: Option<PathBuf>,
        /// A shared file was rewritten (rather than FILE copied).
        rewritten: bool,
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

/// Which file of the directory the group goes to.
struct Plan {
    name: String,
    path: PathBuf,
    /// The file exists and is replaced.
    exists: bool,
    /// What the file defines, when it is shared with other objects.
    rest: Option<Outline>,
}

impl Plan {
    fn replaces(&self) -> Option<&Path> {
        self.exists.then_some(self.path.as_path())
    }
}

fn plan(dir: &RulesDir, id: &str) -> anyhow::Result<Plan> {
    if let Some((file, outline)) = dir.file_defining(id) {
        let name = file
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no file name", file.path.display()))?
            .to_owned();
        let shared = outline.definitions.len() > 1;
        return Ok(Plan {
            name,
            path: file.path.clone(),
            exists: true,
            rest: shared.then_some(outline),
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
        rest: None,
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
        Change::Written {
            rewritten: true, ..
        } => format!(
            "imported {id} ({} format, {counts}): rewrote {} with it; the file's other objects are unchanged\n",
            format_name(format),
            path.display()
        ),
        Change::Written { .. } => format!(
            "imported {id} ({} format, {counts}) into {}\n",
            format_name(format),
            path.display()
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
