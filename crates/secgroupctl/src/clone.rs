//! `secgroupctl sg clone`: a copy of a group under a new id, written to
//! `NEW_ID.json` in the rules directory. The copy binds no instance: bind
//! it in a rule file when it is ready.

use std::path::Path;

use anyhow::anyhow;
use secgroup_model::{Remote, Rule, SecurityGroup, SgId, render};

use crate::cli::CloneArgs;
use crate::export::find_group;
use crate::fmt;
use crate::outcome::{Output, Result, json};
use crate::report::refused;
use crate::rulesdir::{RulesDir, write_atomically};

pub fn run(args: &CloneArgs, rules_dir: &Path, as_json: bool) -> Result<Output> {
    let dir = RulesDir::read(rules_dir)?;
    let rules = match dir.load() {
        Ok(rules) => rules,
        Err(diagnostics) => {
            return Ok(refused(
                &diagnostics,
                "in the rules directory; fix it first (nothing was changed)",
                as_json,
            ));
        }
    };
    let original = find_group(&rules, &args.id, &dir.dir.display().to_string())?;
    let new_id = SgId::new(&args.new_id).ok_or_else(|| {
        anyhow!(
            "{:?} is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-' (at most 64 bytes)",
            args.new_id
        )
    })?;
    if rules.security_groups.contains_key(&new_id) {
        return Err(anyhow!(
            "security group {new_id} exists already in {}",
            dir.dir.display()
        )
        .into());
    }
    let name = format!("{new_id}.json");
    let path = dir.dir.join(&name);
    if path.exists() {
        return Err(anyhow!("{} exists already", path.display()).into());
    }
    let copy = clone_group(original, new_id.clone(), args.name.clone());
    let contents = render::security_group_file(&copy);
    let file = dir.file(&name, contents.clone().into_bytes());
    if let Err(diagnostics) = dir.load_changed(None, &[file]) {
        return Ok(refused(
            &diagnostics,
            "in the resulting rules directory; nothing was changed",
            as_json,
        ));
    }
    let written = write_atomically(&path, contents.as_bytes(), fmt::now_ms())?;
    if as_json {
        return json(&serde_json::json!({
            "cloned": original.id.to_string(),
            "id": new_id.to_string(),
            "file": written.path.display().to_string(),
            "ingress_rules": copy.ingress.len(),
            "egress_rules": copy.egress.len(),
        }));
    }
    Ok(Output::success(format!(
        "cloned {} into {new_id} ({}, {}): {}\nno instance is bound to it yet: add it to an instance's security_groups to use it\n",
        original.id,
        fmt::count(copy.ingress.len(), "ingress rule"),
        fmt::count(copy.egress.len(), "egress rule"),
        written.path.display()
    )))
}

/// The copy: same rules, new id, the given name or the original's. A rule
/// whose remote is the original group itself ("members may talk to each
/// other") refers to the copy, as Tencent's clone does.
pub fn clone_group(original: &SecurityGroup, id: SgId, name: Option<String>) -> SecurityGroup {
    let rewrite = |rules: &[Rule]| -> Vec<Rule> {
        rules
            .iter()
            .map(|r| match &r.remote {
                Remote::SecurityGroup(sg) if *sg == original.id => Rule {
                    remote: Remote::SecurityGroup(id.clone()),
                    ..r.clone()
                },
                _ => r.clone(),
            })
            .collect()
    };
    SecurityGroup {
        id: id.clone(),
        name: name.or_else(|| original.name.clone()),
        description: original.description.clone(),
        ingress: rewrite(&original.ingress),
        egress: rewrite(&original.egress),
    }
}

#[cfg(test)]
mod tests {
    use secgroup_model::{Limits, SourceFile};

    use super::*;

    #[test]
    fn self_references_follow_the_copy() {
        let file = r#"{"security_groups": [
            {"id": "sg-a", "name": "a", "ingress": [
                {"action": "accept", "protocol": "all", "remote": "sg-a"},
                {"action": "accept", "protocol": "tcp", "port": 22, "remote": "sg-b"}]},
            {"id": "sg-b"}]}"#;
        let rules = secgroup_model::load(
            &[SourceFile {
                name: "a.json",
                bytes: file.as_bytes(),
            }],
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sg = |id: &str| SgId::new(id).unwrap_or_else(|| panic!("{id}"));
        let original = &rules.security_groups[&sg("sg-a")];
        let copy = clone_group(original, sg("sg-c"), None);
        assert_eq!(copy.name.as_deref(), Some("a"));
        assert_eq!(copy.ingress[0].remote, Remote::SecurityGroup(sg("sg-c")));
        assert_eq!(copy.ingress[1].remote, Remote::SecurityGroup(sg("sg-b")));
        assert_eq!(copy.ingress[1..], original.ingress[1..]);
        let renamed = clone_group(original, sg("sg-c"), Some("c".into()));
        assert_eq!(renamed.name.as_deref(), Some("c"));
    }
}
