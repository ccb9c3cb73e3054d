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
    ("prometheus", "promtool checks the /metrics output in tests"),
    (
        "dpkg-dev",
        "dpkg-shlibdeps and strip (binutils) for cargo xtask deb",
    ),
    ("lintian", "checks the Debian package of cargo xtask deb"),
    (
        "qemu-system-x86",
        "QEMU runs the real guests of tests/tests/guests and demo --vms",
    ),
    (
        "linux-image-amd64",
        "the guests' kernel and virtio drivers (/boot, /lib/modules)",
    ),
    (
        "busybox-static",
        "the guests' userland (shell, ip, ping, udhcpc)",
    ),
    (
        "gcc",
        "compiles the guests' static helper (crates/secgroup-testbed/guest)",
    ),
    ("libc6-dev", "the static C library that helper links"),
    (
        "etcd-server",
        "the real etcd of the fleet tests and benchmarks (secgroup-testbed's Etcd)",
    ),
    (
        "etcd-client",
        "etcdctl: the test bed writes and reads etcd keys with it",
    ),
    (
        "protobuf-compiler",
        "protoc, which the etcd-client crate's build runs on etcd's .proto files",
    ),
    (
        "libprotobuf-dev",
        "the well-known types etcd's .proto files import (google/protobuf/descriptor.proto)",
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
    // Some packages ship a service (prometheus: a server on :9090 on every
    // interface; etcd-server: a member on :2379); only their tools are
    // wanted here, never a running server: tests start their own.
    let _no_starts = NoServiceStarts::install()?;
    crate::run_cmd("apt-get", &args)
}

/// Debian's policy-rc.d hook answering "no" (101) to every service start
/// that package scripts ask for, for as long as this value lives. An
/// existing policy is left alone.
struct NoServiceStarts(Option<&'static str>);

impl NoServiceStarts {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> Result<NoServiceStarts> {
        use std::os::unix::fs::PermissionsExt;
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(NoServiceStarts(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# secgroup xtask deps: no service starts while installing\nexit 101\n",
        )
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", Self::PATH))?;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| anyhow::anyhow!("making {} executable: {e}", Self::PATH))?;
        Ok(NoServiceStarts(Some(Self::PATH)))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
