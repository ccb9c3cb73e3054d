//! The guest machinery itself: boot, the agent's protocol, the tap.

use secgroup_testbed::{GUEST_ACCEPT, TestBed, boot_all, guests_or_skip};

#[test]
fn guests_boot_answer_commands_and_reach_each_other_through_their_taps() {
    if !guests_or_skip("guests_boot_answer_commands_and_reach_each_other_through_their_taps") {
        return;
    }
    let bed = TestBed::new("gsmoke");
    let guests = boot_all(&bed.host.ns, vec![bed.guest("a", 2), bed.guest("b", 3)]);
    let (a, b) = (&guests[0], &guests[1]);
    let out = a.run("echo out; echo err >&2; exit 3");
    assert_eq!((out.status, out.output.as_str()), (3, "out\nerr\n"));
    assert_eq!(a.sh("printf '@@SGTB-END 1 0\\n'"), "@@SGTB-END 1 0\n");
    assert!(a.sh("cat /proc/cmdline").contains("console=ttyS0"));
    b.serve(&[7]);
    assert!(a.tcp(b.ip(false), 7, GUEST_ACCEPT), "TCP a -> b");
    assert!(a.udp(b.ip(true), 7, GUEST_ACCEPT), "UDP over IPv6 a -> b");
    assert!(a.ping(b.ip(false), GUEST_ACCEPT), "ping a -> b");
    assert!(
        a.ping(std::net::IpAddr::V6(b.link_local()), GUEST_ACCEPT),
        "ping6 link-local"
    );
}
