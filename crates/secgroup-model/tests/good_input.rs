//! Good input: every syntax form parses to the model value it means.

use std::net::IpAddr;

use ipnet::IpNet;
use secgroup_model::{
    Action, AddressBlock, AddressRange, AddressSetGroupId, AddressSetId, Diagnostics, Enforcement,
    Instance, InstanceId, Limits, LogMode, MacAddr, PortRange, Ports, Protocol, Remote, Rule,
    RuleId, RuleSet, Service, ServiceSetGroupId, ServiceSetId, SgId, SourceFile, Traffic, load,
};

fn load_files(files: &[(&str, &str)]) -> Result<RuleSet, Diagnostics> {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|&(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    load(&sources, &Limits::default())
}

fn load_ok(files: &[(&str, &str)]) -> RuleSet {
    load_files(files).unwrap_or_else(|e| panic!("expected to load, got:\n{e}"))
}

fn sg(id: &str) -> SgId {
    SgId::new(id).unwrap_or_else(|| panic!("bad test id {id}"))
}

fn net(text: &str) -> AddressBlock {
    AddressBlock::Net(
        text.parse::<IpNet>()
            .unwrap_or_else(|e| panic!("bad test net {text}: {e}")),
    )
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("bad test address {text}: {e}"))
}

fn ports(ranges: &[(u16, u16)]) -> Ports {
    Ports::List(
        ranges
            .iter()
            .map(|&(lo, hi)| {
                PortRange::new(lo, hi).unwrap_or_else(|| panic!("bad range {lo}-{hi}"))
            })
            .collect(),
    )
}

fn service(protocol: u8, p: Ports) -> Traffic {
    Traffic::Service(Service {
        protocol: Protocol::Number(protocol),
        ports: p,
    })
}

fn all_traffic() -> Traffic {
    Traffic::Service(Service {
        protocol: Protocol::All,
        ports: Ports::All,
    })
}

fn accept(traffic: Traffic, remote: Remote) -> Rule {
    Rule {
        id: None,
        action: Action::Accept,
        traffic,
        remote,
        description: None,
        log: false,
    }
}

/// Definitions every rule below may refer to.
const CONTEXT: &str = r#"{
  "security_groups": [{"id": "sg-other"}],
  "address_sets": [{"id": "ipm-office", "addresses": ["203.0.113.0/24"]}],
  "address_set_groups": [{"id": "ipmg-corp", "sets": ["ipm-office"]}],
  "service_sets": [{"id": "ppm-dns", "services": ["udp:53"]}],
  "service_set_groups": [{"id": "ppmg-infra", "sets": ["ppm-dns"]}]
}"#;

/// Loads `rule` (a JSON object) as the only ingress rule of `sg-x`.
fn check_rule(rule: &str, expected: Rule) {
    let file = format!(r#"{{"security_groups": [{{"id": "sg-x", "ingress": [{rule}]}}]}}"#);
    let rules = load_ok(&[("context.json", CONTEXT), ("rule.json", &file)]);
    let got = &rules.security_groups[&sg("sg-x")].ingress;
    assert_eq!(got.as_slice(), [expected], "rule {rule}");
}

#[test]
fn rule_forms() {
    let anywhere = Remote::Anywhere;
    let long_id = format!(
        r#"{{"action": "accept", "protocol": "all", "id": "{}"}}"#,
        "A".repeat(64)
    );
    let cases: Vec<(&str, Rule)> = vec![
        // protocols: names, numeric strings, JSON numbers
        (
            r#"{"action": "accept", "protocol": "tcp"}"#,
            accept(service(6, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "udp"}"#,
            accept(service(17, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "icmp"}"#,
            accept(service(1, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "icmpv6"}"#,
            accept(service(58, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "gre"}"#,
            accept(service(47, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "all"}"#,
            accept(all_traffic(), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": 132}"#,
            accept(service(132, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "0"}"#,
            accept(service(0, Ports::All), anywhere.clone()),
        ),
        // ports, including for tcp/udp written as numbers
        (
            r#"{"action": "accept", "protocol": "tcp", "port": "22"}"#,
            accept(service(6, ports(&[(22, 22)])), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "tcp", "port": 22}"#,
            accept(service(6, ports(&[(22, 22)])), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": 6, "port": "80,443"}"#,
            accept(service(6, ports(&[(80, 80), (443, 443)])), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "17", "port": "8000-9000"}"#,
            accept(service(17, ports(&[(8000, 9000)])), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "tcp", "port": "22,8000-9000"}"#,
            accept(
                service(6, ports(&[(22, 22), (8000, 9000)])),
                anywhere.clone(),
            ),
        ),
        (
            r#"{"action": "accept", "protocol": "tcp", "port": "all"}"#,
            accept(service(6, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "icmp", "port": "all"}"#,
            accept(service(1, Ports::All), anywhere.clone()),
        ),
        (
            r#"{"action": "accept", "protocol": "tcp", "port": "1-65535"}"#,
            accept(service(6, ports(&[(1, 65535)])), anywhere.clone()),
        ),
        // services
        (
            r#"{"action": "accept", "service": "ppm-dns"}"#,
            accept(
                Traffic::ServiceSet(ServiceSetId::new("ppm-dns").unwrap_or_else(|| panic!())),
                anywhere.clone(),
            ),
        ),
        (
            r#"{"action": "accept", "service": "ppmg-infra"}"#,
            accept(
                Traffic::ServiceSetGroup(
                    ServiceSetGroupId::new("ppmg-infra").unwrap_or_else(|| panic!()),
                ),
                anywhere.clone(),
            ),
        ),
        // remotes
        (
            r#"{"action": "accept", "protocol": "all", "remote": "0.0.0.0/0"}"#,
            accept(all_traffic(), Remote::Block(net("0.0.0.0/0"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "::/0"}"#,
            accept(all_traffic(), Remote::Block(net("::/0"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "198.51.100.7"}"#,
            accept(all_traffic(), Remote::Block(net("198.51.100.7/32"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "2001:db8::7"}"#,
            accept(all_traffic(), Remote::Block(net("2001:db8::7/128"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "2001:db8:1::/48"}"#,
            accept(all_traffic(), Remote::Block(net("2001:db8:1::/48"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "198.51.100.10-198.51.100.20"}"#,
            accept(
                all_traffic(),
                Remote::Block(AddressBlock::Range(
                    AddressRange::new(ip("198.51.100.10"), ip("198.51.100.20"))
                        .unwrap_or_else(|| panic!()),
                )),
            ),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "2001:db8::1-2001:db8::ff"}"#,
            accept(
                all_traffic(),
                Remote::Block(AddressBlock::Range(
                    AddressRange::new(ip("2001:db8::1"), ip("2001:db8::ff"))
                        .unwrap_or_else(|| panic!()),
                )),
            ),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "sg-other"}"#,
            accept(all_traffic(), Remote::SecurityGroup(sg("sg-other"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "sg-x"}"#,
            accept(all_traffic(), Remote::SecurityGroup(sg("sg-x"))),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "ipm-office"}"#,
            accept(
                all_traffic(),
                Remote::AddressSet(AddressSetId::new("ipm-office").unwrap_or_else(|| panic!())),
            ),
        ),
        (
            r#"{"action": "accept", "protocol": "all", "remote": "ipmg-corp"}"#,
            accept(
                all_traffic(),
                Remote::AddressSetGroup(
                    AddressSetGroupId::new("ipmg-corp").unwrap_or_else(|| panic!()),
                ),
            ),
        ),
        // action and description
        (
            r#"{"action": "drop", "protocol": "all", "description": "deny the rest"}"#,
            Rule {
                id: None,
                action: Action::Drop,
                traffic: all_traffic(),
                remote: Remote::Anywhere,
                description: Some("deny the rest".to_owned()),
                log: false,
            },
        ),
        (
            r#"{"description": "", "action": "drop", "protocol": "all"}"#,
            Rule {
                id: None,
                action: Action::Drop,
                traffic: all_traffic(),
                remote: Remote::Anywhere,
                description: None,
                log: false,
            },
        ),
        // rule ids: kept as written
        (
            r#"{"id": "ssh-office_2.b", "action": "accept", "protocol": "tcp", "port": 22}"#,
            Rule {
                id: RuleId::new("ssh-office_2.b"),
                ..accept(service(6, ports(&[(22, 22)])), anywhere.clone())
            },
        ),
        (
            &long_id,
            Rule {
                id: RuleId::new(&"A".repeat(64)),
                ..accept(all_traffic(), anywhere.clone())
            },
        ),
    ];
    for (rule, expected) in cases {
        check_rule(rule, expected);
    }
}

#[test]
fn group_defaults_instances_and_sets() {
    let rules = load_ok(&[(
        "all.json",
        "\u{feff}{\n\"security_groups\": [{\"id\": \"sg-empty\"}, {\"id\": \"sg-named\", \"name\": \"web\", \"description\": \"front\"}],\n\
         \"instances\": [\n\
           {\"id\": \"ins-local\", \"interface\": \"tap-web1\", \"mac\": \"52:54:00:AB:cd:01\", \"ips\": [\"198.51.100.5\", \"2001:db8::5\"], \"security_groups\": [\"sg-named\", \"sg-empty\"]},\n\
           {\"id\": \"ins-remote\", \"ips\": [\"198.51.100.9\"], \"security_groups\": [\"sg-empty\"]}\n\
         ],\n\
         \"address_sets\": [{\"id\": \"ipm-mixed\", \"addresses\": [\"203.0.113.0/24\", \"198.51.100.7\", \"198.51.100.10-198.51.100.20\", \"2001:db8::/64\"]}, {\"id\": \"ipm-none\", \"addresses\": []}],\n\
         \"address_set_groups\": [{\"id\": \"ipmg-all\", \"sets\": [\"ipm-mixed\", \"ipm-none\"]}],\n\
         \"service_sets\": [{\"id\": \"ppm-mixed\", \"services\": [\"udp:53\", \"tcp:8000-8010\", \"tcp:80,443\", \"icmp\", \"all\", \"47\"]}],\n\
         \"service_set_groups\": [{\"id\": \"ppmg-all\", \"sets\": [\"ppm-mixed\"]}]\n}",
    )]);
    let empty = &rules.security_groups[&sg("sg-empty")];
    assert_eq!(
        (
            empty.name.as_deref(),
            empty.ingress.len(),
            empty.egress.len()
        ),
        (None, 0, 0)
    );
    let named = &rules.security_groups[&sg("sg-named")];
    assert_eq!(
        (named.name.as_deref(), named.description.as_deref()),
        (Some("web"), Some("front"))
    );

    let id = |s: &str| InstanceId::new(s).unwrap_or_else(|| panic!("bad id {s}"));
    assert_eq!(
        rules.instances[&id("ins-local")],
        Instance {
            id: id("ins-local"),
            host: None,
            interface: Some("tap-web1".to_owned()),
            mac: Some(MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0x01])),
            ips: vec![ip("198.51.100.5"), ip("2001:db8::5")],
            allowed_address_pairs: vec![],
            port_security: true,
            security_groups: vec![sg("sg-named"), sg("sg-empty")],
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }
    );
    let remote = &rules.instances[&id("ins-remote")];
    assert_eq!((remote.interface.as_deref(), remote.mac), (None, None));

    let set = &rules.address_sets[&AddressSetId::new("ipm-mixed").unwrap_or_else(|| panic!())];
    let shown: Vec<String> = set.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "203.0.113.0/24",
            "198.51.100.7/32",
            "198.51.100.10-198.51.100.20",
            "2001:db8::/64"
        ]
    );
    let services =
        &rules.service_sets[&ServiceSetId::new("ppm-mixed").unwrap_or_else(|| panic!())].services;
    let expected = vec![
        Service {
            protocol: Protocol::Number(17),
            ports: ports(&[(53, 53)]),
        },
        Service {
            protocol: Protocol::Number(6),
            ports: ports(&[(8000, 8010)]),
        },
        Service {
            protocol: Protocol::Number(6),
            ports: ports(&[(80, 80), (443, 443)]),
        },
        Service {
            protocol: Protocol::Number(1),
            ports: Ports::All,
        },
        Service {
            protocol: Protocol::All,
            ports: Ports::All,
        },
        Service {
            protocol: Protocol::Number(47),
            ports: Ports::All,
        },
    ];
    assert_eq!(services, &expected);
    let group =
        &rules.address_set_groups[&AddressSetGroupId::new("ipmg-all").unwrap_or_else(|| panic!())];
    assert_eq!(group.sets.len(), 2);
}

#[test]
fn files_merge_and_reference_each_other() {
    let rules = load_ok(&[
        (
            "b-instances.json",
            r#"{"instances": [{"id": "ins-1", "ips": [], "security_groups": ["sg-web"]}]}"#,
        ),
        (
            "a-groups.json",
            r#"{"security_groups": [{"id": "sg-web", "ingress": [{"action": "accept", "service": "ppm-web"}]}]}"#,
        ),
        (
            "c-sets.json",
            r#"{"service_sets": [{"id": "ppm-web", "services": ["tcp:80"]}]}"#,
        ),
        ("d-empty.json", "{}"),
    ]);
    assert_eq!(
        (
            rules.security_groups.len(),
            rules.instances.len(),
            rules.service_sets.len()
        ),
        (1, 1, 1)
    );
}

/// The same group as a native file and as Tencent's policy JSON.
const NATIVE: &str = r#"{
  "security_groups": [
    {
      "id": "sg-clb",
      "name": "clb-backend",
      "description": "CLB backend",
      "ingress": [
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.10", "description": "ClientA" },
        { "action": "accept", "protocol": "tcp", "port": "8080,8443", "remote": "2001:db8::/32" },
        { "action": "accept", "protocol": "udp", "port": "8000-8010", "remote": "sg-clb" },
        { "action": "accept", "service": "ppm-dns", "remote": "ipm-office" },
        { "action": "accept", "service": "ppmg-infra", "remote": "ipmg-corp" },
        { "action": "accept", "protocol": "icmp", "remote": "0.0.0.0/0" },
        { "action": "accept", "protocol": "icmpv6", "remote": "::/0" },
        { "action": "accept", "protocol": "gre", "remote": "203.0.113.0/24" },
        { "action": "drop", "protocol": "all", "remote": "0.0.0.0/0" }
      ],
      "egress": [
        { "action": "accept", "protocol": "all", "remote": "0.0.0.0/0" }
      ]
    }
  ]
}"#;

const TENCENT: &str = r#"{
  "SecurityGroupId": "sg-clb",
  "SecurityGroupName": "clb-backend",
  "SecurityGroupDesc": "CLB backend",
  "SecurityGroupPolicySet": {
    "Version": "12",
    "Ingress": [
      { "PolicyIndex": 8, "Protocol": "ALL", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Ipv6CidrBlock": "", "SecurityGroupId": "",
        "ServiceTemplate": { "ServiceId": "", "ServiceGroupId": "" }, "AddressTemplate": { "AddressId": "", "AddressGroupId": "" },
        "Action": "DROP", "PolicyDescription": "", "ModifyTime": "2024-01-01 00:00:00" },
      { "PolicyIndex": 0, "Protocol": "TCP", "Port": "8080", "CidrBlock": "198.51.100.10", "Action": "ACCEPT", "PolicyDescription": "ClientA" },
      { "PolicyIndex": 1, "Protocol": "tcp", "Port": "8080,8443", "Ipv6CidrBlock": "2001:db8::/32", "CidrBlock": "", "Action": "accept" },
      { "PolicyIndex": 2, "Protocol": "UDP", "Port": "8000-8010", "SecurityGroupId": "sg-clb", "Action": "ACCEPT" },
      { "PolicyIndex": 3, "Protocol": "", "Port": "", "ServiceTemplate": { "ServiceId": "ppm-dns", "ServiceGroupId": "" },
        "AddressTemplate": { "AddressId": "ipm-office", "AddressGroupId": "" }, "Action": "ACCEPT" },
      { "PolicyIndex": 4, "ServiceTemplate": { "ServiceGroupId": "ppmg-infra" }, "AddressTemplate": { "AddressGroupId": "ipmg-corp" }, "Action": "ACCEPT" },
      { "PolicyIndex": 5, "Protocol": "ICMP", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT" },
      { "PolicyIndex": 6, "Protocol": "ICMPv6", "Ipv6CidrBlock": "::/0", "Action": "ACCEPT" },
      { "PolicyIndex": 7, "Protocol": "GRE", "CidrBlock": "203.0.113.0/24", "Action": "ACCEPT" }
    ],
    "Egress": [
      { "Protocol": "ALL", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "ACCEPT", "ModifyTime": null }
    ]
  }
}"#;

const TENCENT_CONTEXT: &str = r#"{
  "address_sets": [{"id": "ipm-office", "addresses": ["203.0.113.0/24"]}],
  "address_set_groups": [{"id": "ipmg-corp", "sets": ["ipm-office"]}],
  "service_sets": [{"id": "ppm-dns", "services": ["udp:53", "tcp:53"]}],
  "service_set_groups": [{"id": "ppmg-infra", "sets": ["ppm-dns"]}]
}"#;

#[test]
fn tencent_file_equals_native_file() {
    let native = load_ok(&[("context.json", TENCENT_CONTEXT), ("sg-clb.json", NATIVE)]);
    let tencent = load_ok(&[("context.json", TENCENT_CONTEXT), ("sg-clb.json", TENCENT)]);
    assert_eq!(native.security_groups[&sg("sg-clb")].ingress.len(), 9);
    assert_eq!(tencent, native);
}

#[test]
fn tencent_without_policy_index_keeps_file_order() {
    let file = r#"{"SecurityGroupId": "sg-t", "SecurityGroupPolicySet": {"Ingress": [
        {"Protocol": "TCP", "Port": "22", "CidrBlock": "198.51.100.0/24", "Action": "ACCEPT"},
        {"Protocol": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "DROP"}
    ]}}"#;
    let rules = load_ok(&[("t.json", file)]);
    let group = &rules.security_groups[&sg("sg-t")];
    let actions: Vec<Action> = group.ingress.iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Accept, Action::Drop]);
    assert_eq!((group.name.as_deref(), group.egress.len()), (None, 0));
}

#[test]
fn rendered_rule_sets_load_back_identical() {
    let inputs: &[&[(&str, &str)]] = &[
        &[("context.json", TENCENT_CONTEXT), ("sg-clb.json", NATIVE)],
        &[
            ("context.json", CONTEXT),
            (
                "instances.json",
                r#"{"instances": [
            {"id": "ins-a", "interface": "tap-a", "mac": "52:54:00:00:00:01", "ips": ["198.51.100.5", "2001:db8::5"], "security_groups": ["sg-other"]},
            {"id": "ins-b", "ips": [], "security_groups": ["sg-other"]}]}"#,
            ),
        ],
        &[(
            "numbers.json",
            r#"{"security_groups": [{"id": "sg-n", "name": "quote \" and \\ and \u00e9", "egress": [{"action": "accept", "protocol": 132}, {"action": "drop", "protocol": 0}]}]}"#,
        )],
        &[(
            "ids.json",
            r#"{"security_groups": [{"id": "sg-i", "ingress": [{"id": "web", "action": "accept", "protocol": "tcp", "port": 80}, {"action": "drop", "protocol": "all"}], "egress": [{"id": "web", "action": "accept", "protocol": "all"}]}]}"#,
        )],
    ];
    for files in inputs {
        let first = load_ok(files);
        let text = secgroup_model::render::rule_file(&first);
        let again = load_files(&[("rendered.json", &text)])
            .unwrap_or_else(|e| panic!("rendered file does not load:\n{e}\n{text}"));
        assert_eq!(again, first, "round trip through\n{text}");
    }
}
