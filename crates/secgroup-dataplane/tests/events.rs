//! Verdict events through the real programs: which packets become events
//! (logged rules, `log: drops`, `log: all`), audit mode, the per-interface
//! rate limit, and that a requested test run (a trace) never makes one.
//!
//! Frames run as real traffic (`run_unrequested`) unless a test says
//! otherwise: only those may log.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::os::fd::AsRawFd;

use common::*;
use secgroup_dataplane::abi::{EventVerdict, Reason};
use secgroup_dataplane::packet::{Packet, tcp_flags::*};
use secgroup_dataplane::{
    Dataplane, EventCounts, EventLimits, EventStream, Hook, InterfaceBinding, VerdictEvent,
};
use secgroup_model::Direction::{Egress, Ingress};
use secgroup_model::SgId;
use secgroup_policy::{Enforcement, LogMode};
use secgroup_testbed::NetNs;

const VM: &str = "198.51.100.10";
const VM6: &str = "2001:db8::10";
const CLIENT: &str = "203.0.113.1";
const OTHER: &str = "203.0.113.2";

/// Group `sg-test` with `ingress` rules, bound to `ins-vm` whose instance
/// object also carries `instance_extra` (e.g. `"log": "drops"`).
fn policy_json(ingress: &str, instance_extra: &str) -> String {
    format!(
        r#"{{
  "security_groups": [ {{ "id": "sg-test", "ingress": [{ingress}],
                          "egress": [{{"action":"accept","protocol":"udp","port":"53"}}] }} ],
  "instances": [ {{ "id": "ins-vm", "interface": "tap-vm", "ips": ["{VM}", "{VM6}"],
                   "security_groups": ["sg-test"] {instance_extra} }} ]
}}"#
    )
}

fn drain(events: &mut EventStream) -> Vec<VerdictEvent> {
    let mut got = Vec::new();
    let n = events.drain(|e| got.push(e));
    assert_eq!(n, got.len(), "drain's count");
    got
}

fn counts(f: &Fixture) -> Vec<EventCounts> {
    f.dp.observer()
        .and_then(|o| o.event_counts())
        .unwrap_or_else(|e| panic!("event counts: {}", error_chain(&e)))
}

fn stream(dp: &Dataplane) -> EventStream {
    dp.events()
        .unwrap_or_else(|e| panic!("opening the event stream: {}", error_chain(&e)))
}

/// Whether poll(2) says the stream's fd is readable now.
fn readable(events: &EventStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: events.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

/// The (group, index in group) of the rule an event names.
fn rule_of(f: &Fixture, event: &VerdictEvent) -> Option<(SgId, usize)> {
    let uid = event.rule_uid?;
    let origins = f.dp.rule_origins();
    let origin = origins
        .get(&uid)
        .unwrap_or_else(|| panic!("event names rule uid {uid}, which the data plane never wrote"));
    Some((origin.sg.clone(), origin.index))
}

fn sg_test() -> SgId {
    SgId::new("sg-test").unwrap_or_else(|| panic!("bad id"))
}

#[test]
fn a_logged_rule_gives_one_event_per_new_flow_naming_it() {
    kernel_test!();
    let f = Fixture::new(
        &policy_json(
            r#"{"action":"accept","protocol":"tcp","port":"80"},
               {"action":"accept","protocol":"tcp","port":"22","log":true}"#,
            "",
        ),
        "ins-vm",
    );
    let mut events = stream(&f.dp);
    assert!(
        !readable(&events),
        "nothing logged yet, yet the fd is readable"
    );
    for sport in [1000, 1001] {
        let syn = Packet::tcp(ip(CLIENT), sport, ip(VM), 22, SYN);
        assert!(f.send_unrequested(Ingress, &syn), "ssh SYN passes");
        // The rest of the flow is established: no events.
        assert!(
            f.send_unrequested(Egress, &syn.reversed()),
            "SYN-ACK passes"
        );
        let ack = Packet::tcp(ip(CLIENT), sport, ip(VM), 22, ACK);
        assert!(f.send_unrequested(Ingress, &ack), "ACK passes");
    }
    // Accepted by an unlogged rule: no event.
    assert!(f.send_unrequested(Ingress, &Packet::tcp(ip(CLIENT), 1002, ip(VM), 80, SYN)));
    assert!(
        readable(&events),
        "two events waiting, yet poll says nothing"
    );
    let got = drain(&mut events);
    assert_eq!(
        got.len(),
        2,
        "one event per new ssh flow, nothing else: {got:#?}"
    );
    for (event, sport) in got.iter().zip([1000, 1001]) {
        assert_eq!(event.verdict, EventVerdict::Accept);
        assert_eq!(event.reason, Reason::AcceptRule);
        assert_eq!(event.direction, Ingress);
        assert_eq!((event.ifindex, event.instance_uid), (TEST_IFINDEX, 1));
        assert_eq!(event.rule_position, Some(1));
        assert_eq!(rule_of(&f, event), Some((sg_test(), 1)), "{event:?}");
        let flow = event.flow.unwrap_or_else(|| panic!("no flow in {event:?}"));
        assert_eq!(
            (
                flow.src,
                flow.src_port,
                flow.dst,
                flow.dst_port,
                flow.protocol
            ),
            (ip(CLIENT), sport, ip(VM), 22, 6)
        );
        assert_eq!(event.suppressed, 0);
        let age = std::time::SystemTime::now()
            .duration_since(event.time)
            .unwrap_or_else(|e| panic!("event from the future by {:?}", e.duration()));
        assert!(
            age.as_secs() < 600,
            "event time {:?} is not now",
            event.time
        );
    }
    assert!(!readable(&events), "drained, yet readable");
    assert_eq!(
        counts(&f),
        vec![EventCounts {
            ifindex: TEST_IFINDEX,
            emitted: 2,
            suppressed: 0,
            lost: 0
        }]
    );
}

#[test]
fn log_drops_reports_every_drop_default_drops_included() {
    kernel_test!();
    let f = Fixture::new(
        &policy_json(
            &format!(
                r#"{{"action":"drop","protocol":"tcp","port":"22","remote":"{CLIENT}"}},
                   {{"action":"accept","protocol":"tcp","port":"22"}}"#
            ),
            r#", "log": "drops""#,
        ),
        "ins-vm",
    );
    let mut events = stream(&f.dp);
    // Dropped by rule 0, twice (each drop is an event), then a default
    // drop in IPv6, then an accepted flow (not logged: drops only).
    let dropped = Packet::tcp(ip(CLIENT), 1000, ip(VM), 22, SYN);
    assert!(!f.send_unrequested(Ingress, &dropped));
    assert!(!f.send_unrequested(Ingress, &dropped));
    let default = Packet::tcp(ip("2001:db8::99"), 1001, ip(VM6), 443, SYN);
    assert!(!f.send_unrequested(Ingress, &default));
    assert!(f.send_unrequested(Ingress, &Packet::tcp(ip(OTHER), 1002, ip(VM), 22, SYN)));
    let got = drain(&mut events);
    let summary: Vec<_> = got
        .iter()
        .map(|e| (e.verdict, e.reason, e.rule_position, rule_of(&f, e)))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                EventVerdict::Drop,
                Reason::DropRule,
                Some(0),
                Some((sg_test(), 0))
            ),
            (
                EventVerdict::Drop,
                Reason::DropRule,
                Some(0),
                Some((sg_test(), 0))
            ),
            (EventVerdict::Drop, Reason::DropDefault, None, None),
        ]
    );
    let v6 = got[2].flow.unwrap_or_else(|| panic!("no flow"));
    assert_eq!(
        (v6.src, v6.dst, v6.dst_port),
        (ip("2001:db8::99"), ip(VM6), 443)
    );
}

#[test]
fn log_all_reports_new_flows_and_drops_never_implicit_or_established() {
    kernel_test!();
    let f = Fixture::new(
        &policy_json(
            r#"{"action":"accept","protocol":"icmp"}"#,
            r#", "log": "all""#,
        ),
        "ins-vm",
    );
    let mut events = stream(&f.dp);
    let ping = Packet::echo(ip(CLIENT), ip(VM), true, 7);
    assert!(f.send_unrequested(Ingress, &ping));
    assert!(f.send_unrequested(Egress, &Packet::echo(ip(VM), ip(CLIENT), false, 7)));
    // DHCP client traffic is an implicit allow: never an event.
    let dhcp = Packet::udp(ip("0.0.0.0"), 68, ip("255.255.255.255"), 67);
    assert!(f.send_unrequested(Egress, &dhcp));
    assert!(!f.send_unrequested(Ingress, &Packet::udp(ip(CLIENT), 5, ip(VM), 9)));
    let got = drain(&mut events);
    let summary: Vec<_> = got.iter().map(|e| (e.verdict, e.reason)).collect();
    assert_eq!(
        summary,
        vec![
            (EventVerdict::Accept, Reason::AcceptRule),
            (EventVerdict::Drop, Reason::DropDefault)
        ]
    );
    let icmp = got[0].flow.unwrap_or_else(|| panic!("no flow"));
    assert_eq!((icmp.protocol, icmp.icmp), (1, Some((8, 0))));
}

#[test]
fn audit_passes_what_would_drop_tracks_it_and_logs_would_drop() {
    kernel_test!();
    let f = Fixture::new(
        &policy_json(
            &format!(
                r#"{{"action":"drop","protocol":"tcp","port":"22","remote":"{CLIENT}","log":true}},
                   {{"action":"accept","protocol":"tcp","port":"22"}}"#
            ),
            r#", "enforcement": "audit""#,
        ),
        "ins-vm",
    );
    let mut events = stream(&f.dp);
    // What the report says (a requested run: no event from it).
    let syn = Packet::tcp(ip(CLIENT), 1000, ip(VM), 22, SYN);
    let outcome = f.send(Ingress, &syn);
    expect(
        &outcome,
        Reason::WouldDropRule,
        Some(0),
        "audited drop rule",
    );
    assert!(drain(&mut events).is_empty(), "a requested run logged");
    // As traffic: passes, and its flow is tracked like an accepted one.
    let syn = Packet::tcp(ip(CLIENT), 1001, ip(VM), 22, SYN);
    assert!(
        f.send_unrequested(Ingress, &syn),
        "audit let the SYN through"
    );
    expect(
        &f.send(Egress, &syn.reversed()),
        Reason::AcceptReply,
        Some(0),
        "the reply of an audited flow",
    );
    // The default too (not logged: log "none", and no rule decided).
    let default = Packet::tcp(ip(CLIENT), 1002, ip(VM), 443, SYN);
    expect(
        &f.send(Ingress, &default),
        Reason::WouldDropDefault,
        None,
        "audited default",
    );
    let got = drain(&mut events);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (got[0].verdict, got[0].reason, rule_of(&f, &got[0])),
        (
            EventVerdict::WouldDrop,
            Reason::WouldDropRule,
            Some((sg_test(), 0))
        )
    );
    assert_eq!(got[0].reason.enforced(), Reason::DropRule);
    // Counted apart from drops.
    let stats =
        f.dp.interface_stats(TEST_IFINDEX, Ingress)
            .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(stats.packets[Reason::WouldDropRule as usize], 1);
    assert_eq!(stats.packets[Reason::DropRule as usize], 0);
}

#[test]
fn audit_keeps_a_flow_the_new_rules_refuse_and_says_would_drop_revoked() {
    kernel_test!();
    let open = policy_json(
        r#"{"action":"accept","protocol":"tcp","port":"22"}"#,
        r#", "enforcement": "audit", "log": "drops""#,
    );
    let closed = policy_json(
        r#"{"action":"accept","protocol":"tcp","port":"80"}"#,
        r#", "enforcement": "audit", "log": "drops""#,
    );
    let mut f = Fixture::new(&open, "ins-vm");
    let mut events = stream(&f.dp);
    let syn = Packet::tcp(ip(CLIENT), 1000, ip(VM), 22, SYN);
    assert!(f.send_unrequested(Ingress, &syn));
    f.bind(&compile(&closed));
    let ack = Packet::tcp(ip(CLIENT), 1000, ip(VM), 22, ACK);
    assert!(f.send_unrequested(Ingress, &ack), "audit cut the flow");
    expect(
        &f.send(Ingress, &ack),
        Reason::AcceptEstablished,
        None,
        "the flow follows the new table",
    );
    let got = drain(&mut events);
    let summary: Vec<_> = got
        .iter()
        .map(|e| (e.verdict, e.reason, e.rule_position))
        .collect();
    assert_eq!(
        summary,
        vec![(EventVerdict::WouldDrop, Reason::WouldDropRevoked, None)]
    );
}

#[test]
fn requested_test_runs_never_log_nor_count_events() {
    kernel_test!();
    let f = Fixture::new(
        &policy_json(
            r#"{"action":"accept","protocol":"tcp","port":"22","log":true}"#,
            r#", "log": "all""#,
        ),
        "ins-vm",
    );
    let mut events = stream(&f.dp);
    for sport in 1000..1010 {
        f.send(Ingress, &Packet::tcp(ip(CLIENT), sport, ip(VM), 22, SYN));
        f.send(Ingress, &Packet::tcp(ip(CLIENT), sport, ip(VM), 443, SYN));
    }
    assert!(!readable(&events));
    assert!(drain(&mut events).is_empty());
    assert_eq!(
        counts(&f),
        vec![],
        "a requested run touched the event counts"
    );
}

/// Sends `n` default drops from CLIENT to the VM through TC on `ifindex`
/// (inside `ns`, where that interface exists), as real traffic.
fn drops_on(ns: &NetNs, dp: &Dataplane, ifindex: u32, first_port: u16, n: u16) {
    let runner = dp.test_runner();
    ns.run(|| {
        for port in first_port..first_port + n {
            let frame = Packet::tcp(ip(CLIENT), port, ip(VM), 9, SYN).frame();
            let out = runner
                .run_unrequested(Hook::Tc, &frame, Some(ifindex), &[])
                .unwrap_or_else(|e| panic!("test run: {}", error_chain(&e)));
            assert!(!out.passed, "a default drop passed");
        }
    });
}

#[test]
fn a_flooding_interface_empties_only_its_own_bucket() {
    kernel_test!();
    let ns = NetNs::new("sgev");
    ns.ip(&[
        "link", "add", "flood0", "type", "veth", "peer", "name", "quiet0",
    ]);
    let ifindex = |name| {
        ns.ifindex(name)
            .unwrap_or_else(|| panic!("no {name} in {}", ns.name))
    };
    let (flood, quiet) = (ifindex("flood0"), ifindex("quiet0"));
    let policy = compile(&policy_json("", r#", "log": "drops""#));
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("no instance"));
    let mut dp = load_dataplane();
    let bindings: Vec<InterfaceBinding<'_>> = [flood, quiet]
        .into_iter()
        .map(|ifindex| InterfaceBinding {
            ifindex,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: ifindex,
            port_security: None,
            log: LogMode::Drops,
            enforcement: Enforcement::Enforce,
        })
        .collect();
    dp.apply(&bindings)
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
    let limits = EventLimits::new(1, 5).unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    dp.set_event_limits(limits)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let mut events = stream(&dp);

    let started = std::time::Instant::now();
    drops_on(&ns, &dp, flood, 10000, 300);
    let elapsed = started.elapsed();
    drops_on(&ns, &dp, quiet, 20000, 3);
    let got = drain(&mut events);
    let by_if = |ifindex| got.iter().filter(|e| e.ifindex == ifindex).count() as u64;
    // The flood: its burst plus what one second per second refilled.
    let allowed = 5 + elapsed.as_secs() + 1;
    assert!(
        by_if(flood) <= allowed,
        "{} events from the flood in {elapsed:?}: more than burst 5 at 1/s allows",
        by_if(flood)
    );
    assert_eq!(
        by_if(quiet),
        3,
        "the quiet interface lost events to the flood"
    );
    let observer = dp
        .observer()
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let counts: HashMap<u32, EventCounts> = observer
        .event_counts()
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)))
        .into_iter()
        .map(|c| (c.ifindex, c))
        .collect();
    let flooded = counts[&flood];
    assert_eq!(flooded.emitted, by_if(flood));
    assert_eq!(flooded.emitted + flooded.suppressed + flooded.lost, 300);
    assert!(flooded.suppressed > 0, "nothing suppressed: {flooded:?}");
    assert_eq!((counts[&quiet].emitted, counts[&quiet].suppressed), (3, 0));

    // Once a token is back, the flood's next event says how many were
    // lost since its previous one.
    let mut next = None;
    for port in 0..100 {
        drops_on(&ns, &dp, flood, 30000 + port, 1);
        next = drain(&mut events).into_iter().next();
        if next.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let next = next.unwrap_or_else(|| panic!("the flood's bucket never refilled"));
    let reported: u64 = got
        .iter()
        .chain([&next])
        .filter(|e| e.ifindex == flood)
        .map(|e| u64::from(e.suppressed))
        .sum();
    let after = observer
        .event_counts()
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)))
        .into_iter()
        .find(|c| c.ifindex == flood)
        .unwrap_or_else(|| panic!("no counts for the flood"));
    assert_eq!(
        reported,
        after.suppressed + after.lost,
        "the events' suppressed counts do not add up to the interface's"
    );
    assert_eq!(next.rule_position, None);
}

#[test]
fn event_limits_are_validated() {
    assert!(EventLimits::new(0, 10).is_err());
    assert!(EventLimits::new(10, 0).is_err());
    assert!(EventLimits::new(EventLimits::MAX_RATE + 1, 10).is_err());
    let limits = EventLimits::new(50, 80).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((limits.rate(), limits.burst()), (50, 80));
    assert_eq!(
        (
            EventLimits::default().rate(),
            EventLimits::default().burst()
        ),
        (100, 200)
    );
}

#[test]
fn port_security_drops_are_logged_and_enforced_in_audit_mode() {
    kernel_test!();
    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let policy = compile(&format!(
        r#"{{
  "security_groups": [{{"id": "sg-test", "egress": [{{"action": "accept", "protocol": "all"}}]}}],
  "instances": [{{"id": "ins-vm", "interface": "tap-vm", "mac": "52:54:00:12:34:56",
                  "ips": ["{VM}"], "security_groups": ["sg-test"],
                  "log": "drops", "enforcement": "audit"}}]
}}"#
    ));
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("no instance"));
    let mut dp = load_dataplane();
    dp.apply(&[InterfaceBinding {
        ifindex: TEST_IFINDEX,
        ingress: &inst.ingress,
        egress: &inst.egress,
        keep_established: false,
        instance_uid: 7,
        port_security: Some(&inst.port_security),
        log: inst.log,
        enforcement: inst.enforcement,
    }])
    .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
    let mut events = stream(&dp);
    let runner = dp.test_runner();
    let send = |frame: &[u8]| {
        runner
            .run_unrequested(Hook::Xdp, frame, None, &[])
            .unwrap_or_else(|e| panic!("test run: {}", error_chain(&e)))
            .passed
    };
    // Its own address passes (and is no event: accepted); a spoofed one
    // and a foreign ethertype are dropped although the instance audits.
    let own = Packet::tcp(ip(VM), 1000, ip(CLIENT), 443, SYN).with_src_mac(MAC);
    assert!(send(&own.frame()), "the VM's own source");
    let spoofed = Packet::tcp(ip(OTHER), 1000, ip(CLIENT), 443, SYN).with_src_mac(MAC);
    assert!(!send(&spoofed.frame()), "audit let a spoofed source out");
    let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
    lldp.extend_from_slice(&MAC);
    lldp.extend_from_slice(&[0x88, 0xcc]);
    lldp.extend_from_slice(&[0; 46]);
    assert!(!send(&lldp), "audit let LLDP out");
    let got = drain(&mut events);
    let summary: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.verdict,
                e.reason,
                e.direction,
                e.instance_uid,
                e.flow.map(|f| f.src),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                EventVerdict::Drop,
                Reason::DropSpoofedIp,
                Egress,
                7,
                Some(ip(OTHER))
            ),
            (EventVerdict::Drop, Reason::DropEthertype, Egress, 7, None),
        ]
    );
}

/// The ring buffer and the buckets are pinned like the other maps: events
/// a daemon did not read before it stopped are read by the next one, and
/// the counts carry over.
#[test]
fn unread_events_and_counts_survive_a_restart() {
    kernel_test!();
    let pins = secgroup_testbed::PinDir::new("sgev");
    let options = secgroup_dataplane::LoadOptions {
        pin_dir: Some(pins.path.clone()),
        ..Default::default()
    };
    let policy = compile(&policy_json("", r#", "log": "drops""#));
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("no instance"));
    {
        let (mut dp, _) =
            Dataplane::load(&options).unwrap_or_else(|e| panic!("first load: {}", error_chain(&e)));
        dp.apply(&[InterfaceBinding {
            ifindex: TEST_IFINDEX,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: inst.log,
            enforcement: inst.enforcement,
        }])
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
        let frame = Packet::tcp(ip(CLIENT), 1000, ip(VM), 9, SYN).frame();
        let dropped = !dp
            .test_runner()
            .run_unrequested(Hook::Tc, &frame, None, &[])
            .unwrap_or_else(|e| panic!("test run: {}", error_chain(&e)))
            .passed;
        assert!(dropped, "a default drop passed");
    }
    let (dp, _) =
        Dataplane::load(&options).unwrap_or_else(|e| panic!("second load: {}", error_chain(&e)));
    let got = drain(&mut stream(&dp));
    let summary: Vec<_> = got.iter().map(|e| (e.verdict, e.reason)).collect();
    assert_eq!(summary, vec![(EventVerdict::Drop, Reason::DropDefault)]);
    let counts = dp
        .observer()
        .and_then(|o| o.event_counts())
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(counts.iter().map(|c| c.emitted).sum::<u64>(), 1);
}
