//! Port security (docs/rule-files.md, "Port security"), end to end: raw
//! frames written from inside a VM's namespace onto its `eth0`, as a
//! compromised guest would, and what the other VMs, the world and the
//! daemon's counters see of them.
//!
//! Every "reaches no one" is shown against a control: a genuine frame
//! sent after the forged ones, by the same path, to the same observer.
//! The observer must see the control (else it proves nothing); it must
//! not see the forgery. The drop is then found in the sender's egress
//! verdicts under its own reason.
//!
//! - `attacks`: forged source address, source MAC, ARP, neighbour
//!   advertisement, router advertisement and redirect, DHCP server
//!   replies, other ethertypes: each fails;
//! - `allowed`: what a VM legitimately sends still goes: DHCP from
//!   0.0.0.0, duplicate address detection, neighbour discovery and
//!   link-local IPv6, ARP probes, ordinary traffic as the rules allow;
//! - `config`: address pairs, `"port_security": false`, guarded
//!   interfaces, the duplicate-address validation error.

mod allowed;
mod attacks;
mod config;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use secgroup_api::Direction;
use secgroup_dataplane::packet::{Packet, Transport, checksum};
use secgroup_policy::SpoofReason;
use secgroup_testbed::{
    ACCEPT_TIMEOUT, BLOCK_TIMEOUT, Control, Frame, NetNs, RawSocket, Vm, mac_text,
};
use serde_json::{Value, json};

pub const BROADCAST: [u8; 6] = [0xff; 6];
/// A MAC no VM, pair or world owns.
pub const FOREIGN_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0xee];
/// 33:33:00:00:00:01, all IPv6 nodes.
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// How long a counted drop may take to show in the daemon's verdicts.
pub const COUNTED: Duration = Duration::from_secs(5);

/// The instance keys that turn port security on with the VM's MAC.
pub fn secured(vm: &Vm) -> Value {
    json!({ "mac": vm.mac_text() })
}

pub fn v4(text: &str) -> Ipv4Addr {
    text.parse()
        .unwrap_or_else(|e| panic!("IPv4 address {text}: {e}"))
}

pub fn v6(text: &str) -> Ipv6Addr {
    text.parse()
        .unwrap_or_else(|e| panic!("IPv6 address {text}: {e}"))
}

/// A UDP datagram carrying `marker`, `src_mac`/`src` → `dst_mac`/`dst`.
pub fn udp_frame(
    src_mac: [u8; 6],
    src: IpAddr,
    sport: u16,
    dst_mac: [u8; 6],
    dst: IpAddr,
    dport: u16,
    marker: &[u8],
) -> Vec<u8> {
    Packet::udp(src, sport, dst, dport)
        .with_payload(marker.to_vec())
        .with_macs(src_mac, dst_mac)
        .frame()
}

/// An Ethernet/IPv4 ARP packet.
pub struct ArpFrame {
    /// 1 request, 2 reply.
    pub op: u16,
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl ArpFrame {
    /// A gratuitous reply from `mac` claiming `ip`, to everyone.
    pub fn gratuitous(mac: [u8; 6], ip: Ipv4Addr) -> ArpFrame {
        ArpFrame {
            op: 2,
            eth_src: mac,
            eth_dst: BROADCAST,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: BROADCAST,
            target_ip: ip,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(42);
        f.extend_from_slice(&self.eth_dst);
        f.extend_from_slice(&self.eth_src);
        f.extend_from_slice(&0x0806u16.to_be_bytes());
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&self.op.to_be_bytes());
        f.extend_from_slice(&self.sender_mac);
        f.extend_from_slice(&self.sender_ip.octets());
        f.extend_from_slice(&self.target_mac);
        f.extend_from_slice(&self.target_ip.octets());
        f
    }
}

/// An ICMPv6 message (`message` from its type on, checksum bytes zero)
/// with hop limit 255, as neighbour discovery requires, checksummed.
pub fn icmpv6_frame(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst_mac: [u8; 6],
    dst: Ipv6Addr,
    mut message: Vec<u8>,
) -> Vec<u8> {
    let len = u32::try_from(message.len()).unwrap_or_else(|e| panic!("{e}"));
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let sum = checksum(&[&pseudo, &message]);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = Packet::new(
        src.into(),
        dst.into(),
        Transport::Other {
            proto: 58,
            payload: message,
        },
    )
    .with_macs(src_mac, dst_mac);
    packet.ttl = 255;
    packet.frame()
}

/// An unsolicited neighbour advertisement (override flag set) for
/// `target` at `mac`, to all nodes.
pub fn neighbour_advert(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[2, 1]); // target link-layer address option
    m.extend_from_slice(&mac);
    icmpv6_frame(mac, src, ALL_NODES_MAC, ALL_NODES, m)
}

/// The target of a neighbour solicitation or advertisement.
pub fn nd_target(frame: &Frame) -> Option<Ipv6Addr> {
    let (icmp_type, message) = frame.icmpv6()?;
    if !matches!(icmp_type, 135 | 136) {
        return None;
    }
    let bytes: [u8; 16] = message.get(8..24)?.try_into().ok()?;
    Some(bytes.into())
}

/// A raw socket on `vm`'s `eth0`: what its guest writes, or sees.
pub fn guest(vm: &Vm) -> RawSocket {
    RawSocket::open(&vm.ns, "eth0")
}

/// A raw socket on the world's `eth0`: it sees everything the bridge
/// floods (broadcast, multicast) with no hook of its own in the way.
pub fn world(world: &NetNs) -> RawSocket {
    RawSocket::open(world, "eth0")
}

/// What `observer` (opened before the sends) saw once the frames were
/// sent: everything arriving within [`BLOCK_TIMEOUT`], and at least
/// until the control arrives (at most [`ACCEPT_TIMEOUT`]). Panics when
/// the control never came: then the bed, not the product, is broken.
pub fn watch(
    observer: &RawSocket,
    control: &str,
    is_control: impl Fn(&Frame) -> bool,
) -> Vec<Frame> {
    let started = Instant::now();
    let mut seen = observer.capture(BLOCK_TIMEOUT, |_| true);
    if !seen.iter().any(&is_control) {
        let left = ACCEPT_TIMEOUT.saturating_sub(started.elapsed());
        observer.recv(left, |frame| {
            seen.push(frame.clone());
            is_control(frame)
        });
    }
    assert!(
        seen.iter().any(&is_control),
        "{}: the control ({control}) never arrived, so this observer proves nothing; \
         it saw {} other frame(s)",
        observer.place,
        seen.len()
    );
    seen
}

/// Panics when any of `seen` is a forgery: `what` it is, and why it
/// should have been dropped.
pub fn never_arrived(
    control: &Control,
    sender: &Vm,
    observer: &RawSocket,
    seen: &[Frame],
    what: &str,
    reason: SpoofReason,
    is_forgery: impl Fn(&Frame) -> bool,
) {
    let forged: Vec<&Frame> = seen.iter().filter(|f| is_forgery(f)).collect();
    assert!(
        forged.is_empty(),
        "{what} from {} reached {} ({} frame(s), first {:02x?}); port security should drop it \
         as {reason}; {}'s egress verdicts: {:?}",
        sender.name,
        observer.place,
        forged.len(),
        forged[0].bytes,
        sender.instance(),
        control.verdicts(&sender.instance(), Direction::Egress)
    );
}

/// Every observer sees the control frame (`control_what`, matched by
/// `is_control`) and none of the forgeries (`forgery_what`, matched by
/// `is_forgery`) that `sender` sent before it; port security should have
/// dropped them as `reason`.
#[allow(clippy::too_many_arguments)]
pub fn reaches_no_one(
    control: &Control,
    sender: &Vm,
    observers: &[RawSocket],
    control_what: &str,
    is_control: impl Fn(&Frame) -> bool,
    forgery_what: &str,
    reason: SpoofReason,
    is_forgery: impl Fn(&Frame) -> bool,
) {
    for observer in observers {
        let seen = watch(observer, control_what, &is_control);
        never_arrived(
            control,
            sender,
            observer,
            &seen,
            forgery_what,
            reason,
            &is_forgery,
        );
    }
}

/// `ns`'s neighbour entry for `owner`'s address `ip` still names
/// `owner`'s MAC, never the attacker's; `before` is what it said before.
pub fn neighbour_kept(ns: &NetNs, ip: &str, before: &str, owner: &Vm, attacker: &Vm) {
    let after = neighbour(ns, ip);
    assert!(
        after.contains(&owner.mac_text()) && !after.contains(&attacker.mac_text()),
        "the neighbour entry for {ip} must still name {}'s MAC: before {before:?}, after {after:?}",
        owner.name
    );
}

/// Waits until `sender`'s egress counted at least `packets` under
/// `reason`.
pub fn counted(control: &Control, sender: &Vm, reason: SpoofReason, packets: u64) {
    control.wait_verdict(
        &sender.instance(),
        Direction::Egress,
        reason.as_str(),
        packets,
        COUNTED,
    );
}

/// A UDP socket on a VM: what its applications receive.
pub struct Inbox {
    socket: UdpSocket,
    pub addr: SocketAddr,
}

impl Inbox {
    pub fn bind(ns: &NetNs, ip: &str, port: u16) -> Inbox {
        let addr = SocketAddr::new(
            ip.parse().unwrap_or_else(|e| panic!("address {ip}: {e}")),
            port,
        );
        let socket = ns
            .run(|| UdpSocket::bind(addr))
            .unwrap_or_else(|e| panic!("binding UDP {addr} in {}: {e}", ns.name));
        Inbox { socket, addr }
    }

    /// The payloads (text: the scenarios send markers) received within
    /// [`BLOCK_TIMEOUT`] of now, and at least until `control` arrives (at
    /// most [`ACCEPT_TIMEOUT`]); panics when it never does.
    pub fn watch(&self, control: &str) -> Vec<(SocketAddr, String)> {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            let elapsed = started.elapsed();
            let has_control = got.iter().any(|(_, m)| m == control);
            if elapsed >= ACCEPT_TIMEOUT || (elapsed >= BLOCK_TIMEOUT && has_control) {
                break;
            }
            let wait = if has_control {
                BLOCK_TIMEOUT - elapsed
            } else {
                ACCEPT_TIMEOUT - elapsed
            };
            let _ = self
                .socket
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            if let Ok((n, peer)) = self.socket.recv_from(&mut buf) {
                got.push((peer, String::from_utf8_lossy(&buf[..n]).into_owned()));
            }
        }
        assert!(
            got.iter().any(|(_, m)| m == control),
            "the control datagram {control:?} never reached {}, so this inbox proves nothing; \
             got {got:?}",
            self.addr
        );
        got
    }
}

/// `ip neigh show IP dev eth0` in `ns`.
pub fn neighbour(ns: &NetNs, ip: &str) -> String {
    let out = ns.output(&["ip", "neigh", "show", ip, "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Makes `ns` know `vm` at its MAC for good, so that no address
/// resolution (with whatever source it would pick) comes first.
pub fn pin_neighbour(ns: &NetNs, vm: &Vm, ip: &str) {
    ns.ip(&[
        "neigh",
        "replace",
        ip,
        "lladdr",
        &mac_text(vm.mac),
        "nud",
        "permanent",
        "dev",
        "eth0",
    ]);
}
