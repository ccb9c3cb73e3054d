//! System packages: what a fresh Debian machine lacks to build and test
//! secgroup. Installed with apt when running as root; otherwise listed.

use anyhow::{Result, bail};

/// Debian packages and why each is needed.
const PACKAGES: &[(&str, &str)] = &[
    ("clang-19", "compiles the eBPF programs in ebpf/"),
    (
        "llvm-19",
        "llvm-objdump and friends for inspecting the BPF object",
    ),
    ("libbpf-dev", "bpf_helpers.h and friends for the C programs"),
    (
        "linux-libc-dev",
        "kernel UAPI headers (linux/bpf.h, linux/if_ether.h, ...)",
    ),
    (
        "iproute2",
        "ip: network namespaces, veth, tap and bridges in tests",
    ),
    ("nftables", "the nftables baseline of the benchmarks"),
    ("bpftool", "inspecting loaded programs and maps"),
    ("iputils-ping", "ICMP echo in end-to-end tests"),
    (
        "systemd",
        "a real systemd runs the unit in tests/tests/systemd.rs",
    ),
];

fn installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

pub fn missing() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect()
}

pub fn install() -> Result<()> {
    let missing = missing();
    if missing.is_empty() {
        eprintln!("xtask: all system packages present");
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let list: Vec<String> = PACKAGES
            .iter()
            .filter(|(p, _)| missing.contains(p))
            .map(|(p, why)| format!("  {p}: {why}"))
            .collect();
        bail!(
            "missing system packages (run as root, or: apt-get install {}):\n{}",
            missing.join(" "),
            list.join("\n")
        );
    }
    crate::run_cmd("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    // SAFETY: single-threaded at this point; nothing else reads the env.
    unsafe { std::env::set_var("DEBIAN_FRONTEND", "noninteractive") };
    crate::run_cmd("apt-get", &args)
}
