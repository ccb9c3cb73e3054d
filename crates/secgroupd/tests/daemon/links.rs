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

/// Two instances; `ins-vm`'s interface is created, renamed away and back,
/// and deleted while `ins-other`'s stays. A link event resyncs only the
/// interfaces it names: the other binding must come through each one
/// untouched, and the named one must end exactly as a full resync would
/// leave it (bound when its name exists, waiting with its hooks kept and
/// closed when it does not).
#[test]
fn a_link_event_changes_only_the_interface_it_names() {
    if !root_or_skip("a_link_event_changes_only_the_interface_it_names") {
        return;
    }
    const OTHER: &str = "sgone-o0";
    let lab = Lab::without_link("links-one");
    lab.host.ns.ip(&[
        "link", "add", OTHER, "type", "veth", "peer", "name", "sgone-o1",
    ]);
    lab.host.rules.write(
        "vm.json",
        &format!(
            r#"{{
  "security_groups": [
    {{ "id": "sg-vm", "name": "vm", "ingress": [], "egress": [{ACCEPT_ICMP}] }}
  ],
  "instances": [
    {{ "id": "ins-vm", "interface": "{TAP}", "ips": ["{GUEST_IP}"], "security_groups": ["sg-vm"] }},
    {{ "id": "ins-other", "interface": "{OTHER}", "ips": ["203.0.113.9"], "security_groups": ["sg-vm"] }}
  ]
}}
"#
        ),
    );
    let daemon = start(&lab);
    let control = secgroup_testbed::Control::of(&daemon);
    let other = control.wait_attached("ins-other", Duration::from_secs(5));
    let other_stays = |when: &str| {
        assert_eq!(
            control.attach_state("ins-other").and_then(|s| match s {
                AttachState::Attached { ifindex, .. } => Some(ifindex),
                _ => None,
            }),
            Some(other),
            "ins-other stays attached {when}"
        );
    };

    lab.add_link();
    let first = daemon.wait_attached(Duration::from_secs(2));
    assert_eq!(Some(first), lab.host.ns.ifindex(TAP));
    assert!(lab.guest_pings_host(), "icmp out");
    assert!(lab.host_ping_blocked(), "nothing in");
    other_stays("after the new interface");

    // Renamed away: nothing is called tap-vm, ins-vm waits; the hooks stay
    // on the renamed link and drop its IP traffic (fail closed).
    lab.host.ns.ip(&["link", "set", TAP, "down"]);
    lab.host.ns.ip(&["link", "set", TAP, "name", "sgone-away"]);
    lab.host.ns.ip(&["link", "set", "sgone-away", "up"]);
    wait_for(
        Duration::from_secs(2),
        "ins-vm to wait after the rename",
        || (daemon.vm_state() == Some(AttachState::Waiting)).then_some(()),
    );
    assert!(
        lab.guest_ping_blocked(),
        "a renamed-away interface is closed"
    );
    other_stays("after the rename");

    // Renamed back: bound again on the same ifindex, its policy in force.
    lab.host.ns.ip(&["link", "set", "sgone-away", "down"]);
    lab.host.ns.ip(&["link", "set", "sgone-away", "name", TAP]);
    lab.host.ns.ip(&["link", "set", TAP, "up"]);
    assert_eq!(daemon.wait_attached(Duration::from_secs(2)), first);
    assert!(lab.guest_pings_host(), "icmp out after the rename back");
    other_stays("after the rename back");

    lab.del_link();
    wait_for(Duration::from_secs(2), "ins-vm to wait again", || {
        (daemon.vm_state() == Some(AttachState::Waiting)).then_some(())
    });
    other_stays("after the deletion");
    let log = daemon.log_text();
    assert_eq!(
        log.matches("attached instance=ins-other").count(),
        1,
        "ins-other's hooks were attached once and never again:\n{log}"
    );
}
