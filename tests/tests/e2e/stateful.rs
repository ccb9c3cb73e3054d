//! Statefulness and the implicit default drop.

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_A6, Endpoint, RuleFile, TestBed, accept, ping, root_or_skip, tcp, udp,
};

use crate::start;

#[test]
fn ingress_deny_all_with_egress_accept_all_lets_replies_in_and_nothing_else() {
    if !root_or_skip("ingress_deny_all_with_egress_accept_all_lets_replies_in_and_nothing_else") {
        return;
    }
    let bed = TestBed::new("stateful");
    let vm = bed.vm("web", 10);
    let rules = RuleFile::new()
        .group("sg-out-only", vec![], vec![accept("all", "", "")])
        .instance(&vm, &["sg-out-only"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let me = Endpoint::new(&vm.ns, &vm.ip4);
    let world = Endpoint::new(&bed.world, CLIENT_A);
    control.expect_all(&[
        (
            tcp(me, world, 443),
            Accepted,
            "egress accept all; the SYN-ACK is a reply",
        ),
        (
            udp(me, world, 53),
            Accepted,
            "egress accept all; the answer is a reply",
        ),
        (
            ping(me, world),
            Accepted,
            "egress accept all; the echo reply is a reply",
        ),
        (tcp(world, me, 22), Blocked, "no ingress rule: default drop"),
        (udp(world, me, 53), Blocked, "no ingress rule: default drop"),
        (ping(world, me), Blocked, "no ingress rule: default drop"),
    ]);
}

#[test]
fn a_group_without_rules_denies_everything_both_ways() {
    if !root_or_skip("a_group_without_rules_denies_everything_both_ways") {
        return;
    }
    let bed = TestBed::new("empty");
    let vm = bed.vm("empty", 11);
    let rules = RuleFile::new()
        .group("sg-empty", vec![], vec![])
        .instance(&vm, &["sg-empty"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let me4 = Endpoint::new(&vm.ns, &vm.ip4);
    let me6 = Endpoint::new(&vm.ns, &vm.ip6);
    let world4 = Endpoint::new(&bed.world, CLIENT_A);
    let world6 = Endpoint::new(&bed.world, CLIENT_A6);
    control.expect_all(&[
        (tcp(me4, world4, 80), Blocked, "no egress rule"),
        (udp(me4, world4, 53), Blocked, "no egress rule"),
        (ping(me4, world4), Blocked, "no egress rule"),
        (tcp(me6, world6, 80), Blocked, "no egress rule (IPv6)"),
        (tcp(world4, me4, 22), Blocked, "no ingress rule"),
        (udp(world4, me4, 53), Blocked, "no ingress rule"),
        (ping(world4, me4), Blocked, "no ingress rule"),
        (ping(world6, me6), Blocked, "no ingress rule (IPv6)"),
    ]);
}
