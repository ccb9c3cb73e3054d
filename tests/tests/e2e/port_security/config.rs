//! What the rule files say about port security, in force: address pairs
//! (and nothing beside them), `"port_security": false`, guarded
//! interfaces that open to their rules (and port security) once bound,
//! and the address two local instances cannot share.

use std::time::Duration;

use secgroup_api::Direction;
use secgroup_policy::SpoofReason;
use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_B, Endpoint, RuleFile, TestBed, accept, ping, root_or_skip, tcp, udp, wait_for,
};
use serde_json::json;

use super::{FOREIGN_MAC, Inbox, counted, guest, pin_neighbour, secured, udp_frame};
use crate::{RULES, apply, start, start_with};

#[test]
fn an_address_pair_may_be_sent_from_and_a_neighbouring_address_may_not() {
    if !root_or_skip("an_address_pair_may_be_sent_from_and_a_neighbouring_address_may_not") {
        return;
    }
    let bed = TestBed::new("ps-pair");
    let vm1 = bed.vm("vm1", 61);
    let vm2 = bed.vm("vm2", 62);
    const VIP: &str = "198.51.100.200";
    const VIP6: &str = "2001:db8:1::200";
    const NEAR: &str = "198.51.100.201";
    const NEAR6: &str = "2001:db8:1::201";
    let rules = RuleFile::new()
        .group(
            "sg-pair",
            vec![
                accept("udp", "5000", "198.51.100.0/24"),
                accept("udp", "5000", "2001:db8:1::/64"),
                accept("tcp", "22", "198.51.100.0/24"),
            ],
            vec![accept("all", "", "")],
        )
        .instance_with(
            &vm1,
            &["sg-pair"],
            json!({
                "mac": vm1.mac_text(),
                "allowed_address_pairs": [{ "ip": VIP }, { "ip": VIP6 }],
            }),
        )
        .instance_with(&vm2, &["sg-pair"], secured(&vm2));
    let (_daemon, control) = start(&bed, &rules, &[vm1.instance(), vm2.instance()]);
    // VM1 holds the pair's addresses and, beside them, two it was not
    // given; it knows VM2 for good, so that no address resolution from
    // one of them comes first.
    for addr in [format!("{VIP}/32"), format!("{NEAR}/32")] {
        vm1.ns.ip(&["addr", "add", &addr, "dev", "eth0"]);
    }
    for addr in [format!("{VIP6}/128"), format!("{NEAR6}/128")] {
        vm1.ns.ip(&["addr", "add", &addr, "dev", "eth0", "nodad"]);
    }
    pin_neighbour(&vm1.ns, &vm2, &vm2.ip4);
    pin_neighbour(&vm1.ns, &vm2, &vm2.ip6);

    let two = Endpoint::new(&vm2.ns, &vm2.ip4);
    let two6 = Endpoint::new(&vm2.ns, &vm2.ip6);
    control.expect_all(&[
        (
            udp(Endpoint::new(&vm1.ns, VIP), two, 5000),
            Accepted,
            "an address pair: sent from it, VM2's ARP for it answered from it",
        ),
        (
            tcp(Endpoint::new(&vm1.ns, VIP), two, 22),
            Accepted,
            "an address pair, sg-pair ingress #2",
        ),
        (
            udp(Endpoint::new(&vm1.ns, VIP6), two6, 5000),
            Accepted,
            "an IPv6 address pair, its neighbour advertisement allowed too",
        ),
        (
            udp(Endpoint::new(&vm1.ns, NEAR), two, 5000),
            Blocked,
            "next to the pair but not in it: drop-spoofed-ip",
        ),
        (
            udp(Endpoint::new(&vm1.ns, NEAR6), two6, 5000),
            Blocked,
            "next to the IPv6 pair but not in it: drop-spoofed-ip",
        ),
    ]);
    counted(&control, &vm1, SpoofReason::SpoofedIp, 2);
}

#[test]
fn port_security_off_lets_a_foreign_source_through_to_its_rules() {
    if !root_or_skip("port_security_off_lets_a_foreign_source_through_to_its_rules") {
        return;
    }
    let bed = TestBed::new("ps-off");
    let vm1 = bed.vm("vm1", 71);
    let vm2 = bed.vm("vm2", 72);
    let router = bed.vm("vm3", 73);
    let rules = RuleFile::new()
        .group("sg-out", vec![], vec![accept("all", "", "")])
        .group(
            "sg-trusts-vm1",
            vec![accept("udp", "5000,5001", &vm1.ip4)],
            vec![accept("all", "", "")],
        )
        // An appliance forwarding others' traffic: UDP 5000 only.
        .group(
            "sg-router",
            vec![],
            vec![accept("udp", "5000", "198.51.100.0/24")],
        )
        .instance_with(&vm1, &["sg-out"], secured(&vm1))
        .instance_with(&vm2, &["sg-trusts-vm1"], secured(&vm2))
        .instance_with(
            &router,
            &["sg-router"],
            json!({ "mac": router.mac_text(), "port_security": false }),
        );
    let (_daemon, control) = start(
        &bed,
        &rules,
        &[vm1.instance(), vm2.instance(), router.instance()],
    );
    let (from, to) = (vm1.ip(false), vm2.ip(false));
    let forwarder = guest(&router);
    let sender = guest(&vm1);
    let inboxes = [5000, 5001].map(|port| Inbox::bind(&vm2.ns, &vm2.ip4, port));
    for (inbox, allowed) in inboxes.iter().zip([true, false]) {
        let port = inbox.addr.port();
        // VM1's address from a MAC that is not even the router's.
        forwarder.send(&udp_frame(
            FOREIGN_MAC,
            from,
            40000,
            vm2.mac,
            to,
            port,
            b"forwarded by vm3",
        ));
        sender.send(&udp_frame(
            vm1.mac,
            from,
            40000,
            vm2.mac,
            to,
            port,
            b"sent by vm1",
        ));
        let got = inbox.watch("sent by vm1");
        let arrived = got.iter().any(|(_, m)| m == "forwarded by vm3");
        assert_eq!(
            arrived,
            allowed,
            "port {port}: with port security off, VM3's forwarded datagram is judged by its \
             egress rules alone ({}); got {got:?}; VM3 egress {:?}",
            if allowed {
                "sg-router egress #0 accepts it"
            } else {
                "no rule for it: default drop"
            },
            control.verdicts(&router.instance(), Direction::Egress)
        );
    }
    control.wait_verdict(
        &router.instance(),
        Direction::Egress,
        "drop-default",
        1,
        super::COUNTED,
    );
    let verdicts = control.verdicts(&router.instance(), Direction::Egress);
    for reason in SpoofReason::ALL {
        assert!(
            !verdicts.contains_key(reason.as_str()),
            "port security is off for VM3, yet it counted {reason}: {verdicts:?}"
        );
    }
}

#[test]
fn a_guarded_vm_interface_is_closed_until_bound_and_open_to_its_rules_right_after() {
    if !root_or_skip(
        "a_guarded_vm_interface_is_closed_until_bound_and_open_to_its_rules_right_after",
    ) {
        return;
    }
    let bed = TestBed::new("ps-guard");
    let vm1 = bed.vm("vm1", 81);
    let ssh = |rules: RuleFile| {
        rules.group(
            "sg-ssh",
            vec![accept("tcp", "22", CLIENT_A)],
            vec![accept("all", "", "")],
        )
    };
    let rules = ssh(RuleFile::new()).instance_with(&vm1, &["sg-ssh"], secured(&vm1));
    let (_daemon, control) = start_with(
        &bed,
        &rules,
        &[vm1.instance()],
        &["--interface-pattern", "tap-*"],
    );
    // A VM the rules do not know yet boots.
    let vm2 = bed.vm("vm2", 82);
    wait_for(Duration::from_secs(5), "tap-vm2 to be guarded", || {
        control
            .status()
            .guarded_interfaces
            .iter()
            .any(|g| g.name == vm2.tap())
            .then_some(())
    });
    let a = Endpoint::new(&bed.world, CLIENT_A);
    let b = Endpoint::new(&bed.world, CLIENT_B);
    let (one, two) = (
        Endpoint::new(&vm1.ns, &vm1.ip4),
        Endpoint::new(&vm2.ns, &vm2.ip4),
    );
    control.expect_all(&[
        (tcp(a, two, 22), Blocked, "guarded: closed until bound"),
        (ping(two, a), Blocked, "guarded: closed both ways"),
        (
            tcp(a, one, 22),
            Accepted,
            "sg-ssh ingress #0 (VM1 is bound)",
        ),
    ]);

    let bound = ssh(RuleFile::new())
        .instance_with(&vm1, &["sg-ssh"], secured(&vm1))
        .instance_with(&vm2, &["sg-ssh"], secured(&vm2));
    apply(&bed, &control, &bound);
    control.wait_attached(&vm2.instance(), Duration::from_secs(5));
    control.expect_all(&[
        (tcp(a, two, 22), Accepted, "sg-ssh ingress #0, once bound"),
        (
            tcp(b, two, 22),
            Blocked,
            "default drop: ingress #0 is ClientA",
        ),
        (ping(two, a), Accepted, "sg-ssh egress #0, once bound"),
    ]);
    let status = control.status();
    assert!(
        status.guarded_interfaces.is_empty(),
        "bound now, no longer guarded: {:?}",
        status.guarded_interfaces
    );
}

#[test]
fn two_local_instances_with_one_address_are_refused_and_the_previous_policy_stays() {
    if !root_or_skip(
        "two_local_instances_with_one_address_are_refused_and_the_previous_policy_stays",
    ) {
        return;
    }
    const VM2: &str = "vm2.json";
    let bed = TestBed::new("ps-dup");
    let vm1 = bed.vm("vm1", 91);
    let vm2 = bed.vm("vm2", 92);
    let rules = RuleFile::new()
        .group(
            "sg-ssh",
            vec![accept("tcp", "22", CLIENT_A)],
            vec![accept("all", "", "")],
        )
        .instance_with(&vm1, &["sg-ssh"], secured(&vm1));
    // VM2 in a file of its own, which will web-enable it as well.
    let vm2_file = |ips: &[&str]| {
        RuleFile::new()
            .group(
                "sg-web",
                vec![accept("tcp", "8080", CLIENT_A)],
                vec![accept("all", "", "")],
            )
            .binding_with(
                &vm2.instance(),
                &vm2.tap(),
                ips,
                &["sg-ssh", "sg-web"],
                secured(&vm2),
            )
            .to_json()
    };
    let before = RuleFile::new()
        .binding_with(
            &vm2.instance(),
            &vm2.tap(),
            &[&vm2.ip4, &vm2.ip6],
            &["sg-ssh"],
            secured(&vm2),
        )
        .to_json();
    bed.host.rules.write(VM2, &before);
    let (_daemon, control) = start(&bed, &rules, &[vm1.instance(), vm2.instance()]);
    let a = Endpoint::new(&bed.world, CLIENT_A);
    let (one, two) = (
        Endpoint::new(&vm1.ns, &vm1.ip4),
        Endpoint::new(&vm2.ns, &vm2.ip4),
    );
    let previous_policy_holds = |after: &str| {
        control.expect_all(&[
            (
                tcp(a, one, 22),
                Accepted,
                &format!("sg-ssh ingress #0, {after}"),
            ),
            (
                tcp(a, two, 22),
                Accepted,
                &format!("sg-ssh ingress #0, {after}"),
            ),
            (
                tcp(a, two, 8080),
                Blocked,
                &format!("VM2 has no sg-web yet, {after}"),
            ),
        ]);
    };
    previous_policy_holds("at start");
    let generation = control.status().generation;

    // VM2 also claims VM1's address.
    let status = control.reload_after(|| {
        bed.host
            .rules
            .replace(VM2, &vm2_file(&[&vm2.ip4, &vm2.ip6, &vm1.ip4]))
    });
    let Some(error) = &status.last_error else {
        panic!(
            "two local instances with {} must be refused: {status:#?}",
            vm1.ip4
        );
    };
    let quoted = format!("\"{}\"", vm1.ip4);
    let located = error.diagnostics.iter().find(|d| {
        // `DIR/vm2.json:LINE:COLUMN: ...`
        let file = d.split(':').next().unwrap_or_default();
        file.ends_with(&format!("/{VM2}"))
            && d.contains(&quoted)
            && d.contains(&format!("\"{}\"", vm2.instance()))
            && d.contains(&format!("\"{}\"", vm1.instance()))
            && d.contains(&format!("/{RULES}:"))
    });
    assert!(
        located.is_some(),
        "the error should be located in {VM2}, name {} and both instances, and point at {RULES} \
         where {} has it first: {error:#?}",
        vm1.ip4,
        vm1.instance()
    );
    assert_eq!(
        status.generation, generation,
        "a refused reload applies nothing"
    );
    previous_policy_holds("after the refused reload");

    // Without the duplicate, the same change applies.
    let status = control.reload_after(|| {
        bed.host
            .rules
            .replace(VM2, &vm2_file(&[&vm2.ip4, &vm2.ip6]))
    });
    assert!(status.last_error.is_none(), "{:#?}", status.last_error);
    control.expect(tcp(a, two, 8080), Accepted, "sg-web ingress #0, applied");
}
