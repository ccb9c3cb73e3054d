//! Per-rule hit counters and trace agree with the traffic that ran, and a
//! trace counts nowhere.

use secgroup_api::{Direction, TraceRequest};
use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    CLIENT_A, CLIENT_B, Endpoint, RuleFile, TestBed, accept, drop, root_or_skip, tcp, udp,
};

use crate::start;

#[test]
fn hit_counters_count_new_flows_per_rule_and_trace_names_the_same_rules() {
    if !root_or_skip("hit_counters_count_new_flows_per_rule_and_trace_names_the_same_rules") {
        return;
    }
    let bed = TestBed::new("count");
    let vm = bed.vm("count", 44);
    let rules = RuleFile::new()
        .group(
            "sg-count",
            vec![
                accept("udp", "5000", CLIENT_A),
                drop("udp", "5000", CLIENT_B),
                accept("tcp", "8080", "0.0.0.0/0"),
            ],
            vec![accept("all", "", "")],
        )
        .instance(&vm, &["sg-count"]);
    let (_daemon, control) = start(&bed, &rules, &[vm.instance()]);
    let me = Endpoint::new(&vm.ns, &vm.ip4);
    let a = Endpoint::new(&bed.world, CLIENT_A);
    let b = Endpoint::new(&bed.world, CLIENT_B);

    // Each probe is one new flow: a fresh source port, one datagram (its
    // answer is a reply, counted by no rule), or one handshake that
    // completes at the first SYN.
    let flows = [
        (udp(a, me, 5000), Accepted, 0),
        (udp(a, me, 5000), Accepted, 0),
        (udp(a, me, 5000), Accepted, 0),
        (udp(b, me, 5000), Blocked, 1),
        (udp(b, me, 5000), Blocked, 1),
        (tcp(a, me, 8080), Accepted, 2),
        (tcp(b, me, 8080), Accepted, 2),
    ];
    let mut expected = [0u64; 3];
    for (flow, outcome, rule) in flows {
        control.expect(flow, outcome, &format!("sg-count ingress #{rule}"));
        expected[rule] += 1;
    }
    let hits = control.hits("sg-count", Direction::Ingress);
    assert_eq!(
        hits, expected,
        "ingress hits per rule after 3 accepted + 2 dropped datagrams and 2 connections"
    );
    assert_eq!(
        control.hits("sg-count", Direction::Egress),
        [0],
        "the VM opened no flow: its replies hit no egress rule"
    );

    // Trace: it names the same rules, and leaves the counters as they were
    // (its run asks for the decision report: a question, not traffic).
    let verdicts = |reason| control.verdict_packets(&vm.instance(), Direction::Ingress, reason);
    let counted = (verdicts("accept-rule"), verdicts("drop-rule"));
    let cases = [
        (CLIENT_A, "udp", 5000, 0, "accept"),
        (CLIENT_B, "udp", 5000, 1, "drop"),
        (CLIENT_B, "tcp", 8080, 2, "accept"),
    ];
    for (remote, protocol, port, rule, action) in cases {
        let request = TraceRequest {
            port: Some(port),
            ..TraceRequest::new(
                vm.instance(),
                Direction::Ingress,
                protocol,
                remote.parse().unwrap_or_else(|e| panic!("{remote}: {e}")),
            )
        };
        let trace = control.trace(&request);
        let position = trace.kernel.rule.as_ref().map(|r| r.position);
        assert!(
            trace.kernel.action == action && position == Some(rule) && !trace.disagree,
            "{protocol} {remote} -> :{port} hit sg-count ingress #{rule} ({action}); trace says {trace:#?}"
        );
        let origin = trace.kernel.rule.and_then(|r| r.origin);
        assert_eq!(
            origin.map(|o| (o.security_group, o.index)),
            Some(("sg-count".to_owned(), rule)),
            "the traced rule's origin"
        );
    }
    assert_eq!(
        control.hits("sg-count", Direction::Ingress),
        expected,
        "a trace counts no rule hit"
    );
    assert_eq!(
        (verdicts("accept-rule"), verdicts("drop-rule")),
        counted,
        "a trace counts no verdict"
    );
}
