//! The lab itself, with each host fed from its own rules directory (the
//! one-host mode): VMs on different hosts reach each other through the
//! underlay, each host's daemon filters its own VMs only, and an
//! instance of another host lends its addresses to a group reference.

use std::time::Duration;

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{Fleet, RuleFile, accept, ping, root_or_skip, tcp};

use crate::{RULES, v4};

#[test]
fn vms_of_different_hosts_meet_through_the_underlay_and_each_host_filters_its_own() {
    if !root_or_skip("vms_of_different_hosts_meet_through_the_underlay") {
        return;
    }
    let fleet = Fleet::new("lab", &["hv-a", "hv-b", "hv-c"]);
    let (a, b, c) = (fleet.host("hv-a"), fleet.host("hv-b"), fleet.host("hv-c"));
    let web = a.vm("web", 11);
    let db = b.vm("db", 21);
    let other = c.vm("other", 31);
    // No daemon yet: the underlay is one open L2 segment.
    assert!(
        ping(v4(&web), v4(&db)).completes(Duration::from_secs(3)),
        "hv-a's VM cannot ping hv-b's through the underlay"
    );
    assert!(ping(v4(&other), v4(&db)).completes(Duration::from_secs(3)));

    // hv-b admits sg-web on 5432; sg-web's member lives on hv-a and only
    // lends its addresses here.
    let b_rules = RuleFile::new()
        .group("sg-db", vec![accept("tcp", "5432", "sg-web")], vec![])
        .group("sg-web", vec![], vec![accept("all", "", "")])
        .instance(&db, &["sg-db"])
        .remote_instance(&web.instance(), &[&web.ip4, &web.ip6], &["sg-web"]);
    let a_rules = RuleFile::new()
        .group("sg-web", vec![], vec![accept("tcp", "5432", "")])
        .instance(&web, &["sg-web"]);
    let attach = Duration::from_secs(5);
    let (_daemon_b, control_b) =
        b.host
            .start_enforcing(RULES, &b_rules.to_json(), &[db.instance()], &[], attach);
    let (_daemon_a, control_a) =
        a.host
            .start_enforcing(RULES, &a_rules.to_json(), &[web.instance()], &[], attach);
    control_b.expect_all(&[
        (
            tcp(v4(&web), v4(&db), 5432),
            Accepted,
            "hv-a: sg-web egress #0; hv-b: sg-db ingress #0 (remote sg-web)",
        ),
        (
            tcp(v4(&other), v4(&db), 5432),
            Blocked,
            "hv-c's VM is in no group of hv-b's rules: default drop",
        ),
        (
            ping(v4(&web), v4(&db)),
            Blocked,
            "sg-db admits tcp 5432 only",
        ),
    ]);
    control_a.expect(
        tcp(v4(&web), v4(&other), 22),
        Blocked,
        "sg-web egress opens 5432 only",
    );
}
