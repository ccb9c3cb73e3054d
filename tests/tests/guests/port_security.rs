//! Port security from inside a guest: mallory's guest writes forged
//! frames onto its own NIC (a spoofed IP, a spoofed MAC, a forged ARP
//! reply, a router advertisement), alice's guest is the one they aim at.
//! Each forgery is shown against a control: a genuine frame sent after
//! it by the same path (or, for the advertisement, by the world, where
//! routers live) that alice must see, else the observation proves
//! nothing; the forgery must not arrive, and the drop is counted on
//! mallory's tap under its reason. What a guest legitimately does still
//! works: a DHCP client (busybox udhcpc against udhcpd on the host's
//! bridge) and IPv6 link-local traffic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Stdio};
use std::time::Duration;

use secgroup_api::Direction;
use secgroup_dataplane::packet::{Packet, Transport, checksum};
use secgroup_testbed::Expect::Accepted;
use secgroup_testbed::{
    CLIENT_A, Control, GUEST_ACCEPT, Guest, RawSocket, RuleFile, Scratch, TestBed, WORLD_MAC,
    accept, boot_all, guests_or_skip, link_local, poll,
};

use crate::{bind, check, patience, start};

const BROADCAST: [u8; 6] = [0xff; 6];
const FOREIGN_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0xee];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The port alice's echo logs datagrams on.
const LOGGED: u16 = 9000;
/// The host's address on the bridge, where udhcpd serves.
const DHCP_SERVER: &str = "198.51.100.1";
/// What alice takes from a router advertisement.
const ADVERTISED: &str = "2001:db8:ee::";

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => panic!("{ip} is not IPv4"),
    }
}

/// A UDP datagram carrying `marker` from `src_mac`/`src` to alice.
fn datagram(src_mac: [u8; 6], src: IpAddr, alice: &Guest, marker: &str) -> Vec<u8> {
    Packet::udp(src, 40000, alice.ip(false), LOGGED)
        .with_payload(marker.as_bytes().to_vec())
        .with_macs(src_mac, alice.mac)
        .frame()
}

/// A gratuitous ARP reply: `ip` is at `mac`, to everyone.
fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&ip.octets());
    f
}

/// A router advertisement from `mac`'s link-local address: a default
/// router for 1800 s and the prefix 2001:db8:ee::/64 for addresses.
fn router_advert(mac: [u8; 6]) -> Vec<u8> {
    let src = link_local(mac);
    let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    // Prefix information: on-link and autonomous, a day valid.
    m.extend_from_slice(&[
        3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0,
    ]);
    let prefix: Ipv6Addr = ADVERTISED.parse().unwrap_or_else(|e| panic!("{e}"));
    m.extend_from_slice(&prefix.octets());
    // Source link-layer address.
    m.extend_from_slice(&[1, 1]);
    m.extend_from_slice(&mac);
    let len = u32::try_from(m.len()).unwrap_or_else(|e| panic!("{e}"));
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&ALL_NODES.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    let sum = checksum(&[&pseudo, &m]);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = Packet::new(
        src.into(),
        ALL_NODES.into(),
        Transport::Other {
            proto: 58,
            payload: m,
        },
    )
    .with_macs(mac, ALL_NODES_MAC);
    packet.ttl = 255;
    packet.frame()
}

/// Waits until `seen` says alice observed the control, then whether she
/// observed the forgery too.
fn forgery_seen(
    control_seen: impl Fn() -> bool,
    forgery_seen: impl Fn() -> bool,
    what: &str,
) -> bool {
    assert!(
        poll(GUEST_ACCEPT, || control_seen().then_some(())).is_some(),
        "{what}: the control never reached alice, so she proves nothing"
    );
    forgery_seen()
}

/// busybox udhcpd on the host's bridge, leasing `ip` to `mac` only;
/// killed on drop. Its pid file lets the sweep kill a dead run's.
struct DhcpServer(Child);

impl DhcpServer {
    fn start(bed: &TestBed, dir: &Scratch, mac: &str, ip: &str) -> DhcpServer {
        bed.host
            .ns
            .ip(&["addr", "add", &format!("{DHCP_SERVER}/24"), "dev", "br0"]);
        let conf = dir.join("udhcpd.conf");
        let text = format!(
            "start {ip}\nend {ip}\ninterface br0\nmax_leases 1\nstatic_lease {mac} {ip}\n\
             lease_file {leases}\npidfile {pid}\noption subnet 255.255.255.0\noption lease 600\n",
            leases = dir.join("udhcpd.leases").display(),
            pid = dir.join("udhcpd.pid").display(),
        );
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        let _ = std::fs::write(dir.join("udhcpd.leases"), "");
        let child = bed
            .host
            .ns
            .command("busybox")
            .arg("udhcpd")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log(dir, "udhcpd.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting udhcpd: {e}"));
        DhcpServer(child)
    }
}

fn log(dir: &Scratch, name: &str) -> std::fs::File {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn counted(control: &Control, guest: &Guest, reason: &str) {
    control.wait_verdict(
        &guest.instance(),
        Direction::Egress,
        reason,
        1,
        Duration::from_secs(5),
    );
}

#[test]
fn forgeries_from_inside_a_guest_are_stopped_and_dhcp_and_link_local_work() {
    if !guests_or_skip("forgeries_from_inside_a_guest_are_stopped_and_dhcp_and_link_local_work") {
        return;
    }
    let bed = TestBed::new("gport");
    let dyn_ip = "198.51.100.22";
    let guests = boot_all(
        &bed.host.ns,
        vec![
            bed.guest("mallory", 20),
            bed.guest("alice", 21),
            bed.guest("dyn", 22).without_ip4(),
        ],
    );
    let [mallory, alice, dyn_guest] = &guests[..] else {
        unreachable!("three guests booted")
    };
    let open = RuleFile::new().group(
        "sg-open",
        vec![accept("all", "", "")],
        vec![accept("all", "", "")],
    );
    let rules = bind(open, mallory, &[], &["sg-open"]);
    let rules = bind(rules, alice, &[], &["sg-open"]);
    let rules = bind(rules, dyn_guest, &[dyn_ip], &["sg-open"]);
    let instances: Vec<String> = guests.iter().map(Guest::instance).collect();
    let (_daemon, control) = start(&bed, &rules, &instances, &[]);
    alice.serve(&[LOGGED]);
    // Alice takes what ARP and router advertisements tell her, so a
    // forgery that got through would show.
    alice.sh("echo 1 >/proc/sys/net/ipv4/conf/eth0/arp_accept; echo 2 >/proc/sys/net/ipv6/conf/eth0/accept_ra");
    let logged = |marker: &str| alice.udp_log().contains(marker);

    // A spoofed source IP, then the same datagram from mallory's own.
    let spoofed: IpAddr = "198.51.100.99".parse().unwrap_or_else(|e| panic!("{e}"));
    mallory.send_raw(&[
        datagram(mallory.mac, spoofed, alice, "spoofed-ip"),
        datagram(mallory.mac, mallory.ip(false), alice, "genuine-ip"),
    ]);
    let seen = forgery_seen(
        || logged("genuine-ip"),
        || logged("spoofed-ip"),
        "spoofed IP",
    );
    assert!(
        !seen,
        "alice received the datagram from a spoofed IP: {}",
        alice.udp_log()
    );
    counted(&control, mallory, "drop-spoofed-ip");

    // A spoofed source MAC with mallory's own IP.
    mallory.send_raw(&[
        datagram(FOREIGN_MAC, mallory.ip(false), alice, "spoofed-mac"),
        datagram(mallory.mac, mallory.ip(false), alice, "genuine-mac"),
    ]);
    let seen = forgery_seen(
        || logged("genuine-mac"),
        || logged("spoofed-mac"),
        "spoofed MAC",
    );
    assert!(
        !seen,
        "alice received the datagram from a spoofed MAC: {}",
        alice.udp_log()
    );
    counted(&control, mallory, "drop-spoofed-mac");

    // A forged ARP reply: dyn's address is at mallory's MAC. The control
    // announces mallory's own address.
    let dyn_v4: Ipv4Addr = dyn_ip.parse().unwrap_or_else(|e| panic!("{e}"));
    mallory.send_raw(&[
        gratuitous_arp(mallory.mac, dyn_v4),
        gratuitous_arp(mallory.mac, v4(mallory.ip(false))),
    ]);
    let mallory_mac = mallory.mac_text();
    let seen = forgery_seen(
        || alice.neighbour(mallory.ip(false)).as_deref() == Some(mallory_mac.as_str()),
        || alice.neighbour(IpAddr::V4(dyn_v4)).is_some(),
        "forged ARP",
    );
    assert!(
        !seen,
        "alice believed the forged ARP reply: {dyn_ip} at {:?}",
        alice.neighbour(IpAddr::V4(dyn_v4))
    );
    counted(&control, mallory, "drop-spoofed-arp");

    // A router advertisement from mallory, then the same from the world
    // (the host side, where a router may live).
    mallory.send_raw(&[router_advert(mallory.mac)]);
    RawSocket::open(&bed.world, "eth0").send(&router_advert(WORLD_MAC));
    let routes = || alice.run("ip -6 route").output;
    let world_router = format!("default via {}", link_local(WORLD_MAC));
    let mallory_router = format!("default via {}", link_local(mallory.mac));
    let seen = forgery_seen(
        || routes().contains(&world_router),
        || routes().contains(&mallory_router),
        "router advertisement",
    );
    assert!(!seen, "alice took mallory as her router: {}", routes());
    counted(&control, mallory, "drop-router-advert");

    // What guests may do: ask DHCP, talk link-local.
    let server = Scratch::new("udhcpd");
    let _dhcp = DhcpServer::start(&bed, &server, &dyn_guest.mac_text(), dyn_ip);
    let leased = dyn_guest.dhcp(Duration::from_secs(20));
    assert_eq!(
        leased.as_deref(),
        Some(dyn_ip),
        "dyn's DHCP lease; udhcpd said: {}\ndyn's verdicts: {:?}\ndyn: {}",
        std::fs::read_to_string(server.join("udhcpd.log")).unwrap_or_default(),
        control.verdicts(&dyn_guest.instance(), Direction::Ingress),
        dyn_guest
            .run("cat /tmp/udhcpc.log; ip addr; ls -l /usr/share/udhcpc")
            .output
    );
    let client_a: IpAddr = CLIENT_A.parse().unwrap_or_else(|e| panic!("{e}"));
    let out = dyn_guest.ping(client_a, patience(Accepted));
    check(
        &control,
        "ping dyn (leased) -> ClientA",
        out,
        Accepted,
        "its leased address is one of its ips",
    );
    let to_mallory = IpAddr::V6(mallory.link_local());
    let out = alice.ping(to_mallory, patience(Accepted));
    check(
        &control,
        "ping alice -> mallory (link-local)",
        out,
        Accepted,
        "link-local from the EUI-64 of its MAC",
    );
    mallory.serve(&[LOGGED]);
    let out = alice.udp(to_mallory, LOGGED, patience(Accepted));
    check(
        &control,
        "udp alice -> mallory (link-local)",
        out,
        Accepted,
        "link-local from the EUI-64 of its MAC",
    );
}
