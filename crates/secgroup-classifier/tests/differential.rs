//! The table lookup against the reference evaluator, on random rule lists
//! and packets biased to the lists' edges.
//!
//! Reproduce a failure with `SECGROUP_CLASSIFIER_SEED=<seed>`: the run then
//! checks that one list only.

use rand::SeedableRng;
use rand::rngs::StdRng;
use secgroup_classifier::testing::{describe, random_packet, random_rule_list};
use secgroup_classifier::{MAX_RULES, Table, build};
use secgroup_model::Direction;
use secgroup_policy::{Matched, Packet, RuleList};

const BASE_SEED: u64 = 0x5ec9_0000;

/// The position the evaluator says matches first, `None` for the default
/// drop.
fn reference(list: &RuleList, packet: &Packet) -> Option<usize> {
    match list.evaluate(Direction::Ingress, packet).matched {
        Matched::Rule { position, .. } => Some(position),
        Matched::DefaultDrop => None,
        Matched::Implicit(allow) => {
            panic!("random_packet made implicit-allow traffic ({allow}): {packet:?}")
        }
    }
}

/// Builds `seed`'s list of `n_rules` rules and compares `packets` random
/// packets. Returns how many matched some rule, so the caller can check the
/// packets were not all default drops.
fn check_seed(seed: u64, n_rules: usize, packets: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let list = random_rule_list(&mut rng, n_rules);
    let table = build(&list).unwrap_or_else(|e| panic!("seed {seed}: build failed: {e}"));
    check_invariants(seed, &table);
    let mut matched = 0;
    for _ in 0..packets {
        let packet = random_packet(&mut rng, &list);
        let expected = reference(&list, &packet);
        let got = table.classify(packet.protocol, packet.dst_port, packet.remote);
        if got != expected {
            panic!(
                "seed {seed}, {n_rules} rules: classify {got:?}, evaluate {expected:?}\n\
                 packet {packet:?}\n\
                 rules:\n{}\n\
                 reproduce: SECGROUP_CLASSIFIER_SEED={seed} SECGROUP_CLASSIFIER_RULES={n_rules} \
                 cargo test -p secgroup-classifier --test differential",
                describe(&list)
            );
        }
        matched += usize::from(got.is_some());
    }
    matched
}

/// What the kernel side relies on: sorted unique entries, valid class ids,
/// distinct non-empty classes with a consistent summary.
fn check_invariants(seed: u64, table: &Table) {
    fn sorted<P: Ord + std::fmt::Debug>(
        seed: u64,
        what: &str,
        entries: &[(P, u32)],
        classes: usize,
    ) {
        for pair in entries.windows(2) {
            if pair[0].0 >= pair[1].0 {
                panic!(
                    "seed {seed}: {what} entries out of order: {:?} then {:?}",
                    pair[0], pair[1]
                );
            }
        }
        if let Some((prefix, class)) = entries.iter().find(|(_, class)| *class as usize >= classes)
        {
            panic!("seed {seed}: {what} entry {prefix:?} points to class {class} of {classes}");
        }
    }
    let n = table.classes.len();
    sorted(seed, "v4", &table.v4, n);
    sorted(seed, "v6", &table.v6, n);
    sorted(seed, "l4", &table.l4, n);
    for (id, class) in table.classes.iter().enumerate() {
        let summary = (0..64)
            .filter(|&w| class.words[w] != 0)
            .fold(0u64, |s, w| s | 1 << w);
        if class.summary != summary || class.is_empty() {
            panic!(
                "seed {seed}: class {id} {class:?} has summary {:#x}, words say {summary:#x}",
                class.summary
            );
        }
        if class.iter().any(|pos| pos >= table.rules.len()) {
            panic!(
                "seed {seed}: class {id} {class:?} names a rule past the {} rules",
                table.rules.len()
            );
        }
        if table.classes[..id].contains(class) {
            panic!("seed {seed}: class {id} {class:?} is stored twice");
        }
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

/// `SECGROUP_CLASSIFIER_SEED` (and `SECGROUP_CLASSIFIER_RULES`, default
/// 100) from a failure message.
fn seed_override() -> Option<(u64, usize)> {
    let seed = env_number("SECGROUP_CLASSIFIER_SEED")?;
    Some((seed, env_number("SECGROUP_CLASSIFIER_RULES").unwrap_or(100)))
}

#[test]
fn small_and_medium_lists() {
    if let Some((seed, n_rules)) = seed_override() {
        // The packets of a run are a prefix of these: same seed, same list,
        // same first packets.
        check_seed(seed, n_rules, 10_000);
        return;
    }
    let mut matched = 0;
    let mut total = 0;
    for i in 0..2000u64 {
        let seed = BASE_SEED + i;
        // Mostly short lists, where edges collide most; some longer ones.
        let n_rules = match i % 10 {
            0 => (i as usize * 7) % 300,
            _ => (i as usize) % 40,
        };
        matched += check_seed(seed, n_rules, 100);
        total += 100;
    }
    // Packets are aimed at the rules: most should hit one. If almost none
    // did, the comparison would be vacuous.
    assert!(
        matched * 3 > total,
        "only {matched} of {total} packets matched a rule"
    );
}

#[test]
fn full_size_lists() {
    if seed_override().is_some() {
        return;
    }
    for i in 0..4u64 {
        let seed = BASE_SEED + 1_000_000 + i;
        let matched = check_seed(seed, MAX_RULES, 3000);
        assert!(
            matched > 1000,
            "seed {seed}: only {matched} of 3000 packets matched a rule"
        );
    }
}
