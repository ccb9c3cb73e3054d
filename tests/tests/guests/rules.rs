//! Security-group rules between real guests and from the host side:
//! ordered allow/deny, a group reference, stateful replies, TCP, UDP,
//! ICMP and IPv6; a rule change that cuts an open connection, and one
//! that keeps it with `--keep-established`; TSO/GSO segments.

use std::net::IpAddr;
use std::time::Duration;

use secgroup_api::Direction;
use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_A6, CLIENT_B, CLIENT_B6, Control, Endpoint, GUEST_ACCEPT, Guest, RuleFile,
    TcpEcho, TestBed, accept, boot_all, drop, guests_or_skip,
};

use crate::{
    Case, apply, bind, check, check_all, patience, start, world_ping, world_tcp, world_udp,
};

/// The database's service port, the port of the connection kept open
/// across rule changes, and a port nobody allows.
const DB: u16 = 5432;
const HELD: u16 = 9000;
const CLOSED: u16 = 2222;

/// sg-web: the world may reach 80 except ClientB's IPv4 (the drop comes
/// first), pings from anywhere; everything out. sg-db: only sg-web's
/// members, on the database, DNS and the held port; nothing out (replies
/// only). sg-other: nothing in, everything out.
fn rules(web: &Guest, db: &Guest, other: &Guest, held_port_open: bool) -> RuleFile {
    let mut db_in = vec![
        accept("tcp", &DB.to_string(), "sg-web"),
        accept("udp", "53", "sg-web"),
    ];
    if held_port_open {
        db_in.push(accept("tcp", &HELD.to_string(), "sg-web"));
    }
    let file = RuleFile::new()
        .group(
            "sg-web",
            vec![
                drop("tcp", "80", CLIENT_B),
                accept("tcp", "80", ""),
                accept("icmp", "", ""),
                accept("icmpv6", "", ""),
            ],
            vec![accept("all", "", "")],
        )
        .group("sg-db", db_in, vec![])
        .group("sg-other", vec![], vec![accept("all", "", "")]);
    let file = bind(file, web, &[], &["sg-web"]);
    let file = bind(file, db, &[], &["sg-db"]);
    bind(file, other, &[], &["sg-other"])
}

#[test]
fn guests_are_filtered_by_ordered_rules_references_and_state_and_rule_changes_reach_open_flows() {
    if !guests_or_skip(
        "guests_are_filtered_by_ordered_rules_references_and_state_and_rule_changes_reach_open_flows",
    ) {
        return;
    }
    let bed = TestBed::new("grules");
    // The database guest has a multiqueue NIC: a tap with two queues.
    let guests = boot_all(
        &bed.host.ns,
        vec![
            bed.guest("web", 10),
            bed.guest("db", 11).queues(2),
            bed.guest("other", 12),
        ],
    );
    let [web, db, other] = &guests[..] else {
        unreachable!("three guests booted")
    };
    for guest in &guests {
        guest.serve(&[22, 53, 80, DB, HELD, CLOSED]);
    }
    let _world_echo = TcpEcho::start(Endpoint::new(&bed.world, CLIENT_A), 443);
    let instances: Vec<String> = guests.iter().map(Guest::instance).collect();
    let (daemon, control) = start(&bed, &rules(web, db, other, true), &instances, &[]);

    ordered_and_referenced(&bed, &control, web, db, other);
    stateful(&control, web, db, other);
    offloads(&bed, &control, web, db, other);

    // A rule change while a connection is open: cut by default.
    web.hold("cut", db.ip(false), HELD);
    assert!(
        web.held_echoes("cut", GUEST_ACCEPT),
        "the held connection works"
    );
    apply(&bed, &control, &rules(web, db, other, false));
    let cut = web.held_echoes("cut", patience(Blocked));
    check(
        &control,
        "held tcp web -> db:9000",
        cut,
        Blocked,
        "its rule is gone: the flow is revoked",
    );
    let new = web.tcp(db.ip(false), HELD, patience(Blocked));
    check(
        &control,
        "tcp web -> db:9000",
        new,
        Blocked,
        "its rule is gone",
    );

    // The same change under --keep-established: the open flow finishes
    // under the rules it started with, new ones follow the new rules.
    daemon.terminate();
    let (_daemon, control) = start(
        &bed,
        &rules(web, db, other, true),
        &instances,
        &["--keep-established"],
    );
    web.hold("kept", db.ip(true), HELD);
    assert!(
        web.held_echoes("kept", GUEST_ACCEPT),
        "the held connection works"
    );
    apply(&bed, &control, &rules(web, db, other, false));
    let kept = web.held_echoes("kept", patience(Accepted));
    check(
        &control,
        "held tcp web -> db:9000 (IPv6)",
        kept,
        Accepted,
        "--keep-established spares it",
    );
    let new = web.tcp(db.ip(true), HELD, patience(Blocked));
    check(
        &control,
        "tcp web -> db:9000 (IPv6)",
        new,
        Blocked,
        "its rule is gone",
    );
}

fn ordered_and_referenced(
    bed: &TestBed,
    control: &Control,
    web: &Guest,
    db: &Guest,
    other: &Guest,
) {
    let cases: Vec<Case<'_>> = vec![
        (
            "tcp ClientA -> web:80",
            Box::new(|t| world_tcp(bed, CLIENT_A, web.ip(false), 80, t)),
            Accepted,
            "sg-web ingress #1",
        ),
        (
            "tcp ClientB -> web:80",
            Box::new(|t| world_tcp(bed, CLIENT_B, web.ip(false), 80, t)),
            Blocked,
            "sg-web ingress #0 drops before #1 accepts",
        ),
        (
            "tcp ClientB6 -> web:80",
            Box::new(|t| world_tcp(bed, CLIENT_B6, web.ip(true), 80, t)),
            Accepted,
            "#0 names ClientB's IPv4 only; #1",
        ),
        (
            "tcp ClientA -> web:22",
            Box::new(|t| world_tcp(bed, CLIENT_A, web.ip(false), 22, t)),
            Blocked,
            "no rule: default drop",
        ),
        (
            "ping ClientA -> web",
            Box::new(|t| world_ping(bed, CLIENT_A, web.ip(false), t)),
            Accepted,
            "sg-web ingress #2",
        ),
        (
            "ping ClientA6 -> web",
            Box::new(|t| world_ping(bed, CLIENT_A6, web.ip(true), t)),
            Accepted,
            "sg-web ingress #3",
        ),
        (
            "ping ClientA -> db",
            Box::new(|t| world_ping(bed, CLIENT_A, db.ip(false), t)),
            Blocked,
            "sg-db has no icmp rule",
        ),
        (
            "tcp web -> db:5432",
            Box::new(|t| web.tcp(db.ip(false), DB, t)),
            Accepted,
            "sg-db ingress #0: web is in sg-web",
        ),
        (
            "tcp web -> db:5432 (IPv6)",
            Box::new(|t| web.tcp(db.ip(true), DB, t)),
            Accepted,
            "sg-web's members include web's IPv6",
        ),
        (
            "tcp other -> db:5432",
            Box::new(|t| other.tcp(db.ip(false), DB, t)),
            Blocked,
            "other is not in sg-web",
        ),
        (
            "udp web -> db:53",
            Box::new(|t| web.udp(db.ip(false), 53, t)),
            Accepted,
            "sg-db ingress #1",
        ),
        (
            "udp web -> db:53 (IPv6)",
            Box::new(|t| web.udp(db.ip(true), 53, t)),
            Accepted,
            "sg-db ingress #1",
        ),
        (
            "udp other -> db:53",
            Box::new(|t| other.udp(db.ip(false), 53, t)),
            Blocked,
            "other is not in sg-web",
        ),
        (
            "udp ClientA -> db:53",
            Box::new(|t| world_udp(bed, CLIENT_A, db.ip(false), 53, t)),
            Blocked,
            "the world is not in sg-web",
        ),
    ];
    check_all(control, cases);
}

fn stateful(control: &Control, web: &Guest, db: &Guest, other: &Guest) {
    let client_a: IpAddr = CLIENT_A.parse().unwrap_or_else(|e| panic!("{e}"));
    let cases: Vec<Case<'_>> = vec![
        (
            "tcp other -> ClientA:443",
            Box::new(|t| other.tcp(client_a, 443, t)),
            Accepted,
            "sg-other egress; the replies need no ingress rule",
        ),
        (
            "tcp db -> web:80",
            Box::new(|t| db.tcp(web.ip(false), 80, t)),
            Blocked,
            "sg-db has no egress rule: replies only",
        ),
        (
            "udp db -> other:53",
            Box::new(|t| db.udp(other.ip(false), 53, t)),
            Blocked,
            "sg-db has no egress rule",
        ),
        (
            "tcp web -> other:80",
            Box::new(|t| web.tcp(other.ip(false), 80, t)),
            Blocked,
            "sg-other has no ingress rule",
        ),
        (
            "ping web -> other (IPv6)",
            Box::new(|t| web.ping(other.ip(true), t)),
            Blocked,
            "sg-other has no ingress rule",
        ),
    ];
    check_all(control, cases);
}

/// Frames and bytes the host received on `tap` (what its guest sent).
fn tap_received(bed: &TestBed, tap: &str) -> (u64, u64) {
    let out = bed
        .host
        .ns
        .output(&["ip", "-j", "-s", "link", "show", "dev", tap]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip -j -s link show {tap}: {e}"));
    let rx = &json[0]["stats64"]["rx"];
    let field = |key: &str| {
        rx[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no rx {key} for {tap}: {json}"))
    };
    (field("packets"), field("bytes"))
}

/// A guest writing 64 KiB at a time hands virtio TSO-size segments
/// (larger than the 1500-byte MTU: the stack's GSO, the NIC's offload);
/// they are classified like any segment of their flow, both on the
/// sender's tap (XDP) and the receiver's (TCX).
fn offloads(bed: &TestBed, control: &Control, web: &Guest, db: &Guest, other: &Guest) {
    let bytes = 8 << 20;
    let (packets_before, bytes_before) = tap_received(bed, &web.tap);
    let hits_before: u64 = control.hits("sg-db", Direction::Ingress)[0];
    let moved = web.bulk(db.ip(false), DB, bytes, Duration::from_secs(60));
    check(
        control,
        "8 MiB web -> db:5432",
        moved,
        Accepted,
        "sg-db ingress #0, every segment",
    );
    let (packets_after, bytes_after) = tap_received(bed, &web.tap);
    let frames = packets_after - packets_before;
    let average = (bytes_after - bytes_before) / frames.max(1);
    assert!(
        average > 1514,
        "web sent {frames} frames averaging {average} bytes: no TSO/GSO segments crossed its tap, \
         so this proves nothing about them"
    );
    assert!(
        control.hits("sg-db", Direction::Ingress)[0] > hits_before,
        "the transfer's first packet is counted on sg-db ingress #0"
    );
    let moved = other.bulk(db.ip(false), DB, 1 << 20, patience(Blocked));
    check(
        control,
        "1 MiB other -> db:5432",
        moved,
        Blocked,
        "other is not in sg-web",
    );
    let moved = web.bulk(db.ip(true), CLOSED, 1 << 20, patience(Blocked));
    check(
        control,
        "1 MiB web -> db:2222 (IPv6)",
        moved,
        Blocked,
        "no rule for 2222",
    );
    let moved = db.bulk(web.ip(true), 80, 1 << 20, patience(Blocked));
    check(
        control,
        "1 MiB db -> web:80 (IPv6)",
        moved,
        Blocked,
        "sg-db has no egress rule",
    );
}
