//! Traffic between VMs of one host, and rules whose remote is a security
//! group.

use std::time::{Duration, Instant};

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, Endpoint, RuleFile, TestBed, accept, connect, listen, ping, root_or_skip, tcp,
};

use crate::start;

/// Both the sender's egress and the receiver's ingress apply to traffic
/// between two VMs of the same host.
#[test]
fn vm_to_vm_traffic_needs_the_senders_egress_and_the_receivers_ingress() {
    if !root_or_skip("vm_to_vm_traffic_needs_the_senders_egress_and_the_receivers_ingress") {
        return;
    }
    let bed = TestBed::new("local");
    let a = bed.vm("a", 61);
    let b = bed.vm("b", 62);
    let rules = RuleFile::new()
        .group("sg-a", vec![], vec![accept("tcp", "8080,7070", &b.ip4)])
        .group("sg-b", vec![accept("tcp", "8080,9090", &a.ip4)], vec![])
        .instance(&a, &["sg-a"])
        .instance(&b, &["sg-b"]);
    let (_daemon, control) = start(&bed, &rules, &[a.instance(), b.instance()]);
    let ea = Endpoint::new(&a.ns, &a.ip4);
    let eb = Endpoint::new(&b.ns, &b.ip4);
    control.expect_all(&[
        (
            tcp(ea, eb, 8080),
            Accepted,
            "sg-a egress #0 and sg-b ingress #0",
        ),
        (
            tcp(ea, eb, 9090),
            Blocked,
            "sg-b ingress accepts 9090 but sg-a egress has no rule for it",
        ),
        (
            tcp(ea, eb, 7070),
            Blocked,
            "sg-a egress accepts 7070 but sg-b ingress has no rule for it",
        ),
        (
            tcp(eb, ea, 8080),
            Blocked,
            "neither sg-b egress nor sg-a ingress has a rule",
        ),
    ]);
}

/// A rule naming a group accepts its members, and follows membership:
/// binding another VM to the group (editing its instance file) lets it in
/// at once.
#[test]
fn a_group_reference_follows_membership_changes_within_100_ms() {
    if !root_or_skip("a_group_reference_follows_membership_changes_within_100_ms") {
        return;
    }
    let bed = TestBed::new("ref");
    let db = bed.vm("db", 70);
    let app = bed.vm("app", 71);
    let other = bed.vm("other", 72);
    let groups = RuleFile::new()
        .group("sg-db", vec![accept("tcp", "5432", "sg-app")], vec![])
        .group("sg-app", vec![], vec![accept("all", "", "")])
        .group("sg-other", vec![], vec![accept("all", "", "")]);
    let instances = |other_groups: &[&str]| {
        RuleFile::new()
            .instance(&db, &["sg-db"])
            .instance(&app, &["sg-app"])
            .instance(&other, other_groups)
            .to_json()
    };
    bed.host
        .rules
        .write("instances.json", &instances(&["sg-other"]));
    let (_daemon, control) = start(
        &bed,
        &groups,
        &[db.instance(), app.instance(), other.instance()],
    );
    let edb = Endpoint::new(&db.ns, &db.ip4);
    let eapp = Endpoint::new(&app.ns, &app.ip4);
    let eother = Endpoint::new(&other.ns, &other.ip4);
    control.expect_all(&[
        (
            tcp(eapp, edb, 5432),
            Accepted,
            "sg-db ingress #0: remote sg-app",
        ),
        (
            tcp(eother, edb, 5432),
            Blocked,
            "ins-other is not in sg-app: default drop",
        ),
    ]);

    // New connections, each given 10 ms, until one gets through.
    let _listener = listen(edb, 5432);
    bed.host
        .rules
        .replace("instances.json", &instances(&["sg-other", "sg-app"]));
    let edited = Instant::now();
    let took = loop {
        if connect(eother, edb, 5432, Duration::from_millis(10)).is_ok() {
            break edited.elapsed();
        }
        assert!(
            edited.elapsed() < Duration::from_secs(3),
            "ins-other was added to sg-app but still cannot reach 5432 after 3 s\n{}",
            control.explain(&tcp(eother, edb, 5432))
        );
    };
    println!("ins-other reached sg-db {took:?} after joining sg-app");
    assert!(
        took <= Duration::from_millis(100),
        "ins-other reached sg-db only {took:?} after joining sg-app (budget 100 ms)"
    );
}

/// Members of a group reach each other only when the group references
/// itself.
#[test]
fn members_reach_each_other_only_through_a_self_reference() {
    if !root_or_skip("members_reach_each_other_only_through_a_self_reference") {
        return;
    }
    let bed = TestBed::new("self");
    let p1 = bed.vm("p1", 81);
    let p2 = bed.vm("p2", 82);
    let peers = |ingress| {
        RuleFile::new()
            .group("sg-peers", ingress, vec![accept("all", "", "")])
            .instance(&p1, &["sg-peers"])
            .instance(&p2, &["sg-peers"])
    };
    let (_daemon, control) = start(
        &bed,
        &peers(vec![accept("tcp", "22", CLIENT_A)]),
        &[p1.instance(), p2.instance()],
    );
    let e1 = Endpoint::new(&p1.ns, &p1.ip4);
    let e2 = Endpoint::new(&p2.ns, &p2.ip4);
    let world = Endpoint::new(&bed.world, CLIENT_A);
    control.expect_all(&[
        (
            tcp(e1, e2, 80),
            Blocked,
            "no self-reference: default drop at p2's ingress",
        ),
        (
            ping(e2, e1),
            Blocked,
            "no self-reference: default drop at p1's ingress",
        ),
    ]);

    crate::apply(
        &bed,
        &control,
        &peers(vec![
            accept("tcp", "22", CLIENT_A),
            accept("all", "", "sg-peers"),
        ]),
    );
    control.expect_all(&[
        (
            tcp(e1, e2, 80),
            Accepted,
            "sg-peers ingress #1: remote sg-peers",
        ),
        (
            tcp(e2, e1, 80),
            Accepted,
            "sg-peers ingress #1: remote sg-peers",
        ),
        (
            ping(e2, e1),
            Accepted,
            "sg-peers ingress #1: remote sg-peers",
        ),
        (
            tcp(world, e1, 80),
            Blocked,
            "the world is not a member: default drop",
        ),
        (tcp(world, e1, 22), Accepted, "sg-peers ingress #0"),
    ]);
}
