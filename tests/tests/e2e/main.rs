//! End-to-end acceptance: real TCP, UDP and ICMP between real network
//! stacks, through secgroup's hooks on the VMs' interfaces, driven by
//! rule files and the real secgroupd, as on a hypervisor. The test bed
//! (namespaces, bridge, VMs, tap, daemon, traffic) is
//! `crates/secgroup-testbed`; docs/testing.md says what each scenario
//! proves. Root only: without it every test skips loudly, under CI=true
//! it fails.

mod counters;
mod events;
mod ipv6;
mod ordering;
mod port_security;
mod references;
mod robustness;
mod sets;
mod stateful;
mod tap;

use std::time::Duration;

use secgroup_testbed::{Control, Daemon, RuleFile, TestBed};

/// The rule file every scenario writes.
pub const RULES: &str = "e2e.json";

/// Writes `rules`, starts secgroupd and checks that every listed
/// instance is attached.
pub fn start(bed: &TestBed, rules: &RuleFile, instances: &[String]) -> (Daemon, Control) {
    start_with(bed, rules, instances, &[])
}

pub fn start_with(
    bed: &TestBed,
    rules: &RuleFile,
    instances: &[String],
    flags: &[&str],
) -> (Daemon, Control) {
    bed.host.start_enforcing(
        RULES,
        &rules.to_json(),
        instances,
        flags,
        Duration::from_secs(5),
    )
}

/// Replaces the rule file and waits until the daemon applied it.
pub fn apply(bed: &TestBed, control: &Control, rules: &RuleFile) {
    bed.host.apply_rules(control, RULES, &rules.to_json());
}
