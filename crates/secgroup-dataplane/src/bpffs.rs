//! bpffs: where everything that must outlive the daemon is pinned.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::DataplaneError;

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

pub(crate) fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid out-pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DataplaneError {
    let path = path.to_owned();
    move |source| DataplaneError::Io {
        action,
        path,
        source,
    }
}

/// Whether this process is known to share the host's mount namespace
/// (that of pid 1). `None` when pid 1's namespace cannot be read (a
/// sandbox or container may hide it).
fn in_host_mount_namespace() -> Option<bool> {
    let own = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    let init = std::fs::read_link("/proc/1/ns/mnt").ok()?;
    Some(own == init)
}

/// Whether the bpffs holding `dir` is provably not the host's: pid 1 sees
/// a bpffs at /sys/fs/bpf on another device.
fn is_other_than_hosts(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let host = Path::new("/proc/1/root/sys/fs/bpf");
    let (Ok(host_meta), Ok(own_meta)) = (std::fs::metadata(host), std::fs::metadata(dir)) else {
        return false;
    };
    is_bpffs(host).unwrap_or(false) && host_meta.dev() != own_meta.dev()
}

/// Makes sure `dir` exists on a bpffs whose pins outlive this process,
/// mounting one at `/sys/fs/bpf` when the host has none (minimal hosts and
/// containers often do not).
///
/// A bpffs mounted in a private mount namespace dies with the last process
/// in it, and every pinned hook with it: `ip netns exec` does exactly that
/// (it remounts /sys, hiding the host's bpffs). Mounting one is allowed
/// only where this process provably shares pid 1's mount namespace; a pin
/// directory on a bpffs that is provably not the host's is refused too.
/// `allow_private` turns both refusals into the caller's responsibility
/// (it should warn loudly); the returned flag says the pins are private.
pub(crate) fn ensure_pin_dir(dir: &Path, allow_private: bool) -> Result<bool, DataplaneError> {
    let root = Path::new("/sys/fs/bpf");
    let mut private = false;
    if dir.starts_with(root) && !is_bpffs(root).map_err(io_err("checking", root))? {
        if in_host_mount_namespace() != Some(true) {
            if !allow_private {
                return Err(DataplaneError::PrivateBpffs {
                    dir: dir.to_owned(),
                });
            }
            private = true;
        }
        mount_bpffs(root)?;
    }
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    if !is_bpffs(dir).map_err(io_err("checking", dir))? {
        return Err(io_err("pin directory is not on a bpffs:", dir)(
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    if is_other_than_hosts(dir) {
        if !allow_private {
            return Err(DataplaneError::PrivateBpffs {
                dir: dir.to_owned(),
            });
        }
        private = true;
    }
    Ok(private)
}

fn mount_bpffs(root: &Path) -> Result<(), DataplaneError> {
    let source =
        CString::new("bpf").map_err(|e| io_err("mounting bpffs at", root)(io::Error::other(e)))?;
    let target = CString::new("/sys/fs/bpf")
        .map_err(|e| io_err("mounting bpffs at", root)(io::Error::other(e)))?;
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io_err("mounting bpffs at", root)(io::Error::last_os_error()));
    }
    Ok(())
}
