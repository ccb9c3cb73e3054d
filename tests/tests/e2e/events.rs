//! The per-interface rate limit of verdict events: one VM floods packets
//! its rules drop (each one an event under `"log": "drops"`); its events
//! are cut to its rate and counted as suppressed, while another VM's
//! events still arrive whole.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use secgroup_api::{Client, EventFilter, EventVerdict, StreamLine, VerdictEvent};
use secgroup_testbed::{CLIENT_A, RuleFile, TestBed, root_or_skip};
use serde_json::json;

use crate::start_with;

const RATE: u64 = 2;
const BURST: u64 = 5;
const FLOOD: usize = 400;

/// `count` datagrams from inside `vm` to CLIENT_A's discard port.
fn send_udp(vm: &secgroup_testbed::Vm<'_>, count: usize) {
    let from = vm.ip4.clone();
    vm.ns.run(move || {
        let socket = UdpSocket::bind((from.as_str(), 0)).unwrap_or_else(|e| panic!("bind: {e}"));
        for _ in 0..count {
            // Sends can fail while ARP resolves; the flood is what counts.
            let _ = socket.send_to(b"flood", (CLIENT_A, 9));
        }
    });
}

#[test]
fn a_flooding_vm_loses_its_own_events_not_anothers() {
    if !root_or_skip("a_flooding_vm_loses_its_own_events_not_anothers") {
        return;
    }
    let bed = TestBed::new("evrate");
    let flood = bed.vm("flood", 45);
    let quiet = bed.vm("quiet", 46);
    // No egress rule: everything the VMs send is a default drop, logged.
    let rules = RuleFile::new()
        .group("sg-mute", vec![], vec![])
        .instance_with(&flood, &["sg-mute"], json!({ "log": "drops" }))
        .instance_with(&quiet, &["sg-mute"], json!({ "log": "drops" }));
    let (rate, burst) = (RATE.to_string(), BURST.to_string());
    let (daemon, control) = start_with(
        &bed,
        &rules,
        &[flood.instance(), quiet.instance()],
        &["--log-rate", &rate, "--log-burst", &burst],
    );
    let mut lines = Client::new(daemon.socket())
        .events(&EventFilter {
            verdict: Some(EventVerdict::Drop),
            ..EventFilter::default()
        })
        .unwrap_or_else(|e| panic!("GET /v1/events: {e}"));
    lines
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        lines.next(),
        Some(Ok(StreamLine::Subscribed { .. }))
    ));

    let started = Instant::now();
    send_udp(&flood, FLOOD);
    let elapsed = started.elapsed();
    // The marker: the quiet VM's first drop comes after every event of
    // the flood (the ring buffer keeps order).
    send_udp(&quiet, 1);
    let mut events: Vec<VerdictEvent> = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(StreamLine::Event(event))) => {
                let last = event.instance.as_deref() == Some(quiet.instance().as_str());
                events.push(*event);
                if last {
                    break;
                }
            }
            other => panic!("expected events, got {other:?} after {events:#?}"),
        }
    }
    let (marker, flood_events) = events.split_last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(
        marker.suppressed, 0,
        "the quiet VM's bucket is its own: {marker:#?}"
    );
    assert!(
        flood_events
            .iter()
            .all(|e| e.instance.as_deref() == Some(flood.instance().as_str())),
        "{flood_events:#?}"
    );
    // At most the burst plus what the rate refilled while it flooded
    // (one more for a refill landing during the last send).
    let allowed = BURST + RATE * (elapsed.as_secs() + 1) + 1;
    let delivered = flood_events.len() as u64;
    assert!(
        (1..=allowed).contains(&delivered),
        "{delivered} events of a {FLOOD}-datagram flood in {elapsed:?} (allowed {allowed})"
    );

    // What it lost is counted, for the instance and on the metrics.
    let detail = control
        .instance(&flood.instance())
        .unwrap_or_else(|| panic!("no instance"));
    let counts = detail.events.unwrap_or_else(|| panic!("no event counts"));
    assert!(
        counts.suppressed > 0 && counts.emitted == delivered,
        "{counts:?} with {delivered} delivered"
    );
    let quiet_counts = control
        .instance(&quiet.instance())
        .and_then(|d| d.events)
        .unwrap_or_else(|| panic!("no event counts"));
    assert_eq!((quiet_counts.emitted, quiet_counts.suppressed), (1, 0));
    let metrics = Client::new(daemon.socket())
        .request("GET", "/metrics", None)
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    let text = String::from_utf8_lossy(&metrics.body);
    let line = format!(
        "secgroup_events_suppressed_total{{instance=\"{}\"}} {}",
        flood.instance(),
        counts.suppressed
    );
    assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");

    // Its next event, once a token is back, says how many it lost.
    std::thread::sleep(Duration::from_millis(1000 / RATE + 100));
    send_udp(&flood, 1);
    let next = loop {
        match lines.next() {
            Some(Ok(StreamLine::Event(event)))
                if event.instance.as_deref() == Some(flood.instance().as_str()) =>
            {
                break event;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected the flood VM's next event, got {other:?}"),
        }
    };
    assert!(next.suppressed > 0, "{next:#?}");
}
