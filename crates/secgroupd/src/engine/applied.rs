//! The rules last applied, kept in the state directory so that a restarted
//! daemon can say what changed while no daemon ran (and which tracked
//! flows that cuts), instead of comparing with nothing.
//!
//! The file describes the pins it was written for: it names their
//! directory and the generation they were at. A file whose generation is
//! not the one the pins carry describes some other state and is ignored
//! (with a warning), never trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secgroup_model::{Limits, SourceFile};
use tracing::{info, warn};

use super::Engine;
use super::recorder::Record;
use crate::rules::Loaded;

const FORMAT: &str = "secgroupd-applied-1";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("applied.json")
}

/// Records `loaded` as what the pins now enforce, on the recorder's
/// thread (`recorder.rs`).
pub fn write(daemon: &Engine, loaded: &Arc<Loaded>) {
    daemon.recorder.record(Record {
        state_dir: daemon.settings.state_dir.clone(),
        pin_dir: daemon.settings.pin_dir.clone(),
        generation: daemon.now.generation,
        loaded: Arc::clone(loaded),
    });
}

/// Writes one record (temp file + rename: a crash leaves the old file or
/// the new one).
pub fn write_record(record: &Record) {
    let dir = &record.state_dir;
    let text = serde_json::json!({
        "format": FORMAT,
        "pin_dir": record.pin_dir.display().to_string(),
        "generation": record.generation,
        "rules": secgroup_model::render::rule_file(&record.loaded.rules),
    })
    .to_string();
    let target = path(dir);
    let temp = dir.join(format!(".applied.json.{}.tmp", std::process::id()));
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temp, text))
        .and_then(|()| std::fs::rename(&temp, &target));
    if let Err(e) = result {
        warn!(
            file = %target.display(),
            error = %e,
            "recording the applied rules failed: a restart will not be able to say what changed"
        );
    }
}

/// The rules the previous daemon applied to these pins, read on a thread
/// of its own from the engine's creation on: reading and validating the
/// record (a thousand VMs: about 0.2 s) then overlaps the first load of
/// the rules directory, which a restart waits for too.
pub struct Previous(State);

enum State {
    Reading(std::thread::JoinHandle<Option<Arc<Loaded>>>),
    Read(Option<Arc<Loaded>>),
}

impl Previous {
    /// Starts reading the record for pins at `generation`.
    pub fn start(state_dir: PathBuf, pin_dir: PathBuf, generation: u64) -> Previous {
        let spawned = std::thread::Builder::new()
            .name("applied-read".into())
            .spawn({
                let (state_dir, pin_dir) = (state_dir.clone(), pin_dir.clone());
                move || read(&state_dir, &pin_dir, generation)
            });
        Previous(match spawned {
            Ok(handle) => State::Reading(handle),
            // No thread: read it here.
            Err(_) => State::Read(read(&state_dir, &pin_dir, generation)),
        })
    }

    /// The record, waiting for its reading if it is not done; `None` if
    /// there is none for these pins, or after [`forget`](Self::forget).
    pub fn get(&mut self) -> Option<&Arc<Loaded>> {
        if let State::Reading(_) = self.0
            && let State::Reading(handle) = std::mem::replace(&mut self.0, State::Read(None))
        {
            // A panic while reading is a record we cannot use.
            self.0 = State::Read(handle.join().unwrap_or(None));
        }
        match &self.0 {
            State::Read(loaded) => loaded.as_ref(),
            State::Reading(_) => None,
        }
    }

    /// This daemon applied its own rules: the record is of no more use (a
    /// reading still under way finishes on its own and is dropped).
    pub fn forget(&mut self) {
        self.0 = State::Read(None);
    }
}

/// The rules the previous daemon applied to these pins, if the state
/// directory holds them for exactly the state the pins are in (their
/// `generation`).
fn read(state_dir: &Path, pin_dir: &Path, generation: u64) -> Option<Arc<Loaded>> {
    let file = path(state_dir);
    let text = std::fs::read(&file).ok()?;
    let ignore = |why: &str| {
        warn!(file = %file.display(), "ignoring the recorded rules: {why}");
        None
    };
    let value: serde_json::Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => return ignore(&format!("unreadable: {e}")),
    };
    if value["format"] != FORMAT {
        return ignore("unknown format");
    }
    if value["pin_dir"] != pin_dir.display().to_string() {
        return ignore("written for another pin directory");
    }
    if value["generation"].as_u64() != Some(generation) {
        return ignore(&format!(
            "written at generation {}, the pins are at {generation}",
            value["generation"]
        ));
    }
    let rules_text = value["rules"].as_str()?;
    let name = file.display().to_string();
    let rules = match secgroup_model::load(
        &[SourceFile {
            name: &name,
            bytes: rules_text.as_bytes(),
        }],
        &Limits::default(),
    ) {
        Ok(rules) => rules,
        Err(e) => return ignore(&format!("does not validate: {e}")),
    };
    let policy = secgroup_policy::compile(&rules);
    info!(generation, "found the rules the previous secgroupd applied");
    Some(Arc::new(Loaded {
        rules,
        policy,
        files: Vec::new(),
        timings: crate::rules::LoadTimings::default(),
        warnings: crate::rules::Warnings::default(),
    }))
}
