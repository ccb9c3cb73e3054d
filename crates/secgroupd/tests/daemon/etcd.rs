//! The rules from etcd (a real one, in the lab host's namespace): each
//! revision enforced whole, an invalid one rejected with its located
//! error while the previous stays in force, host-local rule files merged
//! with the same duplicate rules, another host's instances never bound
//! here, and etcd down: the last good revision stays, health says so, a
//! restart keeps what is pinned, and etcd back brings the daemon back.

use std::time::Duration;

use secgroup_api::{PolicySource, Status};
use secgroup_testbed::{Etcd, etcd_or_skip};

use crate::harness::*;

const HOST: &str = "lab-host";

fn group(ingress: &str) -> String {
    format!(r#"{{ "id": "sg-vm", "ingress": [{ingress}], "egress": [{ACCEPT_ICMP}] }}"#)
}

fn etcd_status(status: &Status) -> secgroup_api::EtcdStatus {
    status
        .source
        .as_ref()
        .and_then(|s| s.etcd.clone())
        .unwrap_or_else(|| panic!("no etcd in the status: {:?}", status.source))
}

#[test]
fn etcd_revisions_are_enforced_whole_and_the_last_good_one_stays() {
    if !root_or_skip("etcd_revisions_are_enforced_whole_and_the_last_good_one_stays")
        || !etcd_or_skip("etcd_revisions_are_enforced_whole_and_the_last_good_one_stays")
    {
        return;
    }
    let lab = Lab::new("etcd");
    let etcd = Etcd::options().netns(&lab.host.ns, "127.0.0.1").start();
    etcd.put("/secgroup/security_groups/sg-vm", &group(""));
    etcd.put(
        "/secgroup/instances/ins-vm",
        &format!(
            r#"{{ "id": "ins-vm", "host": "{HOST}", "interface": "{TAP}", "ips": ["{GUEST_IP}"], "security_groups": ["sg-vm"] }}"#
        ),
    );
    // Another hypervisor's VM on a tap of the same name: not bound here.
    etcd.put(
        "/secgroup/instances/ins-far",
        &format!(
            r#"{{ "id": "ins-far", "host": "hv-far", "interface": "{TAP}", "ips": ["203.0.113.50"], "security_groups": ["sg-vm"] }}"#
        ),
    );
    let endpoint = etcd.endpoint();
    let flags = [
        "--etcd-endpoints",
        endpoint.as_str(),
        "--etcd-timeout",
        "1s",
        "--host-name",
        HOST,
    ];
    let daemon = start_with(&lab, &flags);
    daemon.wait_attached(Duration::from_secs(10));
    let status = daemon.status();
    let source = status.source.clone().unwrap_or_else(|| panic!("no source"));
    assert_eq!(
        (source.kind.as_str(), source.host.as_str()),
        ("etcd+dir", HOST)
    );
    assert_eq!(etcd_status(&status).revision, Some(etcd.revision()));
    let ids: Vec<&str> = status.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["ins-vm"], "only this host's instances are bound");
    assert!(lab.guest_pings_host(), "icmp out is allowed");
    assert!(lab.host_ping_blocked(), "nothing in");

    // An invalid write: rejected whole, located by its key.
    let generation = status.generation;
    let bad = etcd.put(
        "/secgroup/security_groups/sg-bad",
        r#"{ "id": "sg-bad", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "99999" } ] }"#,
    );
    let status = wait_for(Duration::from_secs(10), "the bad revision's error", || {
        let status = daemon.status();
        status.last_error.is_some().then_some(status)
    });
    let error = status.last_error.clone().unwrap_or_else(|| panic!());
    assert!(
        error.message.contains(&format!("etcd revision {bad}")),
        "{}",
        error.message
    );
    assert_eq!(
        error.diagnostics,
        [
            "etcd:/secgroup/security_groups/sg-bad:1:81: ingress[0].port: \"99999\" is not a port (out of range 1-65535)"
        ]
    );
    assert_eq!(status.generation, generation, "nothing changed");
    let e = etcd_status(&status);
    assert_eq!((e.revision, e.latest_revision), (Some(bad - 1), Some(bad)));
    assert!(
        lab.guest_pings_host() && lab.host_ping_blocked(),
        "as before"
    );

    // Fixed, and a change in the same breath: both in force.
    etcd.delete("/secgroup/security_groups/sg-bad");
    let fixed = etcd.put("/secgroup/security_groups/sg-vm", &group(ACCEPT_ICMP));
    let status = wait_for(Duration::from_secs(10), "the fixed revision", || {
        let status = daemon.status();
        (etcd_status(&status).revision == Some(fixed)).then_some(status)
    });
    assert!(status.last_error.is_none(), "{:?}", status.last_error);
    assert!(status.generation > generation);
    assert!(lab.host_pings_guest(), "icmp in is allowed now");

    // A host-local file defining what etcd defines: the same duplicate
    // rule as between two files.
    let reloads = status.reloads;
    lab.host.rules.write("local.json", &vm_rules("", ""));
    let status = daemon.wait_reload_after(reloads, Duration::from_secs(10));
    let error = status
        .last_error
        .unwrap_or_else(|| panic!("the duplicate was accepted"));
    assert!(
        error.diagnostics.iter().any(|d| d.contains("local.json")
            && d.contains("duplicate security group id \"sg-vm\"")
            && d.contains("etcd:/secgroup/security_groups/sg-vm")),
        "{:?}",
        error.diagnostics
    );
    let reloads = status.reloads;
    lab.host.rules.remove("local.json");
    daemon.wait_reload_after(reloads, Duration::from_secs(10));

    // etcd down: the last good revision stays in force, loudly.
    etcd.stop();
    let status = wait_for(Duration::from_secs(20), "etcd-unreachable", || {
        let status = daemon.status();
        status
            .health
            .reasons
            .iter()
            .any(|r| r.kind == "etcd-unreachable")
            .then_some(status)
    });
    let e = etcd_status(&status);
    assert!(!e.connected && e.unreachable_since.is_some(), "{e:?}");
    assert_eq!(e.revision, Some(fixed));
    assert!(
        lab.host_pings_guest() && lab.guest_pings_host(),
        "still enforced"
    );
    let metrics = raw(&daemon, "GET", "/metrics", None);
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains(r#"secgroup_degraded_reasons{kind="etcd-unreachable"} 1"#),
        "{metrics}"
    );

    // A restart while etcd is down keeps the pinned policy.
    daemon.terminate();
    let daemon = start_with(&lab, &flags);
    let status = daemon.status();
    assert_eq!(status.policy, PolicySource::Pinned);
    assert!(lab.host_pings_guest() && lab.guest_pings_host(), "pinned");

    // etcd back: the daemon reads it and enforces it again.
    etcd.start();
    let status = wait_for(
        Duration::from_secs(30),
        "the resync after the outage",
        || {
            let status = daemon.status();
            (status.policy == PolicySource::RulesDir).then_some(status)
        },
    );
    assert_eq!(etcd_status(&status).revision, Some(etcd.revision()));
    assert!(
        status.health.reasons.is_empty(),
        "{:?}",
        status.health.reasons
    );
    assert!(lab.host_pings_guest() && lab.guest_pings_host());
}
