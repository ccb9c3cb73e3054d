//! `cargo xtask bench [--quick] [--only PARTS] [--report-only]`: the
//! performance figures of docs/performance.md, measured side by side in
//! one run so the noise of a shared machine hits every variant alike.
//!
//! Installs what is missing (nftables is the baseline), builds the
//! `secgroup-bench` crate (benches/) in release, runs its `measure` (as
//! root: BPF programs and network namespaces) and then its `report`:
//! target/bench/results.json, machine.json, table.md (also printed) and
//! performance.svg. `--report-only` renders the last results again.
//! Timings are reported, never asserted.

use std::path::PathBuf;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask bench [--quick] [--only per-packet,throughput,control,daemon,thousand,fleet] [--report-only]";

pub fn run(args: &[String]) -> Result<()> {
    let mut measure: Vec<&str> = vec!["measure"];
    let mut report_only = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => measure.push("--quick"),
            "--only" => {
                let Some(parts) = it.next() else {
                    bail!("--only needs a list\n{USAGE}")
                };
                measure.extend(["--only", parts.as_str()]);
            }
            "--report-only" => report_only = true,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::root().join("target"), PathBuf::from);
    let dir = target.join("bench");
    let dir_arg = dir.to_string_lossy().into_owned();
    let binary = target.join("release/secgroup-bench");
    let binary = binary.to_string_lossy();
    if !report_only {
        crate::deps::install()?;
        crate::run_cmd(
            "cargo",
            // secgroupd too: the control part measures rule-file changes
            // through the real daemon, which it finds next to the bench.
            &[
                "build",
                "--release",
                "--locked",
                "-p",
                "secgroup-bench",
                "-p",
                "secgroupd",
            ],
        )?;
        measure.extend(["--dir", &dir_arg]);
        crate::run_cmd(&binary, &measure)?;
    }
    crate::run_cmd(&binary, &["report", "--dir", &dir_arg])
}
