//! Interface names and indexes in the daemon's network namespace.

use secgroup_dataplane::DataplaneError;

/// The name of interface `ifindex`, `None` if there is no such interface.
pub fn name_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has the IF_NAMESIZE bytes if_indextoname may write.
    let name = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Lookups of many interfaces through one socket: `if_nametoindex` and
/// `if_indextoname` open and close a socket per call, and a reload looks
/// every bound interface up twice (a thousand VMs: six thousand syscalls,
/// now two thousand). In the calling thread's namespace, as those are.
/// Only ENODEV and ENXIO mean "no such interface"; any other failure,
/// opening the socket included (EMFILE), is an error that says nothing.
pub struct Lookups {
    socket: Result<std::os::fd::OwnedFd, std::io::Error>,
}

impl Lookups {
    pub fn new() -> Lookups {
        // SAFETY: plain syscall; the fd is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        let socket = if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: a fresh fd nobody else owns.
            Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        };
        Lookups { socket }
    }

    /// The ifindex of `name`.
    pub fn index(&self, name: &str) -> Result<u32, DataplaneError> {
        let bytes = name.as_bytes();
        if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            // No interface can have this name (as `if_nametoindex` says).
            return Err(DataplaneError::UnknownInterface {
                name: name.to_owned(),
            });
        }
        // SAFETY: ifreq is plain data; all zero is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
            *slot = *byte as libc::c_char;
        }
        self.ioctl(libc::SIOCGIFINDEX, &mut request, name)?;
        // SAFETY: SIOCGIFINDEX filled the ifindex member.
        let index = unsafe { request.ifr_ifru.ifru_ifindex };
        u32::try_from(index).map_err(|_| DataplaneError::UnknownInterface {
            name: name.to_owned(),
        })
    }

    /// The name of interface `ifindex`.
    pub fn name(&self, ifindex: u32) -> Result<String, DataplaneError> {
        let what = format!("#{ifindex}");
        let Ok(index) = libc::c_int::try_from(ifindex) else {
            return Err(DataplaneError::UnknownInterface { name: what });
        };
        // SAFETY: ifreq is plain data; all zero is a valid value.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        request.ifr_ifru.ifru_ifindex = index;
        self.ioctl(libc::SIOCGIFNAME, &mut request, &what)?;
        let name: Vec<u8> = request
            .ifr_name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        Ok(String::from_utf8_lossy(&name).into_owned())
    }

    fn ioctl(
        &self,
        request: libc::c_ulong,
        ifreq: &mut libc::ifreq,
        what: &str,
    ) -> Result<(), DataplaneError> {
        let error = |source: std::io::Error| match source.raw_os_error() {
            Some(libc::ENODEV | libc::ENXIO) => DataplaneError::UnknownInterface {
                name: what.to_owned(),
            },
            _ => DataplaneError::InterfaceLookup {
                name: what.to_owned(),
                source,
            },
        };
        let socket = match &self.socket {
            Ok(socket) => socket,
            Err(e) => {
                let again = e.raw_os_error().map_or_else(
                    || std::io::Error::from(e.kind()),
                    std::io::Error::from_raw_os_error,
                );
                return Err(error(again));
            }
        };
        // SAFETY: `ifreq` is a valid ifreq for both requests, alive for the
        // call.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(socket),
                request as _,
                std::ptr::from_mut(ifreq),
            )
        };
        if rc < 0 {
            return Err(error(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_through_one_socket() {
        let lookups = Lookups::new();
        assert_eq!(lookups.index("lo").ok(), Some(1));
        assert_eq!(lookups.name(1).ok().as_deref(), Some("lo"));
        for absent in [
            lookups.index("sgnosuchif0"),
            lookups.index("a-name-longer-than-ifnamsiz"),
        ] {
            assert!(
                matches!(absent, Err(DataplaneError::UnknownInterface { .. })),
                "{absent:?}"
            );
        }
        assert!(matches!(
            lookups.name(u32::MAX),
            Err(DataplaneError::UnknownInterface { .. })
        ));
    }

    #[test]
    fn loopback_and_nothing() {
        assert_eq!(name_of(1).as_deref(), Some("lo"));
        assert_eq!(name_of(u32::MAX), None);
        assert_eq!(name_of(0), None);
    }
}
