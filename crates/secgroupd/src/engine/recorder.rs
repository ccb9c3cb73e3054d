//! Writes the record of the applied rules (`applied.rs`) on a thread of
//! its own. Rendering and writing a thousand VMs' rules takes tens of
//! milliseconds, which sat between the kernel switching to a new policy
//! and the API reporting it. Records are written in order and only the
//! newest of those queued meanwhile is written (each replaces the
//! previous one anyway); the last one is written before the daemon exits.
//! A record lost to a crash is safe: the next daemon finds a generation
//! that is not the pins' and ignores the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::rules::Loaded;

/// What one record says.
pub struct Record {
    pub state_dir: PathBuf,
    pub pin_dir: PathBuf,
    pub generation: u64,
    pub loaded: Arc<Loaded>,
}

pub struct Recorder {
    queue: Option<mpsc::Sender<Record>>,
    writer: Option<JoinHandle<()>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        let (queue, records) = mpsc::channel::<Record>();
        let writer = std::thread::Builder::new()
            .name("secgroupd-record".into())
            .spawn(move || {
                // Behind the engine and the API on a busy host, as the lint.
                crate::rules::lower_priority();
                while let Ok(mut record) = records.recv() {
                    while let Ok(newer) = records.try_recv() {
                        record = newer;
                    }
                    super::applied::write_record(&record);
                }
            });
        match writer {
            Ok(writer) => Recorder {
                queue: Some(queue),
                writer: Some(writer),
            },
            // No thread: write on the caller's.
            Err(e) => {
                tracing::warn!(error = %e, "starting the record writer failed; records are written inline");
                Recorder {
                    queue: None,
                    writer: None,
                }
            }
        }
    }

    pub fn record(&self, record: Record) {
        match &self.queue {
            Some(queue) => {
                if let Err(mpsc::SendError(record)) = queue.send(record) {
                    super::applied::write_record(&record);
                }
            }
            None => super::applied::write_record(&record),
        }
    }
}

impl Drop for Recorder {
    /// Writes what is queued before returning.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
