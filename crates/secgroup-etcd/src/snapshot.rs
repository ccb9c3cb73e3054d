//! Everything under the prefix at one revision: the first sync of a
//! host, the resync after a compaction, `secgroupctl export`, and what a
//! publish compares the directory with.

use std::collections::BTreeMap;

use etcd_client::{Client, GetOptions};
use secgroup_model::{DecodeCache, Diagnostic, Diagnostics, Document, HostView, Limits, Shape};

use crate::error::EtcdError;
use crate::layout::Layout;
use crate::options::ConnectOptions;

/// Keys per read: a fleet's prefix holds 100,000 objects and more, far
/// past one gRPC message (4 MiB by default); pages of this many values of
/// a few hundred bytes stay well under it.
const PAGE: i64 = 2_000;

/// The values under the prefix at `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The store's revision the values were read at.
    pub revision: i64,
    /// Key → value, every key under the prefix.
    pub values: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    /// Decodes and validates the values as the model does (every value a
    /// document named `etcd:<key>`, a key that is no object's key an
    /// error), as seen by `view`.
    pub fn load(
        &self,
        layout: &Layout,
        view: HostView<'_>,
    ) -> Result<secgroup_model::Loaded, Diagnostics> {
        let keys = crate::documents(layout, self.values.keys());
        let mut errors: Vec<Diagnostic> = keys.iter().filter_map(|k| k.key_error()).collect();
        let documents: Vec<Document<'_>> = keys
            .iter()
            .filter_map(|k| {
                let (kind, id) = k.object.as_ref().ok()?;
                Some(Document {
                    name: &k.name,
                    bytes: self.values.get(&k.key)?,
                    shape: Shape::Object { kind: *kind, id },
                })
            })
            .collect();
        let loaded = secgroup_model::load_documents(
            &documents,
            &Limits::default(),
            &[],
            &mut DecodeCache::default(),
            view,
        );
        match loaded {
            Ok(loaded) if errors.is_empty() => Ok(loaded),
            Ok(_) => Err(Diagnostics(errors)),
            Err(Diagnostics(more)) => {
                errors.extend(more);
                errors.sort();
                Err(Diagnostics(errors))
            }
        }
    }
}

/// Connects and reads a [`Snapshot`].
pub async fn snapshot(options: &ConnectOptions) -> Result<Snapshot, EtcdError> {
    let mut client = options.connect().await?;
    read(options, &mut client).await
}

/// Reads every key under the prefix, page by page, all at the revision
/// of the first page: a consistent picture even while writers go on.
pub(crate) async fn read(
    options: &ConnectOptions,
    client: &mut Client,
) -> Result<Snapshot, EtcdError> {
    let end = options.layout.range_end();
    let mut from = options.layout.prefix().as_bytes().to_vec();
    let mut snapshot = Snapshot::default();
    loop {
        let mut get = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if snapshot.revision > 0 {
            get = get.with_revision(snapshot.revision);
        }
        let page = match options
            .bounded("reading the prefix", client.get(from.clone(), Some(get)))
            .await
        {
            Err(EtcdError::Request { source, .. }) if is_compacted(&source) => {
                return Err(EtcdError::Compacted {
                    revision: snapshot.revision,
                    compacted: 0,
                });
            }
            other => other?,
        };
        if snapshot.revision == 0 {
            snapshot.revision = page.header().map_or(0, |h| h.revision());
        }
        let mut last = None;
        for kv in page.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            last = Some(kv.key().to_vec());
            snapshot.values.insert(key, kv.value().to_vec());
        }
        match last {
            Some(mut key) if page.more() => {
                // The next page starts just after the last key.
                key.push(0);
                from = key;
            }
            _ => return Ok(snapshot),
        }
    }
}

/// etcd's answer to a read or watch at a compacted revision.
pub(crate) fn is_compacted(error: &etcd_client::Error) -> bool {
    error
        .to_string()
        .contains("required revision has been compacted")
}
