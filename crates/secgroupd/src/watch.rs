//! Watches the rules directory and sends [`Event::RulesChanged`] once a
//! burst of changes has settled.
//!
//! Editors and controllers write in bursts: create a temp file, write,
//! close, rename it over the old one. Reloading on the first event would
//! read a half-written file, so events are collected until the burst is
//! over, then one reload runs. How long "over" takes depends on the last
//! event: after one that finishes a write (a rename into place, a close
//! after writing, a removal) only [`SETTLED_QUIET`] without another; after
//! one that says a write is under way (a file created, data written)
//! [`DEBOUNCE`]. A rename is in force a few milliseconds later, and a
//! slow writer is still waited for. Events on dotfiles and
//! editor leftovers are ignored (the rules loader ignores those files too),
//! except Kubernetes' `..data` symlink swap, which is how a mounted
//! ConfigMap changes all its files at once.
//!
//! The directory itself may not exist yet, or may be removed and
//! recreated: then the watcher checks every second and reloads once it is
//! back (the reload of a missing directory fails and the policy in force
//! stays).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::event::Event;

/// Quiet time that ends a burst while a write may be under way.
pub const DEBOUNCE: Duration = Duration::from_millis(30);
/// Quiet time that ends a burst whose last event finished a write: long
/// enough for the next file of a controller writing several in a row.
pub const SETTLED_QUIET: Duration = Duration::from_millis(3);
/// A burst that never settles still reloads this often.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// How often a missing directory is looked for.
const RETRY: Duration = Duration::from_secs(1);

/// What an event means for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relevance {
    Ignore,
    /// A rule file may have changed.
    Rules,
    /// The directory itself was removed or moved: watch it anew.
    DirGone,
}

pub fn classify(dir: &Path, event: &notify::Result<notify::Event>) -> Relevance {
    let event = match event {
        Ok(event) => event,
        // An error from the watcher (e.g. inotify queue overflow): events
        // may be lost, so reload to be safe.
        Err(_) => return Relevance::Rules,
    };
    if event.need_rescan() {
        return Relevance::Rules;
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return Relevance::Ignore,
        _ => {}
    }
    let dir_event = event.paths.iter().any(|p| p == dir);
    if dir_event
        && matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
        )
    {
        return Relevance::DirGone;
    }
    let rule_file = event.paths.iter().any(|p| {
        p.parent() == Some(dir)
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| secgroup_rulesdir::is_rule_file_name(n) || n == "..data")
    });
    if rule_file {
        Relevance::Rules
    } else {
        Relevance::Ignore
    }
}

/// Starts the watcher task.
pub fn spawn(dir: PathBuf, events: mpsc::Sender<Event>) {
    tokio::spawn(run(dir, events));
}

async fn run(dir: PathBuf, events: mpsc::Sender<Event>) {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
    let mut missing_reported = false;
    let mut first = true;
    loop {
        let tx = raw_tx.clone();
        let watcher = RecommendedWatcher::new(
            move |event| {
                // The receiver lives as long as the task; a send can only
                // fail while the process exits.
                let _ = tx.send(event);
            },
            notify::Config::default(),
        )
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
        let _watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                if !missing_reported {
                    warn!(dir = %dir.display(), error = %e, "cannot watch the rules directory; looking again every second");
                    missing_reported = true;
                }
                first = false;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if !first {
            // The directory (re)appeared: its contents are new to us.
            info!(dir = %dir.display(), "watching the rules directory again");
            if events.send(Event::RulesChanged).await.is_err() {
                return;
            }
        }
        first = false;
        missing_reported = false;
        // Events of the previous watch are about a directory that is gone.
        while raw_rx.try_recv().is_ok() {}
        loop {
            let Some(event) = raw_rx.recv().await else {
                return;
            };
            match classify(&dir, &event) {
                Relevance::Ignore => continue,
                Relevance::DirGone => {
                    warn!(dir = %dir.display(), "the rules directory was removed or moved");
                    if events.send(Event::RulesChanged).await.is_err() {
                        return;
                    }
                    break;
                }
                Relevance::Rules => {}
            }
            debug!(?event, "rules directory changed");
            let dir_gone = settle(&dir, &mut raw_rx, finishes_write(&event)).await;
            if events.send(Event::RulesChanged).await.is_err() {
                return;
            }
            if dir_gone {
                break;
            }
        }
    }
}

/// Whether a relevant event finishes a write (the file is whole now)
/// rather than says one is under way.
pub fn finishes_write(event: &notify::Result<notify::Event>) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    match event {
        Ok(event) => matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                | EventKind::Remove(_)
        ),
        Err(_) => false,
    }
}

/// Swallows the rest of a burst. `finished`: whether the event that
/// started it finished a write. Returns whether the directory went away
/// meanwhile.
async fn settle(
    dir: &Path,
    raw_rx: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut finished: bool,
) -> bool {
    let give_up = Instant::now() + MAX_DELAY;
    loop {
        let quiet = if finished { SETTLED_QUIET } else { DEBOUNCE };
        let wait = quiet.min(give_up.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, raw_rx.recv()).await {
            Err(_) | Ok(None) => return false,
            Ok(Some(event)) => match classify(dir, &event) {
                Relevance::DirGone => return true,
                Relevance::Rules | Relevance::Ignore if Instant::now() >= give_up => return false,
                // Only rule files say where their write stands; a temp
                // file's events keep the burst going as it was.
                Relevance::Rules => finished = finishes_write(&event),
                Relevance::Ignore => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};

    fn event(kind: EventKind, paths: &[&str]) -> notify::Result<notify::Event> {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        Ok(e)
    }

    #[test]
    fn relevance() {
        let dir = Path::new("/etc/secgroup/rules.d");
        let cases = [
            (
                event(
                    EventKind::Create(CreateKind::File),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Rules,
            ),
            (
                event(
                    EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Rules,
            ),
            (
                event(
                    EventKind::Access(AccessKind::Close(AccessMode::Write)),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Rules,
            ),
            (
                event(
                    EventKind::Access(AccessKind::Open(AccessMode::Any)),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Ignore,
            ),
            (
                event(
                    EventKind::Access(AccessKind::Close(AccessMode::Read)),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Ignore,
            ),
            (
                event(
                    EventKind::Remove(RemoveKind::File),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Rules,
            ),
            // Editor temp files, swap files, backups, non-JSON files.
            (
                event(
                    EventKind::Create(CreateKind::File),
                    &["/etc/secgroup/rules.d/.web.json.swp"],
                ),
                Relevance::Ignore,
            ),
            (
                event(
                    EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                    &["/etc/secgroup/rules.d/web.json~"],
                ),
                Relevance::Ignore,
            ),
            (
                event(
                    EventKind::Create(CreateKind::File),
                    &["/etc/secgroup/rules.d/.#web.json"],
                ),
                Relevance::Ignore,
            ),
            (
                event(
                    EventKind::Create(CreateKind::File),
                    &["/etc/secgroup/rules.d/README.md"],
                ),
                Relevance::Ignore,
            ),
            // Atomic save: a temp file renamed over the real one.
            (
                event(
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                    &[
                        "/etc/secgroup/rules.d/.web.json.tmp",
                        "/etc/secgroup/rules.d/web.json",
                    ],
                ),
                Relevance::Rules,
            ),
            (
                event(
                    EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                    &["/etc/secgroup/rules.d/web.json"],
                ),
                Relevance::Rules,
            ),
            // Kubernetes ConfigMap update.
            (
                event(
                    EventKind::Create(CreateKind::Any),
                    &["/etc/secgroup/rules.d/..data"],
                ),
                Relevance::Rules,
            ),
            (
                event(
                    EventKind::Create(CreateKind::Any),
                    &["/etc/secgroup/rules.d/..data_tmp"],
                ),
                Relevance::Ignore,
            ),
            // The directory itself.
            (
                event(
                    EventKind::Remove(RemoveKind::Folder),
                    &["/etc/secgroup/rules.d"],
                ),
                Relevance::DirGone,
            ),
            (
                event(
                    EventKind::Modify(ModifyKind::Name(RenameMode::Any)),
                    &["/etc/secgroup/rules.d"],
                ),
                Relevance::DirGone,
            ),
            // A file in a subdirectory is not a rule file.
            (
                event(
                    EventKind::Create(CreateKind::File),
                    &["/etc/secgroup/rules.d/old/web.json"],
                ),
                Relevance::Ignore,
            ),
            (
                Err(notify::Error::generic("queue overflow")),
                Relevance::Rules,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(classify(dir, &event), expected, "{event:?}");
        }
    }

    #[test]
    fn renames_closes_and_removals_finish_a_write() {
        let path = &["/etc/secgroup/rules.d/web.json"];
        for (kind, finished) in [
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), true),
            (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), true),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                true,
            ),
            (EventKind::Remove(RemoveKind::File), true),
            (EventKind::Create(CreateKind::File), false),
            (EventKind::Modify(ModifyKind::Data(DataChange::Any)), false),
            (EventKind::Modify(ModifyKind::Name(RenameMode::From)), false),
        ] {
            assert_eq!(finishes_write(&event(kind, path)), finished, "{kind:?}");
        }
        assert!(!finishes_write(&Err(notify::Error::generic("overflow"))));
    }
}
