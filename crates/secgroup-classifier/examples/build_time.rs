//! Build time and size of full-size tables, in the shapes that stress the
//! builder: `cargo run --release -p secgroup-classifier --example build_time
//! --features testing`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipnet::IpNet;
use rand::SeedableRng;
use rand::rngs::StdRng;
use secgroup_classifier::{MAX_RULES, build, testing};
use secgroup_policy::RuleList;

fn main() {
    let mut rng = StdRng::seed_from_u64(7);
    let random = testing::random_rule_list(&mut rng, MAX_RULES);
    measure("4096 random rules", &random);

    // Every other rule references one of four 10,000-member security
    // groups (each rule holding its own copy of the member list, as the
    // compiler produces it); the rest are random.
    let groups: Vec<Vec<IpNet>> = (0..4u32).map(|g| members(g, 10_000)).collect();
    let mut referencing = random.clone();
    for (position, rule) in referencing.rules_mut().iter_mut().enumerate() {
        if position % 2 == 0 {
            rule.remotes = groups[position / 2 % groups.len()].clone();
        }
    }
    measure(
        "4096 rules, half referencing 10,000-member groups",
        &referencing,
    );

    // Worst case for the fold: every rule names its own 16 host routes.
    let mut distinct = random;
    for (position, rule) in distinct.rules_mut().iter_mut().enumerate() {
        rule.remotes = (0..16u32)
            .map(|i| {
                let n = position as u32 * 16 + i;
                let addr = if i % 4 == 3 {
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(n)))
                } else {
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
                };
                IpNet::from(addr)
            })
            .collect();
        rule.remotes.sort();
    }
    measure("4096 rules, 16 distinct host routes each", &distinct);
}

/// `n` host routes in 10.g.0.0/16, every 7th address.
fn members(g: u32, n: u32) -> Vec<IpNet> {
    (0..n)
        .map(|i| {
            IpNet::from(IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 | g << 16 | (i * 7 % 65536),
            )))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn measure(what: &str, list: &RuleList) {
    let runs = 5;
    let mut best = f64::INFINITY;
    let mut stats = None;
    for _ in 0..runs {
        let start = Instant::now();
        let table = match build(list) {
            Ok(table) => table,
            Err(e) => {
                eprintln!("{what}: {e}");
                std::process::exit(1);
            }
        };
        best = best.min(start.elapsed().as_secs_f64());
        stats = Some(table.stats());
    }
    let pairs: usize = list.rules.iter().map(|r| r.remotes.len()).sum();
    if let Some(stats) = stats {
        println!(
            "{what}: {pairs} remote prefixes in all; best of {runs}: {:.1} ms; {stats}",
            best * 1e3
        );
    }
}
