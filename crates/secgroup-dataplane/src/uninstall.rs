//! Removing everything secgroup pinned: what `secgroupd --uninstall` and
//! test cleanup do.

use std::path::Path;

use crate::dataplane::load::io_err;
use crate::error::DataplaneError;
use crate::pins::PinLock;

/// Detaches everything secgroup pinned under `pin_dir` and removes the
/// pins: links first (each detached before it is unpinned, so no hook is
/// left when this returns), then the maps (freed once no program holds
/// them). For `secgroupd --uninstall` and test
/// cleanup. Missing pins are fine.
///
/// Refused while another process owns the directory (holds its lock):
/// pulling the pins from under a running daemon would leave it enforcing
/// nothing while it reports a policy.
pub fn uninstall(pin_dir: &Path) -> Result<(), DataplaneError> {
    if !pin_dir.exists() {
        return Ok(());
    }
    let _lock = PinLock::acquire(pin_dir)?;
    let links = pin_dir.join("links");
    if let Ok(entries) = std::fs::read_dir(&links) {
        for entry in entries.flatten() {
            // Detached, not only unpinned: an unpinned link detaches once
            // the kernel frees its inode, after a grace period, and a new
            // daemon attaching right after would find the old XDP program
            // still there (EEXIST).
            let path = entry.path();
            crate::dataplane::remove_pins(&[&path]);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &path)(e)),
            }
        }
    }
    match std::fs::remove_dir(&links) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &links)(e)),
    }
    for name in crate::maps::PINNED {
        let path = pin_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &path)(e)),
        }
    }
    match std::fs::remove_dir(pin_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", pin_dir)(e)),
    }
}
