//! Guarded interfaces (`--interface-pattern`): an interface whose name
//! matches is hooked the moment it appears and closed until an instance
//! binds it; interfaces no pattern covers and nothing hooks are reported as
//! unprotected.

use std::time::Duration;

use secgroup_api::Status;

use crate::harness::*;

fn guarded(status: &Status) -> Vec<String> {
    status
        .guarded_interfaces
        .iter()
        .map(|g| g.name.clone())
        .collect()
}

#[test]
fn a_guarded_interface_is_closed_from_its_first_moment_and_open_to_its_rules_once_bound() {
    if !root_or_skip(
        "a_guarded_interface_is_closed_from_its_first_moment_and_open_to_its_rules_once_bound",
    ) {
        return;
    }
    let lab = Lab::without_link("guard");
    // Rules that do not name the VM's interface yet.
    lab.host.rules.write("other.json", &other_rules());
    let daemon = start_with(&lab, &["--interface-pattern", "vnet*,tap*"]);
    lab.add_link();
    let status = wait_for(Duration::from_secs(5), "tap-vm guarded", || {
        let status = daemon.status();
        guarded(&status).contains(&TAP.to_owned()).then_some(status)
    });
    assert!(
        hooks_on_tap(&lab).are_secgroups(),
        "hooked before any rule names it"
    );
    assert!(
        status.unbound_interfaces.is_empty() && status.unprotected_interfaces.is_empty(),
        "{status:?}"
    );
    let _servers = echo_servers(&lab, &[8080, 9090]);
    assert!(lab.guest_connects(8080).is_err(), "closed while unbound");
    assert!(lab.guest_ping_blocked(), "closed while unbound");
    assert!(lab.host_ping_blocked(), "closed both ways");
    // Not even ARP: the guest's answer to the host's request claims an
    // address no instance gives it, so the host never learns its MAC.
    let neigh = lab
        .host
        .ns
        .output(&["ip", "neigh", "show", GUEST_IP, "dev", TAP]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        !neigh.contains("lladdr"),
        "the guest's ARP reply got out: {neigh}"
    );

    let reloads = daemon.status().reloads;
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    daemon.wait_reload_after(reloads, Duration::from_secs(5));
    daemon.wait_attached(Duration::from_secs(5));
    // The host's neighbour entry for the guest failed while it was
    // closed: the first attempt may race its re-resolution (more so
    // since a reload follows the write within milliseconds).
    wait_for(
        Duration::from_secs(5),
        "the guest to reach port 8080",
        || lab.guest_connects(8080).ok(),
    );
    assert!(lab.guest_connects(9090).is_err(), "and only to them");
    let status = daemon.status();
    assert!(
        guarded(&status).is_empty(),
        "bound now, not guarded: {status:?}"
    );

    // Unbound again: guarded again, closed again.
    let reloads = status.reloads;
    lab.host.rules.remove("vm.json");
    let status = daemon.wait_reload_after(reloads, Duration::from_secs(5));
    assert_eq!(guarded(&status), vec![TAP.to_owned()], "{status:?}");
    assert!(lab.guest_connects(8080).is_err(), "closed once unbound");
}

#[test]
fn an_interface_nothing_hooks_or_guards_is_reported_unprotected() {
    if !root_or_skip("an_interface_nothing_hooks_or_guards_is_reported_unprotected") {
        return;
    }
    let lab = Lab::new("unprot");
    lab.host.rules.write("other.json", &other_rules());
    let daemon = start(&lab);
    let status = daemon.status();
    assert!(
        status
            .unprotected_interfaces
            .iter()
            .any(|u| u.name == TAP && u.kind == "veth"),
        "{:?}",
        status.unprotected_interfaces
    );
}

/// A rule file that binds another instance to an interface that is not
/// there.
fn other_rules() -> String {
    vm_rules("", "")
        .replace(TAP, "tap-other")
        .replace("ins-vm", "ins-other")
        .replace("sg-vm", "sg-other")
        .replace(GUEST_IP, "198.51.100.99")
}
