//! Warnings through the daemon: rules with warnings are enforced as
//! written, and `status`, `reload` and `/v1/status` say what is
//! questionable in them, as `validate` does.

use secgroup_api::{ReloadOutcome, ReloadReport, Status};

use crate::lab::{Lab, root_or_skip, secgroupctl};

/// The VM may ping out; its second ingress rule is dead (the first
/// decides all its traffic) and `sg-spare` is bound to nobody.
const RULES: &str = r#"{
  "security_groups": [
    { "id": "sg-vm",
      "ingress": [
        { "action": "accept", "protocol": "icmp" },
        { "action": "drop", "protocol": "icmp", "remote": "198.51.100.1" }
      ],
      "egress": [ { "action": "accept", "protocol": "icmp" } ] },
    { "id": "sg-spare", "ingress": [], "egress": [] }
  ],
  "instances": [
    { "id": "ins-vm", "interface": "tap-vm", "ips": ["198.51.100.2"], "security_groups": ["sg-vm"] }
  ]
}
"#;

#[test]
fn warnings_never_block_and_are_shown_everywhere() {
    if !root_or_skip("warnings_never_block_and_are_shown_everywhere") {
        return;
    }
    let lab = Lab::start(RULES);
    let file = format!("{}/rules.json", lab.rules_dir());
    // (place and path, message)
    let parts = [
        (
            format!("{file}:6:9: security_groups[0].ingress[1]"),
            format!(
                "this rule never decides a packet: sg-vm ingress #0 ({file}:5:9) decides all of its traffic first"
            ),
        ),
        (
            format!("{file}:9:13: security_groups[1].id"),
            "security group sg-spare is bound to no instance: its rules are enforced nowhere"
                .to_owned(),
        ),
    ];
    let expected: Vec<String> = parts.iter().map(|(at, m)| format!("{at}: {m}")).collect();

    // Enforced as written: the dead drop changes nothing.
    assert!(lab.host_pings_guest(), "the first rule accepts the ping");
    assert!(lab.guest_pings_host());

    let status: Status = lab.ctl(&["--json", "status"]).exits(0).json();
    let report = status
        .last_reload
        .unwrap_or_else(|| panic!("no reload report"));
    assert_eq!(report.warnings, expected);

    let mut text = lab
        .ctl(&["status"])
        .exits(0)
        .has("warnings:      2 in the rules in force (secgroupctl validate explains)\n");
    for warning in &expected {
        text = text.has(&format!("  {warning}\n"));
    }

    let reload: ReloadReport = lab.ctl(&["--json", "reload"]).exits(0).json();
    assert_eq!(
        (reload.outcome, reload.warnings.clone()),
        (ReloadOutcome::Unchanged, expected.clone())
    );
    let mut text = lab.ctl(&["reload"]).exits(0).has("reload unchanged");
    for warning in &expected {
        text = text.has(&format!("  warning: {warning}\n"));
    }

    // validate says the same of the same directory, and fails on them
    // with --deny-warnings.
    let validated = secgroupctl(&["validate", &lab.rules_dir()]).exits(0);
    let lines: Vec<String> = parts
        .iter()
        .map(|(at, m)| format!("{at}: warning: {m}\n"))
        .collect();
    assert_eq!(
        validated.stderr,
        format!(
            "{}secgroupctl: 2 warnings in the rule files; they are valid\n",
            lines.concat()
        )
    );
    secgroupctl(&["validate", "--deny-warnings", &lab.rules_dir()]).exits(1);
}
