//! The built `secgroupctl` binary, run as a user would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn secgroupctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secgroupctl"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run secgroupctl: {e}"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// A fresh directory under cargo's per-test scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("secgroupctl")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
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
        "valid: 8 files, 10 security groups, 11 instances (9 on this host), 2 address sets, 1 address set group, 3 service sets, 1 service set group"
    );
    assert!(
        lines.contains(&"  ins-web-1          tap-web1: 7 ingress rules, 4 egress rules"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"  ins-db-1           tap-db1: 7 ingress rules, 2 egress rules"),
        "{stdout}"
    );
    assert!(text(&output.stderr).is_empty(), "{}", text(&output.stderr));
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
    assert_eq!(value["security_groups"], 10);
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
    let bad_id = secgroupctl(&["template", "show", "open-all", "--id", "web"]);
    expect_exit(&bad_id, 1);
    assert!(text(&bad_id.stderr).starts_with("secgroupctl: \"web\" is not a security group id"));
}
