//! `secgroupctl`, the operator's CLI of secgroup. The binary is a shim
//! around [`main`]; the hidden `man` subcommand writes the man pages from
//! these clap definitions (`cargo xtask man` runs it: xtask itself does not
//! link this crate, which needs protoc to build, so that xtask builds on a
//! machine that has nothing installed yet).
//!
//! Three kinds of commands: those that ask secgroupd over its socket
//! (`status`, `sg list|show`, `instance`, `conntrack`, `trace`, `reload`,
//! `monitor`),
//! those that work on rule files offline (`validate`, `template`,
//! `export`, `import`, `sg clone`), and those that talk to the fleet's
//! etcd (`publish`, `export --etcd-endpoints`: `fleet.rs`). Every command builds its whole output
//! first ([`outcome::Output`]); [`main`] prints it and exits with its code.

mod check;
mod cli;
mod clone;
mod conntrack;
mod daemon;
mod export;
mod fleet;
mod fmt;
mod import;
mod instance;
mod monitor;
mod outcome;
mod report;
mod rulesdir;
mod sg;
mod status;
mod template;
mod trace;
mod validate;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, ConntrackCommand, InstanceCommand, SgCommand, TemplateCommand};
use crate::daemon::Daemon;
use crate::outcome::{Code, Output, Result};

/// The command line definition, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line, runs the command, prints, and says how to
/// exit.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are "errors" printed to stdout.
            return if e.use_stderr() {
                Code::Usage.into()
            } else {
                Code::Success.into()
            };
        }
    };
    let output = run(&cli).unwrap_or_else(|e| Output {
        stdout: String::new(),
        stderr: format!("secgroupctl: {e}\n"),
        code: e.code(),
    });
    // A closed pipe (`secgroupctl ... | head`) is not worth a panic: the
    // reader got what it wanted.
    let _ = io::stdout().lock().write_all(output.stdout.as_bytes());
    let _ = io::stderr().lock().write_all(output.stderr.as_bytes());
    output.code.into()
}

fn run(cli: &Cli) -> Result<Output> {
    check::arguments(&cli.command)?;
    let daemon = || Daemon::new(&cli.socket);
    let json = cli.json;
    let width = fmt::Width::detect(cli.wide);
    // File commands: the daemon's rules directory unless told.
    let rules_dir = |arg: &cli::RulesDirArg| rulesdir::resolve(arg, &daemon());
    match &cli.command {
        Command::Status => status::status(&daemon(), json, width),
        Command::Reload => status::reload(&daemon(), json),
        Command::Sg(SgCommand::List) => sg::list_groups(&daemon(), json, width),
        Command::Sg(SgCommand::Show(args)) => sg::show(&daemon(), &args.id, json, width),
        Command::Sg(SgCommand::Clone(args)) => {
            rules_dir(&args.rules).run(|dir| clone::run(args, dir, json))
        }
        Command::Instance(InstanceCommand::List) => {
            instance::list_instances(&daemon(), json, width)
        }
        Command::Instance(InstanceCommand::Show(args)) => {
            instance::show(&daemon(), &args.id, json, width)
        }
        Command::Conntrack(ConntrackCommand::List(args)) => {
            conntrack::list(&daemon(), args, json, width)
        }
        Command::Conntrack(ConntrackCommand::Flush(args)) => {
            conntrack::flush(&daemon(), args, json)
        }
        Command::Trace(args) => trace::run(&daemon(), args, json),
        Command::Monitor(args) => monitor::run(&daemon(), args, json),
        Command::Export(args) if args.etcd.enabled() => fleet::export(args, json),
        Command::Export(args) => rules_dir(&args.rules).run(|dir| export::run(args, dir, json)),
        Command::Publish(args) => fleet::publish(args, json),
        Command::Import(args) => rules_dir(&args.rules).run(|dir| import::run(args, dir, json)),
        Command::Validate(args) => validate::run(args, json),
        Command::Template(TemplateCommand::List) => template::list(json),
        Command::Template(TemplateCommand::Show(args)) => template::show(args),
        Command::Completions(args) => Ok(completions(args.shell)),
        Command::Man(args) => man_pages(&args.out_dir),
    }
}

fn man_pages(dir: &std::path::Path) -> Result<Output> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(Output::success(String::new()))
}

fn completions(shell: clap_complete::Shell) -> Output {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "secgroupctl", &mut script);
    Output::success(String::from_utf8_lossy(&script).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_scripts_name_every_command() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
            let script = completions(shell).stdout;
            for word in ["status", "conntrack", "trace", "--socket", "--rules-dir"] {
                assert!(script.contains(word), "{shell} completions lack {word}");
            }
        }
    }
}
