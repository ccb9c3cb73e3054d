//! Counters follow rules, not positions: a rule inserted above another
//! starts at 0, and the other keeps its count, across a reload and a
//! daemon restart, whether the rules have ids or are known by content.

use std::time::Duration;

use secgroup_api::Direction;
use secgroup_testbed::{Control, poll};

use crate::harness::*;

/// The guest's egress rule for the host's echo server on 8080 (B), and a
/// different one (A) to insert above it, each with its `id` prefix.
fn rule_b(id: &str) -> String {
    format!(
        r#"{{ {id}"action": "accept", "protocol": "tcp", "port": "8080", "remote": "{HOST_IP}" }}"#
    )
}

fn rule_a(id: &str) -> String {
    format!(
        r#"{{ {id}"action": "accept", "protocol": "tcp", "port": "9090", "remote": "{HOST_IP}" }}"#
    )
}

/// Opens `n` new flows to 8080 (each one is decided by a rule).
fn connect_8080(lab: &Lab, n: usize) {
    for i in 0..n {
        let mut flow = lab
            .guest_connects(8080)
            .unwrap_or_else(|e| panic!("the allowed connect {i} failed: {e}"));
        assert!(echoes(&mut flow, "counted"));
    }
}

/// The egress hits of `sg-vm` once they stop moving (the last packets of
/// a flow may still be in flight when it is asked).
fn settled_hits(control: &Control) -> Vec<u64> {
    let mut last = control.hits("sg-vm", Direction::Egress);
    poll(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = control.hits("sg-vm", Direction::Egress);
        let settled = now == last;
        last = now;
        settled.then_some(())
    })
    .unwrap_or_else(|| panic!("the egress hits kept moving: {last:?}"));
    last
}

fn inserting_a_rule_above_keeps_counts(tag: &str, id_a: &str, id_b: &str) {
    let lab = Lab::new(tag);
    lab.host
        .rules
        .write("vm.json", &vm_rules("", &rule_b(id_b)));
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(10));
    let control = Control::of(&daemon);

    connect_8080(&lab, 2);
    let before = settled_hits(&control);
    assert!(
        before.len() == 1 && before[0] >= 2,
        "B counted both flows: {before:?}"
    );

    // A goes in above B: B moves to index 1 with its count; A starts at 0.
    let list = format!("{}, {}", rule_a(id_a), rule_b(id_b));
    control.reload_after(|| lab.host.rules.replace("vm.json", &vm_rules("", &list)));
    assert_eq!(
        settled_hits(&control),
        [0, before[0]],
        "after inserting A at index 0"
    );

    // B keeps counting at its new place, A stays at 0.
    connect_8080(&lab, 1);
    let after = settled_hits(&control);
    assert!(
        after[0] == 0 && after[1] > before[0],
        "B counts on at index 1: {after:?} (before: {before:?})"
    );

    // A new daemon finds the same rules under the same counters.
    daemon.kill();
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(10));
    let control = Control::of(&daemon);
    assert_eq!(settled_hits(&control), after, "after a restart");
}

#[test]
fn counts_follow_rules_known_by_content() {
    if !root_or_skip("counts_follow_rules_known_by_content") {
        return;
    }
    inserting_a_rule_above_keeps_counts("cnt-content", "", "");
}

#[test]
fn counts_follow_rules_known_by_id() {
    if !root_or_skip("counts_follow_rules_known_by_id") {
        return;
    }
    inserting_a_rule_above_keeps_counts("cnt-id", r#""id": "a", "#, r#""id": "b", "#);
}
