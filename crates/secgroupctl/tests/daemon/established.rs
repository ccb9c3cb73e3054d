//! `secgroupctl trace` of a packet of a flow real traffic opened: the
//! trace shows the conntrack entry that passes it; another source port is
//! a new flow the rules classify.

use std::time::Duration;

use secgroup_api::TraceResponse;
use secgroup_testbed::{HOST_IP, TcpEcho};

use crate::lab::{Lab, root_or_skip};

/// The VM may open TCP to the host's 8080 and nothing else; ingress is
/// empty on purpose.
const RULES: &str = r#"{
  "security_groups": [
    { "id": "sg-vm", "ingress": [],
      "egress": [ { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.1" } ] }
  ],
  "instances": [
    { "id": "ins-vm", "interface": "tap-vm", "ips": ["198.51.100.2"], "security_groups": ["sg-vm"] }
  ]
}
"#;

#[test]
fn trace_an_established_flow() {
    if !root_or_skip("trace_an_established_flow") {
        return;
    }
    let lab = Lab::start(RULES);
    let _echo = TcpEcho::start(lab.bed().host_end(), 8080);
    let mut stream = lab
        .bed()
        .guest_connects(8080)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(secgroup_testbed::echoes(
        &mut stream,
        "hello",
        Duration::from_secs(1)
    ));
    let sport = stream
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port()
        .to_string();
    let base = [
        "trace",
        "--instance",
        "ins-vm",
        "--protocol",
        "tcp",
        "--remote",
        HOST_IP,
        "--tcp-flags",
        "ack",
    ];

    // The host's answer: no ingress rule, passed as a reply of the flow.
    let mut reply = base.to_vec();
    reply.extend([
        "--direction",
        "ingress",
        "--port",
        &sport,
        "--source-port",
        "8080",
    ]);
    lab.ctl(&reply)
        .exits(0)
        .fits()
        .has(&format!(
            "packet     ingress to ins-vm (tap-vm): tcp {HOST_IP}:8080 > 198.51.100.2:{sport} [ack]\n"
        ))
        .has("kernel     accept by the tracked flow of rule 0 (sg-vm egress #0)  [accept-reply, ")
        .has("reference  drop   no rule matched\n")
        .has("conntrack  established tcp flow opened by egress (sg-vm egress #0)\n           ")
        .has(" packets in/out, expires in ")
        .has("verdict    ACCEPT: the kernel and the reference evaluator agree\n");
    let json: TraceResponse = lab
        .ctl(&["--json"].iter().chain(&reply).copied().collect::<Vec<_>>())
        .exits(0)
        .json();
    let entry = json
        .conntrack
        .unwrap_or_else(|| panic!("no entry in the JSON"));
    assert_eq!(
        (
            entry.local_port.to_string(),
            entry.remote_port,
            entry.state.as_str()
        ),
        (sport.clone(), 8080, "established")
    );

    // The same from another source port: no flow, the rules drop it.
    let mut stranger = base.to_vec();
    stranger.extend([
        "--direction",
        "ingress",
        "--port",
        &sport,
        "--source-port",
        "8081",
    ]);
    lab.ctl(&stranger)
        .exits(1)
        .has("conntrack  no tracked flow: classified as a new flow by the rules\n")
        .has("kernel     drop   no rule matched  [drop-default, ");

    // Arguments that do not fit the protocol are usage errors.
    lab.ctl(&[
        "trace",
        "--instance",
        "ins-vm",
        "--direction",
        "ingress",
        "--protocol",
        "udp",
        "--remote",
        HOST_IP,
        "--port",
        "53",
        "--tcp-flags",
        "syn",
    ])
    .exits(2);
    lab.ctl(&[
        "trace",
        "--instance",
        "ins-vm",
        "--direction",
        "ingress",
        "--protocol",
        "icmp",
        "--remote",
        HOST_IP,
        "--icmp-type",
        "11",
    ])
    .exits(2);
    assert!(secgroup_testbed::echoes(
        &mut stream,
        "still",
        Duration::from_secs(1)
    ));
}
