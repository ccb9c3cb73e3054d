//! Tests that need root skip loudly without it, and never under CI.

use std::io::Write;

/// True when a test that needs root (network namespaces, BPF) can run.
/// Without root it prints a loud SKIPPED line and returns false; under
/// `CI=true` it panics instead, because a skipped test in CI would hide
/// a broken product.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI=true but not running as root: this test must run in CI"
    );
    // Straight to stderr: the test harness captures the output of passing
    // tests, and a skip must not go unnoticed.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: needs root (network namespaces, BPF) ***\n"
    );
    false
}

/// True when a test that needs etcd (Debian's `etcd-server` and
/// `etcd-client`) can run; otherwise as [`root_or_skip`]: a loud SKIPPED
/// line, or a panic under `CI=true`.
pub fn etcd_or_skip(test: &str) -> bool {
    if crate::etcd::etcd_installed() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI=true but etcd or etcdctl is missing (cargo xtask deps installs them)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: needs etcd and etcdctl (cargo xtask deps) ***\n"
    );
    false
}
