//! The smallest hypervisor: a host with one VM whose "tap" is the host
//! end of a veth pair and whose NIC is the other end, in a guest
//! namespace. What the daemon's and the CLI's tests run against.
//!
//! ```text
//!  guest ns: eth0 198.51.100.2 ── tap-vm 198.51.100.1 (host ns, secgroupd)
//! ```

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use crate::host::Host;
use crate::link::Veth;
use crate::netns::NetNs;
use crate::traffic::{ACCEPT_TIMEOUT, BLOCK_TIMEOUT, Endpoint, connect, ping};

pub const HOST_IP: &str = "198.51.100.1";
pub const GUEST_IP: &str = "198.51.100.2";
/// The host end of the VM's veth pair: what the rules call its interface.
pub const TAP: &str = "tap-vm";

pub struct Lab {
    pub host: Host,
    pub guest: NetNs,
}

impl Lab {
    /// With the VM's link in place.
    pub fn new(tag: &str) -> Lab {
        let lab = Lab::without_link(tag);
        lab.add_link();
        lab
    }

    /// The VM's interface does not exist yet.
    pub fn without_link(tag: &str) -> Lab {
        Lab {
            host: Host::new(tag),
            guest: NetNs::new(&format!("{tag}-g")),
        }
    }

    /// Creates the veth pair: `tap-vm` (198.51.100.1) on the host, `eth0`
    /// (198.51.100.2) in the guest.
    pub fn add_link(&self) {
        Veth::new(&self.host.ns, TAP, &self.guest, "eth0")
            .addr(&format!("{HOST_IP}/24"))
            .peer_addr(&format!("{GUEST_IP}/24"))
            .create();
    }

    pub fn del_link(&self) {
        self.host.ns.ip(&["link", "del", TAP]);
    }

    /// The host end, as a traffic endpoint.
    pub fn host_end(&self) -> Endpoint<'_> {
        Endpoint::new(&self.host.ns, HOST_IP)
    }

    /// The guest, as a traffic endpoint.
    pub fn guest_end(&self) -> Endpoint<'_> {
        Endpoint::new(&self.guest, GUEST_IP)
    }

    /// A ping from the guest to the host (the VM's egress) is answered
    /// within [`ACCEPT_TIMEOUT`] (an allowed ping may wait for ARP on a
    /// fresh link of a loaded machine).
    pub fn guest_pings_host(&self) -> bool {
        ping(self.guest_end(), self.host_end()).completes(ACCEPT_TIMEOUT)
    }

    /// One ping from the guest to the host goes unanswered for
    /// [`BLOCK_TIMEOUT`]: what a denial looks like.
    pub fn guest_ping_blocked(&self) -> bool {
        !ping(self.guest_end(), self.host_end()).completes(BLOCK_TIMEOUT)
    }

    /// A ping from the host to the guest (the VM's ingress) is answered
    /// within [`ACCEPT_TIMEOUT`].
    pub fn host_pings_guest(&self) -> bool {
        ping(self.host_end(), self.guest_end()).completes(ACCEPT_TIMEOUT)
    }

    /// One ping from the host to the guest goes unanswered for
    /// [`BLOCK_TIMEOUT`].
    pub fn host_ping_blocked(&self) -> bool {
        !ping(self.host_end(), self.guest_end()).completes(BLOCK_TIMEOUT)
    }

    /// A TCP connection from the guest to the host's `port`.
    pub fn guest_connects(&self, port: u16) -> io::Result<TcpStream> {
        connect(
            self.guest_end(),
            self.host_end(),
            port,
            Duration::from_millis(400),
        )
    }
}
