//! Table-level properties: limits, sharing, fingerprints.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use secgroup_classifier::{ClassifierError, MAX_RULES, build};
use secgroup_policy::RuleList;

#[test]
fn too_many_rules() {
    let line = "accept all any";
    let fits = common::list(&vec![line; MAX_RULES]);
    let table = build(&fits).unwrap_or_else(|e| panic!("{MAX_RULES} rules must fit: {e}"));
    assert_eq!(
        table.classify(6, 80, "192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}"))),
        Some(0)
    );
    let over = common::list(&vec![line; MAX_RULES + 1]);
    let err = build(&over).err();
    assert_eq!(
        err,
        Some(ClassifierError::TooManyRules {
            rules: MAX_RULES + 1,
            max: MAX_RULES
        })
    );
    if let Some(err) = err {
        assert_eq!(
            err.to_string(),
            "rule list has 4097 rules, a table holds at most 4096"
        );
    }
}

fn hosts(n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 3))))
        .collect()
}

#[test]
fn big_group_members_share_one_class() {
    // 200 rules, each referencing the same 10,000 members, with a drop of
    // 10.0.0.0/20 in front: members inside and outside it get two classes,
    // not one per member.
    let mut rules = common::list(&["drop tcp:22 10.0.0.0/20"]).rules.to_vec();
    for index in 1..=200 {
        let mut rule = common::rule("sg-web", index, "accept tcp:443 none");
        rule.remotes = hosts(10_000);
        rules.push(rule);
    }
    let list = RuleList::from(rules);
    let table = build(&list).unwrap_or_else(|e| panic!("{e}"));
    let stats = table.stats();
    assert_eq!(stats.v4_entries, 10_001, "{stats}");
    assert_eq!(stats.l4_entries, 2, "{stats}");
    // {0}; members in /20: {0..=200}; members outside: {1..=200}; tcp:443
    // is the members' set again, tcp:22 is {0}.
    assert_eq!(stats.classes, 3, "{stats}");
    let ip = |s: &str| -> IpAddr { s.parse().unwrap_or_else(|e| panic!("{e}")) };
    assert_eq!(table.classify(6, 443, ip("10.0.0.3")), Some(1));
    assert_eq!(table.classify(6, 22, ip("10.0.0.3")), Some(0));
    assert_eq!(table.classify(6, 443, ip("10.0.117.45")), Some(1)); // the last member, 10.0.0.0 + 3 * 9999
    assert_eq!(table.classify(6, 443, ip("10.0.0.4")), None);
}

#[test]
fn fingerprint_follows_content() {
    let lines = [
        "drop tcp:22 10.1.0.0/16",
        "accept tcp:20-25 10.0.0.0/8",
        "accept all any",
    ];
    let a = build(&common::list(&lines)).unwrap_or_else(|e| panic!("{e}"));
    let b = build(&common::list(&lines)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());

    // Same matches, different origin: a different table (hits are counted
    // per origin).
    let mut moved = common::list(&lines);
    moved.rules_mut()[1].origin.index = 7;
    let c = build(&moved).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (c.v4.clone(), c.l4.clone(), c.classes.clone()),
        (a.v4.clone(), a.l4.clone(), a.classes.clone())
    );
    assert_ne!(a, c);
    assert_ne!(a.fingerprint(), c.fingerprint());

    // Different action.
    let mut flipped = common::list(&lines);
    flipped.rules_mut()[0].action = secgroup_model::Action::Accept;
    assert_ne!(
        a.fingerprint(),
        build(&flipped)
            .unwrap_or_else(|e| panic!("{e}"))
            .fingerprint()
    );

    // Different match.
    let other = build(&common::list(&[
        "drop tcp:23 10.1.0.0/16",
        lines[1],
        lines[2],
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a.fingerprint(), other.fingerprint());
}

#[test]
fn empty_list() {
    let table = build(&RuleList::default()).unwrap_or_else(|e| panic!("{e}"));
    let stats = table.stats();
    assert_eq!(
        (
            stats.rules,
            stats.classes,
            stats.v4_entries,
            stats.v6_entries,
            stats.l4_entries
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(
        stats.to_string(),
        "0 rules, 0 classes (0 KiB), entries: 0 v4, 0 v6, 0 l4"
    );
}
