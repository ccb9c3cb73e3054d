//! Atomic hot swap: while policies A and B replace each other hundreds of
//! times, threads classify packets non-stop, and every verdict is one that
//! A or B gives. A packet classified against a half-written or half-freed
//! table would get a verdict neither gives (typically a default drop, or a
//! rule position that exists in neither).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_classifier::testing::{random_packet, random_rule_list};
use secgroup_dataplane::{Hook, InterfaceBinding};
use secgroup_model::Direction;
use secgroup_policy::{Enforcement, LogMode, Packet, RuleList};

const SWAPS: usize = 300;
const THREADS: usize = 3;

/// Two lists for the same direction that disagree on many packets.
fn policies(seed: u64) -> (RuleList, RuleList, Vec<Packet>) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let mut a = random_rule_list(&mut rng, 80);
        let mut b = random_rule_list(&mut rng, 120);
        // Same direction for both (the generator picks one at random).
        for rule in b.rules_mut() {
            rule.origin.direction = Direction::Ingress;
        }
        for rule in a.rules_mut() {
            rule.origin.direction = Direction::Ingress;
        }
        let packets: Vec<Packet> = (0..200)
            .map(|i| {
                let list = if i % 2 == 0 { &a } else { &b };
                random_packet(&mut rng, list)
            })
            .collect();
        let differing = packets
            .iter()
            .filter(|p| a.evaluate(Direction::Ingress, p) != b.evaluate(Direction::Ingress, p))
            .count();
        if differing >= 40 {
            return (a, b, packets);
        }
    }
}

#[test]
fn every_packet_sees_the_old_or_the_new_policy_never_a_mix() {
    if !kernel_tests_enabled("every_packet_sees_the_old_or_the_new_policy_never_a_mix") {
        return;
    }
    let seed: u64 = rand::thread_rng().r#gen();
    eprintln!("hotswap: seed {seed}");
    let (a, b, packets) = policies(seed);
    let empty = RuleList::default();
    let mut dp = load_dataplane();
    fn bind<'a>(list: &'a RuleList, empty: &'a RuleList) -> [InterfaceBinding<'a>; 1] {
        [InterfaceBinding {
            ifindex: TEST_IFINDEX,
            ingress: list,
            egress: empty,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }]
    }
    dp.apply(&bind(&a, &empty))
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));

    let runner = dp.test_runner();
    let stop = Arc::new(AtomicBool::new(false));
    let classified = Arc::new(AtomicU64::new(0));
    let next_local = Arc::new(AtomicU32::new(1));
    let packets = Arc::new(packets);
    let (a_ref, b_ref) = (Arc::new(a.clone()), Arc::new(b.clone()));

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (runner, stop, classified, next_local, packets, a, b) = (
                runner.clone(),
                stop.clone(),
                classified.clone(),
                next_local.clone(),
                packets.clone(),
                a_ref.clone(),
                b_ref.clone(),
            );
            std::thread::spawn(move || -> Result<(), String> {
                let mut rng = StdRng::seed_from_u64(seed ^ (t as u64 + 1));
                while !stop.load(Ordering::Relaxed) {
                    let mut p = packets[rng.gen_range(0..packets.len())];
                    // A fresh local address per packet: no flow repeats, so
                    // conntrack never decides in place of the rules.
                    let n = next_local.fetch_add(1, Ordering::Relaxed);
                    p.local = match p.remote {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0xff_ffff))),
                        IpAddr::V6(_) => format!("2001:db8:ffff::{:x}:{:x}", n >> 16, n & 0xffff)
                            .parse()
                            .unwrap_or_else(|e| panic!("{e}")),
                    };
                    let frame = frame_for(Direction::Ingress, &p);
                    let outcome = runner
                        .run(Hook::Tc, &frame, None, 1)
                        .map_err(|e| format!("test run: {}", error_chain(&e)))?;
                    let under_a = compare(&a, Direction::Ingress, &p, &outcome);
                    let under_b = compare(&b, Direction::Ingress, &p, &outcome);
                    if let (Err(why_a), Err(why_b)) = (under_a, under_b) {
                        return Err(format!(
                            "verdict of neither policy (seed {seed}):\n  A: {why_a}\n  B: {why_b}"
                        ));
                    }
                    classified.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();

    for swap in 0..SWAPS {
        let list = if swap % 2 == 0 { &b } else { &a };
        let report = dp
            .apply(&bind(list, &empty))
            .unwrap_or_else(|e| panic!("swap {swap}: {}", error_chain(&e)));
        assert_eq!(
            report.interfaces_changed, 1,
            "swap {swap} switches the interface"
        );
        assert_eq!(
            report.tables_freed, 1,
            "swap {swap} frees the table it replaced"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("{why}"),
            Err(_) => panic!("a classifying thread panicked"),
        }
    }
    let total = classified.load(Ordering::Relaxed);
    eprintln!("hotswap: {total} packets classified during {SWAPS} swaps");
    assert!(
        total >= SWAPS as u64,
        "too few packets ran during the swaps ({total}) to prove anything"
    );
}
