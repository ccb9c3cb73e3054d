//! `cargo xtask test`: the one command that checks everything, on a fresh
//! machine too. Kernel tests need root; under CI=true they never skip.

use anyhow::Result;

pub fn run(extra: &[String]) -> Result<()> {
    crate::deps::install()?;
    crate::run_cmd("cargo", &["fmt", "--all", "--", "--check"])?;
    crate::run_cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut args = vec!["test", "--workspace", "--locked"];
    args.extend(extra.iter().map(String::as_str));
    crate::run_cmd("cargo", &args)
}
