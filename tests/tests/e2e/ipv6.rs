//! IPv6: the same stateful filtering, ICMPv6 echo, and neighbour
//! discovery that works without any rule for it.

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A6, CLIENT_B6, Endpoint, RuleFile, TestBed, accept, ping, root_or_skip, tcp, udp,
};

use crate::start;

#[test]
fn ipv6_is_stateful_pings_over_icmpv6_and_resolves_neighbours() {
    if !root_or_skip("ipv6_is_stateful_pings_over_icmpv6_and_resolves_neighbours") {
        return;
    }
    let bed = TestBed::new("v6");
    let vm = bed.vm("vm6", 66);
    let rules = RuleFile::new()
        .group(
            "sg-v6",
            vec![
                accept("tcp", "22", CLIENT_A6),
                // IPv4 only: must not open 80 to IPv6 clients.
                accept("tcp", "80", "0.0.0.0/0"),
            ],
            vec![accept("all", "", "")],
        )
        .instance(&vm, &["sg-v6"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let me = Endpoint::new(&vm.ns, &vm.ip6);
    let a = Endpoint::new(&bed.world, CLIENT_A6);
    let b = Endpoint::new(&bed.world, CLIENT_B6);
    control.expect_all(&[
        (
            tcp(me, a, 443),
            Accepted,
            "sg-v6 egress #0; the SYN-ACK is a reply",
        ),
        (
            udp(me, a, 53),
            Accepted,
            "sg-v6 egress #0; the answer is a reply",
        ),
        (
            ping(me, a),
            Accepted,
            "sg-v6 egress #0; the ICMPv6 echo reply is a reply",
        ),
        (tcp(a, me, 22), Accepted, "sg-v6 ingress #0"),
        (
            tcp(b, me, 22),
            Blocked,
            "default drop: ingress #0 is ClientA6 only",
        ),
        (
            tcp(a, me, 80),
            Blocked,
            "ingress #1 is 0.0.0.0/0, IPv4 only",
        ),
        (ping(a, me), Blocked, "no ICMPv6 rule: default drop"),
        (udp(a, me, 53), Blocked, "no UDP rule: default drop"),
    ]);

    // The world reached the VM, so it resolved the VM's address: its
    // solicitation passed the VM's ingress and the advertisement its
    // egress, with no ICMPv6 rule (implicit allow).
    let neigh = bed
        .world
        .output(&["ip", "-6", "neigh", "show", &vm.ip6, "dev", "eth0"]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        neigh.contains("lladdr") && !neigh.contains("FAILED"),
        "the world should have resolved {} by neighbour discovery: {neigh:?}",
        vm.ip6
    );
}
