//! `secgroupctl publish` feeding a fleet: a rules directory written by a
//! controller becomes every host's policy in one etcd revision, and a
//! changed directory its next one.

use std::time::Duration;

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    Control, Fleet, RulesDir, Scratch, accept, etcd_or_skip, group, instance_on, root_or_skip,
    secgroupctl_binary, tcp,
};
use serde_json::{Value, json};

use crate::v4;

/// Publishes `dir` with the workspace's secgroupctl, run inside
/// the fabric namespace where etcd listens; the revision it printed.
fn publish(fleet: &Fleet, dir: &RulesDir) -> i64 {
    let output = fleet
        .fabric
        .command(secgroupctl_binary())
        .args([
            "--json",
            "publish",
            "--etcd-endpoints",
            &fleet.etcd.endpoint(),
        ])
        .arg(&dir.path)
        .output()
        .unwrap_or_else(|e| panic!("running secgroupctl publish: {e}"));
    assert!(
        output.status.success(),
        "secgroupctl publish failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("publish --json: {e}"));
    answer["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {answer}"))
}

#[test]
fn a_published_directory_is_every_hosts_policy_in_one_revision() {
    let test = "a_published_directory_is_every_hosts_policy";
    if !root_or_skip(test) || !etcd_or_skip(test) {
        return;
    }
    let fleet = Fleet::new("pub", &["hv-a", "hv-b"]);
    let web = fleet.host("hv-a").vm("web", 41);
    let db = fleet.host("hv-b").vm("db", 42);
    let scratch = Scratch::new("pub-rules");
    let rules = RulesDir::new(&scratch);
    let file = |web_groups: &[&str]| {
        json!({
            "security_groups": [
                group("sg-db", vec![accept("tcp", "5432", "sg-web")], vec![accept("all", "", "")]),
                group("sg-web", vec![], vec![accept("all", "", "")]),
                group("sg-other", vec![], vec![accept("all", "", "")]),
            ],
            "instances": [
                instance_on(&web, "hv-a", web_groups),
                instance_on(&db, "hv-b", &["sg-db"]),
            ],
        })
        .to_string()
    };
    rules.write("fleet.json", &file(&["sg-web"]));
    let first = publish(&fleet, &rules);

    let daemon_a = fleet.start_daemon("hv-a", &[]);
    let daemon_b = fleet.start_daemon("hv-b", &[]);
    let (a, b) = (Control::of(&daemon_a), Control::of(&daemon_b));
    a.wait_attached(&web.instance(), Duration::from_secs(10));
    b.wait_attached(&db.instance(), Duration::from_secs(10));
    let in_force = |control: &Control, revision: i64| {
        secgroup_testbed::wait_for(
            Duration::from_secs(15),
            &format!("etcd revision {revision} in force"),
            || {
                let status = control.status_json();
                (status["source"]["etcd"]["revision"].as_i64() >= Some(revision)).then_some(())
            },
        );
    };
    in_force(&a, first);
    in_force(&b, first);
    b.expect(
        tcp(v4(&web), v4(&db), 5432),
        Accepted,
        "sg-db admits sg-web",
    );

    // The controller takes web out of sg-web: one publish, one revision.
    rules.replace("fleet.json", &file(&["sg-other"]));
    let second = publish(&fleet, &rules);
    assert_eq!(second, first + 1, "one publish is one revision");
    in_force(&a, second);
    in_force(&b, second);
    b.expect(
        tcp(v4(&web), v4(&db), 5432),
        Blocked,
        "web left sg-web: default drop",
    );
}
