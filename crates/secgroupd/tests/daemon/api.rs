//! The API's answers that are not the happy path, trace, flush, and who
//! may call what.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use secgroup_api::{ConntrackList, ErrorBody, FlushResult, TraceRequest, TraceResponse, paths};

use crate::harness::*;

/// method, path, body → status, the start of the error, the known ids.
type ErrorCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
    Option<&'static [&'static str]>,
);

fn error_of(response: &secgroup_api::RawResponse) -> ErrorBody {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "error body is not JSON ({e}): {}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

fn trace(daemon: &Daemon, request: &TraceRequest) -> TraceResponse {
    daemon
        .client()
        .post(paths::TRACE, Some(request))
        .unwrap_or_else(|e| panic!("trace {request:?}: {e}"))
}

fn trace_request(
    direction: secgroup_api::Direction,
    protocol: &str,
    remote: &str,
    port: Option<u16>,
) -> TraceRequest {
    let remote = remote.parse().unwrap_or_else(|e| panic!("{remote}: {e}"));
    TraceRequest {
        port,
        ..TraceRequest::new("ins-vm", direction, protocol, remote)
    }
}

#[test]
fn errors_trace_and_flush() {
    if !root_or_skip("errors_trace_and_flush") {
        return;
    }
    let lab = Lab::new("api");
    lab.host
        .rules
        .write("vm.json", &vm_rules(ACCEPT_ICMP, ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080]);
    let daemon = start(&lab);

    // (method, path, body) → (status, error starts with, known ids)
    let cases: &[ErrorCase] = &[
        (
            "GET",
            "/v1/instances/ins-nope",
            None,
            404,
            "no instance \"ins-nope\"",
            Some(&["ins-vm"]),
        ),
        (
            "GET",
            "/v1/security-groups/sg-nope",
            None,
            404,
            "no security group \"sg-nope\"",
            Some(&["sg-vm"]),
        ),
        (
            "GET",
            "/v1/security-groups/not-an-id",
            None,
            404,
            "no security group \"not-an-id\"",
            Some(&["sg-vm"]),
        ),
        (
            "GET",
            "/v1/nothing",
            None,
            404,
            "no endpoint \"/v1/nothing\"",
            None,
        ),
        (
            "POST",
            "/v1/status",
            None,
            405,
            "POST is not allowed on /v1/status",
            None,
        ),
        (
            "GET",
            "/v1/reload",
            None,
            405,
            "GET is not allowed on /v1/reload",
            None,
        ),
        (
            "PUT",
            "/v1/trace",
            Some("{}"),
            405,
            "PUT is not allowed on /v1/trace",
            None,
        ),
        (
            "POST",
            "/v1/trace",
            Some("{ nope"),
            400,
            "invalid trace request: key must be a string",
            None,
        ),
        (
            "POST",
            "/v1/trace",
            Some(
                r#"{"instance":"ins-vm","direction":"ingress","protocol":"tcp","remote":"203.0.113.9","port":22,"color":"red"}"#,
            ),
            400,
            "invalid trace request: unknown field `color`",
            None,
        ),
        (
            "POST",
            "/v1/trace",
            Some(
                r#"{"instance":"ins-nope","direction":"ingress","protocol":"tcp","remote":"203.0.113.9","port":22}"#,
            ),
            404,
            "no instance \"ins-nope\"",
            Some(&["ins-vm"]),
        ),
        (
            "POST",
            "/v1/trace",
            Some(
                r#"{"instance":"ins-vm","direction":"ingress","protocol":"tcp","remote":"203.0.113.9"}"#,
            ),
            400,
            "tcp and udp traces need a \"port\"",
            None,
        ),
        (
            "POST",
            "/v1/trace",
            Some(
                r#"{"instance":"ins-vm","direction":"ingress","protocol":"icmp","remote":"2001:db8::9"}"#,
            ),
            400,
            "ICMP over IPv6 is icmpv6",
            None,
        ),
        (
            "POST",
            "/v1/trace",
            Some(
                r#"{"instance":"ins-vm","direction":"ingress","protocol":"icmpv6","remote":"2001:db8::9"}"#,
            ),
            400,
            "instance ins-vm has no IPv6 address; give \"local\"",
            None,
        ),
        (
            "GET",
            "/v1/conntrack?limit=0",
            None,
            400,
            "limit must be a number from 1 to",
            None,
        ),
        (
            "GET",
            "/v1/conntrack?instance=ins-nope",
            None,
            404,
            "no instance \"ins-nope\"",
            Some(&["ins-vm"]),
        ),
        (
            "POST",
            "/v1/conntrack/flush",
            None,
            400,
            "name the instance whose flows to flush",
            None,
        ),
    ];
    for (method, path, body, status, message, known) in cases {
        let response = raw(&daemon, method, path, *body);
        let error = error_of(&response);
        assert_eq!(response.status, *status, "{method} {path}: {error:?}");
        assert!(
            error.error.starts_with(message),
            "{method} {path}: {:?} should start with {message:?}",
            error.error
        );
        let known: Option<Vec<String>> = known.map(|k| k.iter().map(|s| s.to_string()).collect());
        assert_eq!(error.known, known, "{method} {path}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        if *status == 405 {
            assert!(
                response.header("allow").is_some(),
                "405 names the allowed method: {method} {path}"
            );
        }
    }
    // A request that is not HTTP at all does not hurt the daemon.
    {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(lab.host.socket())
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = stream.write_all(b"\x00\x01garbage\r\n\r\n");
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
    assert_eq!(daemon.status().generation, 1, "still answering");

    // Traces: the kernel and the reference agree, and leave no flow behind.
    let before: ConntrackList = daemon
        .client()
        .get(&paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    use secgroup_api::Direction::{Egress, Ingress};
    let cases = [
        (
            trace_request(Egress, "tcp", HOST_IP, Some(8080)),
            "accept",
            "accept-rule",
            Some(0),
        ),
        (
            trace_request(Egress, "tcp", HOST_IP, Some(9090)),
            "drop",
            "drop-default",
            None,
        ),
        (
            trace_request(Egress, "udp", "203.0.113.9", Some(53)),
            "drop",
            "drop-default",
            None,
        ),
        (
            trace_request(Ingress, "icmp", "203.0.113.9", None),
            "accept",
            "accept-rule",
            Some(0),
        ),
        (
            trace_request(Ingress, "tcp", "203.0.113.9", Some(22)),
            "drop",
            "drop-default",
            None,
        ),
    ];
    for (request, action, reason, position) in &cases {
        let response = trace(&daemon, request);
        assert!(
            !response.disagree,
            "kernel and reference disagree on {request:?}: {response:?}"
        );
        assert_eq!(response.kernel.action, *action, "{request:?}: {response:?}");
        assert_eq!(
            response.reference.action, *action,
            "{request:?}: {response:?}"
        );
        assert_eq!(response.kernel.reason, *reason, "{request:?}: {response:?}");
        assert_eq!(
            response.kernel.rule.as_ref().map(|r| r.position),
            *position,
            "{request:?}: {response:?}"
        );
        assert_eq!(
            response.reference.rule.as_ref().map(|r| r.position),
            *position,
            "{request:?}: {response:?}"
        );
        assert_eq!(response.interface, TAP);
    }
    let after: ConntrackList = daemon
        .client()
        .get(&paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        after.total, before.total,
        "traces leave no conntrack entries: {after:?}"
    );

    // Flush: a real flow, then none.
    let mut flow = lab.guest_connects(8080).unwrap_or_else(|e| panic!("{e}"));
    assert!(echoes(&mut flow, "x"));
    let listed: ConntrackList = daemon
        .client()
        .get(&paths::conntrack(Some("ins-vm"), Some(1)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed.total >= 1 && listed.entries.len() == 1, "{listed:?}");
    let flushed: FlushResult = daemon
        .client()
        .post::<(), _>(&paths::conntrack_flush(Some("ins-vm")), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(flushed.flushed >= 1, "{flushed:?}");
    let listed: ConntrackList = daemon
        .client()
        .get(&paths::conntrack(Some("ins-vm"), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.total, 0, "{listed:?}");

    // An API reload of unchanged rules.
    let report: secgroup_api::ReloadReport = daemon
        .client()
        .post::<(), _>(paths::RELOAD, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.trigger, secgroup_api::ReloadTrigger::Api);
    assert_eq!(report.outcome, secgroup_api::ReloadOutcome::Unchanged);
}

#[test]
fn socket_permissions() {
    if !root_or_skip("socket_permissions") {
        return;
    }
    let lab = Lab::new("perm");
    lab.host.rules.write("vm.json", &vm_rules("", ""));
    let daemon = start(&lab);
    let mode = std::fs::metadata(lab.host.socket())
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "socket mode {mode:o}");
    // The temp dir must be traversable for the unprivileged user.
    std::fs::set_permissions(&lab.host.dir.path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));

    const NOBODY: u32 = 65534;
    let refused = connect_as(NOBODY, NOBODY, &lab.host.socket());
    assert_eq!(
        refused.as_ref().err().and_then(|e| e.raw_os_error()),
        Some(libc::EACCES),
        "mode 0660 keeps others out: {refused:?}"
    );

    // An operator opens the socket for read-only monitoring: reads work,
    // changes are still refused, by credentials.
    std::fs::set_permissions(lab.host.socket(), std::fs::Permissions::from_mode(0o666))
        .unwrap_or_else(|e| panic!("{e}"));
    let timeout = Duration::from_secs(5);
    let read = connect_as(NOBODY, NOBODY, &lab.host.socket())
        .unwrap_or_else(|e| panic!("connect as nobody: {e}"));
    let response = secgroup_api::exchange(read, timeout, "GET", paths::STATUS, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "anyone who can connect may read");
    let reloads = daemon.status().reloads;
    for (path, body) in [
        (paths::RELOAD.to_owned(), None),
        (paths::conntrack_flush(None), None),
        (paths::TRACE.to_owned(), Some(&br#"{"instance":"ins-vm","direction":"ingress","protocol":"icmp","remote":"203.0.113.9"}"#[..])),
    ] {
        let stream = connect_as(NOBODY, NOBODY, &lab.host.socket()).unwrap_or_else(|e| panic!("connect as nobody: {e}"));
        let response = secgroup_api::exchange(stream, timeout, "POST", &path, body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status, 403, "POST {path} as nobody: {}", String::from_utf8_lossy(&response.body));
        assert!(error_of(&response).error.contains("only root and members of group secgroup"));
    }
    assert_eq!(
        daemon.status().reloads,
        reloads,
        "the refused reload did not run"
    );
    // Root still may.
    let response = raw(&daemon, "POST", paths::RELOAD, None);
    assert_eq!(response.status, 200);
}
