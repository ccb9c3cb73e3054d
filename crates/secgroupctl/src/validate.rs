//! `secgroupctl validate`: load the rules the way the daemon would and say
//! what is wrong, or what they define and what is questionable in them.
//! Warnings never fail the command.

use std::path::PathBuf;

use anyhow::Context;
use secgroup_model::{Diagnostic, Direction, Limits, RuleSet};
use secgroup_policy::Policy;

use crate::cli::ValidateArgs;
use crate::outcome::{Code, Output, Result, json};
use crate::report::{diagnostic_json, refused};

pub fn run(args: &ValidateArgs, as_json: bool) -> Result<Output> {
    let limits = Limits::default();
    let paths = args.sources();
    let sources = secgroup_rulesdir::read_sources_limited(&paths, limits.max_file_bytes)
        .context("cannot read the rule files")?;
    match sources.load(&limits, &[]) {
        Ok(loaded) => {
            let policy = secgroup_policy::compile(&loaded.rules);
            let warnings = all_warnings(&loaded, &policy);
            let warnings = &warnings;
            if args.deny_warnings && !warnings.is_empty() {
                return Ok(denied(warnings, as_json));
            }
            if as_json {
                let mut summary = summary_json(&loaded.files, &loaded.rules, &policy);
                summary["warnings"] = warnings_json(warnings);
                json(&summary)
            } else {
                let text = summary_text(&loaded.files, &loaded.rules, &policy);
                Ok(Output::success(text).with_stderr(warnings_text(warnings)))
            }
        }
        Err(diagnostics) => Ok(refused(
            &diagnostics,
            "in the rule files; nothing was loaded",
            as_json,
        )),
    }
}

/// The loader's warnings and the lint's, sorted as diagnostics are.
pub fn all_warnings(loaded: &secgroup_rulesdir::Loaded, policy: &Policy) -> Vec<Diagnostic> {
    let mut warnings = loaded.warnings.clone();
    warnings.extend(secgroup_policy::lint(&loaded.rules, policy, &loaded.index));
    warnings.sort();
    warnings.dedup();
    warnings
}

/// `--deny-warnings` with warnings: reported as errors are, exit 1.
fn denied(warnings: &[Diagnostic], as_json: bool) -> Output {
    if as_json {
        let value = serde_json::json!({ "valid": false, "diagnostics": warnings_json(warnings) });
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        return Output::success(format!("{text}\n")).with_code(Code::No);
    }
    let mut text = warnings_text(warnings);
    // The count line of `warnings_text` says they are fine; here they are not.
    if let Some(cut) = text.rfind("secgroupctl: ") {
        text.truncate(cut);
    }
    let n = warnings.len();
    text.push_str(&format!(
        "secgroupctl: {n} warning{} in the rule files, refused by --deny-warnings\n",
        plural(n)
    ));
    Output::success("").with_stderr(text).with_code(Code::No)
}

/// One line per warning, `FILE:LINE:COLUMN: PATH: warning: MESSAGE`, then
/// how many there are; nothing without any.
fn warnings_text(warnings: &[Diagnostic]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let mut text: String = warnings
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}: warning: {}\n",
                d.file, d.line, d.column, d.path, d.message
            )
        })
        .collect();
    let n = warnings.len();
    text.push_str(&format!(
        "secgroupctl: {n} warning{} in the rule files; they are valid\n",
        plural(n)
    ));
    text
}

/// `[{"file", "line", "column", "path", "message"}, ...]`, as errors are.
fn warnings_json(warnings: &[Diagnostic]) -> serde_json::Value {
    warnings.iter().map(diagnostic_json).collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Per local instance: id, interface and effective rule count per direction.
fn local_instances(policy: &Policy) -> Vec<(&str, &str, [usize; 2])> {
    policy
        .instances
        .values()
        .filter_map(|i| {
            let interface = i.interface.as_deref()?;
            let counts = Direction::ALL.map(|d| i.rules(d).rules.len());
            Some((i.id.as_str(), interface, counts))
        })
        .collect()
}

fn summary_text(files: &[PathBuf], rules: &RuleSet, policy: &Policy) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", plural(n));
    let local = local_instances(policy);
    let mut out = format!(
        "valid: {}, {}, {} ({} on this host), {}, {}, {}, {}\n",
        count(files.len(), "file"),
        count(rules.security_groups.len(), "security group"),
        count(rules.instances.len(), "instance"),
        local.len(),
        count(rules.address_sets.len(), "address set"),
        count(rules.address_set_groups.len(), "address set group"),
        count(rules.service_sets.len(), "service set"),
        count(rules.service_set_groups.len(), "service set group"),
    );
    let width = local.iter().map(|(id, _, _)| id.len()).max().unwrap_or(0);
    for (id, interface, [ingress, egress]) in local {
        out.push_str(&format!(
            "  {id:width$}  {interface}: {}, {}\n",
            count(ingress, "ingress rule"),
            count(egress, "egress rule"),
        ));
    }
    out
}

fn summary_json(files: &[PathBuf], rules: &RuleSet, policy: &Policy) -> serde_json::Value {
    let instances: Vec<serde_json::Value> = local_instances(policy)
        .into_iter()
        .map(|(id, interface, [ingress, egress])| {
            serde_json::json!({
                "id": id,
                "interface": interface,
                "ingress_rules": ingress,
                "egress_rules": egress,
            })
        })
        .collect();
    // As the loader names them (and diagnostics point at them).
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    serde_json::json!({
        "valid": true,
        "files": names,
        "security_groups": rules.security_groups.len(),
        "instances": rules.instances.len(),
        "address_sets": rules.address_sets.len(),
        "address_set_groups": rules.address_set_groups.len(),
        "service_sets": rules.service_sets.len(),
        "service_set_groups": rules.service_set_groups.len(),
        "local_instances": instances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_printed_not_fatal() {
        let warning = Diagnostic {
            file: "b.json".into(),
            line: 2,
            column: 49,
            path: "instances[0].ips[0]".into(),
            message: "address \"198.51.100.5\" is shared".into(),
        };
        assert_eq!(warnings_text(&[]), "");
        assert_eq!(
            warnings_text(std::slice::from_ref(&warning)),
            "b.json:2:49: instances[0].ips[0]: warning: address \"198.51.100.5\" is shared\n\
             secgroupctl: 1 warning in the rule files; they are valid\n"
        );
        assert_eq!(
            warnings_json(&[warning]),
            serde_json::json!([{"file": "b.json", "line": 2, "column": 49,
                "path": "instances[0].ips[0]", "message": "address \"198.51.100.5\" is shared"}])
        );
    }
}
