//! The API socket file: created `0660` from the start (no window in which
//! anyone may connect), given to the admin group, and never stolen from a
//! daemon that is still answering on it.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

/// The socket's mode: owner and group read/write, nobody else.
pub const SOCKET_MODE: u32 = 0o660;

/// Binds the API socket at `path`, replacing a stale socket file left by a
/// crash, refusing to replace one a live daemon answers on or anything
/// that is not a socket.
pub fn bind(path: &Path, admin_gid: Option<u32>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!(
                    "another secgroupd answers on {}; stop it first",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    // The umask decides the mode bind() gives the file; set it for this one
    // call so the socket never exists with wider permissions. Nothing else
    // creates files while the daemon starts.
    // SAFETY: umask cannot fail.
    let previous = unsafe { libc::umask(0o117) };
    let listener = tokio::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
    let listener = listener.with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(gid) = admin_gid {
        std::os::unix::fs::chown(path, None, Some(gid)).with_context(|| {
            format!(
                "giving {} to group {}",
                path.display(),
                crate::auth::ADMIN_GROUP
            )
        })?;
    }
    Ok(listener)
}

/// Removes the socket file on a clean exit, so clients get "no such file"
/// rather than "connection refused".
pub fn remove(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}
