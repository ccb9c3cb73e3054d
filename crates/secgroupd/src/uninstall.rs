//! `secgroupd --uninstall`: removes every pin, which detaches every hook
//! (a pinned link's last reference is its pin) and frees every map, then
//! the pin directory itself. Nothing is loaded, so it works even when the
//! eBPF object would not.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, bail};
use tracing::info;

pub fn run(pin_dir: &Path, socket: &Path) -> anyhow::Result<()> {
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!(
            "secgroupd is running (it answers on {}); stop it before uninstalling",
            socket.display()
        );
    }
    if !pin_dir.exists() {
        info!(pin_dir = %pin_dir.display(), "nothing pinned: nothing to uninstall");
        return Ok(());
    }
    if !is_bpffs(pin_dir) {
        bail!(
            "{} is not on a bpffs; refusing to delete it",
            pin_dir.display()
        );
    }
    let links = std::fs::read_dir(pin_dir.join("links")).map_or(0, |entries| entries.count());
    secgroup_dataplane::uninstall(pin_dir).map_err(|e| {
        anyhow::anyhow!("removing the pins: {}", secgroup_dataplane::error_chain(&e))
    })?;
    // Anything else a future version left there.
    std::fs::remove_dir_all(pin_dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
        .with_context(|| format!("removing {}", pin_dir.display()))?;
    info!(
        pin_dir = %pin_dir.display(),
        links,
        "uninstalled: every hook detached, every pin removed"
    );
    Ok(())
}

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated, stat is valid for writes.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between libcs
    let magic = stat.f_type as i64;
    rc == 0 && magic == BPF_FS_MAGIC
}
