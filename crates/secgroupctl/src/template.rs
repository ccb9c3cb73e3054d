//! `secgroupctl template list|show`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use secgroup_model::SgId;
use secgroup_model::templates::{self, TEMPLATES};

use crate::cli::ShowArgs;

pub fn list(json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let items: Vec<serde_json::Value> = TEMPLATES
            .iter()
            .map(|t| serde_json::json!({ "name": t.name, "description": t.description }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in TEMPLATES {
            println!("{:width$}  {}", t.name, t.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the rule file (JSON already, so `--json` changes nothing).
pub fn show(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let Some(template) = templates::find(&args.name) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        bail!(
            "unknown template {:?}; available: {}",
            args.name,
            names.join(", ")
        );
    };
    let id_text = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{}{}", SgId::PREFIX, template.name));
    let id = SgId::new(&id_text).with_context(|| {
        format!(
            "{id_text:?} is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-' (at most 64 bytes)"
        )
    })?;
    print!("{}", template.rule_file(id));
    Ok(ExitCode::SUCCESS)
}
