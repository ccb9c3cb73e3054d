//! End-to-end acceptance on real virtual machines: QEMU guests (the
//! host's kernel, a busybox initramfs the test bed builds) with
//! virtio-net NICs on taps QEMU opens itself, on the test bed's bridge,
//! secgroupd hooked on those taps. What the `e2e` target proves with
//! network namespaces behind veths, proven again where it matters on
//! what users run: guests' own stacks, offloads, taps that come and go
//! with the VM. docs/testing.md ("Real guests") says how to run them
//! and what each proves. Root only; under CI=true nothing skips.

mod smoke;

use std::time::Duration;

use secgroup_testbed::{Control, Daemon, Guest, RuleFile, TestBed};

/// The rule file every scenario writes.
pub const RULES: &str = "guests.json";

/// Binds `guest` (its tap, both its addresses) to `groups`, with port
/// security on its MAC.
pub fn bind(rules: RuleFile, guest: &Guest, groups: &[&str]) -> RuleFile {
    let ips: Vec<String> = [&guest.ip4, &guest.ip6]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    rules.binding_with(
        &guest.instance(),
        &guest.tap,
        &ips,
        groups,
        serde_json::json!({ "mac": guest.mac_text() }),
    )
}

/// Writes `rules`, starts secgroupd with `flags` and waits until every
/// listed instance is attached.
pub fn start(
    bed: &TestBed,
    rules: &RuleFile,
    instances: &[String],
    flags: &[&str],
) -> (Daemon, Control) {
    bed.host.rules.write(RULES, &rules.to_json());
    let daemon = bed.host.start_daemon(flags);
    let control = Control::of(&daemon);
    for instance in instances {
        control.wait_attached(instance, Duration::from_secs(10));
    }
    (daemon, control)
}

/// Replaces the rule file and waits until the daemon applied it.
pub fn apply(bed: &TestBed, control: &Control, rules: &RuleFile) {
    let status = control.reload_after(|| bed.host.rules.replace(RULES, &rules.to_json()));
    if let Some(error) = status.last_error {
        panic!("the new rules were rejected: {error:?}");
    }
}
