//! `secgroupctl template list|show`.

use anyhow::{Context, anyhow};
use secgroup_model::SgId;
use secgroup_model::templates::{self, TEMPLATES};

use crate::cli::TemplateShowArgs;
use crate::outcome::{Output, Result, json};

pub fn list(as_json: bool) -> Result<Output> {
    if as_json {
        let items: Vec<serde_json::Value> = TEMPLATES
            .iter()
            .map(|t| serde_json::json!({ "name": t.name, "description": t.description }))
            .collect();
        return json(&items);
    }
    let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let mut text = String::new();
    for t in TEMPLATES {
        text.push_str(&format!("{:width$}  {}\n", t.name, t.description));
    }
    Ok(Output::success(text))
}

/// Prints the rule file (JSON already, so `--json` changes nothing).
pub fn show(args: &TemplateShowArgs) -> Result<Output> {
    let Some(template) = templates::find(&args.name) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        return Err(anyhow!(
            "unknown template {:?}; available: {}",
            args.name,
            names.join(", ")
        )
        .into());
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
    Ok(Output::success(template.rule_file(id)))
}
