//! What is logged and enforced: a rule's `"log"`, an instance's `"log"`
//! and `"enforcement"`, their defaults, and that rendering keeps them.

use secgroup_model::{
    Enforcement, InstanceId, Limits, LogMode, RuleSet, SgId, SourceFile, load, render,
};

fn load_ok(files: &[(&str, &str)]) -> RuleSet {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|&(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    load(&sources, &Limits::default()).unwrap_or_else(|e| panic!("expected to load, got:\n{e}"))
}

const GROUP: &str = r#"{"security_groups": [{"id": "sg-db", "ingress": [
  {"action": "accept", "protocol": "tcp", "port": 5432, "remote": "198.51.100.0/24", "log": true},
  {"action": "drop", "protocol": "tcp", "port": 5432, "log": false},
  {"action": "accept", "protocol": "icmp"}
]}]}"#;

fn instances(extra: &[&str]) -> String {
    let items: Vec<String> = extra
        .iter()
        .enumerate()
        .map(|(n, keys)| {
            let sep = if keys.is_empty() { "" } else { ", " };
            format!(
                r#"{{"id": "i-{n}", "interface": "tap{n}", "ips": [], "security_groups": ["sg-db"]{sep}{keys}}}"#
            )
        })
        .collect();
    format!(r#"{{"instances": [{}]}}"#, items.join(",\n"))
}

#[test]
fn rule_log_defaults_to_false() {
    let rules = load_ok(&[("g.json", GROUP)]);
    let sg = &rules.security_groups[&SgId::new("sg-db").unwrap_or_else(|| panic!())];
    let logged: Vec<bool> = sg.ingress.iter().map(|r| r.log).collect();
    assert_eq!(logged, [true, false, false]);
}

#[test]
fn instance_log_and_enforcement_forms() {
    let cases: &[(&str, LogMode, Enforcement)] = &[
        ("", LogMode::None, Enforcement::Enforce),
        (r#""log": "none""#, LogMode::None, Enforcement::Enforce),
        (r#""log": "drops""#, LogMode::Drops, Enforcement::Enforce),
        (r#""log": "all""#, LogMode::All, Enforcement::Enforce),
        (
            r#""enforcement": "enforce""#,
            LogMode::None,
            Enforcement::Enforce,
        ),
        (
            r#""enforcement": "audit""#,
            LogMode::None,
            Enforcement::Audit,
        ),
        (
            r#""enforcement": "audit", "log": "drops""#,
            LogMode::Drops,
            Enforcement::Audit,
        ),
    ];
    let keys: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let rules = load_ok(&[("g.json", GROUP), ("i.json", &instances(&keys))]);
    for (n, (keys, log, enforcement)) in cases.iter().enumerate() {
        let id = InstanceId::new(&format!("i-{n}")).unwrap_or_else(|| panic!());
        let got = &rules.instances[&id];
        assert_eq!((got.log, got.enforcement), (*log, *enforcement), "{keys}");
    }
}

#[test]
fn rendered_log_and_enforcement_load_back_identical() {
    let files = [
        ("g.json", GROUP),
        (
            "i.json",
            &instances(&["", r#""log": "all", "enforcement": "audit""#]),
        ),
    ];
    let first = load_ok(&files);
    let text = render::rule_file(&first);
    // Defaults are not written; what differs from them is.
    assert_eq!(text.matches(r#""log": true"#).count(), 1, "{text}");
    assert!(!text.contains(r#""log": false"#), "{text}");
    assert_eq!(text.matches(r#""log": "all""#).count(), 1, "{text}");
    assert_eq!(
        text.matches(r#""enforcement": "audit""#).count(),
        1,
        "{text}"
    );
    assert!(
        !text.contains(r#""log": "none""#) && !text.contains(r#""enforce""#),
        "{text}"
    );
    let again = load_ok(&[("rendered.json", &text)]);
    assert_eq!(again, first, "round trip through\n{text}");
}
