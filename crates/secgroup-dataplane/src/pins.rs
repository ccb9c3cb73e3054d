//! The pin directory as a whole: who owns it (an exclusive lock held for
//! the owner's life) and whether its pinned maps have the layout this
//! build expects (an ABI stamp in `sg_meta`, and every pinned map's key,
//! value and size compared with the object's definition before adoption).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData, MapInfo};

use crate::abi::{ABI_VERSION, Meta};
use crate::dataplane::Owner;
use crate::error::DataplaneError;
use crate::maps::{PINNED, names};

/// An exclusive `flock` on the pin directory itself (bpffs holds no
/// regular files, but any directory can be locked). Held as long as this
/// value lives; the kernel releases it when the process dies, whatever
/// the way.
#[derive(Debug)]
pub struct PinLock {
    _dir: File,
    path: PathBuf,
}

impl PinLock {
    /// Takes the lock or fails at once, naming the holder when the pins
    /// say who it is.
    pub fn acquire(dir: &Path) -> Result<PinLock, DataplaneError> {
        let file = File::open(dir).map_err(|source| DataplaneError::Io {
            action: "opening the pin directory",
            path: dir.to_owned(),
            source,
        })?;
        // SAFETY: flock on an fd we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(DataplaneError::PinDirLocked {
                    dir: dir.to_owned(),
                    holder: read_meta(dir).ok().flatten().and_then(|m| owner_of(&m)),
                });
            }
            return Err(DataplaneError::Io {
                action: "locking the pin directory",
                path: dir.to_owned(),
                source: err,
            });
        }
        Ok(PinLock {
            _dir: file,
            path: dir.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The owner recorded in `meta`, if any.
pub(crate) fn owner_of(meta: &Meta) -> Option<Owner> {
    (meta.owner_pid != 0).then(|| Owner {
        pid: meta.owner_pid,
        socket: meta.socket(),
        started_unix_ms: meta.owner_started_ms,
    })
}

/// `sg_meta` as pinned under `dir`; `None` when it is not pinned.
pub(crate) fn read_meta(dir: &Path) -> Result<Option<Meta>, DataplaneError> {
    let path = dir.join(names::META);
    if !path.exists() {
        return Ok(None);
    }
    let err = |source| DataplaneError::Map {
        name: names::META,
        source,
    };
    let data = MapData::from_pin(&path).map_err(err)?;
    let array: Array<MapData, Meta> = Map::from_map_data(data)
        .map_err(err)?
        .try_into()
        .map_err(err)?;
    array.get(&0, 0).map(Some).map_err(err)
}

/// Refuses pins this build would misread: pins without a layout stamp
/// (made by a secgroupd older than the stamp), a stamp of another version,
/// or a pinned map whose key size, value size or capacity differs from
/// the object's definition. Nothing pinned at all is fine (a first start).
pub(crate) fn check_compatible(dir: &Path, object: &[u8]) -> Result<(), DataplaneError> {
    let present: Vec<&'static str> = PINNED
        .iter()
        .copied()
        .filter(|name| dir.join(name).exists())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let incompatible = |found: String| DataplaneError::IncompatiblePins {
        dir: dir.to_owned(),
        found,
        expected: ABI_VERSION,
    };
    match read_meta(dir)? {
        None => {
            return Err(incompatible(format!(
                "maps pinned without a layout stamp ({} present, no {})",
                present.join(", "),
                names::META
            )));
        }
        Some(meta) if meta.abi_version != ABI_VERSION => {
            return Err(incompatible(format!("layout version {}", meta.abi_version)));
        }
        Some(_) => {}
    }
    let parsed = aya_obj::Object::parse(object).map_err(|e| DataplaneError::Object {
        message: e.to_string(),
    })?;
    for name in present {
        let Some(def) = parsed.maps.get(name) else {
            continue;
        };
        let info = MapInfo::from_pin(dir.join(name))
            .map_err(|source| DataplaneError::Map { name, source })?;
        let ours = (def.key_size(), def.value_size(), def.max_entries());
        let theirs = (info.key_size(), info.value_size(), info.max_entries());
        if ours != theirs {
            return Err(incompatible(format!(
                "map {name} pinned with key {} B, value {} B, {} entries; this build expects key {} B, \
                 value {} B, {} entries",
                theirs.0, theirs.1, theirs.2, ours.0, ours.1, ours.2
            )));
        }
    }
    Ok(())
}

/// A random token for `sg_meta.owner_token`: never 0.
pub(crate) fn random_token() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: buf is a valid 8-byte out-buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let mut token = u64::from_ne_bytes(buf);
    if n != 8 {
        // No entropy source: pid and time still differ between owners.
        token = u64::from(std::process::id()) << 32 ^ unix_ms();
    }
    token.max(1)
}

/// Wall-clock milliseconds since the epoch (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
