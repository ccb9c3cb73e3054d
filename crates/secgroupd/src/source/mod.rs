//! Where the rules come from: the rules directory (one host, the
//! default), etcd (a fleet), or etcd and a host-local directory merged.
//! Either way a load is the same: named documents (files, etcd values)
//! through the model's loader, all or nothing, for this host's view of
//! `"host"` (instances of other hosts only lend their addresses).

mod etcd;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use secgroup_api::{DegradedReason, SourceStatus};
use secgroup_model::{DecodeCache, HostView};
use secgroup_rulesdir::KeptFiles;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::rules::{self, LintInput, LoadFailure, Loaded};

pub use etcd::{Applied, EtcdSource};

/// The rules' source; cheap to clone (the etcd side is shared with its
/// follower task).
#[derive(Clone)]
pub struct Source {
    dir: Option<PathBuf>,
    host: Arc<str>,
    etcd: Option<Arc<EtcdSource>>,
    /// The rule files' bytes of the last load, reused while their
    /// metadata says they did not change (shared by the clones: a load
    /// through any of them is a read of the same directory).
    kept: Arc<Mutex<KeptFiles>>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Source {
    /// A rules directory alone.
    pub fn dir(dir: PathBuf, host: &str) -> Source {
        Source {
            dir: Some(dir),
            host: Arc::from(host),
            etcd: None,
            kept: Arc::default(),
        }
    }

    /// etcd, with host-local rule files from `dir` if given.
    pub fn etcd(
        options: secgroup_etcd::ConnectOptions,
        dir: Option<PathBuf>,
        host: &str,
    ) -> Source {
        Source {
            dir,
            host: Arc::from(host),
            etcd: Some(Arc::new(EtcdSource::new(options))),
            kept: Arc::default(),
        }
    }

    /// The directory to watch, if any.
    pub fn rules_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// One line for logs and the status's `rules_dir`.
    pub fn describe(&self) -> String {
        match (&self.etcd, &self.dir) {
            (None, Some(dir)) => dir.display().to_string(),
            (Some(etcd), None) => etcd.describe(),
            (Some(etcd), Some(dir)) => format!("{} + {}", etcd.describe(), dir.display()),
            (None, None) => String::new(),
        }
    }

    /// Starts following etcd (nothing for a directory): each new
    /// revision sends [`Event::RulesChanged`].
    pub fn spawn(&self, events: mpsc::Sender<Event>) {
        if let Some(etcd) = &self.etcd {
            etcd::spawn(etcd.clone(), events);
        }
    }

    /// Waits until etcd's first snapshot is in, or etcd failed once (then
    /// the first reload fails and the pinned policy stays).
    pub async fn first_sync(&self) {
        if let Some(etcd) = &self.etcd {
            etcd.first_sync().await;
        }
    }

    /// Reads, validates and compiles everything, or says why not;
    /// `previous` (this daemon's last load) is compiled from
    /// incrementally (see [`rules::load_view`]).
    pub fn load(
        &self,
        known: &[PathBuf],
        cache: &mut DecodeCache,
        previous: Option<&Loaded>,
    ) -> Result<(Loaded, LintInput), LoadFailure> {
        let view = HostView::Host(&self.host);
        // A load that panicked left the kept files as valid as before:
        // each entry is replaced whole.
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let caches = (&mut *kept, cache);
        let Some(etcd) = &self.etcd else {
            let dir = self.dir.as_deref();
            let what = format!(
                "the rule files of {}",
                dir.map(|d| d.display().to_string()).unwrap_or_default()
            );
            let extra = secgroup_rulesdir::Extra::default();
            let view = (view, rules::Lists::All);
            return rules::load_view(dir, &extra, view, &what, known, caches, previous);
        };
        let entries = etcd.current()?;
        let extra = entries.documents();
        let mut what = format!("etcd revision {} of {}", entries.revision, etcd.describe());
        if let Some(dir) = &self.dir {
            what.push_str(&format!(" and the rule files of {}", dir.display()));
        }
        let view = (view, rules::Lists::BoundHere);
        let result = rules::load_view(
            self.dir.as_deref(),
            &extra,
            view,
            &what,
            known,
            caches,
            previous,
        );
        etcd.loaded(&entries, result.is_ok());
        result
    }

    /// The last load is in force now: the etcd revision it was, if any.
    pub fn applied(&self) -> Option<Applied> {
        self.etcd.as_ref().and_then(|e| e.applied())
    }

    /// `in_force`: the etcd revision of the snapshot in force.
    pub fn status(&self, in_force: Option<Applied>) -> SourceStatus {
        SourceStatus {
            kind: match (&self.etcd, &self.dir) {
                (Some(_), Some(_)) => "etcd+dir",
                (Some(_), None) => "etcd",
                (None, _) => "dir",
            }
            .to_owned(),
            host: self.host.to_string(),
            rules_dir: self.dir.as_ref().map(|d| d.display().to_string()),
            etcd: self.etcd.as_ref().map(|e| e.status(in_force)),
        }
    }

    /// `etcd-unreachable` while it is.
    pub fn degraded(&self, in_force: Option<Applied>) -> Option<DegradedReason> {
        self.etcd.as_ref().and_then(|e| e.degraded(in_force))
    }
}

/// This machine's host name, for `--host-name`'s default.
pub fn system_host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name.to_owned()
    }
}

/// `--host-name`'s check: what the model accepts in `"host"`.
pub fn parse_host_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a host name: 1-253 letters, digits, '-', '_' or '.'"
        ))
    }
}
