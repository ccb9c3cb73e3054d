//! secgroup's etcd side: how hosts and publishers reach etcd
//! ([`EtcdArgs`] → [`ConnectOptions`]), where objects live
//! ([`Layout`]: `<prefix><kind>/<id>`, one object per key, its JSON as in
//! a rule file), reading everything at one revision ([`snapshot`]),
//! writing a validated rule set in one transaction ([`publish`]), and
//! following the prefix revision by revision ([`follow`]).
//!
//! What a value means is the model's business: the documents this crate
//! hands out are decoded and validated by `secgroup_model`, exactly like
//! rule files ([`documents`] names them `etcd:<key>` for diagnostics).

mod error;
mod follow;
mod layout;
mod options;
mod publish;
mod snapshot;

pub use error::EtcdError;
pub use follow::{Change, Update, follow, follow_from};
pub use layout::{DEFAULT_PREFIX, DOCUMENT_SCHEME, KeyError, Layout};
pub use options::{ConnectOptions, Credentials, EtcdArgs, Tls, parse_duration};
pub use publish::{Objects, Published, objects, publish};
pub use snapshot::{Snapshot, snapshot};

/// One value of the prefix as the model reads it: its name in
/// diagnostics (`etcd:<key>`), and what the key says it holds, or why
/// the key is no object's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDocument {
    pub name: String,
    pub key: String,
    pub object: Result<(secgroup_model::ObjectKind, String), KeyError>,
}

impl KeyDocument {
    /// The problem of a key that is no object's key, located like the
    /// model's (the whole value): a stray key fails the revision.
    pub fn key_error(&self) -> Option<secgroup_model::Diagnostic> {
        let problem = self.object.as_ref().err()?;
        Some(key_diagnostic(&self.name, problem))
    }
}

/// `problem` with the key named `name`, as a diagnostic.
pub fn key_diagnostic(name: &str, problem: &KeyError) -> secgroup_model::Diagnostic {
    secgroup_model::Diagnostic {
        file: name.to_owned(),
        line: 1,
        column: 1,
        path: "$".to_owned(),
        message: format!("not an object's key: {problem}"),
    }
}

/// What each key of `keys` holds under `layout`.
pub fn documents<'k>(
    layout: &Layout,
    keys: impl IntoIterator<Item = &'k String>,
) -> Vec<KeyDocument> {
    keys.into_iter()
        .map(|key| KeyDocument {
            name: Layout::document_name(key),
            key: key.clone(),
            object: layout.parse(key.as_bytes()),
        })
        .collect()
}
