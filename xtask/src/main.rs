//! Project automation: `cargo xtask <command>`. One module per command.

mod bench;
mod deb;
mod demo;
mod deps;
mod ebpf;
mod install;
mod man;
mod test;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test        install missing system packages, then fmt check, clippy and every test
  deps        install the system packages secgroup needs (Debian; as root)
  build-ebpf  compile ebpf/secgroup.c into target/bpf/secgroup.bpf.o and show program sizes
  install     release build, then install binaries, unit, man pages, completions, docs and examples [--prefix P] [--destdir D]
  deb         Debian package into target/deb (dpkg-deb) [--debug] [--check: install into a fresh root, lintian; root]
  bench       performance figures: release build, measure (root), table + plot in target/bench [--quick]
  demo        secgroupd on a pretend hypervisor (network namespaces) with real traffic (root) [--keep] [--vms: real QEMU guests]
  man         man pages (secgroupctl and its subcommands, secgroupd, the rule files) into target/man
";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let rest = &args[1..];
    match command.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "deps" => deps::install(),
        "build-ebpf" => ebpf::build(),
        "install" => install::run(rest),
        "deb" => deb::run(rest),
        "demo" => demo::run(rest),
        "man" => man::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs a command in the workspace root, failing with its name if it fails.
pub(crate) fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| anyhow::anyhow!("starting {program}: {e}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}
