//! `cargo xtask test`: the one command that checks everything, on a fresh
//! machine too. Kernel tests need root; under CI=true they never skip.
//! Last, the Debian package test (`cargo xtask deb --check`, debug build).

use anyhow::{Result, bail};

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
    crate::run_cmd("cargo", &args)?;
    ebpf_smoke()?;
    // Last: reuses the debug binaries the tests just built.
    crate::deb::check(false)
}

/// The data plane's own smoke test: the C object alone, tables written by
/// hand, driven through bpftool (ebpf/tests/smoke.py). It needs root like
/// the kernel tests.
fn ebpf_smoke() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("CI=true but not root: the eBPF smoke test must run in CI");
        }
        eprintln!("\n*** SKIPPED ebpf/tests/smoke.py: needs root ***\n");
        return Ok(());
    }
    crate::run_cmd("python3", &["ebpf/tests/smoke.py"])
}
