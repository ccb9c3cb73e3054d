//! The native format's objects: which keys each has and how its values
//! decode. Shared decoding (objects, arrays, strings, unknown keys) is the
//! parent module's.

use super::{
    Decoder, Dialect, Located, Object, RawAddressPair, RawAddressSet, RawFile, RawInstance,
    RawRule, RawSecurityGroup, RawServiceSet, RawSetGroup, RemoteField, ServiceField,
};
use crate::json::Node;
use crate::location::quote;
use crate::outline::ObjectKind;

/// The keys of a native rule file. `$schema` names the file's JSON Schema
/// for editors; it means nothing here but must be a string.
const FILE_KEYS: &[&str] = &[
    "security_groups",
    "instances",
    "address_sets",
    "address_set_groups",
    "service_sets",
    "service_set_groups",
    "$schema",
];
const GROUP_KEYS: &[&str] = &["id", "name", "description", "ingress", "egress"];
pub(super) const RULE_KEYS: &[&str] = &[
    "id",
    "action",
    "protocol",
    "port",
    "service",
    "remote",
    "description",
    "log",
];
pub(super) const INSTANCE_KEYS: &[&str] = &[
    "id",
    "host",
    "interface",
    "mac",
    "ips",
    "allowed_address_pairs",
    "port_security",
    "security_groups",
    "log",
    "enforcement",
];
const PAIR_KEYS: &[&str] = &["ip", "mac"];

/// Decodes a native rule file whose root is `obj`.
pub(crate) fn native_file(d: &mut Decoder<'_>, mut obj: Object<'_>) -> RawFile {
    let mut file = RawFile::default();
    let _schema = obj.optional(d, "$schema", Decoder::string);
    if let Some(v) = obj.optional(d, "security_groups", |d, n, p| {
        d.array(n, p, security_group)
    }) {
        file.security_groups = v.value;
    }
    if let Some(v) = obj.optional(d, "instances", |d, n, p| d.array(n, p, instance)) {
        file.instances = v.value;
    }
    if let Some(v) = obj.optional(d, "address_sets", |d, n, p| d.array(n, p, address_set)) {
        file.address_sets = v.value;
    }
    if let Some(v) = obj.optional(d, "address_set_groups", |d, n, p| d.array(n, p, set_group)) {
        file.address_set_groups = v.value;
    }
    if let Some(v) = obj.optional(d, "service_sets", |d, n, p| d.array(n, p, service_set)) {
        file.service_sets = v.value;
    }
    if let Some(v) = obj.optional(d, "service_set_groups", |d, n, p| d.array(n, p, set_group)) {
        file.service_set_groups = v.value;
    }
    obj.finish(d, FILE_KEYS);
    file
}

/// Decodes a document that is one object of `kind` (a value in a shared
/// store, one object per key): the object's own keys at the top, paths
/// relative to it. The object's `id` must be `id`, what the key says,
/// or two keys could define one object. An instance there that names an
/// interface must name its host: every host reads the same store.
pub(crate) fn native_object(
    d: &mut Decoder<'_>,
    root: &Node,
    kind: ObjectKind,
    id: &str,
) -> RawFile {
    let mut file = RawFile::default();
    let path = crate::location::ROOT;
    let written_id = match kind {
        ObjectKind::SecurityGroup => security_group(d, root, path).map(|g| {
            let id = g.value.id.clone();
            file.security_groups.push(g);
            id
        }),
        ObjectKind::Instance => instance(d, root, path).map(|i| {
            let id = i.value.id.clone();
            if let (Some(iface), None) = (&i.value.interface, &i.value.host) {
                d.error(
                    &iface.loc,
                    format!(
                        "instance {} has an interface but no \"host\"; in a store every hypervisor reads, say whose interface it is (\"host\": its --host-name)",
                        quote(&id.value)
                    ),
                );
            }
            file.instances.push(i);
            id
        }),
        ObjectKind::AddressSet => address_set(d, root, path).map(|s| {
            let id = s.value.id.clone();
            file.address_sets.push(s);
            id
        }),
        ObjectKind::AddressSetGroup => set_group(d, root, path).map(|g| {
            let id = g.value.id.clone();
            file.address_set_groups.push(g);
            id
        }),
        ObjectKind::ServiceSet => service_set(d, root, path).map(|s| {
            let id = s.value.id.clone();
            file.service_sets.push(s);
            id
        }),
        ObjectKind::ServiceSetGroup => set_group(d, root, path).map(|g| {
            let id = g.value.id.clone();
            file.service_set_groups.push(g);
            id
        }),
    };
    if let Some(written) = written_id
        && written.value != id
    {
        d.error(
            &written.loc,
            format!(
                "id {} does not match the key, which names {}; an object's key ends with its id",
                quote(&written.value),
                quote(id)
            ),
        );
        // Defining it under either id would hide the mistake.
        file = RawFile::default();
    }
    file
}

fn security_group(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
) -> Option<Located<RawSecurityGroup>> {
    let mut obj = d.object(node, path)?;
    let id = obj.required(d, "id", Decoder::string);
    let name = obj.optional(d, "name", Decoder::string);
    let description = obj.optional(d, "description", Decoder::string);
    let ingress = obj.optional(d, "ingress", |d, n, p| d.array(n, p, rule));
    let egress = obj.optional(d, "egress", |d, n, p| d.array(n, p, rule));
    let loc = obj.loc.clone();
    obj.finish(d, GROUP_KEYS);
    Some(Located {
        loc,
        value: RawSecurityGroup {
            id: id?,
            name,
            description,
            ingress,
            egress,
        },
    })
}

fn rule(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawRule>> {
    let mut obj = d.object(node, path)?;
    let id = obj.optional(d, "id", Decoder::string);
    let action = obj.required(d, "action", Decoder::string);
    let protocol = obj.optional(d, "protocol", Decoder::scalar);
    let port = obj.optional(d, "port", Decoder::scalar);
    let service = obj.optional(d, "service", Decoder::string);
    let remote = obj.optional(d, "remote", Decoder::string);
    let description = obj.optional(d, "description", Decoder::string);
    let log = obj.optional(d, "log", Decoder::boolean);
    let loc = obj.loc.clone();
    let intact = obj.finish(d, RULE_KEYS);
    Some(Located {
        loc,
        value: RawRule {
            dialect: Dialect::Native,
            intact,
            id,
            action: action?,
            protocol,
            port,
            service,
            service_field: ServiceField::Any,
            remote,
            remote_field: RemoteField::Any,
            description,
            log,
        },
    })
}

fn instance(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawInstance>> {
    let mut obj = d.object(node, path)?;
    let id = obj.required(d, "id", Decoder::string);
    let host = obj.optional(d, "host", Decoder::string);
    let interface = obj.optional(d, "interface", Decoder::string);
    let mac = obj.optional(d, "mac", Decoder::string);
    let ips = obj.required(d, "ips", Decoder::string_list);
    let allowed_address_pairs = obj.optional(d, "allowed_address_pairs", |d, n, p| {
        d.array(n, p, address_pair)
    });
    let port_security = obj.optional(d, "port_security", Decoder::boolean);
    let security_groups = obj.required(d, "security_groups", Decoder::string_list);
    let log = obj.optional(d, "log", Decoder::string);
    let enforcement = obj.optional(d, "enforcement", Decoder::string);
    let loc = obj.loc.clone();
    obj.finish(d, INSTANCE_KEYS);
    Some(Located {
        loc,
        value: RawInstance {
            id: id?,
            host,
            interface,
            mac,
            ips: ips?,
            allowed_address_pairs,
            port_security,
            security_groups: security_groups?,
            log,
            enforcement,
        },
    })
}

fn address_pair(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawAddressPair>> {
    let mut obj = d.object(node, path)?;
    let ip = obj.required(d, "ip", Decoder::string);
    let mac = obj.optional(d, "mac", Decoder::string);
    let loc = obj.loc.clone();
    obj.finish(d, PAIR_KEYS);
    Some(Located {
        loc,
        value: RawAddressPair { ip: ip?, mac },
    })
}

fn address_set(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawAddressSet>> {
    let mut obj = d.object(node, path)?;
    let id = obj.required(d, "id", Decoder::string);
    let addresses = obj.required(d, "addresses", Decoder::string_list);
    let loc = obj.loc.clone();
    obj.finish(d, &["id", "addresses"]);
    Some(Located {
        loc,
        value: RawAddressSet {
            id: id?,
            addresses: addresses?,
        },
    })
}

fn service_set(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawServiceSet>> {
    let mut obj = d.object(node, path)?;
    let id = obj.required(d, "id", Decoder::string);
    let services = obj.required(d, "services", Decoder::string_list);
    let loc = obj.loc.clone();
    obj.finish(d, &["id", "services"]);
    Some(Located {
        loc,
        value: RawServiceSet {
            id: id?,
            services: services?,
        },
    })
}

fn set_group(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Located<RawSetGroup>> {
    let mut obj = d.object(node, path)?;
    let id = obj.required(d, "id", Decoder::string);
    let sets = obj.required(d, "sets", Decoder::string_list);
    let loc = obj.loc.clone();
    obj.finish(d, &["id", "sets"]);
    Some(Located {
        loc,
        value: RawSetGroup {
            id: id?,
            sets: sets?,
        },
    })
}
