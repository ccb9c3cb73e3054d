//! `cargo xtask man`: man pages for secgroupctl, built from its clap
//! definitions so they cannot drift from `--help`: target/man/secgroupctl.1
//! and one page per subcommand (secgroupctl-sg-show.1, ...).

use std::fs;

use anyhow::{Context, Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("man takes no arguments, not {extra:?}");
    }
    let dir = crate::root().join("target").join("man");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(secgroupctl::command(), &dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("secgroupctl") && name.ends_with(".1"))
        .collect();
    pages.sort();
    eprintln!(
        "xtask: wrote {} man pages into {} ({}); read one with: man -l {}",
        pages.len(),
        dir.display(),
        pages.join(", "),
        dir.join("secgroupctl.1").display()
    );
    Ok(())
}
