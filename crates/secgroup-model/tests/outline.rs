//! What a file defines, read from the file alone, and the index of a set
//! of files.

use secgroup_model::{Format, Index, Limits, ObjectKind, SourceFile, load_with, outline};

/// (format, [(kind, id, "line:column path")], number of errors)
type Expected<'a> = (Option<Format>, &'a [(ObjectKind, &'a str, &'a str)], usize);

fn check(text: &str, expected: Expected<'_>) {
    let file = SourceFile {
        name: "f.json",
        bytes: text.as_bytes(),
    };
    let o = outline(&file, &Limits::default());
    let definitions: Vec<(ObjectKind, &str, String)> = o
        .definitions
        .iter()
        .map(|d| {
            assert_eq!(d.at.file, "f.json");
            (
                d.kind,
                d.id.as_str(),
                format!("{}:{} {}", d.at.line, d.at.column, d.at.path),
            )
        })
        .collect();
    let (format, defs, errors) = expected;
    let want: Vec<(ObjectKind, &str, String)> = defs
        .iter()
        .map(|&(k, id, at)| (k, id, at.to_owned()))
        .collect();
    assert_eq!(
        (o.format, definitions, o.errors.len()),
        (format, want, errors),
        "{text}\n{:?}",
        o.errors
    );
}

#[test]
fn outlines() {
    use ObjectKind::*;
    check("{}", (Some(Format::Native), &[], 0));
    check(
        r#"{"instances": [{"id": "i-1", "ips": [], "security_groups": ["sg-a"]}],
            "security_groups": [{"id": "sg-a"}, {"id": "sg-b"}],
            "address_sets": [{"id": "ipm-x", "addresses": []}],
            "service_set_groups": [{"id": "ppmg-y", "sets": []}]}"#,
        (
            Some(Format::Native),
            &[
                (Instance, "i-1", "1:23 instances[0].id"),
                (SecurityGroup, "sg-a", "2:40 security_groups[0].id"),
                (SecurityGroup, "sg-b", "2:56 security_groups[1].id"),
                (AddressSet, "ipm-x", "3:37 address_sets[0].id"),
                (ServiceSetGroup, "ppmg-y", "4:43 service_set_groups[0].id"),
            ],
            0,
        ),
    );
    // Tencent's format, recognised by its keys, a byte-order mark allowed.
    check(
        "\u{feff}{\"SecurityGroupId\": \"sg-t\", \"SecurityGroupPolicySet\": {}}",
        (
            Some(Format::Tencent),
            &[(SecurityGroup, "sg-t", "1:21 SecurityGroupId")],
            0,
        ),
    );
    check(
        r#"{"SecurityGroupName": "x"}"#,
        (Some(Format::Tencent), &[], 2),
    );
    // Ids are listed as written; what they mean is the loader's to judge.
    check(
        r#"{"security_groups": [{"id": "web"}, {"name": "x"}, 7]}"#,
        (
            Some(Format::Native),
            &[(SecurityGroup, "web", "1:29 security_groups[0].id")],
            2,
        ),
    );
    check(r#"{"security_groups": 1}"#, (Some(Format::Native), &[], 1));
    check("[]", (None, &[], 1));
    check("{", (None, &[], 1));
}

#[test]
fn a_load_indexes_every_file() {
    let files = [
        SourceFile {
            name: "b.json",
            bytes: br#"{"security_groups": [{"id": "sg-b", "ingress": [{"action": "accept", "protocol": "all", "remote": "sg-a"}]}]}"#,
        },
        SourceFile {
            name: "a.json",
            bytes: br#"{"SecurityGroupId": "sg-a", "SecurityGroupPolicySet": {}}"#,
        },
    ];
    let loaded =
        load_with(&files, &Limits::default(), &[]).unwrap_or_else(|e| panic!("not loaded: {e}"));
    let names: Vec<&str> = loaded
        .index
        .files()
        .iter()
        .map(|o| o.file.as_str())
        .collect();
    assert_eq!(names, ["a.json", "b.json"]);
    let (file, definition) = loaded
        .index
        .defining(ObjectKind::SecurityGroup, "sg-b")
        .unwrap_or_else(|| panic!("sg-b is not indexed"));
    assert_eq!(
        (file.file.as_str(), definition.at.to_string()),
        ("b.json", "b.json:1:29".to_owned())
    );
    assert_eq!(
        loaded.index.file("a.json").and_then(|o| o.format),
        Some(Format::Tencent)
    );
    assert!(
        loaded
            .index
            .defining(ObjectKind::Instance, "sg-b")
            .is_none()
    );

    // The objects of one file, taken from the rule set: what a rewrite of
    // the file keeps.
    let b = loaded
        .index
        .file("b.json")
        .and_then(|o| o.objects_in(&loaded.rules))
        .unwrap_or_else(|| panic!("b.json's objects"));
    let ids: Vec<String> = b.security_groups.keys().map(ToString::to_string).collect();
    assert_eq!(ids, ["sg-b"]);
    assert!(Index::default().files().is_empty());
}
