//! The test bed of the end-to-end suite (`tests/` at the repository
//! root): a simulated hypervisor in network namespaces — a host with a
//! Linux bridge, VMs on veth "taps" or a real tap device, an outside
//! world — running the real secgroupd on a temporary rules directory,
//! socket and pin directory, and real traffic between real network
//! stacks. Everything it creates is removed on drop, and leftovers of
//! crashed runs are swept at start (names start with `sge2e-`).
//!
//! This is test support: it panics with precise messages instead of
//! returning errors, as a test would.

mod bed;
mod check;
mod control;
mod daemon;
mod names;
mod netns;
mod rules;
mod tap;
mod traffic;
mod wait;

use std::io::Write;

pub use bed::{
    CLIENT_A, CLIENT_A6, CLIENT_B, CLIENT_B6, CLIENT_C, CLIENT_C6, CLIENT_D, LB_VIP, TestBed, Vm,
    WORLD_MAC, mac_text,
};
pub use check::{ACCEPT_TIMEOUT, BLOCK_TIMEOUT, Expect};
pub use control::Control;
pub use daemon::{Daemon, secgroupctl_binary, secgroupd_binary};
pub use names::{PREFIX, unique};
pub use netns::{NetNs, sh};
pub use rules::{RuleFile, accept, drop, service};
pub use tap::{TapGuest, TcpSegment};
pub use traffic::{
    Endpoint, Flow, Proto, TcpEcho, UdpEcho, connect, echoes, listen, ping, tcp, udp,
};
pub use wait::wait_for;

/// True when the suite can run: as root. Without root it skips loudly;
/// under `CI=true` it fails instead, because a skipped acceptance test in
/// CI would hide a broken product.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI=true but not running as root: the end-to-end suite must run in CI"
    );
    // Straight to stderr: the test harness captures the output of passing
    // tests, and a skip must not go unnoticed.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: needs root (network namespaces, BPF) ***\n"
    );
    false
}
