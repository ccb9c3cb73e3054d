//! Verdict events through the real daemon and `GET /v1/events`: a logged
//! rule gives exactly one event per new flow, naming the rule; `"log":
//! "drops"` shows default drops; audit mode passes what the rules would
//! drop and reports it as would-drop; a trace gives no event.
//!
//! "Exactly" and "no event" are checked against a marker: after the
//! traffic under test, traffic whose event is known comes last, and the
//! events before it are all there is (the ring buffer keeps order).

use std::net::SocketAddr;
use std::time::Duration;

use secgroup_api::{
    Direction, EventFilter, EventLines, EventVerdict, StreamLine, TraceRequest, VerdictEvent,
};
use secgroup_testbed::Control;

use crate::harness::*;

/// `ins-vm` with these egress rules and extra instance keys.
fn rules(egress: &str, instance_keys: &str) -> String {
    format!(
        r#"{{
  "security_groups": [ {{ "id": "sg-vm", "egress": [{egress}] }} ],
  "instances": [
    {{ "id": "ins-vm", "interface": "{TAP}", "ips": ["{GUEST_IP}"], "security_groups": ["sg-vm"]{instance_keys} }}
  ]
}}
"#
    )
}

/// The stream, past its first line.
fn subscribe(daemon: &Daemon, filter: &EventFilter) -> EventLines {
    let mut lines = daemon
        .client()
        .events(filter)
        .unwrap_or_else(|e| panic!("GET /v1/events: {e}"));
    lines
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    match lines.next() {
        Some(Ok(StreamLine::Subscribed { filter: echoed })) => {
            assert_eq!(&echoed, filter, "the stream echoes its filter");
        }
        other => panic!("expected the subscribed line first, got {other:?}"),
    }
    lines
}

/// Events up to and including the first that `last` accepts.
fn events_until(lines: &mut EventLines, last: impl Fn(&VerdictEvent) -> bool) -> Vec<VerdictEvent> {
    let mut events = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(StreamLine::Event(event))) => {
                let done = last(&event);
                events.push(*event);
                if done {
                    return events;
                }
            }
            other => panic!("expected more events (so far {events:#?}), got {other:?}"),
        }
    }
}

fn dst_port(event: &VerdictEvent) -> Option<u16> {
    event.flow.as_ref().and_then(|f| f.dst_port)
}

/// The guest's connect to `port`, which must succeed, echoing once.
fn connect_echo(lab: &Lab, port: u16) -> SocketAddr {
    let mut stream = lab
        .guest_connects(port)
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    assert!(echoes(&mut stream, "one"));
    assert!(echoes(&mut stream, "two"));
    stream.local_addr().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn logged_rule_reports_each_new_flow_once_and_drops_show_default_drops() {
    if !root_or_skip("logged_rule_reports_each_new_flow_once_and_drops_show_default_drops") {
        return;
    }
    let lab = Lab::new("ev-flow");
    let accept = format!(
        r#"{{ "action": "accept", "protocol": "tcp", "port": 8080, "remote": "{HOST_IP}", "log": true, "description": "the echo" }},
           {{ "action": "accept", "protocol": "icmp" }}"#
    );
    lab.host
        .rules
        .write("vm.json", &rules(&accept, r#", "log": "drops""#));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(10));
    let mut lines = subscribe(&daemon, &EventFilter::default());

    let flows: Vec<SocketAddr> = (0..3).map(|_| connect_echo(&lab, 8080)).collect();
    // An accepted ping is not logged (its rule is not); the marker is a
    // connect nothing accepts: a default drop, logged by "drops".
    assert!(lab.guest_pings_host());
    assert!(lab.guest_connects(9090).is_err(), "9090 is not allowed");
    let events = events_until(&mut lines, |e| dst_port(e) == Some(9090));

    let (marker, flow_events) = events.split_last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(
        flow_events.len(),
        3,
        "one event per new flow, none for their later packets: {flow_events:#?}"
    );
    for (event, local) in flow_events.iter().zip(&flows) {
        assert_eq!(
            event.to_string(),
            format!(
                "ins-vm egress ACCEPT tcp {local} → {HOST_IP}:8080 by sg-vm egress #0 \"the echo\""
            )
        );
        assert_eq!(
            (event.verdict, event.reason.as_str(), event.suppressed),
            (EventVerdict::Accept, "accept-rule", 0)
        );
        assert_eq!(event.interface.as_deref(), Some(TAP));
    }
    assert_eq!(
        (marker.verdict, marker.reason.as_str(), &marker.rule),
        (EventVerdict::Drop, "drop-default", &None),
        "{marker:#?}"
    );
    assert!(
        marker
            .to_string()
            .ends_with(&format!("→ {HOST_IP}:9090 by default")),
        "{marker}"
    );

    // The same through a filter: only drops.
    let mut drops = subscribe(
        &daemon,
        &EventFilter {
            verdict: Some(EventVerdict::Drop),
            ..EventFilter::default()
        },
    );
    connect_echo(&lab, 8080);
    assert!(lab.guest_connects(9091).is_err());
    let first = events_until(&mut drops, |_| true);
    assert_eq!(
        dst_port(&first[0]),
        Some(9091),
        "the accept is filtered out"
    );

    // The daemon's log carries each event as a line of its own.
    let log = daemon.log_text();
    assert!(
        log.contains("by sg-vm egress #0 \"the echo\""),
        "no event in the log:\n{log}"
    );
}

#[test]
fn audit_passes_what_the_rules_drop_and_reports_would_drop() {
    if !root_or_skip("audit_passes_what_the_rules_drop_and_reports_would_drop") {
        return;
    }
    let lab = Lab::new("ev-audit");
    let deny = format!(
        r#"{{ "action": "drop", "protocol": "tcp", "port": 8080, "remote": "{HOST_IP}", "description": "no echo" }}"#
    );
    lab.host.rules.write(
        "vm.json",
        &rules(&deny, r#", "enforcement": "audit", "log": "drops""#),
    );
    let _servers = echo_servers(&lab, &[8080, 9090]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(10));
    let status = daemon.status();
    let vm = status
        .instances
        .iter()
        .find(|i| i.id == "ins-vm")
        .unwrap_or_else(|| panic!("no ins-vm in {status:#?}"));
    assert_eq!(vm.enforcement, "audit", "status says audit");
    assert_eq!(status.audit_instances, ["ins-vm"]);
    let mut lines = subscribe(
        &daemon,
        &EventFilter {
            instance: Some("ins-vm".into()),
            direction: Some(Direction::Egress),
            ..EventFilter::default()
        },
    );

    // Both pass (and conntrack treats them as accepted: the echo works).
    let by_rule = connect_echo(&lab, 8080);
    let by_default = connect_echo(&lab, 9090);
    let events = events_until(&mut lines, |e| dst_port(e) == Some(9090));
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(
        events[0].to_string(),
        format!(
            "ins-vm egress WOULD-DROP tcp {by_rule} → {HOST_IP}:8080 by sg-vm egress #0 \"no echo\""
        )
    );
    assert_eq!(events[0].reason, "would-drop-rule");
    assert_eq!(
        events[1].to_string(),
        format!("ins-vm egress WOULD-DROP tcp {by_default} → {HOST_IP}:9090 by default")
    );
    assert_eq!(events[1].reason, "would-drop-default");

    // Enforcing again: the same connect fails, as a drop.
    let enforce = Control::of(&daemon).reload_after(|| {
        lab.host
            .rules
            .replace("vm.json", &rules(&deny, r#", "log": "drops""#))
    });
    assert_eq!(enforce.audit_instances, Vec::<String>::new());
    assert!(lab.guest_connects(8080).is_err(), "enforced now");
    let events = events_until(&mut lines, |e| dst_port(e) == Some(8080));
    let last = events.last().unwrap_or_else(|| panic!("no event"));
    assert_eq!(
        (last.verdict, last.reason.as_str()),
        (EventVerdict::Drop, "drop-rule")
    );
}

#[test]
fn trace_gives_no_event() {
    if !root_or_skip("trace_gives_no_event") {
        return;
    }
    let lab = Lab::new("ev-trace");
    let accept = format!(
        r#"{{ "action": "accept", "protocol": "tcp", "port": 8080, "remote": "{HOST_IP}", "log": true }}"#
    );
    lab.host
        .rules
        .write("vm.json", &rules(&accept, r#", "log": "all""#));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(10));
    let mut lines = subscribe(&daemon, &EventFilter::default());

    let control = Control::of(&daemon);
    for port in [8080, 9999] {
        let trace = control.trace(&TraceRequest {
            port: Some(port),
            ..TraceRequest::new(
                "ins-vm",
                Direction::Egress,
                "tcp",
                HOST_IP.parse().unwrap_or_else(|e| panic!("{e}")),
            )
        });
        assert!(!trace.disagree, "{trace:#?}");
    }
    // The first event is the real flow's: the traces (one accepted by a
    // logged rule, one dropped by default under "all") left none.
    let real = connect_echo(&lab, 8080);
    let events = events_until(&mut lines, |_| true);
    let flow = events[0].flow.as_ref().unwrap_or_else(|| panic!("no flow"));
    assert_eq!(
        (flow.src_port, flow.dst_port),
        (Some(real.port()), Some(8080)),
        "{events:#?}"
    );
}

#[test]
fn bad_filters_are_refused() {
    if !root_or_skip("bad_filters_are_refused") {
        return;
    }
    let lab = Lab::new("ev-filter");
    lab.host.rules.write("vm.json", &rules("", ""));
    let daemon = start(&lab);
    let cases = [
        (
            "/v1/events?verdict=denied",
            "unknown verdict \"denied\"; expected accept, drop or would-drop",
        ),
        (
            "/v1/events?instance=ins-nope",
            "filter names no instance \"ins-nope\" in the policy in force",
        ),
        (
            "/v1/events?group=sg-nope",
            "filter names no security group \"sg-nope\" in the policy in force",
        ),
    ];
    for (path, message) in cases {
        let response = raw(&daemon, "GET", path, None);
        let body: secgroup_api::ErrorBody =
            serde_json::from_slice(&response.body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            (response.status, body.error.as_str()),
            (400, message),
            "{path}"
        );
    }
}
