//! The one test bed of secgroup's tests, benchmarks and demo, in layers
//! (each module uses only the ones above it):
//!
//! - plumbing: `names` (unique names, the sweep of dead runs'
//!   leftovers), `cmd` ([`sh`] and friends), `wait` ([`wait_for`]),
//!   `error` (the [`Error`] of the `try_*` functions);
//! - the kernel's objects: `netns` ([`NetNs`]), `link` ([`Veth`],
//!   [`Bridge`], [`Tap`]), `files` ([`Scratch`], [`RulesDir`],
//!   [`PinDir`]);
//! - processes: `binary` (the workspace's binaries, never stale),
//!   `daemon` ([`Secgroupd`] builder, [`Daemon`] guard);
//! - traffic: `traffic` ([`Flow`], [`connect`], echo servers), `raw`
//!   ([`RawSocket`]: raw Ethernet frames sent and captured on an
//!   interface, [`Frame`] to read them);
//! - services: `etcd` ([`Etcd`]: a real etcd on a free port, stopped
//!   and started again on its data, removed on drop);
//! - hypervisors: `host` ([`Host`]: namespace, files, pins, daemon),
//!   `lab` ([`Lab`]: one veth VM), `bed` ([`TestBed`]: a bridge, VMs, an
//!   outside world), `tap` ([`TapGuest`]: a real tap played by the test),
//!   `guest` ([`Guest`]: a QEMU virtual machine on a tap QEMU opens),
//!   `fleet` ([`Fleet`]: hosts whose bridges an underlay joins, one
//!   etcd on a management network);
//! - questions: `rules` ([`RuleFile`]), `control` ([`Control`], the
//!   daemon's API), `check` (expectations that explain themselves).
//!
//! Everything it creates is removed on drop, and names carry the pid
//! (`sgtb-<pid>-...`), so parallel runs never collide and a sweep removes
//! what dead ones left. Test-facing functions panic with precise
//! messages, as a test would; `try_*` twins return [`Error`] for tools.
//! It does not depend on `secgroup-dataplane`, so xtask builds without
//! clang and the data plane's tests can use it.

mod bed;
mod binary;
mod check;
mod cmd;
mod control;
mod daemon;
mod error;
mod etcd;
mod files;
mod fleet;
mod guest;
mod host;
mod lab;
mod link;
mod names;
mod netns;
mod raw;
mod rules;
mod skip;
mod tap;
mod traffic;
mod wait;

pub use bed::{
    CLIENT_A, CLIENT_A6, CLIENT_B, CLIENT_B6, CLIENT_C, CLIENT_C6, CLIENT_D, LB_VIP, TestBed, Vm,
    WORLD_MAC, link_local, mac_text,
};
pub use binary::{secgroupctl_binary, secgroupd_binary};
pub use check::Expect;
pub use cmd::{describe, output, quietly, sh, try_output, try_run, try_sh};
pub use control::Control;
pub use daemon::{Daemon, READY_TIMEOUT, Secgroupd, TERMINATE_TIMEOUT, uninstall};
pub use error::Error;
pub use etcd::{ETCD_READY_TIMEOUT, Etcd, EtcdOptions, etcd_installed};
pub use files::{PinDir, RulesDir, Scratch};
pub use fleet::{ETCD_IP, FLEET_PREFIX, Fleet, FleetHost, group, instance_on, key};
pub use guest::{
    BOOT_TIMEOUT, GUEST_ACCEPT, GUEST_BLOCK, Guest, GuestBuilder, GuestOutput, Image, accel,
    boot_all, guests_or_skip, image,
};
pub use host::Host;
pub use lab::{GUEST_IP, HOST_IP, Lab, TAP};
pub use link::{Bridge, Tap, Veth};
pub use names::{PREFIX, sweep, unique, unique_with};
pub use netns::NetNs;
pub use raw::{Arp, Frame, RawSocket, send_frame};
pub use rules::{RuleFile, accept, drop, service};
pub use skip::{etcd_or_skip, root_or_skip};
pub use tap::{TapGuest, TcpSegment};
pub use traffic::{
    ACCEPT_TIMEOUT, BLOCK_TIMEOUT, Endpoint, Flow, Proto, TcpEcho, UdpEcho, connect, echoes,
    listen, ping, tcp, udp,
};
pub use wait::{poll, wait_for};
