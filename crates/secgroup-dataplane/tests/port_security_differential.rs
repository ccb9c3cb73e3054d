//! The kernel's port security must agree with the reference evaluator
//! (`PortSecurity::check`) on every frame: random specs (with and without
//! a MAC, overlapping sources bound to different MACs, any-MAC sources) ×
//! random frames (genuine and spoofed MACs; sources from the spec, just
//! outside it, foreign, unspecified, link-local; ARP requests, replies and
//! probes; NS, NA, RA, redirects, MLD; DHCP clients and servers; VLAN
//! tags; fragments; other ethertypes and unreadable headers), comparing
//! port security's part of the verdict: passed on to the policy, or the
//! spoof reason. And while two specs replace each other, every frame gets
//! the verdict of one of them.
//!
//! SECGROUP_DIFF_SEED reruns one seed; SECGROUP_PSEC_ROUNDS sets how many
//! specs to try.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::*;
use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use secgroup_dataplane::abi::Reason;
use secgroup_dataplane::packet::{
    Arp, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthFrame, ExtHeader, Fragment,
    Packet, tcp_flags,
};
use secgroup_dataplane::{Dataplane, Hook, InterfaceBinding};
use secgroup_policy::{
    AllowedSource, Enforcement, LogMode, PortSecurity, RuleList, SpoofReason, link_local,
};

const FRAMES_PER_SPEC: usize = 50;

/// Three MACs specs use, and a foreign one.
const MACS: [[u8; 6]; 4] = [
    [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
    [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a],
    [0x02, 0x00, 0x00, 0x00, 0x00, 0x07],
    [0x52, 0x54, 0x00, 0xde, 0xad, 0x01],
];

/// Overlapping prefixes, so that sources nest with different MACs.
const V4_NETS: &[&str] = &[
    "198.51.100.5/32",
    "198.51.100.6/32",
    "198.51.100.0/24",
    "198.51.100.64/28",
    "198.51.100.66/31",
    "10.0.0.0/8",
    "203.0.113.9/32",
];
const V6_NETS: &[&str] = &[
    "2001:db8::5/128",
    "2001:db8::/64",
    "2001:db8:1::/48",
    "2001:db8:1:2::/64",
    "fe80::/64",
    "fe80::1/128",
];

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn random_spec(rng: &mut StdRng) -> PortSecurity {
    let mac = rng.gen_bool(0.75).then(|| MACS[rng.gen_range(0..3)]);
    let mut allowed = Vec::new();
    for _ in 0..rng.gen_range(1..=6) {
        let prefix = if rng.gen_bool(0.5) {
            V4_NETS.choose(rng)
        } else {
            V6_NETS.choose(rng)
        };
        let source_mac = match rng.gen_range(0..100) {
            0..=59 => mac,
            60..=84 => Some(MACS[rng.gen_range(0..3)]),
            _ => None,
        };
        allowed.push(AllowedSource {
            net: net(prefix.copied().unwrap_or("198.51.100.5/32")),
            mac: source_mac,
        });
    }
    if rng.gen_bool(0.8) {
        allowed.push(AllowedSource {
            net: match mac {
                Some(mac) => IpNet::from(IpAddr::V6(link_local(mac))),
                None => net("fe80::/64"),
            },
            mac,
        });
    }
    PortSecurity {
        enabled: rng.gen_bool(0.92),
        mac,
        allowed,
    }
}

/// An address at an edge of `net` or inside it, or just past its end.
fn address_near(rng: &mut StdRng, net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            let a = match rng.gen_range(0..4) {
                0 => lo,
                1 => hi,
                2 => rng.gen_range(lo..=hi),
                _ => hi.wrapping_add(1),
            };
            IpAddr::V4(Ipv4Addr::from(a))
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            let a = match rng.gen_range(0..4) {
                0 => lo,
                1 => hi,
                2 => rng.gen_range(lo..=hi),
                _ => hi.wrapping_add(1),
            };
            IpAddr::V6(Ipv6Addr::from(a))
        }
    }
}

fn some_net(rng: &mut StdRng, spec: &PortSecurity, v6: bool) -> IpNet {
    let own: Vec<IpNet> = spec
        .allowed
        .iter()
        .map(|s| s.net)
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .collect();
    match own.choose(rng) {
        Some(n) if rng.gen_bool(0.7) => *n,
        _ if v6 => net(V6_NETS.choose(rng).copied().unwrap_or("fe80::/64")),
        _ => net(V4_NETS.choose(rng).copied().unwrap_or("10.0.0.0/8")),
    }
}

fn random_v4(rng: &mut StdRng, spec: &PortSecurity) -> Ipv4Addr {
    let net = some_net(rng, spec, false);
    match address_near(rng, net) {
        IpAddr::V4(a) if !rng.gen_bool(0.1) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

fn random_v6(rng: &mut StdRng, spec: &PortSecurity) -> Ipv6Addr {
    match rng.gen_range(0..10) {
        0 => Ipv6Addr::UNSPECIFIED,
        1 => link_local(*MACS.choose(rng).unwrap_or(&MACS[0])),
        _ => {
            let net = some_net(rng, spec, true);
            match address_near(rng, net) {
                IpAddr::V6(a) => a,
                IpAddr::V4(_) => Ipv6Addr::LOCALHOST,
            }
        }
    }
}

/// A MAC the spec knows (mostly) or the foreign one.
fn random_mac(rng: &mut StdRng, spec: &PortSecurity) -> [u8; 6] {
    let known: Vec<[u8; 6]> = spec
        .mac
        .into_iter()
        .chain(spec.allowed.iter().filter_map(|s| s.mac))
        .collect();
    match known.choose(rng) {
        Some(mac) if rng.gen_bool(0.75) => *mac,
        _ => *MACS.choose(rng).unwrap_or(&MACS[3]),
    }
}

fn random_ipv4(rng: &mut StdRng, spec: &PortSecurity) -> Packet {
    let src = random_v4(rng, spec);
    let dst = IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255));
    let ports = [(68, 67), (67, 68), (547, 546), (68, 68), (5000, 53)];
    let p = match rng.gen_range(0..5) {
        0 => Packet::tcp(IpAddr::V4(src), 40000, dst, 443, tcp_flags::SYN),
        1 => Packet::echo(IpAddr::V4(src), dst, true, 7),
        2 => Packet::other(IpAddr::V4(src), dst, 58),
        _ => {
            let (s, d) = *ports.choose(rng).unwrap_or(&(68, 67));
            Packet::udp(IpAddr::V4(src), s, dst, d)
        }
    };
    with_random_fragment(rng, p)
}

fn with_random_fragment(rng: &mut StdRng, p: Packet) -> Packet {
    match rng.gen_range(0..20) {
        0 => p.with_fragment(Fragment {
            id: 3,
            offset: 8,
            more: false,
        }),
        1 => p.with_fragment(Fragment {
            id: 3,
            offset: 0,
            more: true,
        }),
        _ => p,
    }
}

fn random_ipv6(rng: &mut StdRng, spec: &PortSecurity) -> Packet {
    let src = random_v6(rng, spec);
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let types = [128, 130, 131, 132, 133, 134, 135, 136, 137, 143];
    let icmp_type = *types.choose(rng).unwrap_or(&136);
    let p = match rng.gen_range(0..8) {
        0 => Packet::tcp(IpAddr::V6(src), 40000, IpAddr::V6(dst), 443, tcp_flags::SYN),
        1 | 2 => {
            let ports = [(546, 547), (547, 546), (67, 68), (5000, 53)];
            let (s, d) = *ports.choose(rng).unwrap_or(&(546, 547));
            Packet::udp(IpAddr::V6(src), s, IpAddr::V6(dst), d)
        }
        3 => Packet::neighbour_advertisement(src, random_v6(rng, spec)),
        4 => Packet::neighbour_solicitation(src, random_v6(rng, spec)),
        5 => Packet::redirect(src, dst, random_v6(rng, spec), dst),
        _ => {
            // Any type, sometimes too short for a target.
            let body = vec![0; if rng.gen_bool(0.3) { 8 } else { 16 }];
            Packet::icmpv6(src, dst, icmp_type, body)
        }
    };
    let p = if rng.gen_bool(0.1) {
        p.with_ipv6_ext(vec![ExtHeader::HopByHop])
    } else {
        p
    };
    with_random_fragment(rng, p)
}

fn random_raw(rng: &mut StdRng) -> EthFrame {
    let (ethertype, bytes) = match rng.gen_range(0..7) {
        0 => (0x88cc, vec![0; 46]),
        1 => (0x8847, vec![0; 46]),
        2 => (ETH_P_ARP, vec![0, 1, 8, 0, 6, 4, 0, 1]),
        3 => {
            let mut b =
                Arp::request(MACS[0], Ipv4Addr::new(198, 51, 100, 5), Ipv4Addr::LOCALHOST).bytes();
            b[3] = 0xdd; // IPv6 protocol type
            (ETH_P_ARP, b)
        }
        4 => (ETH_P_IP, vec![0x45; 12]),
        5 => (ETH_P_IPV6, vec![0x60; 24]),
        _ => (ETH_P_IP, vec![0x65; 40]), // version 6 inside IPv4
    };
    EthFrame::raw(ethertype, bytes)
}

fn random_frame(rng: &mut StdRng, spec: &PortSecurity) -> EthFrame {
    let frame = match rng.gen_range(0..100) {
        0..=29 => EthFrame::from(random_ipv4(rng, spec)),
        30..=64 => EthFrame::from(random_ipv6(rng, spec)),
        65..=84 => {
            let sender = random_mac(rng, spec);
            let ip = random_v4(rng, spec);
            let target = Ipv4Addr::new(198, 51, 100, 1);
            let arp = if rng.gen_bool(0.5) {
                Arp::request(sender, ip, target)
            } else {
                Arp::reply(sender, ip, target)
            };
            EthFrame::arp(arp)
        }
        _ => random_raw(rng),
    };
    let tags = match rng.gen_range(0..100) {
        0..=79 => vec![],
        80..=89 => vec![ETH_P_8021Q],
        90..=93 => vec![ETH_P_8021Q, ETH_P_8021Q],
        94..=96 => vec![ETH_P_8021AD],
        _ => vec![ETH_P_8021Q, ETH_P_8021AD],
    };
    let mac = random_mac(rng, spec);
    frame.with_src_mac(mac).with_tags(tags)
}

fn bind(dp: &mut Dataplane, spec: &PortSecurity, empty: &RuleList) {
    dp.apply(&[InterfaceBinding {
        ifindex: TEST_IFINDEX,
        ingress: empty,
        egress: empty,
        keep_established: false,
        instance_uid: 1,
        port_security: Some(spec),
        log: LogMode::None,
        enforcement: Enforcement::Enforce,
    }])
    .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
}

/// Port security's part of a kernel verdict.
fn kernel_verdict(reason: Reason) -> Result<(), SpoofReason> {
    reason.spoof().map_or(Ok(()), Err)
}

fn run_seed(seed: u64, rounds: usize) {
    let mut dp = load_dataplane();
    let mut rng = StdRng::seed_from_u64(seed);
    let empty = RuleList::default();
    let mut compared = 0usize;
    let mut spoofed = std::collections::BTreeMap::<SpoofReason, usize>::new();
    for round in 0..rounds {
        let spec = random_spec(&mut rng);
        bind(&mut dp, &spec, &empty);
        for _ in 0..FRAMES_PER_SPEC {
            let frame = random_frame(&mut rng, &spec);
            let want = spec.check(&frame.to_policy());
            let got = kernel_verdict(reason(&run_frame(
                &dp,
                secgroup_model::Direction::Egress,
                &frame.bytes(),
            )));
            if got != want {
                panic!(
                    "PORT-SECURITY MISMATCH (seed {seed}, round {round}; rerun with \
                     SECGROUP_DIFF_SEED={seed})\nspec: {spec} ({spec:?})\nframe: {frame:?}\n\
                     evaluator sees: {:?}\nevaluator: {want:?}; kernel: {got:?}",
                    frame.to_policy()
                );
            }
            if let Err(r) = want {
                *spoofed.entry(r).or_default() += 1;
            }
            compared += 1;
        }
    }
    eprintln!("port security: seed {seed}: {compared} frames agree; drops by reason {spoofed:?}");
    if rounds >= 50 {
        for reason in SpoofReason::ALL {
            assert!(
                spoofed.get(&reason).copied().unwrap_or(0) > 0,
                "seed {seed}: the generator never produced {reason}"
            );
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SECGROUP_DIFF_SEED") {
        Ok(seed) => vec![
            seed.parse()
                .unwrap_or_else(|e| panic!("SECGROUP_DIFF_SEED: {e}")),
        ],
        Err(_) => {
            let base: u64 = rand::thread_rng().r#gen();
            eprintln!("port security differential: base seed {base}");
            (0..2).map(|i| base.wrapping_add(i)).collect()
        }
    }
}

#[test]
fn kernel_port_security_agrees_with_the_evaluator() {
    if !kernel_tests_enabled("kernel_port_security_agrees_with_the_evaluator") {
        return;
    }
    let rounds: usize = std::env::var("SECGROUP_PSEC_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seeds = seeds();
    let per_seed = rounds.div_ceil(seeds.len());
    for seed in seeds {
        run_seed(seed, per_seed);
    }
}

const SWAPS: usize = 300;

/// A frame and what specs A and B say of it.
type Judged = (EthFrame, [Result<(), SpoofReason>; 2]);

/// Two enabled specs, frames to judge, and what each spec says of each.
fn swap_case(seed: u64) -> (PortSecurity, PortSecurity, Vec<Judged>) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let (mut a, mut b) = (random_spec(&mut rng), random_spec(&mut rng));
        a.enabled = true;
        b.enabled = true;
        let frames: Vec<_> = (0..120)
            .map(|i| {
                let frame = random_frame(&mut rng, if i % 2 == 0 { &a } else { &b });
                let verdicts = [a.check(&frame.to_policy()), b.check(&frame.to_policy())];
                (frame, verdicts)
            })
            .collect();
        let differing = frames.iter().filter(|(_, v)| v[0] != v[1]).count();
        let both_pass = frames
            .iter()
            .filter(|(_, v)| v == &[Ok(()), Ok(())])
            .count();
        if differing >= 20 && both_pass >= 10 {
            return (a, b, frames);
        }
    }
}

#[test]
fn while_specs_are_swapped_every_frame_gets_the_old_or_the_new_verdict() {
    if !kernel_tests_enabled("while_specs_are_swapped_every_frame_gets_the_old_or_the_new_verdict")
    {
        return;
    }
    let seed = seeds()[0];
    let (a, b, frames) = swap_case(seed);
    let empty = RuleList::default();
    let mut dp = load_dataplane();
    bind(&mut dp, &a, &empty);
    let runner = dp.test_runner();
    let stop = Arc::new(AtomicBool::new(false));
    let judged = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(frames);
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (runner, stop, judged, frames) =
                (runner.clone(), stop.clone(), judged.clone(), frames.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let (frame, verdicts) = &frames[i % frames.len()];
                    i += 1;
                    let outcome = runner
                        .run(Hook::Xdp, &frame.bytes(), None, 1)
                        .map_err(|e| error_chain(&e))?;
                    let got = kernel_verdict(reason(&outcome));
                    if !verdicts.contains(&got) {
                        return Err(format!(
                            "seed {seed}: {frame:?}: kernel {got:?}, A says {:?}, B says {:?}",
                            verdicts[0], verdicts[1]
                        ));
                    }
                    judged.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for i in 0..SWAPS {
        bind(&mut dp, if i % 2 == 0 { &b } else { &a }, &empty);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        if let Err(why) = worker
            .join()
            .unwrap_or_else(|_| Err("worker panicked".into()))
        {
            panic!("a frame got a verdict neither spec gives: {why}");
        }
    }
    let judged = judged.load(Ordering::Relaxed);
    eprintln!("port security swap: seed {seed}: {judged} frames over {SWAPS} swaps");
    assert!(
        judged > SWAPS as u64,
        "the workers judged only {judged} frames"
    );
    assert_eq!(dp.psec_set_count(), 1, "the replaced sets are freed");
}
