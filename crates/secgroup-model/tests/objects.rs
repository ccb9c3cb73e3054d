//! Documents that are one object each (a fleet's store: one object per
//! key), merged with rule files, and what an instance's `"host"` means
//! seen from one host or from the fleet.

use secgroup_model::{
    DecodeCache, Document, HostView, InstanceId, Limits, Loaded, ObjectKind, Shape, load_documents,
    render,
};

/// `(name, kind and id or None for a rule file, text)`.
type Doc<'a> = (&'a str, Option<(ObjectKind, &'a str)>, &'a str);

fn load(docs: &[Doc<'_>], view: HostView<'_>) -> Result<Loaded, Vec<String>> {
    let documents: Vec<Document<'_>> = docs
        .iter()
        .map(|&(name, object, text)| Document {
            name,
            bytes: text.as_bytes(),
            shape: match object {
                None => Shape::File,
                Some((kind, id)) => Shape::Object { kind, id },
            },
        })
        .collect();
    load_documents(
        &documents,
        &Limits::default(),
        &[],
        &mut DecodeCache::default(),
        view,
    )
    .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

fn errors(docs: &[Doc<'_>], view: HostView<'_>) -> Vec<String> {
    match load(docs, view) {
        Ok(_) => panic!("expected errors, the documents loaded"),
        Err(errors) => errors,
    }
}

const SG_WEB: Doc<'static> = (
    "etcd:/secgroup/security_groups/sg-web",
    Some((ObjectKind::SecurityGroup, "sg-web")),
    r#"{ "id": "sg-web", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "80", "remote": "sg-web" } ] }"#,
);

fn instance<'a>(name: &'a str, id: &'a str, text: &'a str) -> Doc<'a> {
    (name, Some((ObjectKind::Instance, id)), text)
}

#[test]
fn objects_are_located_by_their_key() {
    let bad = (
        "etcd:/secgroup/security_groups/sg-web",
        Some((ObjectKind::SecurityGroup, "sg-web")),
        "{ \"id\": \"sg-web\",\n  \"ingress\": [ { \"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"99999\" } ] }",
    );
    assert_eq!(
        errors(&[bad], HostView::Fleet),
        [
            "etcd:/secgroup/security_groups/sg-web:2:65: ingress[0].port: \"99999\" is not a port (out of range 1-65535)"
        ]
    );
    // The object's own keys only: a rule file's top level is not one.
    let file_shaped = (
        "etcd:/secgroup/security_groups/sg-web",
        Some((ObjectKind::SecurityGroup, "sg-web")),
        r#"{ "security_groups": [] }"#,
    );
    let e = errors(&[file_shaped], HostView::Fleet);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with(
            "etcd:/secgroup/security_groups/sg-web:1:1: $: missing required key \"id\""
        ),
        "{e:?}"
    );
    assert!(e[1].contains("security_groups: unknown key"), "{e:?}");
    // Not JSON at all.
    let e = errors(
        &[(
            "etcd:/secgroup/address_sets/ipm-x",
            Some((ObjectKind::AddressSet, "ipm-x")),
            "{ \"id\": ",
        )],
        HostView::Fleet,
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("etcd:/secgroup/address_sets/ipm-x:1:"),
        "{e:?}"
    );
}

#[test]
fn the_id_must_be_the_keys() {
    let e = errors(
        &[
            SG_WEB,
            (
                "etcd:/secgroup/security_groups/sg-db",
                Some((ObjectKind::SecurityGroup, "sg-db")),
                r#"{ "id": "sg-web" }"#,
            ),
        ],
        HostView::Fleet,
    );
    assert_eq!(
        e,
        [
            "etcd:/secgroup/security_groups/sg-db:1:9: id: id \"sg-web\" does not match the key, which names \"sg-db\"; an object's key ends with its id"
        ]
    );
}

#[test]
fn objects_and_files_merge_with_the_duplicate_rules() {
    let local = (
        "/etc/secgroup/rules.d/local.json",
        None,
        r#"{ "security_groups": [ { "id": "sg-web" } ] }"#,
    );
    let e = errors(&[SG_WEB, local], HostView::Host("hv-a"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("duplicate security group id \"sg-web\"; first defined at"),
        "{e:?}"
    );
    // Objects refer to what files define, and the other way round.
    let local = (
        "/etc/secgroup/rules.d/local.json",
        None,
        r#"{ "instances": [ { "id": "ins-local", "interface": "tap9", "ips": ["198.51.100.9"], "security_groups": ["sg-web"] } ] }"#,
    );
    let loaded = load(&[SG_WEB, local], HostView::Host("hv-a")).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(loaded.rules.instances.len(), 1);
}

#[test]
fn an_instance_in_a_store_with_an_interface_names_its_host() {
    let e = errors(
        &[
            SG_WEB,
            instance(
                "etcd:/secgroup/instances/ins-1",
                "ins-1",
                r#"{ "id": "ins-1", "interface": "tap1", "ips": ["198.51.100.1"], "security_groups": ["sg-web"] }"#,
            ),
        ],
        HostView::Host("hv-a"),
    );
    assert_eq!(
        e,
        [
            "etcd:/secgroup/instances/ins-1:1:31: interface: instance \"ins-1\" has an interface but no \"host\"; in a store every hypervisor reads, say whose interface it is (\"host\": its --host-name)"
        ]
    );
    // Without an interface it lends its addresses, whatever the host.
    let remote = instance(
        "etcd:/secgroup/instances/ins-1",
        "ins-1",
        r#"{ "id": "ins-1", "ips": ["198.51.100.1"], "security_groups": ["sg-web"] }"#,
    );
    assert!(load(&[SG_WEB, remote], HostView::Host("hv-a")).is_ok());
    let bad_host = instance(
        "etcd:/secgroup/instances/ins-1",
        "ins-1",
        r#"{ "id": "ins-1", "host": "hv a", "ips": ["198.51.100.1"], "security_groups": ["sg-web"] }"#,
    );
    let e = errors(&[SG_WEB, bad_host], HostView::Fleet);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("host: \"hv a\" is not a host name"), "{e:?}");
}

const A1: &str = r#"{ "id": "ins-a1", "host": "hv-a", "interface": "tap0", "ips": ["198.51.100.10"], "security_groups": ["sg-web"] }"#;
const B1: &str = r#"{ "id": "ins-b1", "host": "hv-b", "interface": "tap0", "ips": ["198.51.100.11"], "security_groups": ["sg-web"] }"#;

fn fleet<'a>(b1: &'a str) -> [Doc<'a>; 3] {
    [
        SG_WEB,
        instance("etcd:/secgroup/instances/ins-a1", "ins-a1", A1),
        instance("etcd:/secgroup/instances/ins-b1", "ins-b1", b1),
    ]
}

#[test]
fn a_host_binds_its_own_instances_only() {
    let id = |s: &str| InstanceId::new(s).unwrap_or_else(|| panic!("{s}"));
    let loaded = load(&fleet(B1), HostView::Host("hv-a")).unwrap_or_else(|e| panic!("{e:?}"));
    let a1 = &loaded.rules.instances[&id("ins-a1")];
    let b1 = &loaded.rules.instances[&id("ins-b1")];
    assert_eq!(a1.interface.as_deref(), Some("tap0"));
    assert_eq!(a1.host.as_deref(), Some("hv-a"));
    // Another host's: its addresses still count for sg-web.
    assert_eq!(b1.interface, None);
    assert_eq!(b1.host.as_deref(), Some("hv-b"));
    assert_eq!(b1.ips.len(), 1);
    // Seen from a host with none of them, nothing is bound.
    let loaded = load(&fleet(B1), HostView::Host("hv-c")).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        loaded
            .rules
            .instances
            .values()
            .all(|i| i.interface.is_none())
    );
}

#[test]
fn interfaces_and_addresses_are_unique_per_host() {
    // tap0 on two hosts is two interfaces, from anywhere.
    assert!(load(&fleet(B1), HostView::Fleet).is_ok());
    assert!(load(&fleet(B1), HostView::Host("hv-b")).is_ok());
    // The same tap twice on one host is not.
    let b_on_a = B1.replace("hv-b", "hv-a");
    let e = errors(&fleet(&b_on_a), HostView::Fleet);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("interface \"tap0\" is already bound to instance \"ins-a1\""),
        "{e:?}"
    );
    assert_eq!(errors(&fleet(&b_on_a), HostView::Host("hv-a")), e);
    // Host hv-b sees neither bound: nothing to refuse there.
    assert!(load(&fleet(&b_on_a), HostView::Host("hv-b")).is_ok());
    // One address on two hosts' instances: a warning, not an error.
    let same_ip = B1.replace("198.51.100.11", "198.51.100.10");
    let loaded = load(&fleet(&same_ip), HostView::Fleet).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let loaded = load(&fleet(&same_ip), HostView::Host("hv-a")).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn rendered_objects_load_back_as_objects() {
    let loaded = load(&fleet(B1), HostView::Fleet).unwrap_or_else(|e| panic!("{e:?}"));
    let objects = render::objects(&loaded.rules);
    assert_eq!(objects.len(), 3);
    let names: Vec<String> = objects
        .iter()
        .map(|(kind, id, _)| format!("etcd:/secgroup/{}/{id}", kind.key()))
        .collect();
    let docs: Vec<Doc<'_>> = objects
        .iter()
        .zip(&names)
        .map(|((kind, id, text), name)| (name.as_str(), Some((*kind, id.as_str())), text.as_str()))
        .collect();
    let again = load(&docs, HostView::Fleet).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(again.rules, loaded.rules);
    let (_, _, group) = &objects[0];
    assert!(group.starts_with("{\n  \"id\": \"sg-web\""), "{group}");
}
