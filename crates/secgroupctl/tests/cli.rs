//! The built `secgroupctl` binary, run as a user would.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{expect_exit, fake_daemon, text};

fn scratch(name: &str) -> PathBuf {
    crate::common::scratch("secgroupctl", name)
}

fn secgroupctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secgroupctl"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run secgroupctl: {e}"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples")
}

fn write(dir: &Path, name: &str, contents: &str) {
    fs::write(dir.join(name), contents).unwrap_or_else(|e| panic!("write {name}: {e}"));
}

#[test]
fn validate_examples_succeeds() {
    let dir = examples();
    let output = secgroupctl(&["validate", &dir.display().to_string()]);
    expect_exit(&output, 0);
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "valid: 9 files, 11 security groups, 12 instances (10 on this host), 2 address sets, 1 address set group, 3 service sets, 1 service set group"
    );
    assert!(
        lines.contains(&"  ins-web-1          tap-web1: 7 ingress rules, 4 egress rules"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"  ins-db-1           tap-db1: 7 ingress rules, 2 egress rules"),
        "{stdout}"
    );
    // The examples keep what the lint finds in them: real mistakes of the
    // kind it is for (a rule covered by a broader one, a base group bound
    // after a group that ends in "drop all", a template nobody uses).
    let d = dir.display();
    let expected = format!(
        "{d}/nat-appliance.json:9:9: security_groups[0].ingress[1]: warning: this rule never decides a packet: sg-nat ingress #0 ({d}/nat-appliance.json:8:9) decides all of its traffic first\n\
         {d}/template-linux-ssh.json:4:13: security_groups[0].id: warning: security group sg-linux-ssh is bound to no instance: its rules are enforced nowhere\n\
         {d}/web-bastion-db.json:8:9: security_groups[0].ingress[0]: warning: for instance ins-db-1 (bound to sg-db, sg-base in this order) this rule never decides a packet: sg-db ingress #3 ({d}/tencent-format-sg-db.json:47:7) decides all of its traffic first\n\
         {d}/web-bastion-db.json:8:9: security_groups[0].ingress[0]: warning: for instance ins-web-1 (bound to sg-web, sg-base in this order) this rule never decides a packet: sg-web ingress #2 ({d}/web-bastion-db.json:36:9), sg-web ingress #3 ({d}/web-bastion-db.json:37:9) together decide all of its traffic first\n\
         {d}/web-bastion-db.json:9:9: security_groups[0].ingress[1]: warning: for instance ins-web-1 (bound to sg-web, sg-base in this order) this rule never decides a packet: sg-web ingress #2 ({d}/web-bastion-db.json:36:9), sg-web ingress #3 ({d}/web-bastion-db.json:37:9) together decide all of its traffic first\n\
         {d}/web-bastion-db.json:10:9: security_groups[0].ingress[2]: warning: for instance ins-web-1 (bound to sg-web, sg-base in this order) this rule never decides a packet: sg-web ingress #3 ({d}/web-bastion-db.json:37:9) decides all of its traffic first\n\
         {d}/web-bastion-db.json:13:9: security_groups[0].egress[0]: warning: for instance ins-web-1 (bound to sg-web, sg-base in this order) this rule never decides a packet: sg-web egress #0 ({d}/web-bastion-db.json:40:9), sg-web egress #1 ({d}/web-bastion-db.json:41:9), sg-web egress #2 ({d}/web-bastion-db.json:42:9) together decide all of its traffic first\n\
         secgroupctl: 7 warnings in the rule files; they are valid\n"
    );
    assert_eq!(text(&output.stderr), expected);

    // For a controller's CI: the same warnings fail the run.
    let denied = secgroupctl(&["validate", "--deny-warnings", &dir.display().to_string()]);
    expect_exit(&denied, 1);
    assert!(denied.stdout.is_empty(), "{}", text(&denied.stdout));
    assert_eq!(
        text(&denied.stderr),
        expected.replace(
            "secgroupctl: 7 warnings in the rule files; they are valid",
            "secgroupctl: 7 warnings in the rule files, refused by --deny-warnings"
        )
    );
    let denied = secgroupctl(&[
        "--json",
        "validate",
        "--deny-warnings",
        &dir.display().to_string(),
    ]);
    expect_exit(&denied, 1);
    let value: serde_json::Value = serde_json::from_slice(&denied.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&denied.stdout)));
    assert_eq!(value["valid"], false);
    assert_eq!(
        value["diagnostics"].as_array().map(Vec::len),
        Some(7),
        "{value}"
    );
    assert_eq!(value["diagnostics"][1]["path"], "security_groups[0].id");
}

#[test]
fn deny_warnings_passes_a_clean_directory() {
    let dir = scratch("clean");
    write(
        &dir,
        "a.json",
        r#"{ "$schema": "https://example.invalid/secgroup-rules.schema.json",
  "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "22" } ], "egress": [] } ],
  "instances": [ { "id": "ins-a", "interface": "tap-a", "ips": ["198.51.100.5"], "security_groups": ["sg-a"] } ] }"#,
    );
    let output = secgroupctl(&["validate", "--deny-warnings", &dir.display().to_string()]);
    expect_exit(&output, 0);
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

#[test]
fn validate_bad_directory_reports_located_errors() {
    let dir = scratch("bad");
    write(
        &dir,
        "a-groups.json",
        "{\n  \"security_groups\": [\n    {\"id\": \"sg-web\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"80-70\"}]}\n  ]\n}\n",
    );
    write(
        &dir,
        "b-more.json",
        "{\"security_groups\": [{\"id\": \"sg-web\"}], \"instances\": [{\"id\": \"ins-1\", \"ips\": [], \"security_groups\": [\"sg-nope\"]}]}",
    );
    write(&dir, "c-broken.json", "{\"security_groups\": [,]}");
    write(&dir, ".ignored.json", "not json at all");
    let output = secgroupctl(&["validate", "--rules-dir", &dir.display().to_string()]);
    expect_exit(&output, 1);
    let d = dir.display();
    let expected = format!(
        "{d}/a-groups.json:3:82: security_groups[0].ingress[0].port: \"80-70\" is not a port range (start > end)\n\
         {d}/b-more.json:1:29: security_groups[0].id: duplicate security group id \"sg-web\"; first defined at {d}/a-groups.json:3:12\n\
         {d}/b-more.json:1:102: instances[0].security_groups[0]: unknown security group \"sg-nope\": no rule file defines it\n\
         {d}/c-broken.json:1:22: security_groups[0]: unexpected character ','; expected a value\n\
         secgroupctl: 4 errors in the rule files; nothing was loaded\n"
    );
    assert_eq!(text(&output.stderr), expected);
    assert!(output.stdout.is_empty());
}

#[test]
fn validate_json_output() {
    let ok = secgroupctl(&["--json", "validate", &examples().display().to_string()]);
    expect_exit(&ok, 0);
    let value: serde_json::Value = serde_json::from_slice(&ok.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&ok.stdout)));
    assert_eq!(value["valid"], true);
    assert_eq!(value["security_groups"], 11);
    let web = value["local_instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["id"] == "ins-web-1"))
        .unwrap_or_else(|| panic!("no ins-web-1 in {value}"));
    assert_eq!(
        (web["ingress_rules"].clone(), web["egress_rules"].clone()),
        (7.into(), 4.into())
    );

    let dir = scratch("json");
    write(&dir, "x.json", "{\"instances\": 1}");
    let bad = secgroupctl(&["validate", "--json", &dir.display().to_string()]);
    expect_exit(&bad, 1);
    let value: serde_json::Value = serde_json::from_slice(&bad.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&bad.stdout)));
    let expected = serde_json::json!({
        "valid": false,
        "diagnostics": [{
            "file": dir.join("x.json").display().to_string(),
            "line": 1, "column": 15, "path": "instances",
            "message": "expected an array, found number 1",
        }],
    });
    assert_eq!(value, expected);
}

#[test]
fn validate_missing_path_is_an_error() {
    let dir = scratch("missing").join("nowhere");
    let output = secgroupctl(&["validate", &dir.display().to_string()]);
    expect_exit(&output, 1);
    let stderr = text(&output.stderr);
    let prefix = format!(
        "secgroupctl: cannot read the rule files: cannot access {}: ",
        dir.display()
    );
    assert!(stderr.starts_with(&prefix), "{stderr}");
}

#[test]
fn template_list_and_show() {
    let list = secgroupctl(&["template", "list"]);
    expect_exit(&list, 0);
    let names: Vec<String> = text(&list.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        ["open-all", "open-major-ports", "linux-ssh", "windows-rdp"]
    );

    // The example file is this command's output; keep them in step.
    let show = secgroupctl(&["template", "show", "linux-ssh", "--id", "sg-linux-ssh"]);
    expect_exit(&show, 0);
    let example = fs::read_to_string(examples().join("template-linux-ssh.json"))
        .unwrap_or_else(|e| panic!("read example: {e}"));
    assert_eq!(text(&show.stdout), example);

    let default_id = secgroupctl(&["template", "show", "open-all"]);
    expect_exit(&default_id, 0);
    assert!(text(&default_id.stdout).contains("\"id\": \"sg-open-all\""));

    let unknown = secgroupctl(&["template", "show", "open-everything"]);
    expect_exit(&unknown, 1);
    assert_eq!(
        text(&unknown.stderr),
        "secgroupctl: unknown template \"open-everything\"; available: open-all, open-major-ports, linux-ssh, windows-rdp\n"
    );
    // A malformed id is a usage error; an unknown template is a "no".
    let bad_id = secgroupctl(&["template", "show", "open-all", "--id", "web"]);
    expect_exit(&bad_id, 2);
    assert!(text(&bad_id.stderr).starts_with("secgroupctl: \"web\" is not a security group id"));
}

/// Runs secgroupctl with `env` set and the socket variables otherwise
/// cleared.
fn secgroupctl_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secgroupctl"));
    command
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run secgroupctl: {e}"))
}

/// Every command that asks the daemon, as argument lists.
const DAEMON_COMMANDS: &[&[&str]] = &[
    &["status"],
    &["reload"],
    &["sg", "list"],
    &["sg", "show", "sg-web"],
    &["instance", "list"],
    &["instance", "show", "ins-web-1"],
    &["conntrack", "list"],
    &["conntrack", "flush", "--all"],
    &[
        "trace",
        "--instance",
        "ins-web-1",
        "--direction",
        "ingress",
        "--protocol",
        "tcp",
        "--remote",
        "203.0.113.9",
        "--port",
        "22",
    ],
];

#[test]
fn no_daemon_is_one_clear_line_and_exit_3() {
    let dir = scratch("no-daemon");
    let missing = dir.join("secgroupd.sock");
    let not_a_socket = dir.join("plain-file");
    write(&dir, "plain-file", "");
    let cases = [
        (
            missing.clone(),
            "nothing is there (no such file) (is the daemon running? systemctl start secgroupd, or pass --socket)",
        ),
        (
            not_a_socket,
            "it is a regular file, not a socket (pass --socket with the path secgroupd listens on, by default /run/secgroup/secgroupd.sock)",
        ),
    ];
    for (socket, reason) in cases {
        let socket_text = socket.display().to_string();
        for command in DAEMON_COMMANDS {
            for json in [false, true] {
                let mut args = vec!["--socket", socket_text.as_str()];
                if json {
                    args.push("--json");
                }
                args.extend_from_slice(command);
                let output = secgroupctl(&args);
                expect_exit(&output, 3);
                assert_eq!(
                    text(&output.stderr),
                    format!("secgroupctl: cannot reach secgroupd at {socket_text}: {reason}\n"),
                    "{args:?}"
                );
                assert!(output.stdout.is_empty(), "{args:?}");
            }
        }
    }
    // The socket comes from SECGROUP_SOCKET too, and the default is named.
    let from_env = secgroupctl_env(
        &["status"],
        &[("SECGROUP_SOCKET", &missing.display().to_string())],
    );
    expect_exit(&from_env, 3);
    assert!(
        text(&from_env.stderr).contains(&missing.display().to_string()),
        "{}",
        text(&from_env.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["sg"],
        &["sg", "show"],
        &["conntrack", "flush"],
        &["conntrack", "list", "--limit", "0"],
        &[
            "trace",
            "--instance",
            "i",
            "--direction",
            "up",
            "--protocol",
            "tcp",
            "--remote",
            "203.0.113.9",
        ],
        &[
            "trace",
            "--instance",
            "i",
            "--direction",
            "ingress",
            "--protocol",
            "tcp",
            "--remote",
            "203.0.113.300",
        ],
        &["export", "sg-web", "--format", "yaml"],
        &["completions", "cmd.exe"],
    ];
    for args in cases {
        let output = secgroupctl(args);
        expect_exit(&output, 2);
        assert!(!output.stderr.is_empty(), "{args:?}: no message");
    }
    let help = secgroupctl(&["--help"]);
    expect_exit(&help, 0);
    assert!(text(&help.stdout).contains("3  secgroupd cannot be reached"));
}

/// A trace of `ins-1` with `rest` after `--direction`.
fn trace_args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["trace", "--instance", "ins-1", "--direction"];
    args.extend_from_slice(rest);
    args
}

/// Arguments the CLI refuses by itself: exit 2 with one line, whatever the
/// socket (here: nothing there, which would be exit 3 had it asked).
#[test]
fn contradictory_arguments_exit_2_before_the_daemon_is_asked() {
    let socket = scratch("usage")
        .join("secgroupd.sock")
        .display()
        .to_string();
    let not_sg = "\"web\" is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-' (at most 64 bytes)";
    let not_instance =
        "\"ins 1\" is not an instance id; expected 1 to 64 letters, digits, '_', '.' or '-'";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            trace_args(&["ingress", "--protocol", "tcp", "--remote", "203.0.113.9"]),
            "a tcp trace needs --port (the destination port)",
        ),
        (
            trace_args(&["egress", "--protocol", "UDP", "--remote", "203.0.113.9"]),
            "a udp trace needs --port (the destination port)",
        ),
        (
            trace_args(&[
                "ingress",
                "--protocol",
                "sctp",
                "--remote",
                "203.0.113.9",
                "--port",
                "9",
            ]),
            "unknown protocol \"sctp\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number from 0 to 255",
        ),
        (
            trace_args(&["ingress", "--protocol", "all", "--remote", "203.0.113.9"]),
            "a traced packet has one protocol, not \"all\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number",
        ),
        (
            trace_args(&[
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--port",
                "8",
            ]),
            "--port 8 applies to tcp and udp only, not icmp",
        ),
        (
            trace_args(&["ingress", "--protocol", "icmp", "--remote", "2001:db8::9"]),
            "ICMP over IPv6 is icmpv6: use --protocol icmpv6 with --remote 2001:db8::9",
        ),
        (
            trace_args(&["ingress", "--protocol", "icmpv6", "--remote", "203.0.113.9"]),
            "icmpv6 needs an IPv6 --remote, not 203.0.113.9",
        ),
        (
            trace_args(&[
                "egress",
                "--protocol",
                "udp",
                "--remote",
                "203.0.113.9",
                "--port",
                "53",
                "--local",
                "2001:db8::2",
            ]),
            "--local 2001:db8::2 and --remote 203.0.113.9 are of different families",
        ),
        (
            trace_args(&[
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--source-mac",
                "52:54:00:12:34:56",
            ]),
            "--source-mac applies to egress traces (what the VM sends)",
        ),
        (
            trace_args(&[
                "egress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--source-mac",
                "52:54:00",
            ]),
            "--source-mac \"52:54:00\" is not a MAC address; expected six hex bytes like 52:54:00:12:34:56",
        ),
        (
            vec![
                "trace",
                "--instance",
                "ins 1",
                "--direction",
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
            ],
            not_instance,
        ),
        (vec!["sg", "show", "web"], not_sg),
        (vec!["instance", "show", "ins 1"], not_instance),
        (
            vec!["conntrack", "list", "--instance", "ins 1"],
            not_instance,
        ),
        (
            vec!["conntrack", "flush", "--instance", "ins 1"],
            not_instance,
        ),
        (vec!["export", "web", "--rules-dir", "/nonexistent"], not_sg),
        (
            vec![
                "sg",
                "clone",
                "sg-web",
                "web",
                "--rules-dir",
                "/nonexistent",
            ],
            not_sg,
        ),
        (vec!["template", "show", "linux-ssh", "--id", "web"], not_sg),
    ];
    for (command, message) in cases {
        for json in [false, true] {
            let mut args = vec!["--socket", socket.as_str()];
            if json {
                args.push("--json");
            }
            args.extend_from_slice(&command);
            let output = secgroupctl(&args);
            expect_exit(&output, 2);
            assert_eq!(
                text(&output.stderr),
                format!("secgroupctl: {message}\n"),
                "{args:?}"
            );
            assert!(output.stdout.is_empty(), "{args:?}");
        }
    }
    // Port 0 is clap's to refuse.
    let zero = secgroupctl(&trace_args(&[
        "ingress",
        "--protocol",
        "tcp",
        "--remote",
        "203.0.113.9",
        "--port",
        "0",
    ]));
    expect_exit(&zero, 2);
}

/// Every way a command can fail on a path that is not there: the cause's
/// text (`No such file or directory (os error 2)`) is printed once.
#[test]
fn error_causes_are_printed_once() {
    let dir = scratch("causes");
    let missing = dir.join("nowhere").display().to_string();
    let through_file = dir.join("plain-file").join("x").display().to_string();
    write(&dir, "plain-file", "");
    let cases: Vec<Vec<&str>> = vec![
        vec!["validate", "/nonexistent"],
        vec!["validate", &missing],
        vec!["validate", "--rules-dir", &missing],
        vec!["validate", &through_file],
        vec!["export", "sg-web", "--rules-dir", &missing],
        vec!["import", &missing, "--rules-dir", &missing],
        vec!["sg", "clone", "sg-web", "sg-new", "--rules-dir", &missing],
        vec!["--json", "validate", &missing],
    ];
    for args in cases {
        let output = secgroupctl_env(&args, &[]);
        expect_exit(&output, 1);
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("secgroupctl: "), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("(os error").count(), 1, "{args:?}: {stderr}");
        let parts: Vec<&str> = stderr.trim_end().split(": ").collect();
        for (i, part) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(part),
                "{args:?}: {part:?} twice in {stderr}"
            );
        }
    }
    let output = secgroupctl(&["validate", "/nonexistent"]);
    assert_eq!(
        text(&output.stderr),
        "secgroupctl: cannot read the rule files: cannot access /nonexistent: No such file or directory (os error 2)\n"
    );
}

/// `--socket` at something that is not secgroupd's socket: exit 3, and a
/// reason that says what is there and a hint that says what to do.
#[test]
fn wrong_socket_paths_say_what_is_there() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::os::unix::net::UnixListener;

    let dir = scratch("sockets");
    let d = dir.display().to_string();
    write(&dir, "plain-file", "");
    fs::create_dir(dir.join("a-directory")).unwrap_or_else(|e| panic!("{e}"));
    symlink(dir.join("gone"), dir.join("dangling")).unwrap_or_else(|e| panic!("{e}"));
    // Bound, then closed: the file stays, nobody listens.
    drop(UnixListener::bind(dir.join("dead.sock")).unwrap_or_else(|e| panic!("{e}")));
    let start = "(is the daemon running? systemctl start secgroupd, or pass --socket)";
    let path_hint = "(pass --socket with the path secgroupd listens on, by default /run/secgroup/secgroupd.sock)";
    let cases = [
        (
            "nothing",
            format!("nothing is there (no such file) {start}"),
        ),
        (
            "no-dir/secgroupd.sock",
            format!("nothing is there, not even its directory {d}/no-dir (no such file) {start}"),
        ),
        (
            "plain-file",
            format!("it is a regular file, not a socket {path_hint}"),
        ),
        (
            "a-directory",
            format!(
                "it is a directory, not a socket (pass --socket with the socket in it, such as {d}/a-directory/secgroupd.sock, not the directory)"
            ),
        ),
        (
            "plain-file/secgroupd.sock",
            format!("{d}/plain-file is a regular file, not a directory {path_hint}"),
        ),
        (
            "dangling",
            format!("it is a symbolic link to {d}/gone, which does not exist {start}"),
        ),
        (
            "dead.sock",
            format!("a socket is there but nobody listens on it (connection refused) {start}"),
        ),
    ];
    for (name, reason) in cases {
        let socket = format!("{d}/{name}");
        let output = secgroupctl(&["--socket", &socket, "status"]);
        expect_exit(&output, 3);
        assert_eq!(
            text(&output.stderr),
            format!("secgroupctl: cannot reach secgroupd at {socket}: {reason}\n"),
            "{name}"
        );
    }

    // A listening socket we may not write to. Root may write anything, so
    // as root the CLI runs as nobody.
    let socket = dir.join("private.sock");
    let _listener = UnixListener::bind(&socket).unwrap_or_else(|e| panic!("{e}"));
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    let socket_text = socket.display().to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_secgroupctl"));
    command
        .args(["--socket", &socket_text, "status"])
        .env_remove("SECGROUP_SOCKET");
    // /proc/self belongs to the effective uid.
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        use std::os::unix::process::CommandExt;
        command.uid(65534).gid(65534);
    } else {
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o000))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let output = command.output().unwrap_or_else(|e| panic!("{e}"));
    expect_exit(&output, 3);
    let meta = fs::metadata(&socket).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text(&output.stderr),
        format!(
            "secgroupctl: cannot reach secgroupd at {socket_text}: permission denied (the socket's mode is {:04o}, owner uid {}, group gid {}) (run as root or as a member of group secgroup, or pass --socket)\n",
            meta.mode() & 0o7777,
            meta.uid(),
            meta.gid()
        )
    );
}

/// How the daemon's error answers become exit codes: a 400 to a trace is
/// the caller's usage error (2); other refusals are "no" (1); a 5xx is the
/// daemon failing (4).
#[test]
fn daemon_refusals_and_exit_codes() {
    let dir = scratch("fake-daemon");
    let socket = dir.join("secgroupd.sock");
    let socket_text = socket.display().to_string();
    let trace = trace_args(&[
        "ingress",
        "--protocol",
        "tcp",
        "--remote",
        "203.0.113.9",
        "--port",
        "22",
    ]);
    let cases: Vec<(Vec<&str>, u16, &'static str, i32, &str)> = vec![
        (
            trace.clone(),
            400,
            r#"{"error": "instance ins-1 has no IPv6 address; give \"local\""}"#,
            2,
            "instance ins-1 has no IPv6 address; give \"local\"",
        ),
        (
            trace.clone(),
            404,
            r#"{"error": "no instance \"ins-1\"", "known": ["ins-a"]}"#,
            1,
            "no instance \"ins-1\" (known: ins-a)",
        ),
        (
            trace.clone(),
            409,
            r#"{"error": "instance ins-1 is not attached"}"#,
            1,
            "instance ins-1 is not attached",
        ),
        (
            trace.clone(),
            403,
            r#"{"error": "only root and members of secgroup may trace"}"#,
            1,
            "only root and members of secgroup may trace",
        ),
        (
            trace,
            500,
            r#"{"error": "the kernel said no"}"#,
            4,
            "secgroupd failed: the kernel said no (500)",
        ),
        // Only a trace's 400 is the caller's: elsewhere it is a refusal.
        (
            vec!["sg", "show", "sg-web"],
            400,
            r#"{"error": "malformed id"}"#,
            1,
            "malformed id",
        ),
    ];
    let answers = cases
        .iter()
        .flat_map(|(_, status, body, _, _)| [(*status, *body), (*status, *body)])
        .collect();
    let server = fake_daemon(&socket, answers);
    for (command, status, _, code, message) in &cases {
        for json in [false, true] {
            let mut args = vec!["--socket", socket_text.as_str()];
            if json {
                args.push("--json");
            }
            args.extend_from_slice(command);
            let output = secgroupctl(&args);
            expect_exit(&output, *code);
            assert_eq!(
                text(&output.stderr),
                format!("secgroupctl: {message}\n"),
                "{status}: {args:?}"
            );
            assert!(output.stdout.is_empty(), "{args:?}");
        }
    }
    let requests = server
        .join()
        .unwrap_or_else(|_| panic!("the fake daemon panicked"));
    assert_eq!(requests.len(), cases.len() * 2, "{requests:?}");
    assert!(requests[0].starts_with("POST /v1/trace "), "{requests:?}");
}

/// A copy of the examples directory to change.
fn examples_copy(name: &str) -> PathBuf {
    let dir = scratch(name);
    for entry in fs::read_dir(examples()).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "json") {
            let target = dir.join(path.file_name().unwrap_or_default());
            fs::copy(&path, &target).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    dir
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn export_import_and_clone_offline() {
    let dir = examples_copy("offline");
    let d = dir.display().to_string();
    let work = scratch("offline-work");

    // Export of an unknown group names the known ones.
    let unknown = secgroupctl(&["export", "sg-nope", "--rules-dir", &d]);
    expect_exit(&unknown, 1);
    assert!(
        text(&unknown.stderr).starts_with(&format!(
            "secgroupctl: no security group \"sg-nope\" in {d} (known: sg-base, sg-bastion, sg-blocklist, "
        )),
        "{}",
        text(&unknown.stderr)
    );

    // sg-db lives alone in a Tencent file: its export in either format
    // imports as "nothing to do".
    for format in ["native", "tencent"] {
        let exported = secgroupctl(&["export", "sg-db", "--format", format, "--rules-dir", &d]);
        expect_exit(&exported, 0);
        let file = work.join(format!("sg-db.{format}.json"));
        fs::write(&file, &exported.stdout).unwrap_or_else(|e| panic!("{e}"));
        let before = snapshot(&dir);
        let again = secgroupctl(&["import", &file.display().to_string(), "--rules-dir", &d]);
        expect_exit(&again, 0);
        assert!(
            text(&again.stdout).contains("is this group already"),
            "{format}: {}",
            text(&again.stdout)
        );
        assert_eq!(snapshot(&dir), before, "{format}");
    }

    // A changed sg-db replaces the Tencent file, which is kept.
    let native = secgroupctl(&["export", "sg-db", "--rules-dir", &d]);
    let changed =
        text(&native.stdout).replace("\"SSH from the bastion\"", "\"SSH from the bastion host\"");
    let file = work.join("sg-db.changed.json");
    fs::write(&file, &changed).unwrap_or_else(|e| panic!("{e}"));
    let file_text = file.display().to_string();
    let wrong_format = secgroupctl(&[
        "import",
        &file_text,
        "--format",
        "tencent",
        "--rules-dir",
        &d,
    ]);
    expect_exit(&wrong_format, 1);
    assert_eq!(
        text(&wrong_format.stderr),
        format!("secgroupctl: {file_text} is in native format, not tencent (--format)\n")
    );
    let imported = secgroupctl(&["--json", "import", &file_text, "--rules-dir", &d]);
    expect_exit(&imported, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&imported.stdout).unwrap_or_else(|e| panic!("{e}"));
    let target = dir.join("tencent-format-sg-db.json");
    assert_eq!(report["file"], target.display().to_string());
    assert_eq!(report["changed"], true);
    assert_eq!(fs::read_to_string(&target).unwrap_or_default(), changed);
    let backup = report["backup"]
        .as_str()
        .unwrap_or_else(|| panic!("no backup: {report}"));
    assert_eq!(
        fs::read(backup).unwrap_or_default(),
        fs::read(examples().join("tencent-format-sg-db.json")).unwrap_or_default()
    );

    // Files that are not one group are refused before anything else.
    let cases = [
        (
            "two.json",
            "{\"security_groups\": [{\"id\": \"sg-a\"}, {\"id\": \"sg-b\"}]}",
            "defines 2 security groups and 0 other objects",
        ),
        (
            "none.json",
            "{}",
            "defines 0 security groups and 0 other objects",
        ),
        (
            "mixed.json",
            "{\"security_groups\": [{\"id\": \"sg-a\"}], \"instances\": [{\"id\": \"i\", \"ips\": [], \"security_groups\": [\"sg-a\"]}]}",
            "defines 1 security group and 1 other object",
        ),
    ];
    for (name, contents, message) in cases {
        write(&work, name, contents);
        let before = snapshot(&dir);
        let path = work.join(name).display().to_string();
        let output = secgroupctl(&["import", &path, "--rules-dir", &d]);
        expect_exit(&output, 1);
        assert!(
            text(&output.stderr).contains(message),
            "{name}: {}",
            text(&output.stderr)
        );
        assert_eq!(snapshot(&dir), before, "{name}");
    }

    // Syntax errors and a group that breaks a reference elsewhere: located,
    // and nothing changes.
    write(&work, "broken.json", "{\"security_groups\": [,]}");
    write(
        &work,
        "dangling.json",
        "{\"security_groups\": [{\"id\": \"sg-new\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": 22, \"remote\": \"sg-ghost\"}]}]}",
    );
    let broken = work.join("broken.json").display().to_string();
    let dangling = work.join("dangling.json").display().to_string();
    for (path, expected) in [
        (
            &broken,
            format!(
                "{broken}:1:22: security_groups[0]: unexpected character ','; expected a value\n"
            ),
        ),
        (
            &dangling,
            format!(
                "{dangling}:1:113: security_groups[0].ingress[0].remote: unknown security group \"sg-ghost\": no rule file defines it\n"
            ),
        ),
    ] {
        let before = snapshot(&dir);
        let output = secgroupctl(&["import", path, "--rules-dir", &d]);
        expect_exit(&output, 1);
        assert_eq!(
            text(&output.stderr),
            format!(
                "{expected}secgroupctl: 1 error in the resulting rules directory; nothing was changed\n"
            )
        );
        assert_eq!(snapshot(&dir), before, "{path}");
    }

    // A new group goes to its own file; the directory stays valid.
    write(
        &work,
        "new.json",
        "{\"security_groups\": [{\"id\": \"sg-new\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": 22, \"remote\": \"sg-bastion\"}]}]}",
    );
    let new = secgroupctl(&[
        "import",
        &work.join("new.json").display().to_string(),
        "--rules-dir",
        &d,
    ]);
    expect_exit(&new, 0);
    assert_eq!(
        text(&new.stdout),
        format!(
            "imported sg-new (native format, 1 ingress rule, 0 egress rules) into {d}/sg-new.json\n"
        )
    );

    // Clone: a new file, validated; clashes refused. The rules directory
    // may come from the environment.
    let cloned = secgroupctl_env(
        &["--json", "sg", "clone", "sg-web", "sg-web-staging"],
        &[("SECGROUP_RULES_DIR", &d)],
    );
    expect_exit(&cloned, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&cloned.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report,
        serde_json::json!({
            "cloned": "sg-web",
            "id": "sg-web-staging",
            "file": dir.join("sg-web-staging.json").display().to_string(),
            "ingress_rules": 4,
            "egress_rules": 3,
        })
    );
    let file = fs::read_to_string(dir.join("sg-web-staging.json")).unwrap_or_default();
    assert!(file.contains("\"id\": \"sg-web-staging\""), "{file}");
    for (new_id, message, code) in [
        (
            "sg-web-staging",
            "security group sg-web-staging exists already",
            1,
        ),
        ("web2", "\"web2\" is not a security group id", 2),
    ] {
        let output = secgroupctl(&["sg", "clone", "sg-web", new_id, "--rules-dir", &d]);
        expect_exit(&output, code);
        assert!(
            text(&output.stderr).contains(message),
            "{}",
            text(&output.stderr)
        );
    }
    let valid = secgroupctl(&["validate", &d]);
    expect_exit(&valid, 0);
    assert!(
        text(&valid.stdout).starts_with("valid: 11 files, 13 security groups"),
        "{}",
        text(&valid.stdout)
    );
}
