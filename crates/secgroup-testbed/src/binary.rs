//! The workspace's binaries, as the tests run them: built by Cargo,
//! never stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The secgroupd binary: `$SECGROUPD` if set, else the one Cargo builds
/// next to this test binary.
pub fn secgroupd_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("secgroupd", "SECGROUPD"))
        .clone()
}

/// The secgroupctl binary: `$SECGROUPCTL` if set, else Cargo's.
pub fn secgroupctl_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("secgroupctl", "SECGROUPCTL"))
        .clone()
}

/// `$override_var`, or the workspace binary `package` (re)built once per
/// test process next to this test binary, so `cargo test -p
/// secgroup-e2e` never runs a stale daemon or CLI.
fn workspace_binary(package: &str, override_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(override_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("finding the test binary: {e}"));
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("{} is not in target/<profile>/deps", exe.display()));
    let binary = profile_dir.join(package);
    // `cargo test --workspace` has just built it, with the features the
    // whole workspace unifies; a `cargo build -p` would resolve them
    // differently and rebuild half the workspace for nothing.
    if is_newer_than_sources(&binary) {
        return binary;
    }
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    build.args(["build", "--quiet", "-p", package, "--bin", package]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    binary
}

/// Whether `binary` was written after every source it could be built
/// from (the workspace manifests, the crates' sources, the eBPF C).
fn is_newer_than_sources(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pending = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("crates"),
        root.join("ebpf"),
    ];
    while let Some(path) = pending.pop() {
        let Ok(meta) = path.metadata() else {
            continue;
        };
        if meta.is_dir() {
            // Nested `target/` dirs and tests are no inputs of a binary.
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "tests")
            {
                continue;
            }
            let entries = std::fs::read_dir(&path).into_iter().flatten().flatten();
            pending.extend(entries.map(|e| e.path()));
        } else if meta.modified().is_ok_and(|m| m > built) {
            return false;
        }
    }
    true
}
