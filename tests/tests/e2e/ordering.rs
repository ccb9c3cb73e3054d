//! First match wins: the product documentation's scenarios, where the
//! order of rules is the point.

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_B, CLIENT_C, Endpoint, LB_VIP, RuleFile, TestBed, accept, drop, root_or_skip,
    tcp,
};

use crate::{apply, start};

/// Seed 004, CLB scenario 1: a public CLB's backend accepts ClientA,
/// ClientB and the CLB VIP on 8080, then drops 8080 from 0.0.0.0/0.
#[test]
fn clb_backend_accepts_its_clients_and_vip_on_8080_and_drops_everyone_else() {
    if !root_or_skip("clb_backend_accepts_its_clients_and_vip_on_8080_and_drops_everyone_else") {
        return;
    }
    let bed = TestBed::new("clb1");
    let vm = bed.vm("backend", 21);
    let rules = RuleFile::new()
        .group(
            "sg-clb-backend",
            vec![
                accept("tcp", "8080", CLIENT_A),
                accept("tcp", "8080", CLIENT_B),
                accept("tcp", "8080", LB_VIP),
                drop("tcp", "8080", "0.0.0.0/0"),
            ],
            vec![accept("all", "", "")],
        )
        .instance(&vm, &["sg-clb-backend"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let backend = Endpoint::new(&vm.ns, &vm.ip4);
    let from = |ip| Endpoint::new(&bed.world, ip);
    control.expect_all(&[
        (
            tcp(from(CLIENT_A), backend, 8080),
            Accepted,
            "rule 0: ClientA",
        ),
        (
            tcp(from(CLIENT_B), backend, 8080),
            Accepted,
            "rule 1: ClientB",
        ),
        (
            tcp(from(LB_VIP), backend, 8080),
            Accepted,
            "rule 2: the VIP",
        ),
        (
            tcp(from(CLIENT_C), backend, 8080),
            Blocked,
            "rule 3: drop 8080 from 0.0.0.0/0",
        ),
        (
            tcp(from(CLIENT_A), backend, 8081),
            Blocked,
            "no rule for 8081: default drop",
        ),
    ]);
}

/// Seed 004, CLB scenario 5: a blocklist works only when the drops come
/// before the accept.
#[test]
fn blocklist_drops_listed_clients_only_when_the_drops_come_first() {
    if !root_or_skip("blocklist_drops_listed_clients_only_when_the_drops_come_first") {
        return;
    }
    let bed = TestBed::new("block");
    let vm = bed.vm("pubweb", 51);
    let blocklist = |drops_first: bool| {
        let drops = vec![drop("tcp", "443", CLIENT_A), drop("tcp", "443", CLIENT_B)];
        let open = vec![accept("tcp", "443", "0.0.0.0/0")];
        let ingress = if drops_first {
            [drops, open].concat()
        } else {
            [open, drops].concat()
        };
        RuleFile::new()
            .group("sg-blocklist", ingress, vec![accept("all", "", "")])
            .instance(&vm, &["sg-blocklist"])
    };
    let (_daemon, control) = start(&bed, &blocklist(true), &[vm.instance()]);
    let web = Endpoint::new(&vm.ns, &vm.ip4);
    let from = |ip| Endpoint::new(&bed.world, ip);
    control.expect_all(&[
        (
            tcp(from(CLIENT_A), web, 443),
            Blocked,
            "rule 0: drop ClientA",
        ),
        (
            tcp(from(CLIENT_B), web, 443),
            Blocked,
            "rule 1: drop ClientB",
        ),
        (
            tcp(from(CLIENT_C), web, 443),
            Accepted,
            "rule 2: accept 0.0.0.0/0",
        ),
    ]);

    apply(&bed, &control, &blocklist(false));
    control.expect_all(&[
        (
            tcp(from(CLIENT_A), web, 443),
            Accepted,
            "rule 0 now: accept 0.0.0.0/0 comes first",
        ),
        (
            tcp(from(CLIENT_C), web, 443),
            Accepted,
            "rule 0: accept 0.0.0.0/0",
        ),
    ]);
}

/// Several groups form one first-match list in binding order.
#[test]
fn binding_order_of_groups_decides_between_a_deny_and_an_allow() {
    if !root_or_skip("binding_order_of_groups_decides_between_a_deny_and_an_allow") {
        return;
    }
    let bed = TestBed::new("multi");
    let vm = bed.vm("multi", 30);
    let bound = |groups: &[&str]| {
        RuleFile::new()
            .group(
                "sg-deny-ssh-from-x",
                vec![drop("tcp", "22", CLIENT_A)],
                vec![],
            )
            .group(
                "sg-allow-all",
                vec![accept("all", "", "")],
                vec![accept("all", "", "")],
            )
            .instance(&vm, groups)
    };
    let (_daemon, control) = start(
        &bed,
        &bound(&["sg-deny-ssh-from-x", "sg-allow-all"]),
        &[vm.instance()],
    );
    let me = Endpoint::new(&vm.ns, &vm.ip4);
    let from = |ip| Endpoint::new(&bed.world, ip);
    control.expect_all(&[
        (
            tcp(from(CLIENT_A), me, 22),
            Blocked,
            "sg-deny-ssh-from-x ingress #0",
        ),
        (
            tcp(from(CLIENT_B), me, 22),
            Accepted,
            "sg-allow-all ingress #0",
        ),
        (
            tcp(from(CLIENT_A), me, 80),
            Accepted,
            "sg-allow-all ingress #0",
        ),
    ]);

    apply(
        &bed,
        &control,
        &bound(&["sg-allow-all", "sg-deny-ssh-from-x"]),
    );
    control.expect(
        tcp(from(CLIENT_A), me, 22),
        Accepted,
        "sg-allow-all ingress #0, now bound first",
    );
}
