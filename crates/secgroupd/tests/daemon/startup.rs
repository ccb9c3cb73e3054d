//! Starting up: on valid rules, on invalid rules, and SIGHUP.

use std::time::Duration;

use secgroup_api::{
    AttachState, InstanceDetail, PolicySource, ReloadOutcome, ReloadTrigger, SecurityGroupDetail,
};

use crate::harness::*;

#[test]
fn startup_on_valid_rules_attaches_and_enforces() {
    if !root_or_skip("startup_on_valid_rules_attaches_and_enforces") {
        return;
    }
    let lab = Lab::new("start");
    lab.host.rules.write(
        "vm.json",
        &vm_rules("", &format!("{ACCEPT_TCP_8080}, {ACCEPT_ICMP}")),
    );
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let daemon = start(&lab);

    // READY=1 comes after the first attach.
    let status = daemon.status();
    assert_eq!(status.policy, PolicySource::RulesDir);
    assert_eq!(status.generation, 1);
    assert!(status.last_error.is_none(), "{:?}", status.last_error);
    let report = status
        .last_reload
        .unwrap_or_else(|| panic!("no reload reported"));
    assert_eq!(
        (report.trigger, report.outcome),
        (ReloadTrigger::Startup, ReloadOutcome::Applied)
    );
    let ifindex = match daemon.vm_state() {
        Some(AttachState::Attached { ifindex, .. }) => ifindex,
        other => panic!("ins-vm should be attached at READY=1, is {other:?}"),
    };
    assert_eq!(Some(ifindex), lab.host.ns.ifindex(TAP));
    let hooks = hooks_on_tap(&lab);
    assert!(hooks.are_secgroups(), "hooks on the tap: {hooks:?}");

    // Egress: tcp 8080 to the host and icmp; nothing comes in unasked.
    let mut flow = lab
        .guest_connects(8080)
        .unwrap_or_else(|e| panic!("allowed connect failed: {e}"));
    assert!(
        echoes(&mut flow, "hello"),
        "the allowed flow carries data both ways"
    );
    assert!(
        lab.guest_connects(9090).is_err(),
        "port 9090 is not allowed out"
    );
    assert!(lab.guest_pings_host(), "icmp out and its reply back");
    assert!(lab.host_ping_blocked(), "nothing is allowed in");

    // The API shows the hits, the verdicts and the flow.
    let instance: InstanceDetail = daemon
        .client()
        .get(&secgroup_api::paths::instance("ins-vm"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(instance.egress.len(), 2);
    assert!(
        instance.egress[0].hits.packets >= 1,
        "the tcp rule counted: {:?}",
        instance.egress[0]
    );
    assert!(instance.egress[0].hits.last_hit.is_some());
    assert!(
        instance.egress[1].hits.packets >= 1,
        "the icmp rule counted: {:?}",
        instance.egress[1]
    );
    let verdicts = instance
        .verdicts
        .unwrap_or_else(|| panic!("no verdict counters"));
    assert!(
        verdicts
            .egress
            .get("accept-rule")
            .is_some_and(|c| c.packets >= 2),
        "{verdicts:?}"
    );
    assert!(
        verdicts
            .ingress
            .get("drop-default")
            .is_some_and(|c| c.packets >= 1),
        "{verdicts:?}"
    );

    let group: SecurityGroupDetail = daemon
        .client()
        .get(&secgroup_api::paths::security_group("sg-vm"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(group.bound_instances, ["ins-vm"]);
    assert_eq!(group.egress[0].traffic, "tcp:8080");
    assert_eq!(group.egress[0].remote, "198.51.100.1/32");
    assert!(group.egress[0].hits.packets >= 1, "{:?}", group.egress[0]);

    let local_port = flow.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let conntrack: secgroup_api::ConntrackList = daemon
        .client()
        .get(&secgroup_api::paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    let entry = conntrack
        .entries
        .iter()
        .find(|e| e.protocol == "tcp" && e.local_port == local_port && e.remote_port == 8080)
        .unwrap_or_else(|| panic!("the flow is tracked: {conntrack:?}"));
    assert_eq!(entry.state, "established");
    assert_eq!(entry.direction, secgroup_api::Direction::Egress);
    assert_eq!(entry.instance.as_deref(), Some("ins-vm"));
    let rule = entry
        .rule
        .as_ref()
        .unwrap_or_else(|| panic!("the accepting rule is known: {entry:?}"));
    assert_eq!((rule.security_group.as_str(), rule.index), ("sg-vm", 0));
}

#[test]
fn startup_on_invalid_rules_enforces_nothing_new_and_recovers() {
    if !root_or_skip("startup_on_invalid_rules_enforces_nothing_new_and_recovers") {
        return;
    }
    let lab = Lab::new("badstart");
    lab.host.rules.write(
        "vm.json",
        "{ \"security_groups\": [ { \"id\": \"oops\" } ] }",
    );
    let daemon = start(&lab);
    let status = daemon.status();
    assert_eq!(status.policy, PolicySource::None);
    assert!(status.instances.is_empty());
    let error = status
        .last_error
        .unwrap_or_else(|| panic!("the error is reported"));
    assert_eq!(error.diagnostics.len(), 1, "{error:?}");
    assert!(
        error.diagnostics[0].starts_with(&format!(
            "{}:1:",
            lab.host.rules.path.join("vm.json").display()
        )),
        "file:line:col first: {error:?}"
    );
    assert!(
        daemon.log_text().contains("NO INTERFACE IS PROTECTED"),
        "said loudly:\n{}",
        daemon.log_text()
    );
    assert!(lab.guest_pings_host(), "nothing was attached");

    // Fixed: the watcher picks it up.
    lab.host.rules.replace("vm.json", &vm_rules("", ""));
    daemon.wait_attached(Duration::from_secs(5));
    let status = daemon.status();
    assert_eq!(status.policy, PolicySource::RulesDir);
    assert!(status.last_error.is_none());
    assert!(lab.guest_ping_blocked(), "now enforcing: nothing allowed");
}

#[test]
fn sighup_reloads() {
    if !root_or_skip("sighup_reloads") {
        return;
    }
    let lab = Lab::new("hup");
    lab.host.rules.write("vm.json", &vm_rules("", ACCEPT_ICMP));
    let daemon = start(&lab);
    let before = daemon.status();
    daemon.signal(libc::SIGHUP);
    let after = daemon.wait_reload_after(before.reloads, Duration::from_secs(5));
    let report = after.last_reload.unwrap_or_else(|| panic!("no reload"));
    assert_eq!(report.trigger, ReloadTrigger::Signal);
    assert_eq!(
        report.outcome,
        ReloadOutcome::Unchanged,
        "same rules: nothing applied"
    );
    assert_eq!(after.generation, before.generation);
    assert!(
        daemon.log_text().contains("reload: no changes"),
        "{}",
        daemon.log_text()
    );
}
