//! `secgroupctl validate`: load the rules the way the daemon would and say
//! what is wrong, or what they define.

use std::path::PathBuf;

use anyhow::Context;
use secgroup_model::{Direction, Limits, RuleSet};
use secgroup_policy::Policy;

use crate::cli::ValidateArgs;
use crate::outcome::{Output, Result, json};
use crate::report::refused;

pub fn run(args: &ValidateArgs, as_json: bool) -> Result<Output> {
    let limits = Limits::default();
    let paths = args.sources();
    let sources = secgroup_rulesdir::read_sources_limited(&paths, limits.max_file_bytes)
        .context("cannot read the rule files")?;
    match sources.load(&limits, &[]) {
        Ok(loaded) => {
            let policy = secgroup_policy::compile(&loaded.rules);
            if as_json {
                json(&summary_json(&loaded.files, &loaded.rules, &policy))
            } else {
                Ok(Output::success(summary_text(
                    &loaded.files,
                    &loaded.rules,
                    &policy,
                )))
            }
        }
        Err(diagnostics) => Ok(refused(
            &diagnostics,
            "in the rule files; nothing was loaded",
            as_json,
        )),
    }
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
