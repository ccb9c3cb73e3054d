//! Tencent Cloud's security-group policy JSON, decoded into the same raw
//! structs as a native file so both go through one validation and give the
//! same model.
//!
//! One file is one group: `SecurityGroupId`, optional `SecurityGroupName` and
//! `SecurityGroupDesc`, and `SecurityGroupPolicySet` with `Version`,
//! `Ingress` and `Egress`. Tencent exports `""` for unused fields, so empty
//! strings (and `null`) count as absent.

use crate::json::{Node, Value};
use crate::location::quote;
use crate::outline::Format;
use crate::raw::{
    Decoder, Dialect, Loc, Located, Object, RawFile, RawRule, RawSecurityGroup, RemoteField,
    Scalar, ServiceField,
};

/// Top-level keys that mark a file as Tencent's format.
pub(crate) const MARKER_KEYS: &[&str] = &[
    "SecurityGroupId",
    "SecurityGroupName",
    "SecurityGroupDesc",
    "SecurityGroupPolicySet",
];
/// Every top-level key: the markers, and `$schema` for editors (ignored,
/// but a string).
const FILE_KEYS: &[&str] = &[
    "SecurityGroupId",
    "SecurityGroupName",
    "SecurityGroupDesc",
    "SecurityGroupPolicySet",
    "$schema",
];
const POLICY_SET_KEYS: &[&str] = &["Version", "Ingress", "Egress"];
const POLICY_KEYS: &[&str] = &[
    "PolicyIndex",
    "Protocol",
    "Port",
    "ServiceTemplate",
    "CidrBlock",
    "Ipv6CidrBlock",
    "SecurityGroupId",
    "AddressTemplate",
    "Action",
    "PolicyDescription",
    "ModifyTime",
];

/// Decodes a Tencent policy file whose root is `obj`.
pub(crate) fn file(d: &mut Decoder<'_>, mut obj: Object<'_>) -> RawFile {
    let _schema = obj.optional(d, "$schema", Decoder::string);
    let id = obj.required(d, "SecurityGroupId", Decoder::string);
    let name = obj
        .optional(d, "SecurityGroupName", present_string)
        .flatten();
    let description = obj
        .optional(d, "SecurityGroupDesc", present_string)
        .flatten();
    let mut ingress = None;
    let mut egress = None;
    if let Some((node, path)) = obj.take("SecurityGroupPolicySet") {
        if let Some(mut set) = d.object(node, &path) {
            let _version = set.optional(d, "Version", Decoder::scalar);
            ingress = set.optional(d, "Ingress", policies);
            egress = set.optional(d, "Egress", policies);
            set.finish(d, POLICY_SET_KEYS);
        }
    } else {
        obj.missing(d, "SecurityGroupPolicySet");
    }
    let loc = obj.loc.clone();
    obj.finish(d, FILE_KEYS);
    let mut file = RawFile {
        format: Format::Tencent,
        ..RawFile::default()
    };
    if let Some(id) = id {
        file.security_groups.push(Located {
            loc,
            value: RawSecurityGroup {
                id,
                name,
                description,
                ingress,
                egress,
            },
        });
    }
    file
}

/// A string field where `""` and `null` mean absent: `Some(None)` then.
fn present_string(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Option<Located<String>>> {
    match &node.value {
        Value::Null => Some(None),
        Value::String(s) if s.is_empty() => Some(None),
        _ => d.string(node, path).map(Some),
    }
}

/// Like [`present_string`] for fields that may also be numbers.
fn present_scalar(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Option<Located<Scalar>>> {
    match &node.value {
        Value::Null => Some(None),
        Value::String(s) if s.is_empty() => Some(None),
        _ => d.scalar(node, path).map(Some),
    }
}

/// One direction's policies, in `PolicyIndex` order when the file gives
/// indexes, else in file order.
fn policies(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
) -> Option<Located<Vec<Located<RawRule>>>> {
    let list = d.array(node, path, policy)?;
    let mut indexed: Vec<(Option<u64>, Located<RawRule>)> = Vec::new();
    let mut first_index: Option<(u64, Loc)> = None;
    let mut seen: Vec<(u64, Loc)> = Vec::new();
    let mut missing: Vec<Loc> = Vec::new();
    for (index, rule) in list.value {
        match &index {
            Some((n, loc)) => {
                if let Some((_, first)) = seen.iter().find(|(m, _)| m == n) {
                    let message = format!(
                        "duplicate PolicyIndex {n} (first at {}); each rule of a direction needs its own",
                        first.position()
                    );
                    d.error(loc, message);
                } else {
                    seen.push((*n, loc.clone()));
                }
                if first_index.is_none() {
                    first_index = Some((*n, loc.clone()));
                }
            }
            None => missing.push(rule.loc.clone()),
        }
        indexed.push((index.map(|(n, _)| n), rule));
    }
    if let Some((_, first)) = &first_index {
        // Mixing would leave the position of unindexed rules to guesswork.
        for loc in &missing {
            d.error(
                loc,
                format!(
                    "missing PolicyIndex while other rules of this direction have one (e.g. at {}); give it for every rule or for none",
                    first.position()
                ),
            );
        }
    }
    // Stable: without indexes this keeps file order.
    indexed.sort_by_key(|(index, _)| *index);
    Some(Located {
        loc: list.loc,
        value: indexed.into_iter().map(|(_, rule)| rule).collect(),
    })
}

type IndexedRule = (Option<(u64, Loc)>, Located<RawRule>);

fn policy(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<IndexedRule> {
    let mut obj = d.object(node, path)?;
    let index = obj.optional(d, "PolicyIndex", policy_index).flatten();
    let protocol = obj.optional(d, "Protocol", present_scalar).flatten();
    let port = obj.optional(d, "Port", present_scalar).flatten();
    let action = obj.required(d, "Action", Decoder::string);
    let description = obj
        .optional(d, "PolicyDescription", present_string)
        .flatten();
    let _modified = obj.optional(d, "ModifyTime", present_string);

    let mut services: Vec<(Located<String>, ServiceField)> = Vec::new();
    if let Some(template) = obj.optional(d, "ServiceTemplate", |d, n, p| {
        id_fields(
            d,
            n,
            p,
            &[
                ("ServiceId", ServiceField::Set),
                ("ServiceGroupId", ServiceField::Group),
            ],
        )
    }) {
        services.extend(template);
    }
    let mut remotes: Vec<(Located<String>, RemoteField)> = Vec::new();
    let literal_fields = [
        ("CidrBlock", RemoteField::Ipv4Block),
        ("Ipv6CidrBlock", RemoteField::Ipv6Block),
        ("SecurityGroupId", RemoteField::SecurityGroup),
    ];
    for (key, kind) in literal_fields {
        if let Some(Some(value)) = obj.optional(d, key, present_string) {
            remotes.push((value, kind));
        }
    }
    if let Some(template) = obj.optional(d, "AddressTemplate", |d, n, p| {
        id_fields(
            d,
            n,
            p,
            &[
                ("AddressId", RemoteField::AddressSet),
                ("AddressGroupId", RemoteField::AddressSetGroup),
            ],
        )
    }) {
        remotes.extend(template);
    }

    let loc = obj.loc.clone();
    let mut intact = obj.finish(d, POLICY_KEYS);
    let (remote, remote_field) = match remotes.len() {
        0 => {
            if intact {
                d.error(
                    &loc,
                    "no remote; a rule needs exactly one of CidrBlock, Ipv6CidrBlock, SecurityGroupId, AddressTemplate.AddressId, AddressTemplate.AddressGroupId",
                );
            }
            intact = false;
            (None, RemoteField::Any)
        }
        _ => {
            let mut remotes = remotes.into_iter();
            let (first, kind) = remotes.next()?;
            for (extra, _) in remotes {
                d.error(
                    &extra.loc,
                    format!(
                        "second remote {}: this rule already names {} at {}; a rule names exactly one remote",
                        quote(&extra.value),
                        quote(&first.value),
                        first.loc.position()
                    ),
                );
                intact = false;
            }
            (Some(first), kind)
        }
    };
    let mut services = services.into_iter();
    let (service, service_field) = match services.next() {
        None => (None, ServiceField::Any),
        Some((first, kind)) => {
            for (extra, _) in services {
                d.error(
                    &extra.loc,
                    format!(
                        "second service {}: this rule already names {}; a rule names one service template",
                        quote(&extra.value),
                        quote(&first.value)
                    ),
                );
                intact = false;
            }
            (Some(first), kind)
        }
    };
    let rule = RawRule {
        dialect: Dialect::Tencent,
        intact,
        id: None,
        action: action?,
        protocol,
        port,
        service,
        service_field,
        remote,
        remote_field,
        description,
        log: None,
    };
    Some((index, Located { loc, value: rule }))
}

fn policy_index(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<Option<(u64, Loc)>> {
    let Some(scalar) = present_scalar(d, node, path)? else {
        return Some(None);
    };
    let text = match &scalar.value {
        Scalar::String(s) | Scalar::Number(s) => s,
    };
    match text.parse::<u64>() {
        Ok(n) => Some(Some((n, scalar.loc))),
        Err(_) => {
            d.error(
                &scalar.loc,
                format!(
                    "{} is not a PolicyIndex; expected a whole number 0 or more",
                    scalar.value.display()
                ),
            );
            None
        }
    }
}

/// `ServiceTemplate` / `AddressTemplate`: an object of id fields, of which
/// the non-empty ones are returned with the kind their field admits.
fn id_fields<K: Copy>(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    fields: &[(&str, K)],
) -> Option<Vec<(Located<String>, K)>> {
    if matches!(node.value, Value::Null) {
        return Some(Vec::new());
    }
    let mut obj = d.object(node, path)?;
    let mut found = Vec::new();
    for &(key, kind) in fields {
        if let Some(Some(value)) = obj.optional(d, key, present_string) {
            found.push((value, kind));
        }
    }
    let keys: Vec<&str> = fields.iter().map(|&(k, _)| k).collect();
    obj.finish(d, &keys).then_some(found)
}
