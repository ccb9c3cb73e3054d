//! Strings → typed ids, remotes and service references, with the
//! messages that say what was written and what was expected.

use std::fmt::Display;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::location::quote;
use crate::model::{
    AddressBlock, AddressSetGroupId, AddressSetId, InstanceId, Remote, RuleId, ServiceSetGroupId,
    ServiceSetId, SgId, Traffic,
};
use crate::raw::{RemoteField, ServiceField};
use crate::values;

/// An id kind with a fixed prefix, for uniform parsing and messages.
pub(super) trait PrefixedId: Sized + Ord + Clone + Display {
    /// "a security group", "an address set", ...
    const KIND: &'static str;
    const ARTICLE: &'static str;
    const PREFIX: &'static str;
    fn parse(s: &str) -> Option<Self>;
}

macro_rules! prefixed_id {
    ($ty:ty, $article:literal, $kind:literal) => {
        impl PrefixedId for $ty {
            const KIND: &'static str = $kind;
            const ARTICLE: &'static str = $article;
            const PREFIX: &'static str = <$ty>::PREFIX;
            fn parse(s: &str) -> Option<Self> {
                <$ty>::new(s)
            }
        }
    };
}

prefixed_id!(SgId, "a", "security group");
prefixed_id!(AddressSetId, "an", "address set");
prefixed_id!(AddressSetGroupId, "an", "address set group");
prefixed_id!(ServiceSetId, "a", "service set");
prefixed_id!(ServiceSetGroupId, "a", "service set group");

/// Every prefix, longest first so `ipmg-` is not taken for `ipm-`.
const PREFIXES: &[(&str, &str, &str)] = &[
    ("ipmg-", "an", "address set group"),
    ("ppmg-", "a", "service set group"),
    ("ipm-", "an", "address set"),
    ("ppm-", "a", "service set"),
    ("sg-", "a", "security group"),
];

const ID_CHARS: &str = "letters, digits, '_', '.' or '-'";

pub(super) fn parse_id<T: PrefixedId>(s: &str) -> Result<T, String> {
    if let Some(id) = T::parse(s) {
        return Ok(id);
    }
    let (article, kind, prefix) = (T::ARTICLE, T::KIND, T::PREFIX);
    let q = quote(s);
    if s.is_empty() {
        return Err(format!(
            "empty id; expected {article} {kind} id like \"{prefix}web\""
        ));
    }
    let other = PREFIXES.iter().find(|(p, _, _)| s.starts_with(p));
    if let Some(&(other_prefix, other_article, other_kind)) = other
        && other_prefix != prefix
    {
        return Err(format!(
            "{q} is {other_article} {other_kind} id; expected {article} {kind} id (\"{prefix}…\")"
        ));
    }
    let Some(rest) = s.strip_prefix(prefix) else {
        return Err(format!(
            "{q} is not {article} {kind} id; expected \"{prefix}\" followed by {ID_CHARS}"
        ));
    };
    Err(id_body_problem(
        &q,
        rest,
        s.len(),
        &format!("{article} {kind} id"),
    ))
}

/// Why the part after the prefix (or a whole prefix-less id) is invalid.
fn id_body_problem(q: &str, body: &str, len: usize, what: &str) -> String {
    if body.is_empty() {
        return format!("{q} is not {what}: nothing follows the prefix");
    }
    if len > 64 {
        return format!("{q} is not {what}: {len} bytes, at most 64");
    }
    match body
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => format!(
            "{q} is not {what}: {} is not allowed; use {ID_CHARS}",
            quote(&c.to_string())
        ),
        None => format!("{q} is not {what}"),
    }
}

pub(super) fn parse_rule_id(s: &str) -> Result<RuleId, String> {
    match RuleId::new(s) {
        Some(id) => Ok(id),
        None if s.is_empty() => Err(
            "empty rule id; expected a short name like \"ssh-office\" (or omit \"id\")".to_owned(),
        ),
        None => Err(id_body_problem(&quote(s), s, s.len(), "a rule id")),
    }
}

pub(super) fn parse_instance_id(s: &str) -> Result<InstanceId, String> {
    match InstanceId::new(s) {
        Some(id) => Ok(id),
        None if s.is_empty() => {
            Err("empty id; expected an instance id like \"ins-web-1\"".to_owned())
        }
        None => Err(id_body_problem(&quote(s), s, s.len(), "an instance id")),
    }
}

const REMOTE_EXPECTED: &str = "expected an IPv4/IPv6 address, CIDR or range \"a-b\", or an id starting with \"sg-\", \"ipm-\" or \"ipmg-\"";

/// A rule's remote as written in a field that admits `field`.
pub(super) fn parse_remote(s: &str, field: RemoteField) -> Result<Remote, String> {
    match field {
        RemoteField::Any => {
            if s.is_empty() {
                return Err(format!(
                    "empty remote; {REMOTE_EXPECTED} (omit \"remote\" to mean anywhere)"
                ));
            }
            if s.starts_with(SgId::PREFIX) {
                return parse_id(s).map(Remote::SecurityGroup);
            }
            if s.starts_with(AddressSetGroupId::PREFIX) {
                return parse_id(s).map(Remote::AddressSetGroup);
            }
            if s.starts_with(AddressSetId::PREFIX) {
                return parse_id(s).map(Remote::AddressSet);
            }
            if s.starts_with(ServiceSetId::PREFIX) || s.starts_with(ServiceSetGroupId::PREFIX) {
                return Err(format!(
                    "{} is a service id, not a remote; services go in \"service\"",
                    quote(s)
                ));
            }
            // An attempt at an address gets the precise address message;
            // anything else (a mistyped id) the list of what a remote is.
            let address_like =
                s.starts_with(|c: char| c.is_ascii_hexdigit()) && s.contains(['.', ':', '/']);
            match values::address_block(s) {
                Ok(block) => Ok(Remote::Block(block)),
                Err(e) if address_like => Err(e),
                Err(_) => Err(format!("{} is not a remote; {REMOTE_EXPECTED}", quote(s))),
            }
        }
        RemoteField::Ipv4Block | RemoteField::Ipv6Block => {
            let want_v4 = field == RemoteField::Ipv4Block;
            let block = values::address_block(s)?;
            let is_v4 = match block {
                AddressBlock::Net(net) => net.addr().is_ipv4(),
                AddressBlock::Range(range) => range.first().is_ipv4(),
            };
            if is_v4 != want_v4 {
                let (this, other, other_field) = if want_v4 {
                    ("IPv4", "IPv6", "Ipv6CidrBlock")
                } else {
                    ("IPv6", "IPv4", "CidrBlock")
                };
                return Err(format!(
                    "{} is {other}; this field takes {this} (put {other} in {other_field})",
                    quote(s)
                ));
            }
            Ok(Remote::Block(block))
        }
        RemoteField::SecurityGroup => parse_id(s).map(Remote::SecurityGroup),
        RemoteField::AddressSet => parse_id(s).map(Remote::AddressSet),
        RemoteField::AddressSetGroup => parse_id(s).map(Remote::AddressSetGroup),
    }
}

pub(super) fn parse_service_ref(s: &str, field: ServiceField) -> Result<Traffic, String> {
    match field {
        ServiceField::Set => parse_id(s).map(Traffic::ServiceSet),
        ServiceField::Group => parse_id(s).map(Traffic::ServiceSetGroup),
        ServiceField::Any if s.starts_with(ServiceSetGroupId::PREFIX) => {
            parse_id(s).map(Traffic::ServiceSetGroup)
        }
        ServiceField::Any if s.starts_with(ServiceSetId::PREFIX) => {
            parse_id(s).map(Traffic::ServiceSet)
        }
        ServiceField::Any if s.is_empty() => {
            Err("empty service; expected a service set id (\"ppm-…\") or service set group id (\"ppmg-…\")".to_owned())
        }
        ServiceField::Any => Err(format!(
            "{} is not a service; expected a service set id (\"ppm-…\") or service set group id (\"ppmg-…\"); for a protocol use \"protocol\"",
            quote(s)
        )),
    }
}

const PAIR_EXPECTED: &str =
    "expected an address like \"198.51.100.50\" or a CIDR like \"198.51.100.64/28\"";

/// The `ip` of an allowed address pair: an address or a CIDR without host
/// bits (a range is not a source a VM is configured with).
pub(super) fn parse_pair_net(s: &str) -> Result<IpNet, String> {
    let address = s.split_once('/').map_or(s, |(address, _)| address);
    if address.parse::<IpAddr>().is_err() {
        let what = if s.contains('-') {
            "is a range, not an address or CIDR"
        } else {
            "is not an address or CIDR"
        };
        return Err(format!("{} {what}; {PAIR_EXPECTED}", quote(s)));
    }
    // The address is good: what is left to report is the prefix length
    // or host bits, which `address_block` words as for remotes.
    match values::address_block(s)? {
        AddressBlock::Net(net) => Ok(net),
        AddressBlock::Range(_) => Err(format!(
            "{} is not an address or CIDR; {PAIR_EXPECTED}",
            quote(s)
        )),
    }
}
