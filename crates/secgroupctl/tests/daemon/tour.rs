//! The README's operator tour, command by command, against the real
//! daemon: every `secgroupctl` line of it runs and succeeds, so the tour
//! never shows a command or a flag that does not exist. The rules give the
//! tour's names a home: `ins-web-1` on the lab's tap, the database
//! instances on another host, one of them in audit mode.

use std::time::Duration;

use crate::lab::{GUEST_IP, Lab, root_or_skip};

const README: &str = include_str!("../../../../README.md");

fn rules() -> String {
    format!(
        r#"{{
  "security_groups": [
    {{ "id": "sg-web", "name": "web",
      "ingress": [
        {{ "action": "accept", "protocol": "tcp", "port": "80,443", "description": "HTTP(S) from anywhere" }},
        {{ "action": "accept", "protocol": "tcp", "port": "22", "remote": "sg-bastion", "description": "SSH from the bastion only" }},
        {{ "action": "accept", "protocol": "icmp", "remote": "198.51.100.0/24" }}
      ],
      "egress": [ {{ "action": "accept", "protocol": "all" }} ] }},
    {{ "id": "sg-bastion", "name": "bastion",
      "ingress": [ {{ "action": "accept", "protocol": "tcp", "port": "22", "remote": "203.0.113.0/24" }} ],
      "egress": [ {{ "action": "accept", "protocol": "all" }} ] }},
    {{ "id": "sg-db", "name": "db",
      "ingress": [
        {{ "action": "accept", "protocol": "tcp", "port": "5432", "remote": "sg-web" }},
        {{ "action": "drop", "protocol": "all", "remote": "203.0.113.0/24", "log": true, "description": "deny the office" }}
      ],
      "egress": [] }}
  ],
  "instances": [
    {{ "id": "ins-web-1", "interface": "tap-vm", "ips": ["{GUEST_IP}"], "security_groups": ["sg-web"] }},
    {{ "id": "ins-bastion", "ips": ["198.51.100.1"], "security_groups": ["sg-bastion"] }},
    {{ "id": "ins-db-1", "ips": ["198.51.100.10"], "security_groups": ["sg-db"], "log": "drops" }},
    {{ "id": "ins-db-2", "ips": ["198.51.100.11"], "security_groups": ["sg-db"], "enforcement": "audit" }}
  ]
}}
"#
    )
}

/// The arguments of every `$ secgroupctl ...` line of the tour, its
/// trailing `# comment` left out.
fn tour_commands() -> Vec<Vec<String>> {
    let tour = README
        .split("## Operator tour")
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no operator tour"));
    let block = tour
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("the operator tour has no code block"));
    block
        .lines()
        .filter_map(|line| line.strip_prefix("$ secgroupctl "))
        .map(|command| {
            let command = command.split(" #").next().unwrap_or(command);
            command.split_whitespace().map(str::to_owned).collect()
        })
        .collect()
}

#[test]
fn every_command_of_the_readme_tour_runs() {
    if !root_or_skip("every_command_of_the_readme_tour_runs") {
        return;
    }
    let commands = tour_commands();
    assert!(
        commands.len() >= 5,
        "the tour's commands were not found: {commands:?}"
    );
    let lab = Lab::start_for(&[("rules.json", &rules())], "ins-web-1");
    for command in &commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        if args.first() == Some(&"monitor") {
            // A stream: still running (no usage error, no refused filter)
            // after a moment, then stopped.
            let mut child = lab.spawn_ctl(&args);
            std::thread::sleep(Duration::from_millis(500));
            let exited = child
                .try_wait()
                .unwrap_or_else(|e| panic!("secgroupctl {args:?}: {e}"));
            let _ = child.kill();
            let output = child
                .wait_with_output()
                .unwrap_or_else(|e| panic!("secgroupctl {args:?}: {e}"));
            assert!(
                exited.is_none(),
                "secgroupctl {args:?} ended at once ({exited:?}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
            continue;
        }
        lab.ctl(&args).exits(0);
    }
    // The tour's last command reads the metrics (with curl, on the
    // socket): the series it greps for exists.
    let response = secgroup_api::Client::new(&lab.socket)
        .request("GET", "/metrics", None)
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    assert_eq!(response.status, 200, "{response:?}");
    let metrics = String::from_utf8_lossy(&response.body);
    assert!(
        metrics.contains("secgroup_would_drop_packets_total"),
        "no would-drop series in /metrics:\n{metrics}"
    );
}
