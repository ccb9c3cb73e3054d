//! Acting inside another network namespace.
//!
//! Interface names and ifindexes resolve in the calling thread's network
//! namespace. `setns` changes the namespace of one thread only, so the work
//! runs on a dedicated short-lived thread: never on a tokio worker or any
//! thread that goes back to a pool.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::DataplaneError;

/// Where `ip netns add NAME` puts its namespaces.
pub fn named(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Runs `work` on a fresh thread that has entered the network namespace at
/// `netns` (e.g. `/run/netns/NAME` or `/proc/PID/ns/net`), and returns its
/// result.
pub fn run_in<T: Send>(netns: &Path, work: impl FnOnce() -> T + Send) -> Result<T, DataplaneError> {
    let netns_err = |source| DataplaneError::Netns {
        path: netns.to_owned(),
        source,
    };
    let file = File::open(netns).map_err(netns_err)?;
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || -> io::Result<T> {
            // SAFETY: a valid fd; CLONE_NEWNET only affects this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(work())
        });
        match worker.join() {
            Ok(result) => result.map_err(netns_err),
            Err(_) => Err(DataplaneError::NetnsThread {
                path: netns.to_owned(),
            }),
        }
    })
}

/// Whether a failed name/index lookup means "no such interface". Only
/// ENODEV and ENXIO do; anything else (EMFILE, ENOBUFS, EINTR...) says
/// nothing about the interface and must never be taken for its absence.
fn lookup_error(what: String, err: io::Error) -> DataplaneError {
    match err.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO) => DataplaneError::UnknownInterface { name: what },
        _ => DataplaneError::InterfaceLookup {
            name: what,
            source: err,
        },
    }
}

/// The ifindex of `name` in the calling thread's namespace.
/// [`DataplaneError::UnknownInterface`] only when the kernel says there is
/// no such interface.
pub fn ifindex(name: &str) -> Result<u32, DataplaneError> {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return Err(DataplaneError::UnknownInterface {
            name: name.to_owned(),
        });
    };
    // SAFETY: c_name is NUL-terminated.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(lookup_error(name.to_owned(), io::Error::last_os_error()))
    } else {
        Ok(index)
    }
}

/// The name of interface `ifindex` in the calling thread's namespace.
/// [`DataplaneError::UnknownInterface`] only when the kernel says there is
/// no such interface.
pub fn ifname(ifindex: u32) -> Result<String, DataplaneError> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: buf has the IF_NAMESIZE bytes if_indextoname may write.
    let name = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if name.is_null() {
        return Err(lookup_error(
            format!("#{ifindex}"),
            io::Error::last_os_error(),
        ));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}
