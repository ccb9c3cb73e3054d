//! Three hypervisors fed from one etcd, as issue 17 asks: a group
//! reference on one host follows membership written for VMs of the
//! others, one etcd write at a time; an invalid write changes nothing
//! anywhere; an etcd outage while traffic flows changes nothing either.

use std::time::Duration;

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    Control, Daemon, Fleet, TcpEcho, accept, connect, echoes, etcd_or_skip, group, instance_on,
    key, root_or_skip, tcp,
};
use serde_json::Value;

use crate::v4;

/// How long every host may take to apply (or reject) a revision, or to
/// notice that etcd went or came back: generous, the waits return as
/// soon as it is so.
const CONVERGE: Duration = Duration::from_secs(15);

/// Each host's daemon and its API.
struct Hosts {
    daemons: Vec<(String, Daemon, Control)>,
}

impl Hosts {
    fn control(&self, host: &str) -> &Control {
        self.daemons
            .iter()
            .find(|(name, _, _)| name == host)
            .map(|(_, _, control)| control)
            .unwrap_or_else(|| panic!("no daemon on {host}"))
    }

    /// Waits until `done` holds for every host's `/v1/status`; panics
    /// with every host's status when one does not get there.
    fn wait_all(&self, what: &str, done: impl Fn(&Value) -> bool) {
        for (name, _, control) in &self.daemons {
            let reached = secgroup_testbed::poll(CONVERGE, || {
                let status = control.status_json();
                done(&status).then_some(())
            });
            if reached.is_none() {
                panic!("{name} never reached: {what}\n{}", self.statuses_text());
            }
        }
    }

    /// Waits until every host has dealt with etcd revision `revision`
    /// (applied it, or rejected it and kept the previous policy).
    fn wait_revision(&self, revision: i64) {
        self.wait_all(&format!("etcd revision {revision}"), |status| {
            dealt_with(status, revision)
        });
    }

    fn statuses_text(&self) -> String {
        self.daemons
            .iter()
            .map(|(name, _, control)| {
                let status = control.status_json();
                format!(
                    "--- {name}: source {} health {} last_error {}\n",
                    status["source"], status["health"], status["last_error"]
                )
            })
            .collect()
    }
}

/// The etcd revision whose content the daemon enforces.
fn applied_revision(status: &Value) -> Option<i64> {
    status["source"]["etcd"]["revision"].as_i64()
}

/// Whether the daemon has dealt with `revision`: applied it (or a later
/// one), or rejected it, its last error naming it.
fn dealt_with(status: &Value, revision: i64) -> bool {
    applied_revision(status) >= Some(revision) || rejected(status, revision)
}

fn rejected(status: &Value, revision: i64) -> bool {
    status["last_error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(&format!("etcd revision {revision} ")))
}

/// Whether the status says since when etcd is out of reach.
fn unreachable_since(status: &Value) -> bool {
    status["source"]["etcd"]["unreachable_since"].is_object()
        && status["source"]["etcd"]["connected"] == false
}

fn healthy(status: &Value) -> bool {
    status["health"]["state"] == "ok"
}

/// Whether health is degraded for etcd being out of reach.
fn etcd_unreachable(status: &Value) -> bool {
    status["health"]["state"] == "degraded"
        && status["health"]["reasons"]
            .as_array()
            .is_some_and(|reasons| reasons.iter().any(|r| r["kind"] == "etcd-unreachable"))
}

#[test]
fn three_hosts_follow_one_etcd_write_reject_an_invalid_one_and_ride_out_an_outage() {
    let test = "three_hosts_follow_one_etcd_write";
    if !root_or_skip(test) || !etcd_or_skip(test) {
        return;
    }
    let fleet = Fleet::new("fleet", &["hv-a", "hv-b", "hv-c"]);
    let web = fleet.host("hv-a").vm("web", 11);
    let db = fleet.host("hv-b").vm("db", 21);
    let late = fleet.host("hv-c").vm("late", 31);
    // hv-b's database admits sg-web on 5432; sg-web's and sg-other's
    // members may send anything.
    fleet.put(
        "security_groups",
        &group(
            "sg-db",
            vec![accept("tcp", "5432", "sg-web")],
            vec![accept("all", "", "")],
        ),
    );
    for id in ["sg-web", "sg-other"] {
        fleet.put(
            "security_groups",
            &group(id, vec![], vec![accept("all", "", "")]),
        );
    }
    fleet.put("instances", &instance_on(&web, "hv-a", &["sg-web"]));
    fleet.put("instances", &instance_on(&db, "hv-b", &["sg-db"]));
    let start = fleet.put("instances", &instance_on(&late, "hv-c", &["sg-other"]));

    let hosts = Hosts {
        daemons: [("hv-a", &web), ("hv-b", &db), ("hv-c", &late)]
            .into_iter()
            .map(|(name, vm)| {
                let daemon = fleet.start_daemon(name, &[]);
                let control = Control::of(&daemon);
                control.wait_attached(&vm.instance(), Duration::from_secs(10));
                (name.to_owned(), daemon, control)
            })
            .collect(),
    };
    hosts.wait_revision(start);
    let b = hosts.control("hv-b");
    let to_db = |from| tcp(from, v4(&db), 5432);
    b.expect_all(&[
        (
            to_db(v4(&web)),
            Accepted,
            "hv-b: sg-db ingress #0, ins-web of hv-a is in sg-web",
        ),
        (
            to_db(v4(&late)),
            Blocked,
            "ins-late of hv-c is not in sg-web: default drop",
        ),
    ]);

    // One write: the VM of hv-c joins sg-web; hv-b lets it in.
    let joined = fleet.put(
        "instances",
        &instance_on(&late, "hv-c", &["sg-other", "sg-web"]),
    );
    hosts.wait_revision(joined);
    b.expect(to_db(v4(&late)), Accepted, "ins-late joined sg-web in etcd");

    // One write: the VM of hv-a leaves sg-web; hv-b shuts it out.
    let left = fleet.put("instances", &instance_on(&web, "hv-a", &["sg-other"]));
    hosts.wait_revision(left);
    b.expect_all(&[
        (
            to_db(v4(&web)),
            Blocked,
            "ins-web left sg-web: default drop",
        ),
        (to_db(v4(&late)), Accepted, "ins-late is still in sg-web"),
    ]);

    // An invalid write: every host rejects the revision as a whole, says
    // where and which revision, and keeps what it enforces.
    let generations: Vec<u64> = hosts
        .daemons
        .iter()
        .map(|(_, _, control)| control.status().generation)
        .collect();
    let bad_key = key("instances", "ins-bad");
    let bad = fleet.etcd.put(&bad_key, r#"{"id": "ins-bad", "ips": ["#);
    hosts.wait_revision(bad);
    for ((name, _, control), generation) in hosts.daemons.iter().zip(&generations) {
        let status = control.status_json();
        let error = &status["last_error"];
        let text = error.to_string();
        assert!(
            text.contains("etcd:/secgroup/instances/ins-bad"),
            "{name}: the error must name the key {bad_key}: {text}"
        );
        let located = error["diagnostics"].as_array().is_some_and(|lines| {
            lines.iter().any(|line| {
                line.as_str()
                    .is_some_and(|l| l.starts_with("etcd:/secgroup/instances/ins-bad:1:"))
            })
        });
        assert!(
            located,
            "{name}: a diagnostic must be located in the key's value (KEY:LINE:COLUMN): {text}"
        );
        assert!(
            rejected(&status, bad),
            "{name}: the error must name revision {bad}: {text}"
        );
        assert_eq!(
            status["generation"].as_u64(),
            Some(*generation),
            "{name}: a rejected revision must change nothing"
        );
        assert_eq!(
            applied_revision(&status),
            Some(left),
            "{name}: revision {left} stays in force: {}",
            status["source"]
        );
    }
    b.expect_all(&[
        (
            to_db(v4(&web)),
            Blocked,
            "the invalid revision changed nothing",
        ),
        (
            to_db(v4(&late)),
            Accepted,
            "the invalid revision changed nothing",
        ),
    ]);
    assert!(fleet.etcd.delete(&bad_key));
    let fixed = fleet.etcd.revision();
    hosts.wait_all("the invalid key deleted and the error cleared", |status| {
        applied_revision(status) >= Some(fixed) && status["last_error"].is_null()
    });

    // etcd goes down while a connection flows: nothing changes, health
    // says why; when it is back, so is health, and writes apply again.
    let _echo = TcpEcho::start(v4(&db), 5432);
    let mut held = connect(v4(&late), v4(&db), 5432, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("ins-late cannot connect to the database: {e}"));
    assert!(echoes(&mut held, "before", Duration::from_secs(3)));
    fleet.etcd.stop();
    hosts.wait_all("health degraded: etcd-unreachable", etcd_unreachable);
    hosts.wait_all(
        "source.etcd: not connected, unreachable since",
        unreachable_since,
    );
    assert!(
        echoes(&mut held, "during", Duration::from_secs(3)),
        "the open connection must keep flowing while etcd is down"
    );
    b.expect_all(&[
        (
            to_db(v4(&web)),
            Blocked,
            "the last good revision still holds",
        ),
        (
            to_db(v4(&late)),
            Accepted,
            "the last good revision still holds",
        ),
    ]);
    fleet.etcd.start();
    hosts.wait_all("health ok once etcd is back", |status| {
        healthy(status) && status["source"]["etcd"]["connected"] == true
    });
    assert!(echoes(&mut held, "after", Duration::from_secs(3)));
    let back = fleet.put("instances", &instance_on(&web, "hv-a", &["sg-web"]));
    hosts.wait_revision(back);
    b.expect(
        to_db(v4(&web)),
        Accepted,
        "a write after the outage applies",
    );
}
