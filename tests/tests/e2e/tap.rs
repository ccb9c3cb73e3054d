//! A VM on a real tap device, the test process playing the guest: both
//! hooks work on a tap (guest → world through XDP on the tap's receive
//! path, world → guest through TCX on its transmit path).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use secgroup_dataplane::packet::{Packet, tcp_flags};
use secgroup_testbed::{
    CLIENT_A, CLIENT_B, Endpoint, RuleFile, TapGuest, TestBed, WORLD_MAC, accept, connect, listen,
    root_or_skip,
};

use crate::start;

const WAIT: Duration = Duration::from_millis(1500);

#[test]
fn a_real_tap_guest_is_filtered_both_ways() {
    if !root_or_skip("a_real_tap_guest_is_filtered_both_ways") {
        return;
    }
    let bed = TestBed::new("tap");
    let mut guest = TapGuest::create(&bed, "guest", 40);
    let rules = RuleFile::new()
        .group(
            "sg-tap",
            vec![accept("tcp", "8080", CLIENT_A)],
            vec![accept("tcp", "80", "203.0.113.0/24")],
        )
        .binding(&guest.instance(), &guest.tap(), &[&guest.ip4], &["sg-tap"]);
    let (_daemon, _control) = start(&bed, &rules, &[guest.instance()]);
    let world: IpAddr = CLIENT_A.parse().unwrap_or_else(|e| panic!("{e}"));
    let _listeners = [80, 81].map(|port| listen(Endpoint::new(&bed.world, CLIENT_A), port));

    // Egress, XDP: a SYN to port 80 is let out and the world's SYN-ACK
    // comes back (a reply); a SYN to 81 never leaves the tap.
    for (port, allowed) in [(80, true), (81, false)] {
        let sport = 40_000 + port;
        guest.send(
            &Packet::tcp(guest.ip(), sport, world, port, tcp_flags::SYN)
                .with_macs(guest.mac, WORLD_MAC)
                .frame(),
        );
        let answer = guest.recv_tcp(WAIT, |s| s.src_port == port && s.dst_port == sport);
        match (allowed, answer) {
            (true, Some(s)) => assert_eq!(
                s.flags & (tcp_flags::SYN | tcp_flags::ACK),
                tcp_flags::SYN | tcp_flags::ACK,
                "port {port}: the world answers the guest's SYN with a SYN-ACK, got {s:?}"
            ),
            (true, None) => panic!(
                "egress tcp {world}:{port} is accepted (sg-tap egress #0) but no answer reached the guest"
            ),
            (false, Some(s)) => {
                panic!("egress tcp {world}:{port} matches no rule, yet the world answered: {s:?}")
            }
            (false, None) => {}
        }
    }

    // Ingress, TCX: ClientA's SYN to 8080 reaches the guest; ClientB's
    // does not.
    let guest_addr = SocketAddr::new(guest.ip(), 8080);
    for (client, allowed) in [(CLIENT_A, true), (CLIENT_B, false)] {
        let from = Endpoint::new(&bed.world, client);
        let to = Endpoint::new(&bed.world, &guest.ip4);
        let connecting = std::thread::scope(|scope| {
            // Nobody completes the handshake: the connect times out while
            // the guest watches for the SYN.
            let attempt = scope.spawn(|| connect(from, to, 8080, WAIT));
            let seen = guest.recv_tcp(WAIT, |s| {
                s.dst_port == 8080 && s.flags & tcp_flags::SYN != 0 && s.src.to_string() == client
            });
            let _ = attempt.join();
            seen
        });
        match (allowed, connecting) {
            (true, None) => panic!(
                "ingress tcp {client} -> {guest_addr} is accepted (sg-tap ingress #0) but the SYN never reached the guest"
            ),
            (false, Some(s)) => panic!(
                "ingress tcp {client} -> {guest_addr} matches no rule, yet reached the guest: {s:?}"
            ),
            _ => {}
        }
    }
}
