//! Writing a validated rule set into etcd so that the prefix holds
//! exactly its objects: one transaction of the differences (puts of new
//! or changed values, deletes of keys no longer in the set), applied
//! only if nothing under the prefix changed since the snapshot the
//! differences were computed from. Hosts therefore see the whole
//! publish in one revision, or none of it.

use std::collections::BTreeMap;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use secgroup_model::RuleSet;

use crate::error::EtcdError;
use crate::layout::Layout;
use crate::options::ConnectOptions;
use crate::snapshot;

/// Key → value: what the prefix should hold.
pub type Objects = BTreeMap<String, Vec<u8>>;

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The revision holding the published set (the snapshot's when
    /// nothing had to change).
    pub revision: i64,
    pub put: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// How often a publish re-reads and tries again when another writer got
/// in between.
const ATTEMPTS: u32 = 5;

/// The objects of a validated rule set under `layout`, each rendered as
/// one element of its array in a native rule file.
pub fn objects(layout: &Layout, rules: &RuleSet) -> Objects {
    secgroup_model::render::objects(rules)
        .into_iter()
        .map(|(kind, id, text)| (layout.key(kind, &id), text.into_bytes()))
        .collect()
}

/// Makes the prefix hold exactly `objects` (validate them first: this
/// writes what it is given).
///
/// etcd caps one transaction (`--max-txn-ops`, 128 by default;
/// `--max-request-bytes`, 1.5 MiB): a publish changing more than that
/// fails with etcd's error and writes nothing.
pub async fn publish(options: &ConnectOptions, objects: &Objects) -> Result<Published, EtcdError> {
    let mut client = options.connect().await?;
    let prefix = options.layout.prefix();
    for _ in 0..ATTEMPTS {
        let current = snapshot::read(options, &mut client).await?;
        let mut ops = Vec::new();
        let mut report = Published {
            revision: current.revision,
            put: 0,
            deleted: 0,
            unchanged: 0,
        };
        for (key, value) in objects {
            if current.values.get(key) == Some(value) {
                report.unchanged += 1;
            } else {
                ops.push(TxnOp::put(key.as_bytes(), value.clone(), None));
                report.put += 1;
            }
        }
        for key in current.values.keys() {
            if !objects.contains_key(key) {
                ops.push(TxnOp::delete(key.as_bytes(), None));
                report.deleted += 1;
            }
        }
        if ops.is_empty() {
            return Ok(report);
        }
        // Every key under the prefix last modified at or before the
        // snapshot (a key created since would have a later one).
        let unchanged_since = Compare::mod_revision(prefix, CompareOp::Less, current.revision + 1)
            .with_range(options.layout.range_end());
        let txn = Txn::new().when(vec![unchanged_since]).and_then(ops);
        let answer = options
            .bounded("publishing (one transaction)", client.txn(txn))
            .await?;
        if answer.succeeded() {
            report.revision = answer.header().map_or(0, |h| h.revision());
            return Ok(report);
        }
    }
    Err(EtcdError::Contended {
        prefix: prefix.to_owned(),
        attempts: ATTEMPTS,
    })
}
