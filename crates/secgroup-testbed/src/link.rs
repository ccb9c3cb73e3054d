//! Interfaces: veth pairs, bridges and tap devices, each built by one
//! `ip -batch` per namespace involved, every interface brought up.
//!
//! ```no_run
//! # use secgroup_testbed::{NetNs, Veth, Bridge};
//! let (host, vm) = (NetNs::new("h"), NetNs::new("vm"));
//! Bridge::new(&host, "br0").option("mcast_snooping", "0").create();
//! Veth::new(&host, "tap-vm", &vm, "eth0")
//!     .master("br0")
//!     .peer_addr("198.51.100.2/24")
//!     .create();
//! ```
//!
//! IPv6 addresses are added with `nodad`: a test bed never wants to wait
//! for duplicate address detection.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::error::{Error, or_panic};
use crate::netns::NetNs;

/// What is set on one interface after it exists.
#[derive(Debug, Clone, Default)]
struct Settings {
    mac: Option<String>,
    master: Option<String>,
    addrs: Vec<String>,
}

impl Settings {
    /// `ip -batch` lines for interface `name`, ending with `link set up`.
    fn lines(&self, name: &str, out: &mut String) {
        if let Some(mac) = &self.mac {
            let _ = writeln!(out, "link set {name} address {mac}");
        }
        if let Some(master) = &self.master {
            let _ = writeln!(out, "link set {name} master {master}");
        }
        for addr in &self.addrs {
            let nodad = if addr.contains(':') { " nodad" } else { "" };
            let _ = writeln!(out, "addr add {addr} dev {name}{nodad}");
        }
        let _ = writeln!(out, "link set {name} up");
    }
}

/// A veth pair: `name` in one namespace, `peer` in another (or the same).
#[derive(Debug, Clone)]
pub struct Veth<'a> {
    ns: &'a NetNs,
    name: String,
    peer_ns: &'a NetNs,
    peer: String,
    here: Settings,
    there: Settings,
}

impl<'a> Veth<'a> {
    pub fn new(ns: &'a NetNs, name: &str, peer_ns: &'a NetNs, peer: &str) -> Veth<'a> {
        Veth {
            ns,
            name: name.to_owned(),
            peer_ns,
            peer: peer.to_owned(),
            here: Settings::default(),
            there: Settings::default(),
        }
    }

    /// Puts `name` on bridge `bridge` (in its namespace).
    pub fn master(mut self, bridge: &str) -> Self {
        self.here.master = Some(bridge.to_owned());
        self
    }

    /// Adds an address (`ADDR/LEN`) to `name`.
    pub fn addr(mut self, cidr: &str) -> Self {
        self.here.addrs.push(cidr.to_owned());
        self
    }

    /// Puts the peer on bridge `bridge` (in the peer's namespace): how
    /// two namespaces' bridges are joined.
    pub fn peer_master(mut self, bridge: &str) -> Self {
        self.there.master = Some(bridge.to_owned());
        self
    }

    /// Adds an address (`ADDR/LEN`) to the peer.
    pub fn peer_addr(mut self, cidr: &str) -> Self {
        self.there.addrs.push(cidr.to_owned());
        self
    }

    /// Sets the peer's MAC address (`02:...`).
    pub fn peer_mac(mut self, mac: &str) -> Self {
        self.there.mac = Some(mac.to_owned());
        self
    }

    /// Creates the pair, configures both ends and brings them up.
    pub fn create(&self) {
        or_panic(self.try_create());
    }

    pub fn try_create(&self) -> Result<(), Error> {
        Veth::try_create_all(std::slice::from_ref(self))
    }

    /// Creates many pairs with one `ip` per namespace (hundreds of
    /// interfaces in a fraction of a second): first every pair and its
    /// near end, then the far ends, namespace by namespace.
    pub fn try_create_all(pairs: &[Veth<'_>]) -> Result<(), Error> {
        let mut near: Vec<(&NetNs, String)> = Vec::new();
        let mut far: Vec<(&NetNs, String)> = Vec::new();
        for pair in pairs {
            let mut lines = format!(
                "link add {} type veth peer name {} netns {}\n",
                pair.name, pair.peer, pair.peer_ns.name
            );
            pair.here.lines(&pair.name, &mut lines);
            append(&mut near, pair.ns, &lines);
            let mut lines = String::new();
            pair.there.lines(&pair.peer, &mut lines);
            append(&mut far, pair.peer_ns, &lines);
        }
        for (ns, lines) in near.into_iter().chain(far) {
            ns.try_ip_batch(&lines)?;
        }
        Ok(())
    }
}

/// Adds `lines` to the batch of `ns`, keeping the order of namespaces.
fn append<'n>(batches: &mut Vec<(&'n NetNs, String)>, ns: &'n NetNs, lines: &str) {
    match batches.iter_mut().find(|(n, _)| n.name == ns.name) {
        Some((_, text)) => text.push_str(lines),
        None => batches.push((ns, lines.to_owned())),
    }
}

/// A Linux bridge.
#[derive(Debug, Clone)]
pub struct Bridge<'a> {
    ns: &'a NetNs,
    name: String,
    options: Vec<(String, String)>,
    settings: Settings,
}

impl<'a> Bridge<'a> {
    pub fn new(ns: &'a NetNs, name: &str) -> Bridge<'a> {
        Bridge {
            ns,
            name: name.to_owned(),
            options: Vec::new(),
            settings: Settings::default(),
        }
    }

    /// A `type bridge` option (`mcast_snooping 0`, ...).
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.options.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds an address (`ADDR/LEN`) to the bridge.
    pub fn addr(mut self, cidr: &str) -> Self {
        self.settings.addrs.push(cidr.to_owned());
        self
    }

    pub fn create(&self) {
        or_panic(self.try_create());
    }

    pub fn try_create(&self) -> Result<(), Error> {
        let mut lines = format!("link add {} type bridge", self.name);
        for (key, value) in &self.options {
            let _ = write!(lines, " {key} {value}");
        }
        lines.push('\n');
        self.settings.lines(&self.name, &mut lines);
        self.ns.try_ip_batch(&lines).map(drop)
    }
}

/// A tap device.
#[derive(Debug, Clone)]
pub struct Tap<'a> {
    ns: &'a NetNs,
    name: String,
    settings: Settings,
}

/// `TUNSETIFF`, `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

impl<'a> Tap<'a> {
    pub fn new(ns: &'a NetNs, name: &str) -> Tap<'a> {
        assert!(name.len() < libc::IFNAMSIZ, "tap name {name:?} too long");
        Tap {
            ns,
            name: name.to_owned(),
            settings: Settings::default(),
        }
    }

    /// Puts the tap on bridge `bridge`.
    pub fn master(mut self, bridge: &str) -> Self {
        self.settings.master = Some(bridge.to_owned());
        self
    }

    /// A persistent tap (`ip tuntap add`), up; it goes with its namespace.
    pub fn create(&self) {
        let mut lines = format!("tuntap add dev {} mode tap\n", self.name);
        self.settings.lines(&self.name, &mut lines);
        or_panic(self.ns.try_ip_batch(&lines));
    }

    /// A tap that lives as long as the returned file, up: whoever holds
    /// the file plays the guest, reading the frames the host sends it and
    /// writing the frames it sends (`IFF_TAP | IFF_NO_PI`, non-blocking).
    pub fn open(&self) -> File {
        let file = self.ns.run(|| open_tap(&self.name));
        let mut lines = String::new();
        self.settings.lines(&self.name, &mut lines);
        or_panic(self.ns.try_ip_batch(&lines));
        file
    }
}

/// `TUNSETIFF` on a fresh `/dev/net/tun` fd, in the calling thread's
/// namespace.
fn open_tap(name: &str) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .unwrap_or_else(|e| panic!("opening /dev/net/tun: {e}"));
    // struct ifreq: the name, then the flags as a short.
    let mut ifreq = [0u8; 40];
    ifreq[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: ifreq is a buffer the size of struct ifreq.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifreq.as_mut_ptr()) };
    assert!(
        rc == 0,
        "TUNSETIFF {name}: {}",
        std::io::Error::last_os_error()
    );
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_batch_lines() {
        let settings = Settings {
            mac: Some("02:00:00:00:00:01".into()),
            master: Some("br0".into()),
            addrs: vec!["198.51.100.2/24".into(), "2001:db8:1::2/64".into()],
        };
        let mut out = String::new();
        settings.lines("eth0", &mut out);
        assert_eq!(
            out,
            "link set eth0 address 02:00:00:00:00:01\n\
             link set eth0 master br0\n\
             addr add 198.51.100.2/24 dev eth0\n\
             addr add 2001:db8:1::2/64 dev eth0 nodad\n\
             link set eth0 up\n"
        );
    }
}
