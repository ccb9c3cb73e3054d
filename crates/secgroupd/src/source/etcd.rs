//! The etcd side of the source: the follower task keeps `View` (every
//! key under the prefix at the latest revision received) up to date and
//! tells the engine; a load takes a consistent copy of it (one revision,
//! never half of one) and hands its values to the model as documents
//! named `etcd:<key>`. While etcd is unreachable the view stays at the
//! last revision received and the policy in force stays; health says
//! `etcd-unreachable` with since when.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use secgroup_api::{DegradedReason, EtcdStatus, Timestamp};
use secgroup_etcd::{Change, ConnectOptions, KeyError, Layout, Update};
use secgroup_model::{Document, ObjectKind, Shape};
use tokio::sync::{mpsc, watch};

use crate::event::Event;
use crate::rules::LoadFailure;

/// One value and what its key says it holds.
struct Entry {
    name: String,
    object: Result<(ObjectKind, String), KeyError>,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct View {
    entries: BTreeMap<Arc<str>, Arc<Entry>>,
    /// The revision `entries` are at; none before the first snapshot.
    revision: Option<i64>,
    /// When that revision arrived.
    received: Option<Instant>,
    connected: bool,
    down_since: Option<SystemTime>,
    error: Option<String>,
    /// The revision of the last successful load, and when it arrived.
    loaded: Option<(i64, Option<Instant>)>,
}

/// The etcd revision in force and its lag (arrival → in force, ms): kept
/// with the snapshot of what is in force, so the two always agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Applied {
    pub revision: i64,
    pub lag_ms: Option<f64>,
}

pub struct EtcdSource {
    options: ConnectOptions,
    view: Mutex<View>,
    /// Becomes true at the first snapshot or the first failure.
    synced: watch::Sender<bool>,
}

/// A consistent copy of the view: cheap (reference counts), taken under
/// the lock and read without it.
pub struct Entries {
    pub revision: i64,
    received: Option<Instant>,
    entries: Vec<Arc<Entry>>,
}

impl Entries {
    /// The values as the model's documents, and the keys that are no
    /// object's key as located errors.
    pub fn documents(&self) -> secgroup_rulesdir::Extra<'_> {
        let mut extra = secgroup_rulesdir::Extra::default();
        for e in &self.entries {
            match &e.object {
                Ok((kind, id)) => extra.documents.push(Document {
                    name: &e.name,
                    bytes: &e.bytes,
                    shape: Shape::Object { kind: *kind, id },
                }),
                Err(problem) => extra
                    .errors
                    .push(secgroup_etcd::key_diagnostic(&e.name, problem)),
            }
        }
        extra
    }
}

impl EtcdSource {
    pub fn new(options: ConnectOptions) -> EtcdSource {
        EtcdSource {
            options,
            view: Mutex::new(View::default()),
            synced: watch::channel(false).0,
        }
    }

    fn view(&self) -> MutexGuard<'_, View> {
        // A panic while holding it leaves a view that is still whole
        // (every update is applied before the lock is released).
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn describe(&self) -> String {
        format!(
            "etcd {} {}",
            self.options.endpoints_text(),
            self.options.layout.prefix()
        )
    }

    pub async fn first_sync(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// What a load reads, or why there is nothing yet.
    pub fn current(&self) -> Result<Entries, LoadFailure> {
        let view = self.view();
        let Some(revision) = view.revision else {
            let why = view
                .error
                .clone()
                .unwrap_or_else(|| "not read yet".to_owned());
            return Err(LoadFailure {
                message: format!("no etcd revision read yet from {}: {why}", self.describe()),
                diagnostics: Vec::new(),
            });
        };
        Ok(Entries {
            revision,
            received: view.received,
            entries: view.entries.values().cloned().collect(),
        })
    }

    /// A load of `entries` finished (valid or not).
    pub fn loaded(&self, entries: &Entries, valid: bool) {
        let mut view = self.view();
        view.loaded = valid.then_some((entries.revision, entries.received));
    }

    /// The last load is in force: its revision.
    pub fn applied(&self) -> Option<Applied> {
        let mut view = self.view();
        let (revision, received) = view.loaded.take()?;
        Some(Applied {
            revision,
            lag_ms: received.map(|r| r.elapsed().as_secs_f64() * 1e3),
        })
    }

    pub fn status(&self, in_force: Option<Applied>) -> EtcdStatus {
        let view = self.view();
        let applied = in_force.map(|a| a.revision);
        EtcdStatus {
            endpoints: self.options.endpoints.clone(),
            prefix: self.options.layout.prefix().to_owned(),
            connected: view.connected,
            unreachable_since: view.down_since.map(timestamp),
            error: view.error.clone(),
            revision: applied,
            latest_revision: view.revision,
            behind: match (view.revision, applied) {
                (Some(latest), Some(applied)) => latest - applied,
                (Some(_), None) => 1,
                _ => 0,
            },
            lag_ms: in_force.and_then(|a| a.lag_ms),
            keys: view.entries.len(),
        }
    }

    pub fn degraded(&self, in_force: Option<Applied>) -> Option<DegradedReason> {
        let view = self.view();
        let since = view.down_since?;
        let enforcing = match in_force {
            Some(Applied { revision, .. }) => {
                format!("enforcing etcd revision {revision}, the last good one")
            }
            None => "enforcing what is pinned".to_owned(),
        };
        Some(DegradedReason {
            kind: "etcd-unreachable".to_owned(),
            message: format!(
                "{} unreachable since {}: {}; {enforcing}, reconnecting",
                self.describe(),
                timestamp(since).at,
                view.error.as_deref().unwrap_or("?")
            ),
        })
    }

    /// Folds one update of the follower into the view; whether the
    /// rules changed.
    fn update(&self, update: Update) -> bool {
        let mut view = self.view();
        let changed = match update {
            Update::Reset { snapshot, .. } => {
                view.entries = snapshot
                    .values
                    .into_iter()
                    .map(|(key, bytes)| self.entry(key, bytes))
                    .collect();
                view.revision = Some(snapshot.revision);
                true
            }
            Update::Changes { revision, changes } => {
                for (key, change) in changes {
                    match change {
                        Change::Put(bytes) => {
                            let (key, entry) = self.entry(key, bytes);
                            view.entries.insert(key, entry);
                        }
                        Change::Delete => {
                            view.entries.remove(key.as_str());
                        }
                    }
                }
                view.revision = Some(revision);
                true
            }
            Update::Unreachable { since, error } => {
                view.connected = false;
                view.down_since = Some(since);
                view.error = Some(error);
                false
            }
            Update::Reconnected { .. } => {
                view.connected = true;
                view.down_since = None;
                view.error = None;
                false
            }
        };
        if changed {
            view.received = Some(Instant::now());
            view.connected = true;
            view.down_since = None;
            view.error = None;
        }
        changed
    }

    fn entry(&self, key: String, bytes: Vec<u8>) -> (Arc<str>, Arc<Entry>) {
        let entry = Entry {
            name: Layout::document_name(&key),
            object: self.options.layout.parse(key.as_bytes()),
            bytes,
        };
        (Arc::from(key), Arc::new(entry))
    }
}

fn timestamp(at: SystemTime) -> Timestamp {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_ms(ms)
}

/// Runs the follower on the async runtime; every new revision is one
/// [`Event::RulesChanged`] (the engine merges what queues up).
pub fn spawn(source: Arc<EtcdSource>, events: mpsc::Sender<Event>) {
    let options = source.options.clone();
    tokio::spawn(secgroup_etcd::follow(options, move |update| {
        let failed = matches!(update, Update::Unreachable { .. });
        if source.update(update) {
            if let Err(mpsc::error::TrySendError::Full(event)) =
                events.try_send(Event::RulesChanged)
            {
                let events = events.clone();
                tokio::spawn(async move { events.send(event).await });
            }
            source.synced.send_replace(true);
        } else if failed {
            source.synced.send_replace(true);
        }
    }));
}
