//! Instances' port-security keys (`allowed_address_pairs`,
//! `port_security`) and the warnings a valid load can carry.

use ipnet::IpNet;
use secgroup_model::{
    AllowedAddressPair, InstanceId, Limits, Loaded, MacAddr, RuleSet, SourceFile, load_with,
};

const WEB: &str = r#"{"security_groups": [{"id": "sg-web"}]}"#;

fn load_ok(files: &[(&str, &str)]) -> Loaded {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|&(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    load_with(&sources, &Limits::default(), &[])
        .unwrap_or_else(|e| panic!("expected to load, got:\n{e}"))
}

fn instance<'r>(rules: &'r RuleSet, id: &str) -> &'r secgroup_model::Instance {
    let id = InstanceId::new(id).unwrap_or_else(|| panic!("bad test id {id}"));
    rules
        .instances
        .get(&id)
        .unwrap_or_else(|| panic!("no instance {id}"))
}

fn pair(net: &str, mac: Option<[u8; 6]>) -> AllowedAddressPair {
    AllowedAddressPair {
        net: net
            .parse::<IpNet>()
            .unwrap_or_else(|e| panic!("bad test net {net}: {e}")),
        mac: mac.map(MacAddr),
    }
}

/// `instance` is the JSON object of instance `i-1`, on its own in a file.
fn check(instance_json: &str, pairs: &[AllowedAddressPair], port_security: bool) {
    let file = format!(r#"{{"instances": [{instance_json}]}}"#);
    let loaded = load_ok(&[("g.json", WEB), ("i.json", &file)]);
    let got = instance(&loaded.rules, "i-1");
    assert_eq!(
        (got.allowed_address_pairs.as_slice(), got.port_security),
        (pairs, port_security),
        "instance {instance_json}"
    );
    assert_eq!(loaded.warnings, vec![], "instance {instance_json}");
}

#[test]
fn port_security_forms() {
    const VRRP: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a];
    let base = r#""id": "i-1", "interface": "tap0", "mac": "52:54:00:00:00:01", "ips": ["198.51.100.5"], "security_groups": ["sg-web"]"#;
    let cases: Vec<(String, Vec<AllowedAddressPair>, bool)> = vec![
        // Defaults: no pairs, port security on.
        (format!("{{{base}}}"), vec![], true),
        (
            format!(r#"{{{base}, "port_security": true}}"#),
            vec![],
            true,
        ),
        (
            format!(r#"{{{base}, "port_security": false}}"#),
            vec![],
            false,
        ),
        (
            format!(r#"{{{base}, "allowed_address_pairs": []}}"#),
            vec![],
            true,
        ),
        // Addresses are /32 and /128, CIDRs keep their length; a pair's
        // MAC is its own or none (the instance's).
        (
            format!(
                r#"{{{base}, "allowed_address_pairs": [
                    {{"ip": "198.51.100.50"}},
                    {{"ip": "198.51.100.64/28", "mac": "00:00:5E:00:01:0a"}},
                    {{"ip": "2001:db8::50"}},
                    {{"ip": "2001:db8:1::/64"}},
                    {{"ip": "198.51.100.50", "mac": "00:00:5e:00:01:0a"}}
                ]}}"#
            ),
            vec![
                pair("198.51.100.50/32", None),
                pair("198.51.100.64/28", Some(VRRP)),
                pair("2001:db8::50/128", None),
                pair("2001:db8:1::/64", None),
                pair("198.51.100.50/32", Some(VRRP)),
            ],
            true,
        ),
        // A pair may repeat an own address, and other instances' too.
        (
            format!(r#"{{{base}, "allowed_address_pairs": [{{"ip": "198.51.100.5"}}]}}"#),
            vec![pair("198.51.100.5/32", None)],
            true,
        ),
    ];
    for (json, pairs, port_security) in cases {
        check(&json, &pairs, port_security);
    }
}

#[test]
fn shared_virtual_addresses_are_pairs_not_ips() {
    // Two VRRP peers on this host with the VIP as a pair each, and the
    // VIP on a third instance elsewhere: valid, and no warning (pairs are
    // not claimed addresses).
    let loaded = load_ok(&[
        ("g.json", WEB),
        (
            "i.json",
            r#"{"instances": [
  {"id": "lb-1", "interface": "tap1", "ips": ["198.51.100.11"], "allowed_address_pairs": [{"ip": "198.51.100.10"}], "security_groups": ["sg-web"]},
  {"id": "lb-2", "interface": "tap2", "ips": ["198.51.100.12"], "allowed_address_pairs": [{"ip": "198.51.100.10"}], "security_groups": ["sg-web"]},
  {"id": "lb-3", "ips": ["198.51.100.13"], "allowed_address_pairs": [{"ip": "198.51.100.10"}], "security_groups": ["sg-web"]},
  {"id": "far-1", "ips": ["203.0.113.1"], "security_groups": ["sg-web"]},
  {"id": "far-2", "ips": ["203.0.113.1"], "security_groups": ["sg-web"]}
]}"#,
        ),
    ]);
    assert_eq!(loaded.rules.instances.len(), 5);
    assert_eq!(loaded.warnings, vec![]);
}

#[test]
fn local_and_remote_with_one_address_is_a_warning() {
    let loaded = load_ok(&[
        ("g.json", WEB),
        (
            "a.json",
            r#"{"instances": [{"id": "i-far", "ips": ["198.51.100.5", "2001:db8::7"], "security_groups": ["sg-web"]}]}"#,
        ),
        (
            "b.json",
            r#"{"instances": [
  {"id": "i-here", "interface": "tap0", "ips": ["198.51.100.5", "2001:db8::6"], "security_groups": ["sg-web"]},
  {"id": "i-far-2", "ips": ["2001:db8::6"], "security_groups": ["sg-web"]}
]}"#,
        ),
    ]);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "b.json:2:49: instances[0].ips[0]: address \"198.51.100.5\" of instance \"i-here\", on this host, is also an address of instance \"i-far\", on another host, at a.json:1:40; one of the two is probably out of date",
            "b.json:3:29: instances[1].ips[0]: address \"2001:db8::6\" of instance \"i-far-2\", on another host, is also an address of instance \"i-here\", on this host, at b.json:2:65; one of the two is probably out of date",
        ]
    );
    // Warnings never fail a load: everything is there.
    assert_eq!(loaded.rules.instances.len(), 3);
}

#[test]
fn rendered_port_security_loads_back_identical() {
    let files = [
        ("g.json", WEB),
        (
            "i.json",
            r#"{"instances": [
  {"id": "i-1", "interface": "tap1", "mac": "52:54:00:00:00:01", "ips": ["198.51.100.5"],
   "allowed_address_pairs": [{"ip": "198.51.100.50"}, {"ip": "2001:db8::/64", "mac": "52:54:00:aa:bb:cc"}], "security_groups": ["sg-web"]},
  {"id": "i-2", "interface": "tap2", "port_security": false, "ips": [], "security_groups": ["sg-web"]}
]}"#,
        ),
    ];
    let first = load_ok(&files).rules;
    let text = secgroup_model::render::rule_file(&first);
    assert!(
        text.contains(r#""allowed_address_pairs": [{"ip": "198.51.100.50"}, {"ip": "2001:db8::/64", "mac": "52:54:00:aa:bb:cc"}]"#)
            && text.contains(r#""port_security": false"#),
        "rendered:\n{text}"
    );
    let again = load_ok(&[("rendered.json", &text)]).rules;
    assert_eq!(again, first, "round trip through\n{text}");
}
