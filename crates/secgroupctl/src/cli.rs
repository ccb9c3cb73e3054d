//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "secgroupctl",
    version,
    about = "Manage secgroup security group rules"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check rule files: print every problem, or a summary of what they define.
    Validate(ValidateArgs),
    /// List or print the built-in security group templates.
    Template(TemplateArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Rule directories (their *.json files) or single files.
    /// Default: /etc/secgroup/rules.d.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A rules directory, in addition to any PATH.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Vec<PathBuf>,
}

impl ValidateArgs {
    /// The paths to read: those given, else the default rules directory.
    pub fn sources(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.rules_dir.iter().chain(&self.paths).cloned().collect();
        if paths.is_empty() {
            paths.push(PathBuf::from(secgroup_rulesdir::DEFAULT_RULES_DIR));
        }
        paths
    }
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    pub command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the templates with what they allow.
    List,
    /// Print a template as a rule file, ready for the rules directory.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Template name, as `template list` shows it.
    pub name: String,
    /// Id of the security group to define. Default: sg-NAME.
    #[arg(long, value_name = "SG_ID")]
    pub id: Option<String>,
}
