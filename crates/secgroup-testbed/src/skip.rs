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
