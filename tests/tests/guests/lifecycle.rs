//! The VM lifecycle as libvirt drives it: QEMU opens `vnetN` when the VM
//! starts and the tap vanishes when it stops; secgroupd guards
//! `--interface-pattern 'vnet*'`. A new VM is closed until its instance
//! is written, then enforced; stopped and started again (a new tap, a
//! new ifindex) it is enforced again without a reload; secgroupd killed
//! and restarted while guests talk keeps their connections.

use std::net::IpAddr;
use std::time::Duration;

use secgroup_api::AttachState;
use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, Control, Endpoint, GUEST_ACCEPT, Guest, RuleFile, TcpEcho, TestBed, accept, boot_all,
    connect, echoes, guests_or_skip, wait_for,
};

use crate::{RULES, apply, bind, check, patience, start, world_ping, world_tcp};

const PATTERN: [&str; 2] = ["--interface-pattern", "vnet*"];

/// sg-web: the world may reach 80 and ping; everything out.
fn rules(bound: &[&Guest]) -> RuleFile {
    let file = RuleFile::new().group(
        "sg-web",
        vec![accept("tcp", "80", ""), accept("icmp", "", "")],
        vec![accept("all", "", "")],
    );
    bound
        .iter()
        .fold(file, |file, guest| bind(file, guest, &[], &["sg-web"]))
}

/// The world reaches `guest` on 80 and not on 22: it is enforced.
fn enforced(bed: &TestBed, control: &Control, guest: &Guest, when: &str) {
    let web = world_tcp(bed, CLIENT_A, guest.ip(false), 80, patience(Accepted));
    check(
        control,
        &format!("tcp ClientA -> {}:80 {when}", guest.name),
        web,
        Accepted,
        "sg-web ingress #0",
    );
    let ssh = world_tcp(bed, CLIENT_A, guest.ip(false), 22, patience(Blocked));
    check(
        control,
        &format!("tcp ClientA -> {}:22 {when}", guest.name),
        ssh,
        Blocked,
        "no rule: default drop",
    );
}

fn ifindex_attached(control: &Control, guest: &Guest) -> Option<u32> {
    match control.attach_state(&guest.instance()) {
        Some(AttachState::Attached { ifindex, .. }) => Some(ifindex),
        _ => None,
    }
}

#[test]
fn vnet_guests_are_closed_until_bound_enforced_across_restarts_and_a_daemon_crash_keeps_flows() {
    if !guests_or_skip(
        "vnet_guests_are_closed_until_bound_enforced_across_restarts_and_a_daemon_crash_keeps_flows",
    ) {
        return;
    }
    let bed = TestBed::new("glife");
    // secgroupd first, as on a hypervisor: the taps appear later. One
    // instance is written before its VM starts; the other VM is new.
    let one_spec = bed.guest_on("one", "vnet0", 30);
    let two_spec = bed.guest_on("two", "vnet1", 31);
    bed.host.rules.write(
        RULES,
        &RuleFile::new().group("sg-web", vec![], vec![]).to_json(),
    );
    let daemon = bed.host.start_daemon(&PATTERN);
    let control = Control::of(&daemon);
    let guests = boot_all(&bed.host.ns, vec![one_spec, two_spec]);
    let [one, two] = &guests[..] else {
        unreachable!("two guests booted")
    };
    for guest in &guests {
        guest.serve(&[22, 80]);
    }
    apply(&bed, &control, &rules(&[one]));
    control.wait_attached(&one.instance(), Duration::from_secs(10));
    enforced(&bed, &control, one, "once bound");

    // two's tap matches the pattern but no instance names it: closed.
    let client_a: IpAddr = CLIENT_A.parse().unwrap_or_else(|e| panic!("{e}"));
    let closed = [
        (
            "tcp ClientA -> two:80",
            world_tcp(&bed, CLIENT_A, two.ip(false), 80, patience(Blocked)),
        ),
        (
            "ping ClientA -> two",
            world_ping(&bed, CLIENT_A, two.ip(false), patience(Blocked)),
        ),
        ("ping two -> ClientA", two.ping(client_a, patience(Blocked))),
        (
            "tcp two -> one:80",
            two.tcp(one.ip(false), 80, patience(Blocked)),
        ),
    ];
    for (flow, completed) in closed {
        check(
            &control,
            flow,
            completed,
            Blocked,
            "a guarded tap with no instance is closed",
        );
    }
    apply(&bed, &control, &rules(&[one, two]));
    control.wait_attached(&two.instance(), Duration::from_secs(10));
    enforced(&bed, &control, two, "once its instance is written");

    // two stops (its tap vanishes) and starts again on a new tap of the
    // same name: enforced again, no reload needed.
    let old_ifindex = ifindex_attached(&control, two);
    let reloads = control.status().reloads;
    let mut guests = guests;
    let two_spec = guests.pop().map(|two| {
        let spec = two.builder();
        two.stop();
        spec
    });
    let one = &guests[0];
    let mut two = two_spec
        .unwrap_or_else(|| unreachable!("two was booted"))
        .start(&bed.host.ns);
    let new_ifindex = wait_for(
        Duration::from_secs(10),
        "two's new tap to be attached",
        || ifindex_attached(&control, &two).filter(|i| Some(*i) != old_ifindex),
    );
    assert_eq!(
        Some(new_ifindex),
        two.ifindex(),
        "attached to the tap that exists now"
    );
    two.wait_booted();
    two.serve(&[22, 80]);
    enforced(&bed, &control, &two, "after a restart of the VM");
    assert_eq!(
        control.status().reloads,
        reloads,
        "the restart needed no reload"
    );

    // secgroupd dies while guests talk: a world client on one's port 80
    // and two's connection out to the world stay up, through the crash
    // and the restart.
    let _echo = TcpEcho::start(Endpoint::new(&bed.world, CLIENT_A), 443);
    let mut inbound = connect(
        Endpoint::new(&bed.world, CLIENT_A),
        Endpoint {
            ns: &bed.world,
            ip: one.ip(false),
        },
        80,
        GUEST_ACCEPT,
    )
    .unwrap_or_else(|e| panic!("ClientA's connection to one:80: {e}"));
    assert!(
        echoes(&mut inbound, "before\n", GUEST_ACCEPT),
        "inbound flow before the crash"
    );
    two.hold("out", client_a, 443);
    assert!(
        two.held_echoes("out", GUEST_ACCEPT),
        "outbound flow before the crash"
    );
    daemon.kill();
    assert!(
        echoes(&mut inbound, "down\n", GUEST_ACCEPT),
        "inbound flow with no daemon"
    );
    assert!(
        two.held_echoes("out", GUEST_ACCEPT),
        "outbound flow with no daemon"
    );
    assert!(
        !world_tcp(&bed, CLIENT_A, one.ip(false), 22, patience(Blocked)),
        "one's port 22 stays closed with no daemon"
    );
    let (_daemon, control) = start(
        &bed,
        &rules(&[one, &two]),
        &[one.instance(), two.instance()],
        &PATTERN,
    );
    assert!(
        echoes(&mut inbound, "after\n", GUEST_ACCEPT),
        "inbound flow after the restart"
    );
    let out = two.held_echoes("out", patience(Accepted));
    check(
        &control,
        "held tcp two -> ClientA:443",
        out,
        Accepted,
        "adopted with its conntrack",
    );
    enforced(&bed, &control, one, "after the daemon's restart");
}
