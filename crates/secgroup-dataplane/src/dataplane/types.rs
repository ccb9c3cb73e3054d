//! The plain data that goes in and out of [`Dataplane`](super::Dataplane):
//! options, bindings, reports.

use std::path::PathBuf;
use std::time::Duration;

use secgroup_policy::{Enforcement, LogMode, PortSecurity, RuleList, RuleOrigin};

use crate::abi::CtTimeout;

/// Conntrack timeouts. Defaults follow Linux and the large clouds: TCP
/// established 5 days, SYN 60 s, closing 120 s, UDP 30 s one way and 180 s
/// once replied, ICMP 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtTimeouts {
    pub tcp_syn: Duration,
    pub tcp_established: Duration,
    pub tcp_closing: Duration,
    pub tcp_closed: Duration,
    pub udp: Duration,
    pub udp_stream: Duration,
    pub icmp: Duration,
    pub other: Duration,
    pub fragment: Duration,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        CtTimeouts {
            tcp_syn: Duration::from_secs(60),
            tcp_established: Duration::from_secs(5 * 24 * 3600),
            tcp_closing: Duration::from_secs(120),
            tcp_closed: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(180),
            icmp: Duration::from_secs(30),
            other: Duration::from_secs(600),
            fragment: Duration::from_secs(30),
        }
    }
}

impl CtTimeouts {
    pub(crate) fn to_abi(self) -> [u64; CtTimeout::COUNT] {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut out = [0u64; CtTimeout::COUNT];
        out[CtTimeout::TcpSyn as usize] = ns(self.tcp_syn);
        out[CtTimeout::TcpEstablished as usize] = ns(self.tcp_established);
        out[CtTimeout::TcpClosing as usize] = ns(self.tcp_closing);
        out[CtTimeout::TcpClosed as usize] = ns(self.tcp_closed);
        out[CtTimeout::Udp as usize] = ns(self.udp);
        out[CtTimeout::UdpStream as usize] = ns(self.udp_stream);
        out[CtTimeout::Icmp as usize] = ns(self.icmp);
        out[CtTimeout::Other as usize] = ns(self.other);
        out[CtTimeout::Fragment as usize] = ns(self.fragment);
        out
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// bpffs directory for maps and links that must outlive this process
    /// (the daemon's `/sys/fs/bpf/secgroup`). `None` keeps everything
    /// private to this process: tests run side by side that way. With a
    /// directory, [`Dataplane::load`](super::Dataplane::load) takes its
    /// lock for the life of the `Dataplane`.
    pub pin_dir: Option<PathBuf>,
    pub timeouts: CtTimeouts,
    /// The owner's API socket, recorded in the pins so that a second
    /// daemon refused the lock can say who holds it.
    pub owner_socket: Option<PathBuf>,
    /// Accept a pin directory on a bpffs private to this process's mount
    /// namespace (its pins, and so its hooks, die with the process). The
    /// caller must say so loudly; refused by default.
    pub allow_private_bpffs: bool,
    /// Room for this many entries in each of the table maps (`sg_v4` …
    /// `sg_rules`) instead of the built-in 2^20: for tests that fill them.
    /// Only without a pin directory (pinned maps keep their layout).
    pub table_capacity: Option<u32>,
}

/// What one interface should enforce.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceBinding<'a> {
    pub ifindex: u32,
    pub ingress: &'a RuleList,
    pub egress: &'a RuleList,
    /// Rule changes spare already tracked flows (the AWS behaviour) instead
    /// of re-checking them (the default, seed 001: changes apply at once).
    pub keep_established: bool,
    /// Opaque to the kernel; lets userspace map an interface back to its
    /// instance after a restart.
    pub instance_uid: u32,
    /// What the VM may send at all, checked before its egress rules.
    /// `None`, or a spec that is not enabled: nothing is checked.
    pub port_security: Option<&'a PortSecurity>,
    /// Which verdicts become events besides those of logged rules: none,
    /// every drop, or every drop and new flow.
    pub log: LogMode,
    /// Audit: what the rules or the default would drop passes (and is
    /// logged as a would-drop if logged); port security still drops.
    pub enforcement: Enforcement,
}

impl InterfaceBinding<'_> {
    /// The `sg_iface` flags of the binding's log mode and enforcement.
    pub(crate) fn event_flags(&self) -> u32 {
        use crate::abi::{IFACE_F_AUDIT, IFACE_F_LOG_ALL, IFACE_F_LOG_DROPS};
        let log = match self.log {
            LogMode::None => 0,
            LogMode::Drops => IFACE_F_LOG_DROPS,
            LogMode::All => IFACE_F_LOG_ALL,
        };
        match self.enforcement {
            Enforcement::Enforce => log,
            Enforcement::Audit => log | IFACE_F_AUDIT,
        }
    }
}

/// What [`Dataplane::apply`](super::Dataplane::apply) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub tables_written: usize,
    pub tables_freed: usize,
    /// Port-security sets (allowed sources) written and freed.
    pub psec_sets_written: usize,
    pub psec_sets_freed: usize,
    pub interfaces_changed: usize,
    pub interfaces_removed: usize,
    /// RCU grace periods waited for: 0 or 1 per apply, never one per
    /// interface.
    pub rcu_barriers: usize,
    /// Table and port-security entries of a previous process swept after
    /// adoption.
    pub stale_entries_swept: usize,
    pub duration: Duration,
}

/// What [`Dataplane::load`](super::Dataplane::load) found pinned by a
/// previous process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    pub interfaces: usize,
    pub tables: usize,
    pub conntrack_entries: usize,
    /// The policy generation the previous owner last applied (0: fresh).
    pub generation: u64,
    /// The previous owner, if the pins name one.
    pub previous_owner: Option<Owner>,
    /// The pins are on a bpffs private to this process (allowed by
    /// [`LoadOptions::allow_private_bpffs`]): they die with it.
    pub private_bpffs: bool,
}

/// Who owns (or owned) a pin directory, as recorded in `sg_meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u64,
    pub socket: String,
    pub started_unix_ms: u64,
}

/// The pin layout this build reads and writes (`enum sg_abi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiStamp {
    pub version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver, before an skb exists.
    Driver,
    /// In the stack, for drivers without native XDP.
    Generic,
}

impl XdpAttachMode {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpAttachMode::Driver => "driver",
            XdpAttachMode::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInfo {
    pub ifindex: u32,
    /// As the kernel reports it for the interface, not as requested.
    pub xdp_mode: XdpAttachMode,
    /// Existing pinned links were pointed at the newly loaded programs
    /// instead of creating new ones.
    pub adopted: bool,
}

/// Hits of one rule on one interface, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHits {
    pub ifindex: u32,
    pub rule_uid: u32,
    /// `None` for counters of rules this process has not seen (left by a
    /// previous policy).
    pub origin: Option<RuleOrigin>,
    pub packets: u64,
    pub bytes: u64,
    /// On the data plane's clock (see
    /// [`Dataplane::now_ns`](super::Dataplane::now_ns)); 0 if never.
    pub last_hit_ns: u64,
}

/// Something in the pins that this process did not write (see
/// [`Dataplane::check_pins`](super::Dataplane::check_pins)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tampering {
    /// `sg_meta` names another owner: another process took the pins over.
    OwnerChanged { pid: u64, socket: String },
    /// `sg_meta`'s layout version is not ours any more.
    AbiChanged { version: u32 },
    /// An interface's entry in `sg_ifaces` differs from what we wrote.
    InterfaceChanged { ifindex: u32 },
    /// `sg_ifaces` holds an interface we never bound.
    InterfaceAdded { ifindex: u32 },
    /// An interface we bound lost its `sg_ifaces` entry.
    InterfaceRemoved { ifindex: u32 },
}

impl std::fmt::Display for Tampering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tampering::OwnerChanged { pid, socket } => write!(
                f,
                "the pins name another owner (pid {pid}, socket {socket:?}): it wrote the maps"
            ),
            Tampering::AbiChanged { version } => {
                write!(f, "the pins' layout version changed to {version}")
            }
            Tampering::InterfaceChanged { ifindex } => {
                write!(f, "the policy entry of interface {ifindex} was overwritten")
            }
            Tampering::InterfaceAdded { ifindex } => {
                write!(f, "a policy entry for interface {ifindex} was added")
            }
            Tampering::InterfaceRemoved { ifindex } => {
                write!(f, "the policy entry of interface {ifindex} was removed")
            }
        }
    }
}
