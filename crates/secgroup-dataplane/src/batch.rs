//! Many map entries in one `bpf(2)` call: `BPF_MAP_UPDATE_BATCH` and
//! `BPF_MAP_DELETE_BATCH`, which aya 0.14 does not offer.
//!
//! A table is a few hundred entries in five maps; a change to a group
//! every VM is bound to rebuilds one table per VM. One syscall per entry
//! made the syscall overhead, not the kernel's work, most of a reload.
//! The kernel still inserts entry by entry (the generic batch
//! implementation of hash maps and LPM tries), so the result is the same
//! as a loop of single updates: same order, same errors.
//!
//! Kernels or map types without batch support (EINVAL / ENOTSUPP from
//! the first call) get one `BPF_MAP_*_ELEM` per entry instead, so nothing
//! depends on it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use aya::Pod;
use aya::maps::{IterableMap, MapError};

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// The kernel's internal "not supported" (not in libc).
const ENOTSUPP: i32 = 524;
/// Entries per call: bounds the kernel's time in one syscall (it copies
/// the keys and values of a call in before inserting them).
const CHUNK: usize = 4096;

/// Cleared once a kernel refuses batch calls: no point asking again.
static BATCH_SUPPORTED: AtomicBool = AtomicBool::new(true);

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM`.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

fn sys_bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<()> {
    crate::sys::bpf(cmd, attr).map(|_| ())
}

/// Whether a first batch call failed because batches are not offered
/// (the kernel then fails before touching any entry). EINVAL may also be
/// a bad entry: the entry-by-entry fallback finds out which.
fn unsupported(e: &io::Error) -> bool {
    let refused = matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | ENOTSUPP));
    if refused {
        BATCH_SUPPORTED.store(false, Ordering::Relaxed);
    }
    refused || e.raw_os_error() == Some(libc::EINVAL)
}

fn map_error(call: &'static str, io_error: io::Error) -> MapError {
    MapError::SyscallError(aya::sys::SyscallError { call, io_error })
}

fn fd_of<M: IterableMap<K, V>, K: Pod, V>(map: &M) -> BorrowedFd<'_> {
    map.map().fd().as_fd()
}

/// Inserts or replaces every `(key, value)` of `entries` (`BPF_ANY`), in
/// order; stops at the first failure.
pub(crate) fn update<M, K, V>(map: &M, entries: &[(K, V)]) -> Result<(), MapError>
where
    M: IterableMap<K, V>,
    K: Pod,
    V: Pod,
{
    if entries.is_empty() {
        return Ok(());
    }
    let fd = fd_of(map);
    let (keys, values): (Vec<K>, Vec<V>) = entries.iter().copied().unzip();
    if BATCH_SUPPORTED.load(Ordering::Relaxed) {
        let mut done = 0;
        while done < keys.len() {
            let end = (done + CHUNK).min(keys.len());
            let mut attr = BatchAttr {
                keys: keys[done..end].as_ptr() as u64,
                values: values[done..end].as_ptr() as u64,
                count: (end - done) as u32,
                map_fd: fd.as_raw_fd() as u32,
                ..BatchAttr::default()
            };
            match sys_bpf(BPF_MAP_UPDATE_BATCH, &mut attr) {
                Ok(()) => done = end,
                Err(e) if done == 0 && unsupported(&e) => break,
                Err(e) => return Err(map_error("bpf_map_update_batch", e)),
            }
        }
        if done == keys.len() {
            return Ok(());
        }
    }
    for (key, value) in keys.iter().zip(&values) {
        let mut attr = ElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            key: std::ptr::from_ref(key) as u64,
            value: std::ptr::from_ref(value) as u64,
            ..ElemAttr::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map_err(|e| map_error("bpf_map_update_elem", e))?;
    }
    Ok(())
}

/// Deletes every key of `keys` that exists; missing ones are skipped.
/// Returns how many were deleted.
pub(crate) fn delete<M, K, V>(map: &M, keys: &[K]) -> Result<usize, MapError>
where
    M: IterableMap<K, V>,
    K: Pod,
{
    let fd = fd_of(map);
    let mut deleted = 0;
    let mut rest = keys;
    if BATCH_SUPPORTED.load(Ordering::Relaxed) {
        while !rest.is_empty() {
            let n = rest.len().min(CHUNK);
            let mut attr = BatchAttr {
                keys: rest.as_ptr() as u64,
                count: n as u32,
                map_fd: fd.as_raw_fd() as u32,
                ..BatchAttr::default()
            };
            match sys_bpf(BPF_MAP_DELETE_BATCH, &mut attr) {
                Ok(()) => {
                    deleted += n;
                    rest = &rest[n..];
                }
                // The kernel stops at a missing key: `count` were deleted
                // before it; skip it and go on.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let done = (attr.count as usize).min(n);
                    deleted += done;
                    rest = &rest[(done + 1).min(rest.len())..];
                }
                Err(e) if deleted == 0 && unsupported(&e) => break,
                Err(e) => return Err(map_error("bpf_map_delete_batch", e)),
            }
        }
        if rest.is_empty() {
            return Ok(deleted);
        }
    }
    for key in rest {
        let mut attr = ElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            key: std::ptr::from_ref(key) as u64,
            ..ElemAttr::default()
        };
        match sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(()) => deleted += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(map_error("bpf_map_delete_elem", e)),
        }
    }
    Ok(deleted)
}

/// One `BPF_MAP_UPDATE_ELEM` through a bare descriptor: for a thread that
/// holds a duplicate of a map's descriptor and not the map (the grace
/// period barrier of `dataplane/reap.rs`).
pub(crate) fn update_fd<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K, value: &V) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: std::ptr::from_ref(key) as u64,
        value: std::ptr::from_ref(value) as u64,
        ..ElemAttr::default()
    };
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
}
