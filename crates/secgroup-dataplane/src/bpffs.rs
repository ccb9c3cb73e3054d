//! bpffs: where everything that must outlive the daemon is pinned.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::DataplaneError;

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid out-pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

/// Makes sure `dir` exists on a bpffs, mounting one at `/sys/fs/bpf` when the
/// machine has none (minimal hosts and containers often do not).
pub(crate) fn ensure_pin_dir(dir: &Path) -> Result<(), DataplaneError> {
    let io_err = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| DataplaneError::Io {
            action,
            path,
            source,
        }
    };
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root).map_err(io_err("checking", root))? {
        let source = CString::new("bpf")
            .map_err(|e| io_err("mounting bpffs at", root)(io::Error::other(e)))?;
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
    }
    std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    if !is_bpffs(dir).map_err(io_err("checking", dir))? {
        return Err(io_err("pin directory is not on a bpffs:", dir)(
            io::Error::from(io::ErrorKind::InvalidInput),
        ));
    }
    Ok(())
}
