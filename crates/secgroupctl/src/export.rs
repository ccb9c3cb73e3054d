//! `secgroupctl export`: one security group of the rules directory as a
//! rule file, native or Tencent, on stdout. Offline: the daemon is asked
//! at most which directory it reads (when `--rules-dir` is not given), so
//! this works on a directory that is not loaded anywhere. (From etcd:
//! `fleet.rs`, rendered here.)

use std::path::Path;

use anyhow::anyhow;
use secgroup_api::ErrorBody;
use secgroup_model::{RuleSet, SecurityGroup, SgId, render};

use crate::cli::{ExportArgs, Format};
use crate::daemon::refusal;
use crate::outcome::{Error, Output, Result};
use crate::report::refused;
use crate::rulesdir::RulesDir;

pub fn run(args: &ExportArgs, rules_dir: &Path, as_json: bool) -> Result<Output> {
    let dir = RulesDir::read(rules_dir)?;
    let rules = match dir.load() {
        Ok(rules) => rules,
        Err(diagnostics) => {
            return Ok(refused(
                &diagnostics,
                "in the rules directory; nothing was exported",
                as_json,
            ));
        }
    };
    let group = find_group(&rules, &args.id, &dir.dir.display().to_string())?;
    Ok(render_group(group, args.format))
}

/// `group` as a rule file in `format`, with notes on what the format
/// cannot say. The output is JSON either way: --json changes nothing.
pub fn render_group(group: &SecurityGroup, format: Format) -> Output {
    match format {
        Format::Native => Output::success(render::security_group_file(group)),
        Format::Tencent => {
            let (text, split) = render::tencent_group_file(group);
            let mut notes = String::new();
            if split > 0 {
                notes.push_str(&format!(
                    "secgroupctl: note: {} with remote \"anywhere\" became two policies each \
                     (CidrBlock 0.0.0.0/0 and Ipv6CidrBlock ::/0): Tencent's format has no \"anywhere\"\n",
                    crate::fmt::count(split, "rule")
                ));
            }
            let logged = group
                .ingress
                .iter()
                .chain(&group.egress)
                .filter(|r| r.log)
                .count();
            if logged > 0 {
                notes.push_str(&format!(
                    "secgroupctl: note: {} with \"log\": true: Tencent's format has no logging, \
                     the export leaves it out\n",
                    crate::fmt::count(logged, "rule")
                ));
            }
            Output::success(text).with_stderr(notes)
        }
    }
}

/// Group `id` of the rules read from `place` (a directory, etcd), or
/// the error naming the ones there are.
pub fn find_group<'a>(rules: &'a RuleSet, id: &str, place: &str) -> Result<&'a SecurityGroup> {
    SgId::new(id)
        .and_then(|sg| rules.security_groups.get(&sg))
        .ok_or_else(|| {
            Error::Input(anyhow!(refusal(&ErrorBody {
                error: format!("no security group {id:?} in {place}"),
                known: Some(
                    rules
                        .security_groups
                        .keys()
                        .map(ToString::to_string)
                        .collect()
                ),
            })))
        })
}
