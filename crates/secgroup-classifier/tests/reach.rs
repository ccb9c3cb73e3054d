//! `secgroup_policy::reach` (the exact shadowed-rule analysis behind the
//! lint warnings) against the reference evaluator's first match, on the
//! classifier's hard random lists: nested prefixes, shared port edges,
//! rules sharing member lists, empty rules.
//!
//! A rule said to decide a packet must be that packet's first match; a rule
//! said to be shadowed must be the first match of no packet (random ones,
//! and ones built inside the rule itself), and those built inside it must
//! be decided by the rules named.
//!
//! Reproduce a failure with `SECGROUP_REACH_SEED=<seed>`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_classifier::testing::{describe, random_packet, random_rule_list};
use secgroup_model::{Ports, Protocol};
use secgroup_policy::{EffectiveRule, Packet, Reach, RuleList, reach};

const BASE_SEED: u64 = 0x5ead_0000;

fn first_match(list: &RuleList, packet: &Packet) -> Option<usize> {
    list.rules.iter().position(|r| r.matches(packet))
}

/// A packet the rule matches: an address of one of its remotes (an end or
/// anywhere inside) and one of its services (a port at an end or inside).
fn packet_in(rng: &mut impl Rng, rule: &EffectiveRule) -> Packet {
    let net = rule.remotes[rng.gen_range(0..rule.remotes.len())];
    let remote = match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            IpAddr::V4(Ipv4Addr::from(match rng.gen_range(0..3) {
                0 => lo,
                1 => hi,
                _ => rng.gen_range(lo..=hi),
            }))
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            IpAddr::V6(Ipv6Addr::from(match rng.gen_range(0..3) {
                0 => lo,
                1 => hi,
                _ => rng.gen_range(lo..=hi),
            }))
        }
    };
    let service = &rule.services[rng.gen_range(0..rule.services.len())];
    let protocol = match service.protocol {
        Protocol::Number(n) => n,
        Protocol::All => rng.r#gen(),
    };
    let dst_port = match &service.ports {
        Ports::All => rng.r#gen(),
        Ports::List(ranges) => {
            let r = ranges[rng.gen_range(0..ranges.len())];
            match rng.gen_range(0..3) {
                0 => r.lo(),
                1 => r.hi(),
                _ => rng.gen_range(r.lo()..=r.hi()),
            }
        }
    };
    Packet {
        protocol,
        remote,
        local: remote,
        src_port: 40000,
        dst_port,
        icmp_type: 0,
        icmp_code: 0,
    }
}

/// Counts of (decisive, shadowed, empty) rules seen.
fn check_seed(seed: u64, n_rules: usize) -> [usize; 3] {
    let mut rng = StdRng::seed_from_u64(seed);
    let list = random_rule_list(&mut rng, n_rules);
    let reaches = reach(&list);
    let fail = |what: String| -> ! {
        panic!(
            "seed {seed}: {what}\nrules:\n{}\nreproduce: SECGROUP_REACH_SEED={seed} \
             cargo test -p secgroup-classifier --test reach",
            describe(&list)
        )
    };
    let random: Vec<Packet> = (0..300).map(|_| random_packet(&mut rng, &list)).collect();
    let mut counts = [0; 3];
    for (i, (rule, reach)) in list.rules.iter().zip(&reaches).enumerate() {
        match reach {
            Reach::Decides(witness) => {
                counts[0] += 1;
                if first_match(&list, witness) != Some(i) {
                    fail(format!(
                        "#{i} said to decide {witness:?}, whose first match is {:?}",
                        first_match(&list, witness)
                    ));
                }
            }
            Reach::Shadowed(deciders) => {
                counts[1] += 1;
                if deciders.is_empty() || deciders.iter().any(|&j| j >= i) {
                    fail(format!("#{i} shadowed by {deciders:?}"));
                }
                for packet in &random {
                    if first_match(&list, packet) == Some(i) {
                        fail(format!("#{i} said shadowed, but decides {packet:?}"));
                    }
                }
                for _ in 0..300 {
                    let packet = packet_in(&mut rng, rule);
                    match first_match(&list, &packet) {
                        Some(j) if deciders.contains(&j) => {}
                        other => fail(format!(
                            "#{i} said shadowed by {deciders:?}, but {packet:?} is decided by {other:?}"
                        )),
                    }
                }
            }
            Reach::Empty => {
                counts[2] += 1;
                if !rule.remotes.is_empty() && !rule.services.is_empty() {
                    fail(format!("#{i} said to match nothing"));
                }
            }
        }
    }
    counts
}

#[test]
fn reach_agrees_with_the_evaluator() {
    if let Some(seed) = std::env::var("SECGROUP_REACH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        for n_rules in [2, 8, 30] {
            check_seed(seed, n_rules);
        }
        return;
    }
    let mut totals = [0; 3];
    for k in 0..400 {
        let n_rules = [2, 5, 12, 30][k as usize % 4];
        let counts = check_seed(BASE_SEED + k, n_rules);
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
    }
    // The lists must exercise every outcome, or the test proves little.
    let [decisive, shadowed, empty] = totals;
    eprintln!("{decisive} decisive, {shadowed} shadowed, {empty} empty rules");
    assert!(
        decisive > 2000 && shadowed > 500 && empty > 50,
        "{decisive} decisive, {shadowed} shadowed, {empty} empty rules"
    );
}
