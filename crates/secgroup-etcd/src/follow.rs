//! Following the prefix: a snapshot, then a watch from the revision after
//! it, handed on as [`Update`]s. Bursts are coalesced: every watch
//! response already received is folded into one [`Update::Changes`]
//! before it is handed on, so a thousand writes in quick succession cost
//! the reader one reload, not a thousand. Whole revisions only: etcd puts
//! the events of one revision in one response (fragmenting is not asked
//! for), so an update never holds half of one.
//!
//! Failure handling:
//! - etcd unreachable (connect, read or watch fails, or the stream ends):
//!   [`Update::Unreachable`] with the time it first failed, then retries
//!   with backoff (200 ms doubling to 5 s); once back, the watch resumes
//!   from the revision after the last one handed on, so nothing is
//!   missed;
//! - the watch's start revision was compacted, or etcd cancelled the
//!   watch: a full resync ([`Update::Reset`] from a new snapshot).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use etcd_client::{EventType, WatchOptions};
use tracing::{debug, info, warn};

use crate::error::EtcdError;
use crate::options::ConnectOptions;
use crate::snapshot::{self, Snapshot};

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// One watch response may carry a whole publish (100,000 values of a few
/// hundred bytes): well past gRPC's default 4 MiB.
const MAX_WATCH_MESSAGE: usize = 512 * 1024 * 1024;

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Vec<u8>),
    Delete,
}

/// What the follower hands on, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Everything under the prefix: replaces what was known. The first
    /// sync, and every resync.
    Reset {
        snapshot: Snapshot,
        /// Why: `first sync`, `compacted`, `watch cancelled`.
        reason: &'static str,
    },
    /// The latest change of each key changed since the previous update,
    /// through `revision`.
    Changes {
        revision: i64,
        changes: BTreeMap<String, Change>,
    },
    /// etcd cannot be reached (since `since`); retrying.
    Unreachable { since: SystemTime, error: String },
    /// Reached again after being unreachable.
    Reconnected { down_since: SystemTime },
}

/// Where a follower is: the last revision handed on.
#[derive(Debug, Default)]
struct Follower {
    revision: Option<i64>,
    down_since: Option<SystemTime>,
    backoff: Option<Duration>,
    /// Why the next snapshot is read.
    reason: Option<&'static str>,
}

/// Follows the prefix forever, handing every update to `sink` (which must
/// not block for long: it runs on the async runtime).
pub async fn follow(options: ConnectOptions, sink: impl FnMut(Update) + Send) {
    follow_from(options, None, sink).await;
}

/// [`follow`], resuming after `revision` (a reader that already holds
/// the prefix as of that revision) instead of starting with a snapshot.
pub async fn follow_from(
    options: ConnectOptions,
    revision: Option<i64>,
    mut sink: impl FnMut(Update) + Send,
) {
    let mut follower = Follower {
        revision,
        reason: Some("first sync"),
        ..Follower::default()
    };
    loop {
        match session(&options, &mut follower, &mut sink).await {
            // A resync was asked for: at once.
            Ok(()) => follower.revision = None,
            Err(e) => {
                let since = *follower.down_since.get_or_insert_with(SystemTime::now);
                let error = e.to_string();
                warn!(%error, "etcd unreachable; the policy in force stays, retrying");
                sink(Update::Unreachable { since, error });
                let delay = follower
                    .backoff
                    .map_or(MIN_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
                follower.backoff = Some(delay);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One connection: a snapshot unless resuming, then the watch. Returns
/// `Ok` when a full resync is needed, an error when etcd failed.
async fn session(
    options: &ConnectOptions,
    follower: &mut Follower,
    sink: &mut (impl FnMut(Update) + Send),
) -> Result<(), EtcdError> {
    let client = options.connect().await?;
    let revision = match follower.revision {
        Some(revision) => revision,
        None => {
            let mut kv = client.clone();
            let snapshot = snapshot::read(options, &mut kv).await?;
            let revision = snapshot.revision;
            let reason = follower.reason.take().unwrap_or("resync");
            reached(follower, sink);
            info!(
                revision,
                keys = snapshot.values.len(),
                reason,
                "etcd snapshot read"
            );
            sink(Update::Reset { snapshot, reason });
            follower.revision = Some(revision);
            revision
        }
    };
    let watch = WatchOptions::new()
        .with_range(options.layout.range_end())
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let mut watch_client = client
        .watch_client()
        .max_decoding_message_size(MAX_WATCH_MESSAGE);
    let mut stream = options
        .bounded(
            "watching the prefix",
            watch_client.watch(options.layout.prefix(), Some(watch)),
        )
        .await?;
    reached(follower, sink);
    loop {
        let Some(first) = next(options, &mut stream).await? else {
            return Err(EtcdError::Request {
                endpoints: options.endpoints_text(),
                what: "watching the prefix",
                source: etcd_client::Error::WatchError("the watch stream ended".to_owned()),
            });
        };
        reached(follower, sink);
        let mut responses = vec![first];
        // Whatever else already arrived joins this update.
        while let Ok(more) = tokio::time::timeout(Duration::ZERO, stream.message()).await {
            match more {
                Ok(Some(response)) => responses.push(response),
                Ok(None) => break,
                Err(source) => {
                    return Err(EtcdError::Request {
                        endpoints: options.endpoints_text(),
                        what: "watching the prefix",
                        source,
                    });
                }
            }
        }
        let mut changes = BTreeMap::new();
        let mut last = follower.revision.unwrap_or(revision);
        for response in &responses {
            if response.compact_revision() > 0 {
                warn!(
                    from = last + 1,
                    compacted = response.compact_revision(),
                    "the etcd revisions after the last one applied are compacted: reading everything again"
                );
                hand_on(sink, last, std::mem::take(&mut changes), follower);
                follower.reason = Some("compacted");
                return Ok(());
            }
            if response.canceled() {
                warn!(
                    reason = response.cancel_reason(),
                    "etcd cancelled the watch: reading everything again"
                );
                hand_on(sink, last, std::mem::take(&mut changes), follower);
                follower.reason = Some("watch cancelled");
                return Ok(());
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let change = match event.event_type() {
                    EventType::Put => Change::Put(kv.value().to_vec()),
                    EventType::Delete => Change::Delete,
                };
                last = last.max(kv.mod_revision());
                changes.insert(key, change);
            }
        }
        debug!(
            responses = responses.len(),
            keys = changes.len(),
            revision = last,
            "etcd changes"
        );
        hand_on(sink, last, changes, follower);
    }
}

/// Hands on what changed, if anything did.
fn hand_on(
    sink: &mut impl FnMut(Update),
    revision: i64,
    changes: BTreeMap<String, Change>,
    follower: &mut Follower,
) {
    if changes.is_empty() {
        return;
    }
    follower.revision = Some(revision);
    sink(Update::Changes { revision, changes });
}

/// etcd answered: clears the backoff and says so if it had been down.
fn reached(follower: &mut Follower, sink: &mut impl FnMut(Update)) {
    follower.backoff = None;
    if let Some(down_since) = follower.down_since.take() {
        info!("etcd reachable again");
        sink(Update::Reconnected { down_since });
    }
}

async fn next(
    options: &ConnectOptions,
    stream: &mut etcd_client::WatchStream,
) -> Result<Option<etcd_client::WatchResponse>, EtcdError> {
    stream.message().await.map_err(|source| EtcdError::Request {
        endpoints: options.endpoints_text(),
        what: "watching the prefix",
        source,
    })
}
