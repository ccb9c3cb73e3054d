//! The daemon under faults: a second daemon on the same pins, restarts
//! after offline edits, attach failures retried by any reload, transient
//! lookup errors, foreign writes to the pins, a private bpffs, and
//! diagnostics pointing at the file that introduced the problem. Health
//! says `degraded`, with the reason, whenever something is not enforced.

use std::time::Duration;

use secgroup_api::{AttachState, HealthState, Status};

use secgroup_testbed::Secgroupd;

use crate::harness::*;

macro_rules! root_test {
    ($name:literal) => {
        if !root_or_skip($name) {
            return;
        }
    };
}

fn reasons(status: &Status) -> Vec<String> {
    status
        .health
        .reasons
        .iter()
        .map(|r| r.kind.clone())
        .collect()
}

fn wait_health(daemon: &Daemon, kind: &str) -> Status {
    wait_for(
        Duration::from_secs(5),
        &format!("health degraded by {kind}"),
        || {
            let status = daemon.status();
            (status.health.state == HealthState::Degraded
                && reasons(&status).iter().any(|k| k == kind))
            .then_some(status)
        },
    )
}

#[test]
fn a_second_daemon_on_the_same_pins_is_refused_and_the_first_keeps_enforcing() {
    root_test!("a_second_daemon_on_the_same_pins_is_refused_and_the_first_keeps_enforcing");
    let lab = Lab::new("twice");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let first = start(&lab);
    first.wait_attached(Duration::from_secs(5));

    // A second daemon, its own socket and an open-all rules directory, on
    // the same pins.
    let other_rules = lab.host.dir.join("other-rules");
    std::fs::create_dir_all(&other_rules).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        other_rules.join("open.json"),
        vm_rules(
            r#"{ "action": "accept", "protocol": "all" }"#,
            r#"{ "action": "accept", "protocol": "all" }"#,
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log = lab.host.dir.join("second.log");
    let second = Secgroupd::new(env!("CARGO_BIN_EXE_secgroupd"), &lab.host.dir.path)
        .netns(&lab.host.ns)
        .rules_dir(&other_rules)
        .socket(&lab.host.dir.join("other.sock"))
        .bpffs(&lab.host.pins.path)
        .arg("--state-dir")
        .arg(lab.host.dir.join("other-state"))
        .log(&log)
        .ready_timeout(Duration::from_secs(10))
        .try_start();
    assert!(second.is_err(), "a second daemon on the same pins started");
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        said.contains(&format!("secgroupd pid {}", first.pid()))
            && said.contains(&first.socket().display().to_string()),
        "the refusal names the owner's pid and socket: {said}"
    );

    let status = first.status();
    assert_eq!(status.health.state, HealthState::Ok, "{:?}", status.health);
    assert_eq!(
        status.owner.as_ref().map(|o| o.pid),
        Some(first.pid() as u64)
    );
    assert!(
        lab.guest_connects(9090).is_err(),
        "still denied: the second daemon wrote nothing"
    );
    assert!(lab.guest_connects(8080).is_ok(), "still allowed");
}

#[test]
fn a_restart_compares_with_the_pinned_policy_keeps_the_generation_and_logs_cut_flows() {
    root_test!("a_restart_compares_with_the_pinned_policy_keeps_the_generation_and_logs_cut_flows");
    let lab = Lab::new("offline");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(5));
    let status = daemon.reload_after_edit(&lab, &vm_rules(ACCEPT_ICMP, ACCEPT_TCP_8080));
    let generation = status.generation;
    assert!(generation >= 2, "{status:?}");
    let mut flow = lab
        .guest_connects(8080)
        .unwrap_or_else(|e| panic!("allowed connect failed: {e}"));
    assert!(echoes(&mut flow, "before"));
    daemon.terminate();

    // Edited while no daemon runs: 8080 is no longer allowed.
    lab.host
        .rules
        .replace("vm.json", &vm_rules(ACCEPT_ICMP, ""));
    let daemon = start(&lab);
    let status = daemon.status();
    assert_eq!(
        status.generation,
        generation + 1,
        "the generation carries on from the pins: {status:?}"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("compared with the rules the previous secgroupd applied"),
        "the restart compares with what was in force: {log}"
    );
    assert!(log.contains("egress"), "names what changed: {log}");
    assert!(
        log.contains("tracked flow cut by the new rules") && log.contains("8080"),
        "the cut connection is logged: {log}"
    );
    assert!(!echoes(&mut flow, "after"), "the kernel cut the flow");
}

#[test]
fn any_reload_retries_a_failed_attach_and_health_says_degraded_meanwhile() {
    root_test!("any_reload_retries_a_failed_attach_and_health_says_degraded_meanwhile");
    let lab = Lab::new("retry");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let ifindex = lab
        .host
        .ns
        .ifindex(TAP)
        .unwrap_or_else(|| panic!("no {TAP}"));
    // A directory where the TC link's pin goes: pinning fails.
    let blocker = lab
        .host
        .pins
        .path
        .join("links")
        .join(format!("{ifindex}_tcx"));
    std::fs::create_dir_all(&blocker).unwrap_or_else(|e| panic!("{e}"));
    let daemon = start(&lab);
    let status = wait_health(&daemon, "not-enforced");
    assert!(
        matches!(daemon.vm_state(), Some(AttachState::Failed { .. })),
        "{status:?}"
    );
    let hooks = hooks_on_tap(&lab);
    assert!(hooks.none(), "no hook is left alone: {hooks:?}");

    std::fs::remove_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
    let report: secgroup_api::ReloadReport = daemon
        .client()
        .post::<(), _>(secgroup_api::paths::RELOAD, None)
        .unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(report.outcome, secgroup_api::ReloadOutcome::Unchanged);
    assert!(
        matches!(daemon.vm_state(), Some(AttachState::Attached { .. })),
        "the unchanged reload attached: {:?}",
        daemon.vm_state()
    );
    assert!(hooks_on_tap(&lab).are_secgroups());
    assert_eq!(daemon.status().health.state, HealthState::Ok);
}

#[test]
fn a_transient_lookup_error_never_unhooks_an_interface() {
    root_test!("a_transient_lookup_error_never_unhooks_an_interface");
    let lab = Lab::new("emfile");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(5));
    let pid = daemon.pid().to_string();
    // No new fd for the daemon (the limit bounds fd numbers, so 0 refuses
    // every one): every name lookup fails with EMFILE.
    let limit = |soft: &str| {
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={soft}:")])
            .status()
            .unwrap_or_else(|e| panic!("prlimit: {e}"));
        assert!(status.success(), "prlimit failed");
    };
    limit("0");
    // A reload makes the daemon look its interfaces up (it fails to read
    // the rules too; the interfaces are synced either way). A link event of
    // the settled tap itself (its MTU, say) no longer does.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap_or_else(|e| panic!("kill -HUP: {e}"));
    assert!(hup.success(), "kill -HUP failed");
    std::thread::sleep(Duration::from_millis(500));
    limit("20000");
    assert!(
        daemon
            .log_text()
            .contains("looking the interface up failed"),
        "the lookups did fail meanwhile (else this test proves nothing)"
    );
    let hooks = hooks_on_tap(&lab);
    assert!(hooks.are_secgroups(), "the hooks stayed: {hooks:?}");
    assert!(lab.guest_connects(9090).is_err(), "still denied");
    assert!(lab.guest_connects(8080).is_ok(), "still allowed");
    assert!(
        matches!(daemon.vm_state(), Some(AttachState::Attached { .. })),
        "{:?}",
        daemon.vm_state()
    );
}

#[test]
fn foreign_writes_to_the_pins_are_noticed_reported_and_undone() {
    root_test!("foreign_writes_to_the_pins_are_noticed_reported_and_undone");
    let lab = Lab::new("tamper");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start_with(&lab, &["--pin-check-interval", "200ms"]);
    let ifindex = daemon.wait_attached(Duration::from_secs(5));
    assert!(lab.guest_connects(8080).is_ok());
    // Someone deletes the tap's policy entry (its hooks then drop all).
    let key: Vec<String> = ifindex
        .to_ne_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let map = lab.host.pins.path.join("sg_ifaces");
    let mut args = vec![
        "map",
        "delete",
        "pinned",
        map.to_str().unwrap_or_default(),
        "key",
        "hex",
    ];
    args.extend(key.iter().map(String::as_str));
    let out = std::process::Command::new("bpftool")
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("bpftool: {e}"));
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = wait_health(&daemon, "pins-tampered");
    assert!(
        status
            .health
            .reasons
            .iter()
            .any(|r| r.message.contains(&format!("interface {ifindex}"))),
        "{:?}",
        status.health
    );
    assert!(
        daemon.log_text().contains("CHANGED BY SOMEONE ELSE"),
        "said loudly"
    );
    wait_for(Duration::from_secs(5), "the policy re-applied", || {
        lab.guest_connects(8080).ok()
    });
}

#[test]
fn under_ip_netns_exec_the_daemon_refuses_a_bpffs_that_would_die_with_it() {
    root_test!("under_ip_netns_exec_the_daemon_refuses_a_bpffs_that_would_die_with_it");
    let lab = Lab::new("privfs");
    lab.host.rules.write("vm.json", &vm_rules("", ""));
    let pins = format!("/sys/fs/bpf/sgt-privfs-{}", std::process::id());
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.host.ns.name,
            env!("CARGO_BIN_EXE_secgroupd"),
        ])
        .arg("--rules-dir")
        .arg(&lab.host.rules.path)
        .arg("--socket")
        .arg(lab.host.dir.join("privfs.sock"))
        .arg("--state-dir")
        .arg(lab.host.dir.join("state"))
        .args(["--bpffs", &pins])
        .output()
        .unwrap_or_else(|e| panic!("ip netns exec: {e}"));
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started on a private bpffs: {said}");
    assert!(
        said.contains("private to this process's mount namespace")
            && said.contains("nsenter --net"),
        "says why and what to do: {said}"
    );
}

#[test]
fn diagnostics_name_the_file_that_introduced_the_problem_and_survive_an_unreadable_entry() {
    root_test!(
        "diagnostics_name_the_file_that_introduced_the_problem_and_survive_an_unreadable_entry"
    );
    let lab = Lab::new("diag");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(5));
    // A new file sorting first redefines the security group.
    let reloads = daemon.status().reloads;
    lab.host.rules.write(
        "0-new.json",
        r#"{ "security_groups": [ { "id": "sg-vm", "ingress": [] } ] }"#,
    );
    std::os::unix::fs::symlink("loop.json", lab.host.rules.path.join("loop.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = daemon.wait_reload_after(reloads, Duration::from_secs(5));
    let diagnostics = status.last_error.map(|e| e.diagnostics).unwrap_or_default();
    assert!(
        diagnostics
            .iter()
            .any(|d| d.contains("0-new.json") && d.contains("sg-vm")),
        "the duplicate is reported in the new file: {diagnostics:#?}"
    );
    assert!(
        !diagnostics
            .iter()
            .any(|d| d.starts_with(&lab.host.rules.path.join("vm.json").display().to_string())),
        "not in the old one: {diagnostics:#?}"
    );
    assert!(
        diagnostics.iter().any(|d| d.contains("loop.json")),
        "the unreadable entry is reported beside the other error: {diagnostics:#?}"
    );
}

trait Edit {
    fn reload_after_edit(&self, lab: &Lab, rules: &str) -> Status;
}

impl Edit for Daemon {
    /// Replaces the VM's rule file and waits for the reload it causes.
    fn reload_after_edit(&self, lab: &Lab, rules: &str) -> Status {
        let reloads = self.status().reloads;
        lab.host.rules.replace("vm.json", rules);
        self.wait_reload_after(reloads, Duration::from_secs(5))
    }
}

#[test]
fn reads_are_answered_while_a_reload_is_running() {
    root_test!("reads_are_answered_while_a_reload_is_running");
    let lab = Lab::new("busy");
    lab.host
        .rules
        .write("vm.json", &vm_rules("", ACCEPT_TCP_8080));
    // Every reload first pauses 3 s on the engine thread (a test hook).
    let daemon = lab
        .host
        .secgroupd(env!("CARGO_BIN_EXE_secgroupd"))
        .env("SECGROUPD_TEST_RELOAD_DELAY_MS", "3000")
        .ready_timeout(Duration::from_secs(20))
        .start();
    daemon.wait_attached(Duration::from_secs(5));
    let before = daemon.status();
    lab.host
        .rules
        .replace("vm.json", &vm_rules(ACCEPT_ICMP, ACCEPT_TCP_8080));
    // The watcher hands the change to the engine after 30 ms of quiet;
    // from then on the engine is busy for 3 s.
    std::thread::sleep(Duration::from_millis(500));
    let during = daemon.status();
    let answered_ms = secgroup_api::Timestamp::from_unix_ms(unix_ms()).unix_ms;
    let after = daemon.wait_reload_after(before.reloads, Duration::from_secs(20));
    let finished_ms = after.last_reload.as_ref().map_or(0, |r| r.finished.unix_ms);
    assert_eq!(
        during.generation, before.generation,
        "the status came from the policy in force"
    );
    assert!(
        answered_ms < finished_ms,
        "the status was answered ({answered_ms}) before the reload finished ({finished_ms}): reads do not wait"
    );
    assert_eq!(after.generation, before.generation + 1);
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
