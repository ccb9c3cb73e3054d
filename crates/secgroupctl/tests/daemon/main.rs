//! Every secgroupctl command against the real secgroupd, attached to a
//! real (veth) VM interface with real traffic. Root only: without root the
//! tests skip loudly; under `CI=true` they never skip.

mod established;
mod lab;
mod monitor;
mod tour;
mod warnings;

use secgroup_api::{
    ConntrackList, FlushResult, InstanceDetail, InstanceSummary, ReloadOutcome, ReloadReport,
    SecurityGroupDetail, SecurityGroupSummary, Status, TraceResponse,
};

use crate::lab::{GUEST_IP, Lab, root_or_skip, secgroupctl};

/// The VM (`ins-vm` on the tap, two addresses) in `sg-vm`; `ins-peer`
/// (the host end, "on another host") in `sg-peers`, which the VM may ping.
const RULES: &str = r#"{
  "security_groups": [
    { "id": "sg-vm", "name": "vm", "description": "the test VM",
      "ingress": [
        { "action": "accept", "protocol": "icmp", "description": "ping" },
        { "action": "drop", "protocol": "tcp", "port": "22", "remote": "203.0.113.66", "description": "a scanner" },
        { "action": "accept", "protocol": "tcp", "port": "22", "remote": "203.0.113.0/24",
          "description": "SSH from the operators' network, described at some length" },
        { "action": "accept", "protocol": "tcp", "port": "80,443,8000-8999", "remote": "ipm-partners" }
      ],
      "egress": [
        { "action": "accept", "protocol": "icmp", "remote": "sg-peers" },
        { "action": "accept", "protocol": "udp", "port": "53" }
      ] },
    { "id": "sg-peers", "name": "peers",
      "ingress": [ { "action": "accept", "protocol": "all", "remote": "sg-vm" } ] }
  ],
  "address_sets": [
    { "id": "ipm-partners", "addresses": ["2001:db8:1001::/48", "2001:db8:1002::/48", "2001:db8:1003::/48",
      "198.51.100.128/25", "203.0.113.200-203.0.113.210"] }
  ],
  "instances": [
    { "id": "ins-vm", "interface": "tap-vm", "ips": ["198.51.100.2", "2001:db8::2"], "security_groups": ["sg-vm"] },
    { "id": "ins-peer", "ips": ["198.51.100.1"], "security_groups": ["sg-peers"] }
  ]
}
"#;

fn trace(lab: &Lab, direction: &str, protocol: &str, remote: &str, port: Option<&str>) -> lab::Run {
    let mut args = vec![
        "trace",
        "--instance",
        "ins-vm",
        "--direction",
        direction,
        "--protocol",
        protocol,
        "--remote",
        remote,
    ];
    if let Some(port) = port {
        args.extend(["--port", port]);
    }
    lab.ctl(&args)
}

#[test]
fn operator_questions() {
    if !root_or_skip("operator_questions") {
        return;
    }
    let lab = Lab::start(RULES);

    // Is the daemon healthy?
    lab.ctl(&["status"])
        .exits(0)
        .fits()
        .has("health:        ok\n")
        .has("instances:     1 attached, 0 waiting, 0 failed\n")
        .has("ins-vm    tap-vm     attached  ifindex ");
    let status: Status = lab.ctl(&["--json", "status"]).exits(0).json();
    assert!(
        status.generation >= 1 && status.last_error.is_none(),
        "{status:?}"
    );

    // Real traffic both ways, for the counters and conntrack.
    assert!(lab.guest_pings_host(), "the VM cannot ping ins-peer");
    assert!(lab.host_pings_guest(), "ins-peer cannot ping the VM");

    // Which rules are dead weight? (counters per group rule)
    lab.ctl(&["sg", "list"])
        .exits(0)
        .fits()
        .has("ID        NAME   INGRESS  EGRESS  INSTANCES  REFERENCED BY\n")
        .has("sg-peers  peers        1       0  ins-peer   sg-vm\n")
        .has("sg-vm     vm           4       2  ins-vm     sg-peers\n");
    let groups: Vec<SecurityGroupSummary> = lab.ctl(&["sg", "list", "--json"]).exits(0).json();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let shown = lab
        .ctl(&["sg", "show", "sg-vm"])
        .exits(0)
        .fits()
        .has("sg-vm (vm): the test VM\nbound to:      ins-vm\nreferenced by: sg-peers\n")
        .has("ingress: 4 rules, first match wins\n")
        .has("2  accept  tcp:22                203.0.113.0/24   SSH from the operators'…")
        .has("1  drop    tcp:22                203.0.113.66/32  a scanner");
    let icmp_row = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("0  accept  icmp"))
        .unwrap_or_else(|| panic!("no icmp row:\n{}", shown.stdout));
    assert!(
        !icmp_row.ends_with(" -"),
        "ping left no last-hit time: {icmp_row}"
    );
    // Piped (a script), or --wide: nothing is cut.
    for run in [
        lab.ctl_piped(&["sg", "show", "sg-vm"]),
        lab.ctl(&["--wide", "sg", "show", "sg-vm"]),
    ] {
        let run = run
            .exits(0)
            .has("SSH from the operators' network, described at some length");
        assert!(!run.stdout.contains('…'), "{}", run.stdout);
    }
    // A narrow terminal cuts descriptions, never traffic or remotes.
    lab.ctl_on_tty(&["sg", "show", "sg-vm"], 60)
        .exits(0)
        .has("  tcp:80,443,8000-8999  ipm-partners  ");
    let piped = lab.ctl_piped(&["instance", "show", "ins-vm"]).exits(0);
    assert!(!piped.stdout.contains('…'), "{}", piped.stdout);
    let group: SecurityGroupDetail = lab.ctl(&["--json", "sg", "show", "sg-vm"]).exits(0).json();
    assert!(group.ingress[0].hits.packets >= 1, "{:?}", group.ingress[0]);
    assert!(group.ingress[0].hits.last_hit.is_some());
    assert!(group.egress[0].hits.packets >= 1, "{:?}", group.egress[0]);
    assert_eq!(group.ingress[1].hits.packets, 0);
    let unknown = lab.ctl(&["sg", "show", "sg-nope"]).exits(1);
    assert_eq!(
        unknown.stderr,
        "secgroupctl: no security group \"sg-nope\" (known: sg-peers, sg-vm)\n"
    );

    // What is VM X allowed to do?
    lab.ctl(&["instance", "list"])
        .exits(0)
        .fits()
        .has("ins-peer  -          elsewhere  198.51.100.1")
        .has("ins-vm    tap-vm     attached   198.51.100.2, 2001:db8::2  sg-vm\n");
    let instances: Vec<InstanceSummary> = lab.ctl(&["--json", "instance", "list"]).exits(0).json();
    assert_eq!(instances.len(), 2);
    lab.ctl(&["instance", "show", "ins-vm"])
        .exits(0)
        .fits()
        .has("ins-vm on tap-vm: attached (ifindex ")
        .has("groups:        sg-vm (evaluated in this order)\n")
        .has("ingress: 4 effective rules, first match wins, then drop\n")
        .has("  3  accept  tcp:80,443,8000-8999  198.51.100.128/25, … +5  sg-vm #3")
        .has("verdicts (packets per reason):\n  ingress  ");
    let detail: InstanceDetail = lab
        .ctl(&["--json", "instance", "show", "ins-vm"])
        .exits(0)
        .json();
    assert_eq!((detail.ingress.len(), detail.egress.len()), (4, 2));
    assert!(
        detail.ingress[0].hits.packets >= 1,
        "{:?}",
        detail.ingress[0]
    );
    let verdicts = detail
        .verdicts
        .unwrap_or_else(|| panic!("no verdicts for an attached instance"));
    assert!(verdicts.ingress.contains_key("accept-rule"), "{verdicts:?}");
    let unknown = lab.ctl(&["instance", "show", "ins-nope"]).exits(1);
    assert_eq!(
        unknown.stderr,
        "secgroupctl: no instance \"ins-nope\" (known: ins-peer, ins-vm)\n"
    );

    // Which rule decides this packet?
    trace(&lab, "ingress", "tcp", "203.0.113.9", Some("22"))
        .exits(0)
        .fits()
        .has("packet     ingress to ins-vm (tap-vm): tcp 203.0.113.9:")
        .has("kernel     accept by rule 2 (sg-vm ingress #2)  [accept-rule, ")
        .has("reference  accept by rule 2 (sg-vm ingress #2)\n")
        .has("verdict    ACCEPT: the kernel and the reference evaluator agree\n");
    trace(&lab, "ingress", "tcp", "203.0.113.66", Some("22"))
        .exits(1)
        .has("kernel     drop   by rule 1 (sg-vm ingress #1)  [drop-rule, ")
        .has("verdict    DROP: the kernel and the reference evaluator agree\n");
    trace(&lab, "egress", "udp", "203.0.113.9", Some("80"))
        .exits(1)
        .has("kernel     drop   no rule matched  [drop-default, ")
        .has("reference  drop   no rule matched\n");
    let v6: TraceResponse = lab
        .ctl(&[
            "--json",
            "trace",
            "--instance",
            "ins-vm",
            "--direction",
            "egress",
            "--protocol",
            "udp",
            "--remote",
            "2001:db8:53::53",
            "--port",
            "53",
        ])
        .exits(0)
        .json();
    assert!(!v6.disagree, "{v6:?}");
    assert_eq!(v6.packet.src.to_string(), "2001:db8::2");
    assert_eq!(v6.kernel.rule.map(|r| r.position), Some(1));
    // Usage errors are found before the daemon is asked: exit 2, as
    // without a daemon.
    let refused = trace(&lab, "ingress", "tcp", "203.0.113.9", None).exits(2);
    assert_eq!(
        refused.stderr,
        "secgroupctl: a tcp trace needs --port (the destination port)\n"
    );
    trace(&lab, "ingress", "sctp", "203.0.113.9", Some("22")).exits(2);
    trace(&lab, "sideways", "tcp", "203.0.113.9", Some("22")).exits(2);

    // Tracked connections: the pings are there.
    lab.ctl(&["conntrack", "list"])
        .exits(0)
        .fits()
        .has("INSTANCE  PROTO  FLOW                         STATE    IN/OUT  EXPIRES  RULE\n")
        .has(&format!("ins-vm    icmp   {GUEST_IP} → 198.51.100.1  "))
        .has(&format!("ins-vm    icmp   {GUEST_IP} ← 198.51.100.1  "));
    let flows: ConntrackList = lab
        .ctl(&["--json", "conntrack", "list", "--instance", "ins-vm"])
        .exits(0)
        .json();
    assert!(flows.total >= 2, "{flows:?}");
    let limited: ConntrackList = lab
        .ctl(&["--json", "conntrack", "list", "--limit", "1"])
        .exits(0)
        .json();
    assert!(
        limited.truncated && limited.entries.len() == 1,
        "{limited:?}"
    );
    lab.ctl(&["conntrack", "list", "--instance", "ins-nope"])
        .exits(1);
    lab.ctl(&["conntrack", "flush", "--instance", "ins-vm"])
        .exits(0)
        .has(&format!(
            "flushed {} tracked flows of ins-vm\n",
            flows.total
        ));
    let flushed: FlushResult = lab
        .ctl(&["--json", "conntrack", "flush", "--all"])
        .exits(0)
        .json();
    assert_eq!(flushed.flushed, 0);
    lab.ctl(&["conntrack", "list"])
        .exits(0)
        .has("no tracked flows\n");

    // Reload: nothing changed on disk.
    lab.ctl(&["reload"]).exits(0).has("reload unchanged in ");
    let report: ReloadReport = lab.ctl(&["reload", "--json"]).exits(0).json();
    assert_eq!(report.outcome, ReloadOutcome::Unchanged);

    // Every daemon command's --json is one JSON document, whatever the
    // exit code.
    let commands: &[(&[&str], i32)] = &[
        (&["status"], 0),
        (&["sg", "list"], 0),
        (&["sg", "show", "sg-peers"], 0),
        (&["instance", "list"], 0),
        (&["instance", "show", "ins-peer"], 0),
        (&["conntrack", "list", "--instance", "ins-peer"], 0),
        (&["conntrack", "flush", "--instance", "ins-vm"], 0),
        (&["reload"], 0),
        (
            &[
                "trace",
                "--instance",
                "ins-vm",
                "--direction",
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
            ],
            0,
        ),
        (
            &[
                "trace",
                "--instance",
                "ins-vm",
                "--direction",
                "egress",
                "--protocol",
                "gre",
                "--remote",
                "203.0.113.9",
            ],
            1,
        ),
    ];
    for (args, code) in commands {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let _: serde_json::Value = lab.ctl(&full).exits(*code).json();
    }
}

#[test]
fn rule_files_through_the_daemon() {
    if !root_or_skip("rule_files_through_the_daemon") {
        return;
    }
    // sg-vm in a file of its own, the rest together.
    let mut rest: serde_json::Value = serde_json::from_str(RULES).unwrap_or_else(|e| panic!("{e}"));
    let groups = rest["security_groups"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no groups"));
    let vm = groups.remove(0);
    let own = serde_json::json!({ "security_groups": [vm] }).to_string();
    let lab = Lab::start_with(&[("rules.json", &rest.to_string()), ("sg-vm.json", &own)]);
    let dir = lab.rules_dir();

    // Without --rules-dir: the daemon's rules directory.
    let default = lab.ctl(&["export", "sg-vm"]).exits(0);
    assert_eq!(default.stderr, "");
    assert!(
        default.stdout.contains("\"id\": \"sg-vm\""),
        "{}",
        default.stdout
    );

    // A group sharing a file is refused: import never rewrites another file.
    let peers = lab.ctl(&["export", "sg-peers"]).exits(0);
    let peers_file = lab.dir.join("sg-peers.json");
    std::fs::write(&peers_file, peers.stdout.replace("\"all\"", "\"icmp\""))
        .unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot(&lab.rules);
    let refused = lab
        .ctl(&["import", &peers_file.display().to_string()])
        .exits(1);
    assert_eq!(
        refused.stderr,
        format!(
            "secgroupctl: {dir}/rules.json defines sg-peers among 3 other objects; import never rewrites \
             another file: move sg-peers to a file of its own (such as sg-peers.json), then import again\n"
        )
    );
    assert_eq!(snapshot(&lab.rules), before);

    // Export, both formats.
    let native = lab.ctl(&["export", "sg-vm", "--rules-dir", &dir]).exits(0);
    let _: serde_json::Value = native.json();
    assert!(
        native.stdout.contains("\"id\": \"sg-vm\""),
        "{}",
        native.stdout
    );
    let tencent = lab
        .ctl(&[
            "export",
            "sg-vm",
            "--rules-dir",
            &dir,
            "--format",
            "tencent",
        ])
        .exits(0);
    assert!(
        tencent
            .stderr
            .contains("2 rules with remote \"anywhere\" became two policies each"),
        "{}",
        tencent.stderr
    );
    let exported: serde_json::Value = tencent.json();
    assert_eq!(exported["SecurityGroupId"], "sg-vm");

    // Edit it as an operator would (the scanner is now welcome) and import.
    let edited = tencent
        .stdout
        .replacen("\"Action\": \"DROP\"", "\"Action\": \"ACCEPT\"", 1);
    assert_ne!(edited, tencent.stdout);
    let file = lab.dir.join("sg-vm.tencent.json");
    std::fs::write(&file, &edited).unwrap_or_else(|e| panic!("{e}"));
    let file = file.display().to_string();
    // The split "anywhere" policies are one rule again.
    lab.ctl(&["import", &file, "--rules-dir", &dir, "--format", "tencent"])
        .exits(0)
        .has(&format!(
            "imported sg-vm (tencent format, 4 ingress rules, 2 egress rules) into {dir}/sg-vm.json, \
             written in the native format\n"
        ))
        .has(&format!("the replaced file is kept as {dir}/.backups/sg-vm.json."));
    lab.ctl(&["reload"]).exits(0);
    let group: SecurityGroupDetail = lab.ctl(&["--json", "sg", "show", "sg-vm"]).exits(0).json();
    assert_eq!(group.ingress.len(), 4, "{group:?}");
    assert_eq!(group.ingress[0].remote, "anywhere", "{group:?}");
    trace(&lab, "ingress", "tcp", "203.0.113.66", Some("22"))
        .exits(0)
        .has("kernel     accept by rule 1 (sg-vm ingress #1)");

    // An invalid import changes nothing: not the files, not the daemon.
    let before = snapshot(&lab.rules);
    let status: Status = lab.ctl(&["--json", "status"]).exits(0).json();
    let bad = lab.dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\"SecurityGroupId\": \"sg-vm\", \"SecurityGroupPolicySet\": {\"Ingress\": [\n  \
         {\"Protocol\": \"TCP\", \"Port\": \"99999\", \"CidrBlock\": \"203.0.113.0/24\", \"Action\": \"ACCEPT\"}]}}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.display().to_string();
    let refused = lab.ctl(&["import", &bad, "--rules-dir", &dir]).exits(1);
    assert_eq!(
        refused.stderr,
        format!(
            "{bad}:2:31: SecurityGroupPolicySet.Ingress[0].Port: \"99999\" is not a port (out of range 1-65535)\n\
             secgroupctl: 1 error in the resulting rules directory; nothing was changed\n"
        )
    );
    let refused: serde_json::Value = lab
        .ctl(&["--json", "import", &bad, "--rules-dir", &dir])
        .exits(1)
        .json();
    assert_eq!(refused["valid"], false);
    assert_eq!(snapshot(&lab.rules), before);
    let after: Status = lab.ctl(&["--json", "status"]).exits(0).json();
    assert_eq!(
        (after.generation, after.last_error),
        (status.generation, None)
    );

    // Clone, and the daemon enforces nothing new but knows the group.
    lab.ctl(&[
        "sg",
        "clone",
        "sg-vm",
        "sg-vm-copy",
        "--name",
        "copy",
        "--rules-dir",
        &dir,
    ])
    .exits(0)
    .has(&format!(
        "cloned sg-vm into sg-vm-copy (4 ingress rules, 2 egress rules): {dir}/sg-vm-copy.json\n"
    ));
    lab.ctl(&["sg", "clone", "sg-vm", "sg-vm-copy", "--rules-dir", &dir])
        .exits(1);
    let report: ReloadReport = lab.ctl(&["--json", "reload"]).exits(0).json();
    assert_ne!(report.outcome, ReloadOutcome::Failed);
    let copy: SecurityGroupDetail = lab
        .ctl(&["--json", "sg", "show", "sg-vm-copy"])
        .exits(0)
        .json();
    assert_eq!(
        (copy.name.as_deref(), copy.bound_instances.len()),
        (Some("copy"), 0)
    );

    // Re-importing what is there writes nothing.
    let same = lab
        .ctl(&["export", "sg-vm-copy", "--rules-dir", &dir])
        .exits(0);
    let same_file = lab.dir.join("copy.json");
    std::fs::write(&same_file, &same.stdout).unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot(&lab.rules);
    let unchanged: serde_json::Value = lab
        .ctl(&[
            "--json",
            "import",
            &same_file.display().to_string(),
            "--rules-dir",
            &dir,
        ])
        .exits(0)
        .json();
    assert_eq!(unchanged["changed"], false, "{unchanged}");
    assert_eq!(snapshot(&lab.rules), before);

    // The directory is valid, as the daemon says too.
    lab.ctl(&["validate", &dir])
        .exits(0)
        .has("valid: 3 files, 3 security groups, 2 instances (1 on this host)");
    lab.ctl(&["status"]).exits(0).has("health:        ok\n");
    let templates: serde_json::Value = secgroupctl(&["--json", "template", "list"]).exits(0).json();
    assert_eq!(templates.as_array().map(Vec::len), Some(4));
    secgroupctl(&["completions", "bash"])
        .exits(0)
        .has("secgroupctl");
}

/// Every file under `dir` (backups included) with its bytes.
/// A trace request that only secgroupd can find malformed (the VM has no
/// address of the remote's family) is a usage error too: exit 2 with the
/// daemon's message. Other refusals stay exit 1.
#[test]
fn trace_refusals() {
    if !root_or_skip("trace_refusals") {
        return;
    }
    let ipv4_only = RULES.replace(
        r#""ips": ["198.51.100.2", "2001:db8::2"]"#,
        r#""ips": ["198.51.100.2"]"#,
    );
    assert_ne!(ipv4_only, RULES, "RULES no longer has ins-vm's addresses");
    let lab = Lab::start(&ipv4_only);

    let no_v6 = trace(&lab, "egress", "udp", "2001:db8:53::53", Some("53")).exits(2);
    assert_eq!(
        no_v6.stderr,
        "secgroupctl: instance ins-vm has no IPv6 address; give \"local\"\n"
    );
    assert!(no_v6.stdout.is_empty(), "{}", no_v6.stdout);
    let json = lab
        .ctl(&[
            "--json",
            "trace",
            "--instance",
            "ins-vm",
            "--direction",
            "ingress",
            "--protocol",
            "icmpv6",
            "--remote",
            "2001:db8::9",
        ])
        .exits(2);
    assert!(json.stdout.is_empty(), "{}", json.stdout);
    // With --local given, the same trace runs: from a source the VM does
    // not own, which port security drops.
    lab.ctl(&[
        "trace",
        "--instance",
        "ins-vm",
        "--direction",
        "egress",
        "--protocol",
        "udp",
        "--remote",
        "2001:db8:53::53",
        "--port",
        "53",
        "--local",
        "2001:db8::2",
    ])
    .exits(1)
    .has("kernel     drop   drop-spoofed-ip");

    // Not usage errors: an unknown instance (404), one on another host
    // (409).
    let unknown = lab
        .ctl(&[
            "trace",
            "--instance",
            "ins-nope",
            "--direction",
            "ingress",
            "--protocol",
            "icmp",
            "--remote",
            "203.0.113.9",
        ])
        .exits(1);
    assert_eq!(
        unknown.stderr,
        "secgroupctl: no instance \"ins-nope\" (known: ins-peer, ins-vm)\n"
    );
    lab.ctl(&[
        "trace",
        "--instance",
        "ins-peer",
        "--direction",
        "ingress",
        "--protocol",
        "icmp",
        "--remote",
        "203.0.113.9",
    ])
    .exits(1);
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
                files.push((path.display().to_string(), bytes));
            }
        }
    }
    files.sort();
    files
}
