//! The built `secgroupctl` binary with output piped, as a script sees it:
//! table widths, the rules directory of the running daemon (a pretend
//! one), and what `import` writes.

mod common;

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secgroup_api::{
    ConntrackEntry, ConntrackList, Direction, Health, HealthState, PolicySource, ReloadError,
    ReloadOutcome, ReloadReport, ReloadTrigger, RuleRef, Status, Timestamp,
};

use crate::common::{expect_exit, fake_daemon, text};

fn scratch(name: &str) -> PathBuf {
    crate::common::scratch("secgroupctl-offline", name)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secgroupctl"));
    command
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR")
        .env_remove("COLUMNS");
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run secgroupctl: {e}"))
}

fn leak(value: &impl serde::Serialize) -> &'static str {
    let json = serde_json::to_string(value).unwrap_or_else(|e| panic!("{e}"));
    Box::leak(json.into_boxed_str())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

const LONG_SUMMARY: &str = "groups +3 -0 ~0, instances +2 -0 ~0, rules +7 -0 ~0, address sets +1 -0 ~0, \
                            service sets +0 -0 ~0";
const LONG_ERROR: &str = "invalid rule files (3 problems): sg-web.json:3:7: unknown group \"sg-x\"; \
                          sg-db.json:9:1: duplicate id";

fn status(rules_dir: &Path) -> Status {
    Status {
        version: "0.0.0".into(),
        rules_dir: rules_dir.display().to_string(),
        pin_dir: "/sys/fs/bpf/secgroup".into(),
        policy: PolicySource::RulesDir,
        generation: 1,
        reloads: 1,
        keep_established: false,
        last_reload: Some(ReloadReport {
            trigger: ReloadTrigger::Startup,
            outcome: ReloadOutcome::Applied,
            finished: Timestamp::from_unix_ms(1_700_000_000_000),
            duration_ms: 22.5,
            generation: 1,
            summary: LONG_SUMMARY.into(),
            warnings: Vec::new(),
        }),
        last_error: Some(ReloadError {
            at: Timestamp::from_unix_ms(1_700_000_000_000),
            message: LONG_ERROR.into(),
            diagnostics: Vec::new(),
        }),
        instances: Vec::new(),
        audit_instances: Vec::new(),
        source: None,
        unbound_interfaces: Vec::new(),
        guarded_interfaces: Vec::new(),
        unprotected_interfaces: Vec::new(),
        health: Health {
            state: HealthState::Ok,
            reasons: Vec::new(),
        },
        owner: None,
        abi_version: 2,
    }
}

fn flows() -> ConntrackList {
    ConntrackList {
        total: 1,
        truncated: false,
        entries: vec![ConntrackEntry {
            instance: Some("ins-web-1-with-a-long-name".into()),
            ifindex: 4,
            protocol: "tcp".into(),
            local: ip("2001:db8::20"),
            local_port: 54321,
            remote: ip("2001:db8:ffff:ffff:ffff::1234"),
            remote_port: 443,
            direction: Direction::Egress,
            state: "established".into(),
            packets_in: 10,
            packets_out: 8,
            bytes_in: 900,
            bytes_out: 700,
            age_ms: 5000,
            expires_in_ms: 431_995_000,
            rule: Some(RuleRef {
                security_group: "sg-web-with-a-long-name".into(),
                direction: Direction::Egress,
                index: 1,
            }),
        }],
    }
}

/// Output to a pipe is never cut, whatever `$COLUMNS` says, and `--wide`
/// is accepted everywhere.
#[test]
fn piped_output_is_never_cut() {
    let dir = scratch("piped");
    let socket = dir.join("secgroupd.sock");
    let s = socket.display().to_string();
    let status_body = leak(&status(&dir));
    let flows_body = leak(&flows());
    let cases: [(&[&str], &str, &[&str]); 4] = [
        (&["status"], status_body, &[LONG_SUMMARY, LONG_ERROR]),
        (
            &["status", "--wide"],
            status_body,
            &[LONG_SUMMARY, LONG_ERROR],
        ),
        (
            &["conntrack", "list"],
            flows_body,
            &[
                "[2001:db8::20]:54321 → [2001:db8:ffff:ffff:ffff::1234]:443",
                "ins-web-1-with-a-long-name",
                "sg-web-with-a-long-name #1",
            ],
        ),
        (
            &["--wide", "conntrack", "list"],
            flows_body,
            &["[2001:db8::20]:54321 → [2001:db8:ffff:ffff:ffff::1234]:443"],
        ),
    ];
    let server = fake_daemon(&socket, cases.iter().map(|c| (200, c.1)).collect());
    for (command, _, whole) in &cases {
        let mut args = vec!["--socket", s.as_str()];
        args.extend_from_slice(command);
        let output = run(&args, &[("COLUMNS", "40")]);
        expect_exit(&output, 0);
        let stdout = text(&output.stdout);
        assert!(!stdout.contains('…'), "{command:?}:\n{stdout}");
        for part in *whole {
            assert!(
                stdout.contains(part),
                "{command:?}: lacks {part}:\n{stdout}"
            );
        }
    }
    server
        .join()
        .unwrap_or_else(|_| panic!("the fake daemon panicked"));
}

/// Every value the text shows is in `--json` too: the daemon's answer as
/// it is.
#[test]
fn json_has_what_the_text_shows() {
    let dir = scratch("json");
    let socket = dir.join("secgroupd.sock");
    let s = socket.display().to_string();
    let server = fake_daemon(&socket, vec![(200, leak(&flows()))]);
    let output = run(&["--socket", &s, "--json", "conntrack", "list"], &[]);
    expect_exit(&output, 0);
    let got: ConntrackList =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, flows());
    server
        .join()
        .unwrap_or_else(|_| panic!("the fake daemon panicked"));

    // A failed reload lists the located problems: so does its JSON. A
    // flush says whose flows it forgot.
    let mut failed = status(&dir);
    failed.last_error = Some(ReloadError {
        at: Timestamp::from_unix_ms(1_700_000_000_000),
        message: "invalid rule files (1 problem)".into(),
        diagnostics: vec!["/r/x.json:1:2: $: bad".into()],
    });
    let report = ReloadReport {
        outcome: ReloadOutcome::Failed,
        ..failed
            .last_reload
            .clone()
            .unwrap_or_else(|| panic!("no reload"))
    };
    let answers = vec![
        (200, leak(&report)),
        (200, leak(&failed)),
        (200, leak(&report)),
        (200, leak(&failed)),
        (200, r#"{"flushed": 3}"#),
    ];
    let socket = dir.join("secgroupd-2.sock");
    let s = socket.display().to_string();
    let server = fake_daemon(&socket, answers);
    let text_run = run(&["--socket", &s, "reload"], &[]);
    expect_exit(&text_run, 1);
    assert!(
        text(&text_run.stdout).contains("  /r/x.json:1:2: $: bad\n"),
        "{text_run:?}"
    );
    let output = run(&["--socket", &s, "--json", "reload"], &[]);
    expect_exit(&output, 1);
    let got: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got["outcome"], "failed", "{got}");
    assert_eq!(
        got["diagnostics"],
        serde_json::json!(["/r/x.json:1:2: $: bad"])
    );
    let output = run(
        &[
            "--socket",
            &s,
            "--json",
            "conntrack",
            "flush",
            "--instance",
            "ins-1",
        ],
        &[],
    );
    expect_exit(&output, 0);
    let got: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, serde_json::json!({"flushed": 3, "instance": "ins-1"}));
    server
        .join()
        .unwrap_or_else(|_| panic!("the fake daemon panicked"));
}

/// A copy of `config/examples`.
fn examples_copy(name: &str) -> PathBuf {
    let dir = scratch(name);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    for entry in fs::read_dir(&examples).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "json") {
            let target = dir.join(path.file_name().unwrap_or_default());
            fs::copy(&path, &target).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    dir
}

/// Without `--rules-dir`, file commands work on the running daemon's
/// rules directory; with no daemon, on the default one, with a note.
#[test]
fn file_commands_default_to_the_daemons_rules_directory() {
    let dir = examples_copy("daemon-dir");
    let sockets = scratch("daemon-dir-socket");
    let socket = sockets.join("secgroupd.sock");
    let s = socket.display().to_string();
    let body = leak(&status(&dir));
    let server = fake_daemon(&socket, vec![(200, body), (200, body), (200, body)]);
    let exported = run(&["--socket", &s, "export", "sg-db"], &[]);
    expect_exit(&exported, 0);
    assert!(text(&exported.stdout).contains("\"sg-db\""), "{exported:?}");
    assert_eq!(text(&exported.stderr), "");
    let cloned = run(&["--socket", &s, "sg", "clone", "sg-db", "sg-db-2"], &[]);
    expect_exit(&cloned, 0);
    assert!(dir.join("sg-db-2.json").is_file());
    // The same file again: the clone is its own file now, so importing
    // it changes nothing.
    let copy = sockets.join("copy.json");
    fs::copy(dir.join("sg-db-2.json"), &copy).unwrap_or_else(|e| panic!("{e}"));
    let imported = run(
        &["--socket", &s, "import", &copy.display().to_string()],
        &[],
    );
    expect_exit(&imported, 0);
    assert!(
        text(&imported.stdout).contains("is this group already"),
        "{imported:?}"
    );
    let requests = server
        .join()
        .unwrap_or_else(|_| panic!("the fake daemon panicked"));
    assert!(
        requests.iter().all(|r| r.starts_with("GET /v1/status ")),
        "{requests:?}"
    );

    // No daemon: the default directory, said so on stderr first.
    let nobody = sockets.join("nobody.sock").display().to_string();
    let output = run(&["--socket", &nobody, "export", "sg-db"], &[]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("secgroupctl: note: no secgroupd answered (cannot reach secgroupd at ")
            && stderr.contains("using the default rules directory /etc/secgroup/rules.d"),
        "{stderr}"
    );
    // --rules-dir wins, and the daemon is not asked.
    let given = run(
        &[
            "--socket",
            &nobody,
            "export",
            "sg-db",
            "--rules-dir",
            &dir.display().to_string(),
        ],
        &[],
    );
    expect_exit(&given, 0);
    assert_eq!(text(&given.stderr), "");
}

/// `import` writes the group's own file and nothing else; a Tencent pair
/// that says "anywhere" is one rule again.
#[test]
fn import_writes_only_the_groups_own_file() {
    let dir = examples_copy("import-own");
    let d = dir.display().to_string();
    let work = scratch("import-own-work");
    let snapshot = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
            .filter(|p| p.is_file())
            .map(|p| {
                let bytes = fs::read(&p).unwrap_or_default();
                (p, bytes)
            })
            .collect();
        files.sort();
        files
    };

    // sg-web shares web-bastion-db.json: refused, nothing changes.
    let exported = run(&["export", "sg-web", "--rules-dir", &d], &[]);
    expect_exit(&exported, 0);
    let changed = text(&exported.stdout).replacen("\"accept\"", "\"drop\"", 1);
    let file = work.join("sg-web.json");
    fs::write(&file, changed).unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot();
    let output = run(
        &["import", &file.display().to_string(), "--rules-dir", &d],
        &[],
    );
    expect_exit(&output, 1);
    assert!(
        text(&output.stderr).contains("web-bastion-db.json defines sg-web among"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(snapshot(), before);

    // A Tencent group: written to its own file in the native format, the
    // 0.0.0.0/0 + ::/0 pair one "anywhere" rule.
    let tencent = r#"{"SecurityGroupId": "sg-edge", "SecurityGroupPolicySet": {"Version": "1",
      "Ingress": [
        {"PolicyIndex": 0, "Protocol": "TCP", "Port": "443", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT", "PolicyDescription": "https"},
        {"PolicyIndex": 1, "Protocol": "TCP", "Port": "443", "Ipv6CidrBlock": "::/0", "Action": "ACCEPT", "PolicyDescription": "https"},
        {"PolicyIndex": 2, "Protocol": "TCP", "Port": "22", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT"}
      ],
      "Egress": [
        {"PolicyIndex": 0, "Protocol": "ALL", "Port": "ALL", "Ipv6CidrBlock": "::/0", "Action": "ACCEPT"},
        {"PolicyIndex": 1, "Protocol": "ALL", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT"}
      ]}}"#;
    let file = work.join("edge.json");
    fs::write(&file, tencent).unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot();
    let output = run(
        &[
            "--json",
            "import",
            &file.display().to_string(),
            "--rules-dir",
            &d,
        ],
        &[],
    );
    expect_exit(&output, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    let target = dir.join("sg-edge.json");
    assert_eq!(report["file"], target.display().to_string(), "{report}");
    assert_eq!(report["format"], "tencent", "{report}");
    assert_eq!(report["written_format"], "native", "{report}");
    assert_eq!(report["ingress_rules"], 2, "{report}");
    assert_eq!(report["egress_rules"], 1, "{report}");
    // Only the new file.
    let after = snapshot();
    let new: Vec<_> = after.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].0, target);
    let written = fs::read_to_string(&target).unwrap_or_default();
    assert!(!written.contains("::/0"), "{written}");
    // The lone IPv4 rule stays what it was.
    assert!(written.contains("0.0.0.0/0"), "{written}");
    // Its export in Tencent's format imports as "nothing to do".
    let again = run(
        &[
            "export",
            "sg-edge",
            "--format",
            "tencent",
            "--rules-dir",
            &d,
        ],
        &[],
    );
    expect_exit(&again, 0);
    fs::write(&file, &again.stdout).unwrap_or_else(|e| panic!("{e}"));
    let output = run(
        &["import", &file.display().to_string(), "--rules-dir", &d],
        &[],
    );
    expect_exit(&output, 0);
    assert!(
        text(&output.stdout).contains("is this group already"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(snapshot(), after);
}

#[test]
fn tencent_export_says_it_leaves_logging_out() {
    let dir = scratch("export-log");
    fs::write(
        dir.join("sg-db.json"),
        r#"{"security_groups": [{"id": "sg-db", "ingress": [
  {"action": "accept", "protocol": "tcp", "port": 5432, "remote": "198.51.100.0/24", "log": true},
  {"action": "drop", "protocol": "tcp", "port": 5432, "remote": "203.0.113.0/24", "log": true},
  {"action": "accept", "protocol": "icmp", "remote": "198.51.100.0/24"}
]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = dir.display().to_string();
    let tencent = run(
        &["export", "sg-db", "--format", "tencent", "--rules-dir", &d],
        &[],
    );
    expect_exit(&tencent, 0);
    assert_eq!(
        text(&tencent.stderr),
        "secgroupctl: note: 2 rules with \"log\": true: Tencent's format has no logging, the export leaves it out\n"
    );
    assert!(
        !text(&tencent.stdout).contains("log"),
        "{}",
        text(&tencent.stdout)
    );
    // The native format keeps it, without a note.
    let native = run(&["export", "sg-db", "--rules-dir", &d], &[]);
    expect_exit(&native, 0);
    assert_eq!(text(&native.stderr), "");
    assert_eq!(text(&native.stdout).matches(r#""log": true"#).count(), 2);
}
