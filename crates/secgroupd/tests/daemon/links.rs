//! Interfaces that appear after the daemon, disappear, and come back.

use std::time::{Duration, Instant};

use secgroup_api::AttachState;

use crate::harness::*;

#[test]
fn interfaces_are_followed_as_they_come_and_go() {
    if !root_or_skip("interfaces_are_followed_as_they_come_and_go") {
        return;
    }
    let lab = Lab::without_link("links");
    lab.host.rules.write("vm.json", &vm_rules("", ACCEPT_ICMP));
    let daemon = start(&lab);
    assert_eq!(
        daemon.vm_state(),
        Some(AttachState::Waiting),
        "no interface yet"
    );

    // Created after startup: attached within a fraction of a second.
    let started = Instant::now();
    lab.add_link();
    let first = daemon.wait_attached(Duration::from_millis(500));
    eprintln!("attached {:?} after the link appeared", started.elapsed());
    assert_eq!(Some(first), lab.host.ns.ifindex(TAP));
    assert!(lab.guest_pings_host(), "icmp out");
    assert!(lab.host_ping_blocked(), "nothing in");
    assert_eq!(
        lab.host.pins.links().len(),
        2,
        "both hooks pinned: {:?}",
        lab.host.pins.links()
    );

    // Deleted: back to waiting, hooks and pins released.
    lab.del_link();
    wait_for(Duration::from_millis(500), "ins-vm to wait again", || {
        (daemon.vm_state() == Some(AttachState::Waiting)).then_some(())
    });
    wait_for(
        Duration::from_millis(500),
        "the pins of the gone interface to go",
        || lab.host.pins.links().is_empty().then_some(()),
    );
    assert!(daemon.status().unbound_interfaces.is_empty());

    // Re-created under the same name: a new ifindex, attached again.
    lab.add_link();
    let second = daemon.wait_attached(Duration::from_millis(500));
    assert_ne!(first, second, "a re-created interface has a new ifindex");
    assert!(lab.guest_pings_host(), "icmp out again");
    assert!(lab.host_ping_blocked(), "still nothing in");
    let log = daemon.log_text();
    // "deleted" from the netlink deletion, "gone" if a resync found it
    // missing first.
    assert!(
        log.contains("interface deleted") || log.contains("interface gone"),
        "the detach is logged:\n{log}"
    );
    assert!(
        log.matches("attached instance=ins-vm").count() >= 2,
        "both attaches are logged:\n{log}"
    );
}
