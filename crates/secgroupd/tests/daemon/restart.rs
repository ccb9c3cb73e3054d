//! Crashes and restarts: the pinned hooks keep filtering while no daemon
//! runs, established flows survive, and the next daemon converges.
//! Uninstall removes it all.

use std::time::Duration;

use secgroup_api::{AttachState, ConntrackList, PolicySource};

use crate::harness::*;

#[test]
fn sigkill_and_restart_keep_flows_and_denials_then_uninstall_removes_everything() {
    if !root_or_skip("sigkill_and_restart_keep_flows_and_denials_then_uninstall_removes_everything")
    {
        return;
    }
    let lab = Lab::new("restart");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let daemon = start(&lab);
    let mut flow = lab
        .guest_connects(8080)
        .unwrap_or_else(|e| panic!("allowed connect failed: {e}"));
    assert!(echoes(&mut flow, "before"), "the flow works");
    assert!(lab.guest_connects(9090).is_err(), "9090 is denied");
    let local_port = flow.local_addr().unwrap_or_else(|e| panic!("{e}")).port();

    // Crash.
    daemon.kill();
    let hooks = hooks_on_tap(&lab);
    assert!(hooks.are_secgroups(), "pinned hooks stay: {hooks:?}");
    assert!(
        echoes(&mut flow, "while down"),
        "the established flow keeps flowing with no daemon"
    );
    assert!(
        lab.guest_connects(9090).is_err(),
        "denied stays denied with no daemon"
    );
    assert!(
        lab.guest_ping_blocked(),
        "icmp was never allowed and still is not"
    );

    // Restart on an invalid rules directory: the pinned policy stays.
    lab.host.rules.write("vm.json", "{ not json");
    let daemon = start(&lab);
    let status = daemon.status();
    assert_eq!(status.policy, PolicySource::Pinned, "{status:?}");
    assert!(status.last_error.is_some());
    assert!(
        status
            .unbound_interfaces
            .iter()
            .any(|u| u.name.as_deref() == Some(TAP)),
        "the pinned interface is reported: {:?}",
        status.unbound_interfaces
    );
    assert!(
        daemon
            .log_text()
            .contains("keeping the policy a previous secgroupd pinned"),
        "said loudly"
    );
    assert!(echoes(&mut flow, "pinned"), "still flowing");
    assert!(lab.guest_connects(9090).is_err(), "still denied");

    // Fixed: converges, adopting the pinned hooks and the flow.
    lab.host
        .rules
        .replace("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    daemon.wait_attached(Duration::from_secs(5));
    match daemon.vm_state() {
        Some(AttachState::Attached { adopted, .. }) => {
            assert!(adopted, "the pinned links are taken over")
        }
        other => panic!("not attached: {other:?}"),
    }
    let hooks = hooks_on_tap(&lab);
    assert!(
        hooks.are_secgroups(),
        "our two hooks, once each (taken over, not duplicated): {hooks:?}"
    );
    assert!(
        echoes(&mut flow, "after"),
        "the flow survives the new daemon's first apply"
    );
    assert!(
        lab.guest_connects(9090).is_err(),
        "denied after the restart"
    );
    let conntrack: ConntrackList = daemon
        .client()
        .get(&secgroup_api::paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        conntrack.entries.iter().any(|e| e.local_port == local_port
            && e.remote_port == 8080
            && e.state == "established"),
        "the flow's conntrack entry survived: {conntrack:?}"
    );

    // A clean stop leaves the hooks; --uninstall removes them.
    let status = daemon.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(
        !lab.host.socket().exists(),
        "the socket is removed on a clean exit"
    );
    assert!(
        hooks_on_tap(&lab).are_secgroups(),
        "hooks stay after a clean stop"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_secgroupd"))
        .arg("--uninstall")
        .arg("--bpffs")
        .arg(&lab.host.pins.path)
        .arg("--socket")
        .arg(lab.host.socket())
        .output()
        .unwrap_or_else(|e| panic!("running --uninstall: {e}"));
    assert!(
        out.status.success(),
        "--uninstall failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lab.host.pins.path.exists(), "the pin directory is gone");
    // The kernel releases an unpinned link from a work queue: soon, not
    // at once.
    wait_for(Duration::from_secs(2), "the hooks to detach", || {
        hooks_on_tap(&lab).none().then_some(())
    });
    assert!(lab.guest_pings_host(), "unfiltered after uninstall");
}
