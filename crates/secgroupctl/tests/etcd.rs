//! `secgroupctl publish` and `export --etcd-endpoints` against a real
//! etcd (the test bed's, on 127.0.0.1 and free ports): a directory
//! becomes exactly the prefix's keys in one revision, a changed
//! directory only its differences, an invalid one nothing at all; what
//! was published exports back; etcd out of reach is exit 3.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use secgroup_testbed::{Etcd, etcd_or_skip};
use serde_json::{Value, json};

use crate::common::{expect_exit, scratch, text};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secgroupctl"))
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR")
        .env_remove("SECGROUP_ETCD_ENDPOINTS")
        .env_remove("SECGROUP_ETCD_PREFIX")
        .output()
        .unwrap_or_else(|e| panic!("cannot run secgroupctl: {e}"))
}

fn write(dir: &Path, name: &str, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| panic!("{e}"));
    fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("writing {name}: {e}"));
}

fn groups(db_port: &str) -> Value {
    json!({"security_groups": [
        {"id": "sg-web", "ingress": [{"action": "accept", "protocol": "tcp", "port": "443"}],
         "egress": [{"action": "accept", "protocol": "all"}]},
        {"id": "sg-db", "ingress": [{"action": "accept", "protocol": "tcp", "port": db_port,
                                     "remote": "sg-web"}],
         "egress": []},
    ]})
}

fn instances(with_b: bool) -> Value {
    let mut list = vec![
        json!({"id": "ins-a", "host": "hv-a", "interface": "tap-a",
               "ips": ["198.51.100.10"], "security_groups": ["sg-web"]}),
        json!({"id": "ins-db", "host": "hv-c", "interface": "tap-a",
               "ips": ["198.51.100.30"], "security_groups": ["sg-db"]}),
    ];
    if with_b {
        list.push(json!({"id": "ins-b", "host": "hv-b", "interface": "tap-b",
                         "ips": ["198.51.100.11"], "security_groups": ["sg-web"]}));
    }
    json!({ "instances": list })
}

fn publish(etcd: &Etcd, dir: &Path) -> Output {
    let endpoint = etcd.endpoint();
    let dir = dir.to_string_lossy();
    run(&["publish", "--json", "--etcd-endpoints", &endpoint, &dir])
}

fn published(output: &Output) -> Value {
    expect_exit(output, 0);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("publish --json: {e}: {}", text(&output.stdout)))
}

#[test]
fn publish_writes_the_directory_in_one_revision_and_export_reads_it_back() {
    if !etcd_or_skip("publish_writes_the_directory_in_one_revision") {
        return;
    }
    let etcd = Etcd::new();
    // A key of someone else's, outside the prefix: never touched.
    etcd.put("/other/x", "keep");
    let dir = scratch("secgroupctl-etcd", "publish");
    write(&dir, "groups.json", &groups("5432"));
    write(&dir, "instances.json", &instances(true));

    let before = etcd.revision();
    let first = published(&publish(&etcd, &dir));
    let revision = first["revision"].as_i64().unwrap_or(0);
    assert_eq!(
        revision,
        before + 1,
        "one transaction, one revision: {first}"
    );
    assert_eq!(
        (first["put"].as_u64(), first["deleted"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(
        etcd.keys("/secgroup/"),
        [
            "/secgroup/instances/ins-a",
            "/secgroup/instances/ins-b",
            "/secgroup/instances/ins-db",
            "/secgroup/security_groups/sg-db",
            "/secgroup/security_groups/sg-web",
        ]
    );
    let value: Value = serde_json::from_str(
        &etcd
            .get("/secgroup/instances/ins-b")
            .unwrap_or_else(|| panic!("ins-b was not written")),
    )
    .unwrap_or_else(|e| panic!("the value is one JSON object: {e}"));
    assert_eq!(
        (value["id"].as_str(), value["host"].as_str()),
        (Some("ins-b"), Some("hv-b"))
    );

    // Text output says the revision.
    let endpoint = etcd.endpoint();
    let again = run(&[
        "publish",
        "--etcd-endpoints",
        &endpoint,
        &dir.to_string_lossy(),
    ]);
    expect_exit(&again, 0);
    assert!(
        text(&again.stdout).contains(&format!(
            "revision {revision} (nothing to change, 5 unchanged)"
        )),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        etcd.revision(),
        revision,
        "nothing to change writes nothing"
    );

    // A changed directory: only the differences, still one revision.
    write(&dir, "groups.json", &groups("5433"));
    write(&dir, "instances.json", &instances(false));
    let second = published(&publish(&etcd, &dir));
    assert_eq!(second["revision"].as_i64(), Some(revision + 1), "{second}");
    assert_eq!(
        (
            second["put"].as_u64(),
            second["deleted"].as_u64(),
            second["unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(3)),
        "{second}"
    );
    assert_eq!(etcd.get("/secgroup/instances/ins-b"), None);
    assert_eq!(etcd.get("/other/x").as_deref(), Some("keep"));

    // What was published exports back as the group it was.
    let export = run(&["export", "sg-db", "--etcd-endpoints", &endpoint]);
    expect_exit(&export, 0);
    let file: Value = serde_json::from_slice(&export.stdout)
        .unwrap_or_else(|e| panic!("export prints a rule file: {e}: {}", text(&export.stdout)));
    let rule = &file["security_groups"][0]["ingress"][0];
    assert_eq!(
        (rule["port"].as_str(), rule["remote"].as_str()),
        (Some("5433"), Some("sg-web")),
        "{file}"
    );
    let missing = run(&["export", "sg-nope", "--etcd-endpoints", &endpoint]);
    expect_exit(&missing, 1);
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("no security group \"sg-nope\" in etcd at") && stderr.contains("sg-web"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_directory_is_refused_with_located_errors_and_writes_nothing() {
    if !etcd_or_skip("an_invalid_directory_is_refused") {
        return;
    }
    let etcd = Etcd::new();
    let dir = scratch("secgroupctl-etcd", "invalid");
    write(&dir, "groups.json", &groups("5432"));
    write(&dir, "instances.json", &instances(true));
    published(&publish(&etcd, &dir));
    let before = etcd.revision();
    let keys = etcd.keys("/secgroup/");

    // A dangling group reference, and an interface bound twice on one host.
    let mut broken = instances(true);
    broken["instances"][0]["security_groups"] = json!(["sg-missing"]);
    broken["instances"][2]["interface"] = json!("tap-a");
    broken["instances"][2]["host"] = json!("hv-a");
    write(&dir, "instances.json", &broken);
    let endpoint = etcd.endpoint();
    let refused = run(&[
        "publish",
        "--etcd-endpoints",
        &endpoint,
        &dir.to_string_lossy(),
    ]);
    expect_exit(&refused, 1);
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("instances.json:"),
        "located in the file: {stderr}"
    );
    assert!(stderr.contains("sg-missing"), "{stderr}");
    assert!(
        stderr.contains("tap-a"),
        "the interface bound twice on hv-a: {stderr}"
    );
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert_eq!(
        etcd.revision(),
        before,
        "an invalid directory writes nothing"
    );
    assert_eq!(etcd.keys("/secgroup/"), keys);

    // A value written behind publish's back is found by export, by key.
    etcd.put("/secgroup/instances/ins-x", r#"{"id": "ins-y", "ips": []}"#);
    let export = run(&["export", "sg-web", "--etcd-endpoints", &endpoint]);
    expect_exit(&export, 1);
    let stderr = text(&export.stderr);
    assert!(
        stderr.contains("etcd:/secgroup/instances/ins-x"),
        "{stderr}"
    );
}

#[test]
fn flags_are_checked_first_and_an_unreachable_etcd_is_exit_3() {
    let dir = scratch("secgroupctl-etcd", "flags");
    write(&dir, "groups.json", &groups("5432"));
    let dir = dir.to_string_lossy();
    let none = run(&["publish", &dir]);
    expect_exit(&none, 2);
    assert!(
        text(&none.stderr).contains("--etcd-endpoints"),
        "{}",
        text(&none.stderr)
    );
    let bad_prefix = run(&[
        "publish",
        "--etcd-endpoints",
        "http://127.0.0.1:9",
        "--etcd-prefix",
        "nope",
        &dir,
    ]);
    expect_exit(&bad_prefix, 2);
    let both = run(&[
        "export",
        "sg-web",
        "--rules-dir",
        &dir,
        "--etcd-endpoints",
        "http://127.0.0.1:9",
    ]);
    expect_exit(&both, 2);
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let endpoint = format!("http://127.0.0.1:{port}");
    let unreachable = run(&[
        "publish",
        "--etcd-endpoints",
        &endpoint,
        "--etcd-timeout",
        "1s",
        &dir,
    ]);
    expect_exit(&unreachable, 3);
    assert!(
        text(&unreachable.stderr).contains(&endpoint),
        "{}",
        text(&unreachable.stderr)
    );
}
