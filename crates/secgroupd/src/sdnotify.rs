//! The systemd readiness protocol (sd_notify(3)) without libsystemd: one
//! datagram of `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`, a
//! path or, with a leading `@`, a name in the abstract namespace.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1\nSTATUS=...`) to `$NOTIFY_SOCKET`. Returns
/// whether there was anyone to tell: not running under systemd is fine.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) if !socket.is_empty() => notify_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` to the notification socket `socket`.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::path::Path::new(socket))?,
    };
    let sender = UnixDatagram::unbound()?;
    let sent = sender.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::other("short write to the notification socket"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(receiver: &UnixDatagram) -> String {
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("timeout: {e}"));
        let mut buf = [0u8; 256];
        let n = receiver
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("receiving: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn path_socket() {
        let dir = std::env::temp_dir().join(format!("sdnotify-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("bind: {e}"));
        notify_to(path.as_os_str(), "READY=1").unwrap_or_else(|e| panic!("notify: {e}"));
        assert_eq!(receive(&receiver), "READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_socket() {
        let name = format!("secgroupd-sdnotify-test-{}", std::process::id());
        let addr =
            SocketAddr::from_abstract_name(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let receiver = UnixDatagram::bind_addr(&addr).unwrap_or_else(|e| panic!("bind: {e}"));
        notify_to(OsStr::new(&format!("@{name}")), "READY=1\nSTATUS=ok")
            .unwrap_or_else(|e| panic!("notify: {e}"));
        assert_eq!(receive(&receiver), "READY=1\nSTATUS=ok");
    }

    #[test]
    fn nobody_listening() {
        let err = notify_to(OsStr::new("/nonexistent/notify"), "READY=1");
        assert!(err.is_err(), "sending to a missing socket must fail");
    }
}
