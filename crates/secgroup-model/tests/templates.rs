//! Built-in templates: contents, and their rendered files load back.

use secgroup_model::templates::{self, TEMPLATES};
use secgroup_model::{Direction, Limits, Ports, Protocol, Remote, SgId, SourceFile, Traffic, load};

fn sg(id: &str) -> SgId {
    SgId::new(id).unwrap_or_else(|| panic!("bad test id {id}"))
}

/// Each rule as "action protocol port remote", for compact expectations.
fn summary(group: &secgroup_model::SecurityGroup, direction: Direction) -> Vec<String> {
    group
        .rules(direction)
        .iter()
        .map(|r| {
            let Traffic::Service(s) = &r.traffic else {
                panic!("templates use literal protocols, got {:?}", r.traffic);
            };
            format!("{} {} {} {}", r.action, s.protocol, s.ports, r.remote)
        })
        .collect()
}

#[test]
fn template_contents() {
    let cases: &[(&str, &[&str])] = &[
        ("open-all", &["accept all all anywhere"]),
        (
            "open-major-ports",
            &[
                "accept tcp 22 anywhere",
                "accept tcp 80 anywhere",
                "accept tcp 443 anywhere",
                "accept tcp 3389 anywhere",
                "accept icmp all 0.0.0.0/0",
                "accept icmpv6 all ::/0",
                "accept all all 10.0.0.0/8",
                "accept all all 172.16.0.0/12",
                "accept all all 192.168.0.0/16",
                "accept all all fc00::/7",
            ],
        ),
        ("linux-ssh", &["accept tcp 22 anywhere"]),
        ("windows-rdp", &["accept tcp 3389 anywhere"]),
    ];
    let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
    let expected_names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names);
    for (name, ingress) in cases {
        let group = templates::template(name, sg("sg-t"))
            .unwrap_or_else(|| panic!("template {name} missing"));
        assert_eq!(
            summary(&group, Direction::Ingress),
            *ingress,
            "{name} ingress"
        );
        assert_eq!(
            summary(&group, Direction::Egress),
            ["accept all all anywhere"],
            "{name} egress"
        );
        assert_eq!(group.id, sg("sg-t"));
        assert_eq!(group.name.as_deref(), Some(*name));
        assert!(
            group.description.as_deref().is_some_and(|d| !d.is_empty()),
            "{name} has no description"
        );
    }
    assert!(templates::template("open-everything", sg("sg-t")).is_none());
    assert!(templates::rule_file("nope", sg("sg-t")).is_none());
}

#[test]
fn rendered_templates_load_back() {
    for t in TEMPLATES {
        let id = sg("sg-from-template");
        let text = t.rule_file(id.clone());
        let source = SourceFile {
            name: "template.json",
            bytes: text.as_bytes(),
        };
        let rules = load(&[source], &Limits::default()).unwrap_or_else(|e| {
            panic!("template {} renders an invalid file:\n{e}\n{text}", t.name)
        });
        assert_eq!(
            rules.security_groups.get(&id),
            Some(&t.build(id.clone())),
            "{}",
            t.name
        );
    }
}

#[test]
fn linux_ssh_file_is_stable() {
    let text = templates::rule_file("linux-ssh", sg("sg-ssh")).unwrap_or_else(|| panic!("missing"));
    let expected = r#"{
  "security_groups": [
    {
      "id": "sg-ssh",
      "name": "linux-ssh",
      "description": "accept SSH (tcp 22) from anywhere; all outbound",
      "ingress": [
        { "action": "accept", "protocol": "tcp", "port": "22", "description": "SSH" }
      ],
      "egress": [
        { "action": "accept", "protocol": "all", "description": "all outbound traffic" }
      ]
    }
  ]
}
"#;
    assert_eq!(text, expected);
    // Keep the test honest about what it checks: port 22, both families.
    let group = templates::template("linux-ssh", sg("sg-ssh")).unwrap_or_else(|| panic!("missing"));
    assert_eq!(group.ingress[0].remote, Remote::Anywhere);
    assert!(
        matches!(&group.ingress[0].traffic, Traffic::Service(s) if s.protocol == Protocol::Number(6) && s.ports != Ports::All)
    );
}
