//! Where objects live in etcd: `<prefix><kind>/<id>`, one object per
//! key, `<kind>` being the top-level key of a native rule file
//! (`security_groups`, `instances`, ...). The value is that object's JSON,
//! exactly one element of that array in a rule file.

use std::fmt;

use secgroup_model::ObjectKind;

use crate::error::EtcdError;

/// The prefix every host and publisher of one fleet shares.
pub const DEFAULT_PREFIX: &str = "/secgroup/";

/// How diagnostics name a key: `etcd:<key>`, so that
/// `etcd:/secgroup/security_groups/sg-web:3:14: ingress[0].port: ...`
/// reads like a file's location.
pub const DOCUMENT_SCHEME: &str = "etcd:";

/// A validated prefix and the keys under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// Why a key under the prefix is not an object's key. The daemon reports
/// it like an invalid value (the revision is rejected): a stray key is a
/// writer's mistake that would otherwise go unnoticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not under the prefix at all (never returned for a key etcd listed
    /// under it).
    OutsidePrefix,
    /// `<prefix>something/...` whose first segment is no kind.
    UnknownKind(String),
    /// `<prefix>instances` or `<prefix>instances/`: no id.
    NoId,
    /// `<prefix>instances/a/b`: ids have no `/`.
    Nested,
    /// Not UTF-8.
    NotUtf8,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::OutsidePrefix => f.write_str("not under the prefix"),
            KeyError::UnknownKind(kind) => write!(
                f,
                "{kind:?} is not a kind of object; keys are <prefix>KIND/ID with KIND one of {}",
                kinds()
            ),
            KeyError::NoId => f.write_str("no id after the kind; keys are <prefix>KIND/ID"),
            KeyError::Nested => {
                f.write_str("an id has no '/'; keys are <prefix>KIND/ID, one level deep")
            }
            KeyError::NotUtf8 => f.write_str("the key is not UTF-8"),
        }
    }
}

fn kinds() -> String {
    let names: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.key()).collect();
    names.join(", ")
}

impl Layout {
    /// `prefix` must start and end with `/` (so that `/secgroup/` never
    /// also matches `/secgroup-old/...`) and be more than `/`.
    pub fn new(prefix: &str) -> Result<Layout, EtcdError> {
        let bad = |reason| EtcdError::Prefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if !prefix.starts_with('/') {
            return Err(bad("it must start with '/'"));
        }
        if !prefix.ends_with('/') {
            return Err(bad(
                "it must end with '/' (or it would also cover keys of other prefixes)",
            ));
        }
        if prefix == "/" {
            return Err(bad("it must not be the whole key space"));
        }
        Ok(Layout {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of an object.
    pub fn key(&self, kind: ObjectKind, id: &str) -> String {
        format!("{}{}/{id}", self.prefix, kind.key())
    }

    /// What a key under the prefix holds.
    pub fn parse(&self, key: &[u8]) -> Result<(ObjectKind, String), KeyError> {
        let key = std::str::from_utf8(key).map_err(|_| KeyError::NotUtf8)?;
        let rest = key
            .strip_prefix(self.prefix.as_str())
            .ok_or(KeyError::OutsidePrefix)?;
        let (kind, id) = rest.split_once('/').unwrap_or((rest, ""));
        let kind = ObjectKind::ALL
            .into_iter()
            .find(|k| k.key() == kind)
            .ok_or_else(|| KeyError::UnknownKind(kind.to_owned()))?;
        if id.is_empty() {
            return Err(KeyError::NoId);
        }
        if id.contains('/') {
            return Err(KeyError::Nested);
        }
        Ok((kind, id.to_owned()))
    }

    /// How diagnostics name `key`.
    pub fn document_name(key: &str) -> String {
        format!("{DOCUMENT_SCHEME}{key}")
    }

    /// The first key after every key under the prefix (etcd's range end
    /// for a prefix: the last byte plus one; `/` + 1 is `0`).
    pub(crate) fn range_end(&self) -> Vec<u8> {
        let mut end = self.prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new("/secgroup/").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn prefixes() {
        for (prefix, ok) in [
            ("/secgroup/", true),
            ("/a/b/", true),
            ("/secgroup", false),
            ("secgroup/", false),
            ("/", false),
            ("", false),
        ] {
            assert_eq!(Layout::new(prefix).is_ok(), ok, "{prefix:?}");
        }
        let e = Layout::new("/secgroup").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "invalid etcd prefix \"/secgroup\": it must end with '/' (or it would also cover keys of other prefixes)"
            )
        );
        assert_eq!(layout().range_end(), b"/secgroup0".to_vec());
    }

    #[test]
    fn keys_round_trip() {
        let l = layout();
        for kind in ObjectKind::ALL {
            let key = l.key(kind, "x-1");
            assert_eq!(l.parse(key.as_bytes()), Ok((kind, "x-1".to_owned())));
        }
        assert_eq!(
            l.key(ObjectKind::SecurityGroup, "sg-web"),
            "/secgroup/security_groups/sg-web"
        );
        assert_eq!(
            Layout::document_name("/secgroup/instances/i-1"),
            "etcd:/secgroup/instances/i-1"
        );
    }

    #[test]
    fn bad_keys() {
        let l = layout();
        let cases: [(&[u8], KeyError); 7] = [
            (b"/other/instances/a", KeyError::OutsidePrefix),
            (b"/secgroup/vms/a", KeyError::UnknownKind("vms".to_owned())),
            (
                b"/secgroup/readme",
                KeyError::UnknownKind("readme".to_owned()),
            ),
            (b"/secgroup/instances", KeyError::NoId),
            (b"/secgroup/instances/", KeyError::NoId),
            (b"/secgroup/instances/a/b", KeyError::Nested),
            (b"/secgroup/instances/\xff", KeyError::NotUtf8),
        ];
        for (key, expected) in cases {
            assert_eq!(l.parse(key), Err(expected), "{key:?}");
        }
        assert_eq!(
            KeyError::UnknownKind("vms".into()).to_string(),
            "\"vms\" is not a kind of object; keys are <prefix>KIND/ID with KIND one of security_groups, instances, address_sets, address_set_groups, service_sets, service_set_groups"
        );
    }
}
