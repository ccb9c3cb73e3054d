//! Traces beyond a first SYN: a packet of a flow real traffic opened is
//! passed by its conntrack entry, which the trace shows and leaves as it
//! was; a packet of an untracked flow is classified as a new one; ICMP
//! types and codes, TCP flags, and what is refused.

use secgroup_api::Direction::{Egress, Ingress};
use secgroup_api::{ConntrackEntry, ConntrackList, ErrorBody, TraceRequest, TraceResponse, paths};

use crate::harness::*;

fn request(direction: secgroup_api::Direction, protocol: &str, remote: &str) -> TraceRequest {
    TraceRequest::new(
        "ins-vm",
        direction,
        protocol,
        remote.parse().unwrap_or_else(|e| panic!("{remote}: {e}")),
    )
}

fn trace(daemon: &Daemon, request: &TraceRequest) -> TraceResponse {
    let response: TraceResponse = daemon
        .client()
        .post(paths::TRACE, Some(request))
        .unwrap_or_else(|e| panic!("trace {request:?}: {e}"));
    assert!(!response.disagree, "{request:?}: {response:?}");
    response
}

/// The entry of the flow the guest opened from `port` to the host's 8080.
fn entry(daemon: &Daemon, port: u16) -> Option<ConntrackEntry> {
    let list: ConntrackList = daemon
        .client()
        .get(&paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    list.entries
        .into_iter()
        .find(|e| e.protocol == "tcp" && e.local_port == port && e.remote_port == 8080)
}

#[test]
fn established_flows_are_traced_by_their_conntrack_entry() {
    if !root_or_skip("established_flows_are_traced_by_their_conntrack_entry") {
        return;
    }
    let lab = Lab::new("trace");
    lab.host
        .rules
        .write("vm.json", &vm_rules(ACCEPT_ICMP, ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start(&lab);

    // A real connection, guest to host: egress, accepted by sg-vm egress #0.
    let mut stream = lab.guest_connects(8080).unwrap_or_else(|e| panic!("{e}"));
    assert!(echoes(&mut stream, "before"));
    let sport = stream.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let tracked = entry(&daemon, sport).unwrap_or_else(|| panic!("the connection is not tracked"));
    assert_eq!(
        (tracked.state.as_str(), tracked.direction),
        ("established", Egress)
    );

    // The next segment the guest would send: passed by the entry.
    let mut ack = request(Egress, "tcp", HOST_IP);
    ack.port = Some(8080);
    ack.source_port = Some(sport);
    ack.tcp_flags = Some("ack,psh".into());
    let response = trace(&daemon, &ack);
    assert_eq!(
        (
            response.kernel.action.as_str(),
            response.kernel.reason.as_str()
        ),
        ("accept", "accept-established"),
        "{response:?}"
    );
    assert_eq!(response.packet.tcp_flags.as_deref(), Some("psh,ack"));
    let shown = response
        .conntrack
        .clone()
        .unwrap_or_else(|| panic!("no entry shown: {response:?}"));
    assert_eq!(
        (shown.local_port, shown.remote_port, shown.state.as_str()),
        (sport, 8080, "established")
    );
    assert_eq!(
        shown
            .rule
            .as_ref()
            .map(|r| (r.security_group.as_str(), r.index)),
        Some(("sg-vm", 0)),
        "the rule that opened it"
    );
    assert_eq!(
        (shown.packets_in, shown.packets_out),
        (tracked.packets_in, tracked.packets_out),
        "the entry as it was before the run"
    );
    assert!(
        response
            .note
            .is_some_and(|n| n.contains("a packet of a tracked flow"))
    );

    // Its reply from the host: ingress has no TCP rule at all, yet the
    // kernel passes it; the reference says what the rules would do.
    let mut reply = request(Ingress, "tcp", HOST_IP);
    reply.port = Some(sport);
    reply.source_port = Some(8080);
    reply.tcp_flags = Some("ack".into());
    let response = trace(&daemon, &reply);
    assert_eq!(
        (
            response.kernel.action.as_str(),
            response.kernel.reason.as_str()
        ),
        ("accept", "accept-reply"),
        "{response:?}"
    );
    assert_eq!(response.reference.action, "drop", "no rule would");
    assert!(response.conntrack.is_some(), "{response:?}");

    // A traced reset closes nothing: the entry is put back as it was.
    let mut reset = ack.clone();
    reset.tcp_flags = Some("rst".into());
    trace(&daemon, &reset);
    let after = entry(&daemon, sport).unwrap_or_else(|| panic!("the entry is gone"));
    assert_eq!(
        (after.state.as_str(), after.packets_in, after.packets_out),
        ("established", tracked.packets_in, tracked.packets_out),
        "traces leave the flow as it was"
    );
    assert!(echoes(&mut stream, "after"), "the connection still works");

    // Another source port is no tracked flow: classified by the rules as a
    // new flow (mid-stream), and its entry removed again.
    let untracked = if sport == u16::MAX {
        sport - 1
    } else {
        sport + 1
    };
    let mut other = ack.clone();
    other.source_port = Some(untracked);
    let response = trace(&daemon, &other);
    assert_eq!(response.conntrack, None, "{response:?}");
    assert_eq!(
        (
            response.kernel.reason.as_str(),
            response.kernel.rule.as_ref().map(|r| r.position),
            response.reference.rule.as_ref().map(|r| r.position)
        ),
        ("accept-rule", Some(0), Some(0)),
        "{response:?}"
    );
    assert!(
        entry(&daemon, untracked).is_none(),
        "the trace left its entry"
    );
    let mut closed = other.clone();
    closed.port = Some(9090);
    let response = trace(&daemon, &closed);
    assert_eq!(response.kernel.reason, "drop-default", "{response:?}");

    // ICMP beyond echo requests: a timestamp request is accepted by the
    // ICMP rule; an echo reply nobody asked for too (rules, not conntrack).
    let mut timestamp = request(Ingress, "icmp", "203.0.113.9");
    timestamp.icmp_type = Some(13);
    let response = trace(&daemon, &timestamp);
    assert_eq!(
        (response.kernel.reason.as_str(), response.packet.icmp_type),
        ("accept-rule", Some(13)),
        "{response:?}"
    );
    let mut echo_reply = request(Ingress, "icmp", "203.0.113.9");
    echo_reply.icmp_type = Some(0);
    echo_reply.icmp_id = Some(4242);
    let response = trace(&daemon, &echo_reply);
    assert_eq!(
        (
            response.kernel.reason.as_str(),
            response.packet.src_port,
            response.conntrack.clone()
        ),
        ("accept-rule", 4242, None),
        "{response:?}"
    );

    // What cannot be traced is a 400 with the reason.
    let refused = |request: TraceRequest, message: &str| {
        let body = serde_json::to_string(&request).unwrap_or_else(|e| panic!("{e}"));
        let answer = raw(&daemon, "POST", paths::TRACE, Some(&body));
        assert_eq!(answer.status, 400, "{request:?}");
        let error: ErrorBody = serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer.body)));
        assert!(error.error.contains(message), "{request:?}: {error:?}");
    };
    let mut error = request(Ingress, "icmp", "203.0.113.9");
    error.icmp_type = Some(3);
    refused(error, "icmp type 3 is an error message");
    let mut flags = request(Ingress, "udp", "203.0.113.9");
    flags.port = Some(53);
    flags.tcp_flags = Some("syn".into());
    refused(flags, "\"tcp_flags\" applies to tcp only, not udp");
    let mut bad = ack.clone();
    bad.tcp_flags = Some("syn,nope".into());
    refused(bad, "unknown TCP flag \"nope\"");
    let mut code = request(Ingress, "icmp", "203.0.113.9");
    code.icmp_code = Some(1);
    refused(code, "an echo message has code 0, not 1");
}
