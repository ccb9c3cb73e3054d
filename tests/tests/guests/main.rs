//! End-to-end acceptance on real virtual machines: QEMU guests (the
//! host's kernel, a busybox initramfs the test bed builds) with
//! virtio-net NICs on taps QEMU opens itself, on the test bed's bridge,
//! secgroupd hooked on those taps. What the `e2e` target proves with
//! network namespaces behind veths, proven again where it matters on
//! what users run: guests' own stacks, offloads, taps that come and go
//! with the VM. docs/testing.md ("Real guests") says how to run them
//! and what each proves. Root only; under CI=true nothing skips.
//!
//! Guests boot in parallel (9-35 s each with TCG on a two-core machine,
//! by load) and each test shares its guests across its scenarios.

mod lifecycle;
mod port_security;
mod rules;
mod smoke;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use secgroup_api::Direction;
use secgroup_testbed::{
    Control, Daemon, Endpoint, Expect, GUEST_ACCEPT, GUEST_BLOCK, Guest, RuleFile, TestBed,
    connect, echoes, ping,
};

/// The rule file every scenario writes.
pub const RULES: &str = "guests.json";

/// Binds `guest` (its tap, its static addresses, `extra_ips`) to
/// `groups`, with port security on its MAC.
pub fn bind(rules: RuleFile, guest: &Guest, extra_ips: &[&str], groups: &[&str]) -> RuleFile {
    let mut ips: Vec<&str> = [&guest.ip4, &guest.ip6]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    ips.extend_from_slice(extra_ips);
    rules.binding_with(
        &guest.instance(),
        &guest.tap,
        &ips,
        groups,
        serde_json::json!({ "mac": guest.mac_text() }),
    )
}

/// Writes `rules`, starts secgroupd with `flags` and waits until every
/// listed instance is attached.
pub fn start(
    bed: &TestBed,
    rules: &RuleFile,
    instances: &[String],
    flags: &[&str],
) -> (Daemon, Control) {
    bed.host.start_enforcing(
        RULES,
        &rules.to_json(),
        instances,
        flags,
        Duration::from_secs(10),
    )
}

/// Replaces the rule file and waits until the daemon applied it.
pub fn apply(bed: &TestBed, control: &Control, rules: &RuleFile) {
    bed.host.apply_rules(control, RULES, &rules.to_json());
}

/// How long a probe waits for what it expects: long for an allowed
/// flow (it returns as soon as it completes), short for a blocked one.
pub fn patience(expected: Expect) -> Duration {
    match expected {
        Expect::Accepted => GUEST_ACCEPT,
        Expect::Blocked => GUEST_BLOCK,
    }
}

/// Panics unless `completed` is what `expected` says, with the verdict
/// counters and rule hits of every instance the daemon knows.
pub fn check(control: &Control, flow: &str, completed: bool, expected: Expect, why: &str) {
    let got = if completed {
        Expect::Accepted
    } else {
        Expect::Blocked
    };
    if got == expected {
        return;
    }
    let mut out = String::new();
    for instance in control.status().instances {
        let _ = writeln!(out, "{} {:?}", instance.id, instance.attach);
        for direction in [Direction::Egress, Direction::Ingress] {
            let _ = writeln!(
                out,
                "  {direction:?} verdicts: {:?}",
                control.verdicts(&instance.id, direction)
            );
        }
        if let Some(detail) = control.instance(&instance.id) {
            for rule in detail.ingress.iter().chain(&detail.egress) {
                let _ = writeln!(
                    out,
                    "  {} {:?} #{} {} {} {:?}: {} packets",
                    rule.origin.security_group,
                    rule.origin.direction,
                    rule.origin.index,
                    rule.action,
                    rule.services,
                    rule.remotes,
                    rule.hits.packets
                );
            }
        }
    }
    panic!("{flow}: expected {expected:?} ({why}), got {got:?}\n{out}");
}

/// A probe given its patience: whether the flow completed.
pub type Probe<'a> = Box<dyn Fn(Duration) -> bool + 'a>;

/// One row of a scenario's table: the flow, its probe, what should
/// happen and why.
pub type Case<'a> = (&'a str, Probe<'a>, Expect, &'a str);

/// [`check`] for each row, in order.
pub fn check_all(control: &Control, cases: Vec<Case<'_>>) {
    for (flow, probe, expected, why) in cases {
        check(control, flow, probe(patience(expected)), expected, why);
    }
}

/// The world's address `client` (host side of the bridge, no hook of its
/// own): a TCP connection to `to:port` whose line is echoed.
pub fn world_tcp(bed: &TestBed, client: &str, to: IpAddr, port: u16, timeout: Duration) -> bool {
    let from = Endpoint::new(&bed.world, client);
    // `connect` reads only the destination's address.
    let to = Endpoint {
        ns: &bed.world,
        ip: to,
    };
    match connect(from, to, port, timeout) {
        Ok(mut stream) => echoes(&mut stream, "world\n", timeout),
        Err(_) => false,
    }
}

/// A UDP datagram from the world's `client` to `to:port`, echoed.
pub fn world_udp(bed: &TestBed, client: &str, to: IpAddr, port: u16, timeout: Duration) -> bool {
    let from: IpAddr = client.parse().unwrap_or_else(|e| panic!("{client}: {e}"));
    let socket = bed
        .world
        .run(|| UdpSocket::bind(SocketAddr::new(from, 0)))
        .unwrap_or_else(|e| panic!("binding UDP on {client}: {e}"));
    let dst = SocketAddr::new(to, port);
    socket
        .send_to(b"world-udp", dst)
        .unwrap_or_else(|e| panic!("sending to {dst}: {e}"));
    let _ = socket.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 64];
    matches!(socket.recv_from(&mut buf), Ok((n, peer)) if peer == dst && &buf[..n] == b"world-udp")
}

/// A ping from the world's `client` to `to`.
pub fn world_ping(bed: &TestBed, client: &str, to: IpAddr, timeout: Duration) -> bool {
    // The pinger reads only the destination's address.
    ping(
        Endpoint::new(&bed.world, client),
        Endpoint {
            ns: &bed.world,
            ip: to,
        },
    )
    .completes(timeout)
}
