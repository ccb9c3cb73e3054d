//! `/metrics` on the API socket and on `--metrics-listen`: what promtool
//! accepts, and per-rule and verdict counters that agree with the JSON
//! API after real traffic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use secgroup_api::{Direction, SecurityGroupDetail};
use secgroup_testbed::Control;

use crate::harness::*;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `promtool check metrics` on `text`: panics with what it found.
fn promtool_check(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running promtool ({e}); it is in Debian's prometheus package (cargo xtask deps)"
            )
        });
    child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("promtool's stdin"))
        .write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing to promtool: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for promtool: {e}"));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- the metrics:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// The value of the sample `series` (name and labels exactly as
/// printed), if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")))
    })
}

/// A port nothing listens on in the host's namespace, on loopback.
fn free_port(lab: &Lab) -> u16 {
    lab.host.ns.run(|| {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("binding a loopback port: {e}"))
    })
}

/// An HTTP response, read to EOF.
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn content_type(&self) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim())
        })
    }
}

/// One request over TCP from inside the host's namespace.
fn tcp_request(lab: &Lab, addr: SocketAddr, method: &str, path: &str, accept: &str) -> Response {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    let raw = lab.host.ns.run(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {addr}: {e}"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("reading from {addr}: {e}"));
        raw
    });
    let raw = String::from_utf8(raw).unwrap_or_else(|e| panic!("not UTF-8: {e}"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {raw:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `/metrics` over the API socket.
fn socket_metrics(daemon: &Daemon) -> String {
    let response = raw(daemon, "GET", "/metrics", None);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some(PROMETHEUS_TEXT));
    String::from_utf8(response.body).unwrap_or_else(|e| panic!("not UTF-8: {e}"))
}

fn rule_series(name: &str, direction: &str, index: usize) -> String {
    format!(
        r#"secgroup_rule_{name}_total{{instance="ins-vm",group="sg-vm",direction="{direction}",index="{index}"}}"#
    )
}

/// Every rule's packets and bytes in `text` equal the group's hits.
fn rules_agree(text: &str, group: &SecurityGroupDetail) -> Result<(), String> {
    for (direction, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
        for rule in rules {
            for (name, hits) in [("packets", rule.hits.packets), ("bytes", rule.hits.bytes)] {
                let series = rule_series(name, direction, rule.index);
                let got = sample(text, &series);
                if got != Some(hits as f64) {
                    return Err(format!("{series}: {got:?}, the API says {hits}"));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn scraped_over_socket_and_tcp() {
    if !root_or_skip("scraped_over_socket_and_tcp") {
        return;
    }
    let lab = Lab::new("metrics");
    lab.host
        .rules
        .write("vm.json", &vm_rules(ACCEPT_ICMP, ACCEPT_TCP_8080));
    let _servers = echo_servers(&lab, &[8080]);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port(&lab)));
    let daemon = start_with(&lab, &["--metrics-listen", &addr.to_string()]);
    daemon.wait_attached(Duration::from_secs(10));

    // Real traffic: the guest connects to the port its egress allows.
    let mut flow = lab
        .guest_connects(8080)
        .unwrap_or_else(|e| panic!("the allowed connect failed: {e}"));
    assert!(echoes(&mut flow, "counted"));

    let control = Control::of(&daemon);
    // The counters move while packets still flow: compare a scrape with
    // the API answers around it until both sides read alike.
    let mut last = String::new();
    let agreed = secgroup_testbed::poll(Duration::from_secs(10), || {
        let before = control.group("sg-vm");
        let text = socket_metrics(&daemon);
        let after = control.group("sg-vm");
        last = match (before == after, rules_agree(&text, &after)) {
            (true, Ok(())) => return Some(()),
            (false, _) => "the counters moved during the scrape".to_owned(),
            (true, Err(e)) => e,
        };
        None
    });
    assert!(
        agreed.is_some(),
        "per-rule counters vs /v1/security-groups/sg-vm: {last}"
    );

    let text = socket_metrics(&daemon);
    promtool_check(&text);
    let egress_hits = sample(&text, &rule_series("packets", "egress", 0));
    assert!(
        egress_hits.is_some_and(|n| n >= 1.0),
        "the allowed connect is counted: {egress_hits:?}\n{text}"
    );
    let accepted = control.verdict_packets("ins-vm", Direction::Egress, "accept-rule");
    let series = r#"secgroup_verdict_packets_total{instance="ins-vm",direction="egress",reason="accept-rule"}"#;
    assert!(
        accepted >= 1 && sample(&text, series).is_some_and(|n| n >= 1.0),
        "{series}: API {accepted}\n{text}"
    );
    let status = daemon.status();
    for (series, expected) in [
        ("secgroup_generation", status.generation as f64),
        ("secgroup_reloads_total", status.reloads as f64),
        ("secgroup_reload_failures_total", 0.0),
        (
            "secgroup_reload_duration_seconds_count",
            status.reloads as f64,
        ),
        ("secgroup_healthy", 1.0),
        (r#"secgroup_interfaces{state="attached"}"#, 1.0),
        (r#"secgroup_degraded_reasons{kind="reload-failed"}"#, 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(expected), "{series}\n{text}");
    }
    let in_use = sample(&text, "secgroup_conntrack_entries");
    let capacity = sample(&text, "secgroup_conntrack_capacity");
    assert!(
        in_use.is_some_and(|n| n >= 1.0) && capacity.is_some_and(|c| c >= in_use.unwrap_or(0.0)),
        "the flow is tracked: {in_use:?} of {capacity:?}"
    );
    drop(flow);

    // The same over TCP, from anyone, in either format; nothing else there.
    let response = tcp_request(&lab, addr, "GET", "/metrics", "*/*");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.content_type(), Some(PROMETHEUS_TEXT));
    promtool_check(&response.body);
    assert!(
        sample(&response.body, &rule_series("packets", "egress", 0)) >= egress_hits,
        "{}",
        response.body
    );
    let open = tcp_request(
        &lab,
        addr,
        "GET",
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    );
    assert_eq!(open.status, 200, "{}", open.head);
    assert_eq!(
        open.content_type(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    assert!(open.body.contains("# TYPE secgroup_rule_packets counter\n"));
    for (method, path, status) in [
        ("GET", "/v1/status", 404),
        ("POST", "/v1/reload", 404),
        ("POST", "/metrics", 405),
    ] {
        let response = tcp_request(&lab, addr, method, path, "*/*");
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.head
        );
    }
}
