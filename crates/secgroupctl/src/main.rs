//! `secgroupctl`: check rule files and print security group templates.

mod cli;
mod template;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, TemplateCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Validate(args) => validate::run(args, cli.json),
        Command::Template(args) => match &args.command {
            TemplateCommand::List => template::list(cli.json),
            TemplateCommand::Show(show) => template::show(show),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("secgroupctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
