//! The raw layer: the rule file exactly as written, every value with its
//! location. Decoding checks only the shape (which keys exist, JSON types,
//! required keys); what the strings mean is `validate`'s job. This module
//! holds the raw types and the shared decoding; `native` the native
//! format's objects (`tencent` is Tencent's).

mod native;

use std::sync::Arc;

pub(crate) use native::{native_file, native_object};

use crate::diagnostic::Diagnostic;
use crate::json::{Member, Node, Value};
use crate::location::{LineIndex, child_index, child_key, quote};

/// Where a value sits: file, 1-based line and character column, JSON path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Loc {
    pub(crate) file: Arc<str>,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) path: String,
}

impl Loc {
    pub(crate) fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: self.line,
            column: self.column,
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// `file:line:column`, for messages pointing at a second place.
    pub(crate) fn position(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    pub(crate) loc: Loc,
    pub(crate) value: T,
}

/// A value that may be written as a string or a number (`"22"` or `22`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    String(String),
    /// The number as written.
    Number(String),
}

impl Scalar {
    /// The value as it appears in the file, for messages.
    pub(crate) fn display(&self) -> String {
        match self {
            Scalar::String(s) => quote(s),
            Scalar::Number(n) => n.clone(),
        }
    }
}

/// Which file format a rule came from: spellings differ (Tencent writes
/// `TCP`, `ALL`, `ACCEPT`), meanings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Native,
    Tencent,
}

/// What kind of remote the field that held it admits. Native `remote`
/// takes anything; each Tencent field takes one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteField {
    Any,
    Ipv4Block,
    Ipv6Block,
    SecurityGroup,
    AddressSet,
    AddressSetGroup,
}

/// What kind of service reference the field that held it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceField {
    Any,
    Set,
    Group,
}

#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub(crate) format: crate::outline::Format,
    pub(crate) security_groups: Vec<Located<RawSecurityGroup>>,
    pub(crate) instances: Vec<Located<RawInstance>>,
    pub(crate) address_sets: Vec<Located<RawAddressSet>>,
    pub(crate) address_set_groups: Vec<Located<RawSetGroup>>,
    pub(crate) service_sets: Vec<Located<RawServiceSet>>,
    pub(crate) service_set_groups: Vec<Located<RawSetGroup>>,
}

#[derive(Debug)]
pub(crate) struct RawSecurityGroup {
    pub(crate) id: Located<String>,
    pub(crate) name: Option<Located<String>>,
    pub(crate) description: Option<Located<String>>,
    pub(crate) ingress: Option<Located<Vec<Located<RawRule>>>>,
    pub(crate) egress: Option<Located<Vec<Located<RawRule>>>>,
}

#[derive(Debug)]
pub(crate) struct RawRule {
    pub(crate) dialect: Dialect,
    /// False when some key of the rule failed to decode: checks across keys
    /// (protocol vs service) would then only repeat that error.
    pub(crate) intact: bool,
    /// Native files only: Tencent's policies have no ids.
    pub(crate) id: Option<Located<String>>,
    pub(crate) action: Located<String>,
    pub(crate) protocol: Option<Located<Scalar>>,
    pub(crate) port: Option<Located<Scalar>>,
    pub(crate) service: Option<Located<String>>,
    pub(crate) service_field: ServiceField,
    pub(crate) remote: Option<Located<String>>,
    pub(crate) remote_field: RemoteField,
    pub(crate) description: Option<Located<String>>,
    /// Native files only.
    pub(crate) log: Option<Located<bool>>,
}

#[derive(Debug)]
pub(crate) struct RawInstance {
    pub(crate) id: Located<String>,
    /// The hypervisor whose interface `interface` is (a fleet's shared
    /// store); none: this host's.
    pub(crate) host: Option<Located<String>>,
    pub(crate) interface: Option<Located<String>>,
    pub(crate) mac: Option<Located<String>>,
    pub(crate) ips: Located<Vec<Located<String>>>,
    pub(crate) allowed_address_pairs: Option<Located<Vec<Located<RawAddressPair>>>>,
    pub(crate) port_security: Option<Located<bool>>,
    pub(crate) security_groups: Located<Vec<Located<String>>>,
    pub(crate) log: Option<Located<String>>,
    pub(crate) enforcement: Option<Located<String>>,
}

#[derive(Debug)]
pub(crate) struct RawAddressPair {
    pub(crate) ip: Located<String>,
    pub(crate) mac: Option<Located<String>>,
}

#[derive(Debug)]
pub(crate) struct RawAddressSet {
    pub(crate) id: Located<String>,
    pub(crate) addresses: Located<Vec<Located<String>>>,
}

#[derive(Debug)]
pub(crate) struct RawServiceSet {
    pub(crate) id: Located<String>,
    pub(crate) services: Located<Vec<Located<String>>>,
}

/// An address set group or a service set group: an id and member set ids.
#[derive(Debug)]
pub(crate) struct RawSetGroup {
    pub(crate) id: Located<String>,
    pub(crate) sets: Located<Vec<Located<String>>>,
}

/// Turns a JSON tree into raw structs, reporting shape errors as it goes.
pub(crate) struct Decoder<'a> {
    file: Arc<str>,
    lines: &'a LineIndex<'a>,
    errors: &'a mut Vec<Diagnostic>,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(
        file: Arc<str>,
        lines: &'a LineIndex<'a>,
        errors: &'a mut Vec<Diagnostic>,
    ) -> Decoder<'a> {
        Decoder {
            file,
            lines,
            errors,
        }
    }

    pub(crate) fn loc(&self, offset: usize, path: &str) -> Loc {
        let (line, column) = self.lines.line_column(offset);
        Loc {
            file: Arc::clone(&self.file),
            line,
            column,
            path: path.to_owned(),
        }
    }

    pub(crate) fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.errors.push(loc.diagnostic(message));
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let loc = self.loc(node.offset, path);
        self.error(
            &loc,
            format!("expected {expected}, found {}", describe(node)),
        );
    }

    /// Starts reading an object's members; reports a type error otherwise.
    pub(crate) fn object<'n>(&mut self, node: &'n Node, path: &str) -> Option<Object<'n>> {
        match &node.value {
            Value::Object(members) => Some(Object {
                loc: self.loc(node.offset, path),
                members,
                taken: vec![false; members.len()],
                intact: true,
            }),
            _ => {
                self.type_error(node, path, "an object");
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<Located<String>> {
        match &node.value {
            Value::String(s) => Some(Located {
                loc: self.loc(node.offset, path),
                value: s.clone(),
            }),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, node: &Node, path: &str) -> Option<Located<bool>> {
        match &node.value {
            Value::Bool(b) => Some(Located {
                loc: self.loc(node.offset, path),
                value: *b,
            }),
            _ => {
                self.type_error(node, path, "true or false");
                None
            }
        }
    }

    pub(crate) fn scalar(&mut self, node: &Node, path: &str) -> Option<Located<Scalar>> {
        let value = match &node.value {
            Value::String(s) => Scalar::String(s.clone()),
            Value::Number(n) => Scalar::Number(n.clone()),
            _ => {
                self.type_error(node, path, "a string or a number");
                return None;
            }
        };
        Some(Located {
            loc: self.loc(node.offset, path),
            value,
        })
    }

    /// Decodes every element with `item`; elements that fail are left out
    /// (their errors are already reported).
    pub(crate) fn array<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Located<Vec<T>>> {
        let Value::Array(items) = &node.value else {
            self.type_error(node, path, "an array");
            return None;
        };
        let value = items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| item(self, n, &child_index(path, i)))
            .collect();
        Some(Located {
            loc: self.loc(node.offset, path),
            value,
        })
    }

    pub(crate) fn string_list(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<Located<Vec<Located<String>>>> {
        self.array(node, path, |d, n, p| d.string(n, p))
    }
}

/// An object being decoded: keys are taken one by one, and whatever is
/// left at [`Object::finish`] is an unknown key.
pub(crate) struct Object<'n> {
    pub(crate) loc: Loc,
    members: &'n [Member],
    taken: Vec<bool>,
    /// False once a key is missing or failed to decode.
    intact: bool,
}

impl<'n> Object<'n> {
    /// The value of `key` and its path, if present.
    pub(crate) fn take(&mut self, key: &str) -> Option<(&'n Node, String)> {
        let i = self.members.iter().position(|m| m.key == key)?;
        self.taken[i] = true;
        Some((&self.members[i].value, child_key(&self.loc.path, key)))
    }

    /// Decodes `key` with `decode` if present.
    pub(crate) fn optional<'d, T>(
        &mut self,
        d: &mut Decoder<'d>,
        key: &str,
        decode: impl FnOnce(&mut Decoder<'d>, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        let (node, path) = self.take(key)?;
        let value = decode(d, node, &path);
        self.intact &= value.is_some();
        value
    }

    /// Decodes `key` with `decode`, reporting it when missing.
    pub(crate) fn required<'d, T>(
        &mut self,
        d: &mut Decoder<'d>,
        key: &str,
        decode: impl FnOnce(&mut Decoder<'d>, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        if self.has(key) {
            self.optional(d, key, decode)
        } else {
            self.missing(d, key);
            None
        }
    }

    /// Reports a missing required key at the object.
    pub(crate) fn missing(&mut self, d: &mut Decoder<'_>, key: &str) {
        self.intact = false;
        d.error(&self.loc, format!("missing required key {}", quote(key)));
    }

    /// Whether `key` is present, without taking it.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.members.iter().any(|m| m.key == key)
    }

    /// Reports the keys nobody took, and says whether everything present
    /// decoded and nothing required was missing.
    pub(crate) fn finish(self, d: &mut Decoder<'_>, known: &[&str]) -> bool {
        for (member, taken) in self.members.iter().zip(&self.taken) {
            if *taken {
                continue;
            }
            let loc = d.loc(member.key_offset, &child_key(&self.loc.path, &member.key));
            let mut message = format!(
                "unknown key {}; expected one of {}",
                quote(&member.key),
                known.join(", ")
            );
            if let Some(near) = closest(&member.key, known) {
                message.push_str(&format!(" (did you mean {}?)", quote(near)));
            }
            d.error(&loc, message);
        }
        self.intact && self.taken.iter().all(|&t| t)
    }
}

/// The known key closest to a misspelt one, if any is close enough to be
/// a plausible typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|&k| (edit_distance(&lower, &k.to_ascii_lowercase()), k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4) && d < k.len())
        // On a tie prefer a key the typo is a prefix of or extends
        // ("ip" → "ips", not "id").
        .min_by_key(|&(d, k)| (d, !(k.starts_with(&lower) || lower.starts_with(k))))
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A JSON value as messages name it: `number 22`, `string "x"`, `an array`.
pub(crate) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::native::{INSTANCE_KEYS, RULE_KEYS};
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(closest("ip", INSTANCE_KEYS), Some("ips"));
        let cases = [
            ("protcol", Some("protocol")),
            ("ports", Some("port")),
            ("Remote", Some("remote")),
            ("ip", Some("id")),
            ("ipx", None),
            ("xyz", None),
            ("a", None),
        ];
        for (key, expected) in cases {
            assert_eq!(closest(key, RULE_KEYS), expected, "key {key:?}");
        }
    }
}
