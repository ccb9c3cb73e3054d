//! Property tests of range splitting and prefix normalisation.
//!
//! Each test draws a fresh seed (or takes `SECGROUP_TEST_SEED`) and prints
//! it when it fails, so a failure can be replayed exactly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Net, Ipv6Subnets};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use secgroup_model::AddressRange;
use secgroup_policy::{normalise, split_range};

const CASES: usize = 2000;

/// Runs `body` with a seeded generator and names the seed if it panics.
fn with_seed(body: impl FnOnce(&mut StdRng)) {
    let seed = match std::env::var("SECGROUP_TEST_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("SECGROUP_TEST_SEED={s:?} is not a u64: {e}")),
        Err(_) => rand::random(),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(&mut rng))) {
        eprintln!("failing seed: rerun with SECGROUP_TEST_SEED={seed}");
        resume_unwind(panic);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    fn addr(self, value: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(
                u32::try_from(value).unwrap_or_else(|_| panic!("{value} is no IPv4 address")),
            )),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }
}

fn widen(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn net(family: Family, start: u128, prefix_len: u32) -> IpNet {
    IpNet::new(family.addr(start), prefix_len as u8)
        .unwrap_or_else(|e| panic!("bad prefix {start}/{prefix_len}: {e}"))
}

/// A range with a span of random magnitude, sometimes pinned to an end of
/// the address space.
fn random_range(rng: &mut StdRng) -> (Family, u128, u128) {
    let family = if rng.gen_bool(0.5) {
        Family::V4
    } else {
        Family::V6
    };
    let max = family.max();
    let magnitude = rng.gen_range(0..=family.bits());
    let span = if magnitude == 128 {
        rng.r#gen::<u128>()
    } else {
        rng.gen_range(0..(1u128 << magnitude))
    };
    let mut first = rng.gen_range(0..=max);
    match rng.gen_range(0..8) {
        0 => first = 0,
        1 => first = max - span.min(max),
        _ => {}
    }
    let last = first.saturating_add(span).min(max);
    (family, first, last)
}

/// The fewest aligned blocks that tile `[first, last]`, by dynamic
/// programming over the positions: an oracle that knows nothing of greedy
/// splitting. Only for short ranges.
fn fewest_blocks(bits: u32, first: u128, last: u128) -> usize {
    let len = usize::try_from(last - first + 1).unwrap_or_else(|_| panic!("range too long"));
    let mut best = vec![usize::MAX; len + 1];
    best[0] = 0;
    for offset in 0..len {
        if best[offset] == usize::MAX {
            continue;
        }
        let start = first + offset as u128;
        for host in 0..=bits.min(12) {
            let size = 1usize << host;
            let aligned = start.trailing_zeros() >= host;
            if aligned && offset + size <= len {
                best[offset + size] = best[offset + size].min(best[offset] + 1);
            }
        }
    }
    best[len]
}

fn check_split(family: Family, first: u128, last: u128) {
    let range = AddressRange::new(family.addr(first), family.addr(last))
        .unwrap_or_else(|| panic!("bad range {first}-{last}"));
    let nets = split_range(range);
    let shown = format!("{range} -> {nets:?}");
    assert!(!nets.is_empty(), "{shown}: empty");

    // Contiguous from first to last: covers exactly, disjoint.
    let mut expected_start = first;
    for (i, n) in nets.iter().enumerate() {
        assert_eq!(n.trunc(), *n, "{shown}: {n} has host bits");
        let start = widen(n.network());
        let end = widen(n.broadcast());
        assert_eq!(
            start, expected_start,
            "{shown}: block {i} ({n}) leaves a gap or overlaps"
        );
        if i + 1 == nets.len() {
            assert_eq!(end, last, "{shown}: last block ends at {end}, not {last}");
        } else {
            expected_start = end + 1;
        }
        // Maximal: the parent block pokes out of the range. The blocks are
        // then the range's maximal aligned blocks, which are unique, so
        // the list is minimal.
        if let Some(parent) = n.supernet() {
            let inside = widen(parent.network()) >= first && widen(parent.broadcast()) <= last;
            assert!(!inside, "{shown}: {n} could be its parent {parent}");
        }
    }

    // Two independent oracles: a dynamic programme for short ranges, and
    // the ipnet crate's own splitter for all.
    if last - first < 4096 {
        let fewest = fewest_blocks(family.bits(), first, last);
        assert_eq!(nets.len(), fewest, "{shown}: {fewest} blocks suffice");
    }
    let oracle: Vec<IpNet> = match (range.first(), range.last()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect(),
        (IpAddr::V6(a), IpAddr::V6(b)) => Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect(),
        _ => panic!("{shown}: mixed families"),
    };
    assert_eq!(nets, oracle, "{range}: ipnet disagrees");
}

#[test]
fn split_range_covers_exactly_and_minimally() {
    with_seed(|rng| {
        for _ in 0..CASES {
            let (family, first, last) = random_range(rng);
            check_split(family, first, last);
        }
    });
}

#[test]
fn split_range_edges() {
    for family in [Family::V4, Family::V6] {
        let max = family.max();
        for (first, last) in [
            (0, 0),
            (0, max),
            (max, max),
            (1, max),
            (0, max - 1),
            (1, max - 1),
        ] {
            check_split(family, first, last);
        }
    }
}

/// A prefix inside a small universe (198.51.100.0/24 or 2001:db8::/120),
/// so that random prefixes overlap, nest and neighbour each other; now and
/// then a large one covering the universe.
fn random_net(rng: &mut StdRng) -> IpNet {
    let (family, base, universe_len) = if rng.gen_bool(0.5) {
        (
            Family::V4,
            widen(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0))),
            24,
        )
    } else {
        (
            Family::V6,
            widen(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0))),
            120,
        )
    };
    let bits = family.bits();
    let prefix_len = if rng.gen_ratio(1, 40) {
        rng.gen_range(0..=universe_len)
    } else {
        rng.gen_range(universe_len..=bits)
    };
    let offset = rng.gen_range(0..256u128);
    // Leave host bits in now and then: normalise must ignore them.
    let value = base + offset;
    let addr = family.addr(value);
    let n = IpNet::new(addr, prefix_len as u8)
        .unwrap_or_else(|e| panic!("bad prefix {addr}/{prefix_len}: {e}"));
    if rng.gen_bool(0.8) { n.trunc() } else { n }
}

/// Every address of both universes and a few just outside them.
fn probes() -> Vec<IpAddr> {
    let v4 = widen(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)));
    let v6 = widen(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)));
    let mut probes = Vec::new();
    for offset in 0..256u128 {
        probes.push(Family::V4.addr(v4 + offset));
        probes.push(Family::V6.addr(v6 + offset));
    }
    for outside in [v4 - 1, v4 + 256, 0, u128::from(u32::MAX)] {
        probes.push(Family::V4.addr(outside));
    }
    for outside in [v6 - 1, v6 + 256, 0, u128::MAX] {
        probes.push(Family::V6.addr(outside));
    }
    probes
}

fn family_of(n: &IpNet) -> u8 {
    match n {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

fn check_normalised(input: &[IpNet], output: &[IpNet], probes: &[IpAddr]) {
    let shown = format!("normalise({input:?}) = {output:?}");
    for addr in probes {
        let before = input.iter().any(|n| n.contains(addr));
        let after = output.iter().any(|n| n.contains(addr));
        assert_eq!(before, after, "{shown}: {addr} changed membership");
    }
    for n in output {
        assert_eq!(n.trunc(), *n, "{shown}: {n} has host bits");
    }
    for pair in output.windows(2) {
        let key = |n: &IpNet| (family_of(n), widen(n.network()));
        assert!(
            key(&pair[0]) < key(&pair[1]),
            "{shown}: {} and {} out of order",
            pair[0],
            pair[1]
        );
    }
    for (i, a) in output.iter().enumerate() {
        for b in &output[i + 1..] {
            assert!(
                !a.contains(b) && !b.contains(a),
                "{shown}: {a} and {b} overlap"
            );
            assert!(!a.is_sibling(b), "{shown}: {a} and {b} are siblings");
        }
    }
}

#[test]
fn normalise_preserves_membership_and_is_canonical() {
    let probes = probes();
    with_seed(|rng| {
        for _ in 0..CASES {
            let count = rng.gen_range(0..24);
            let input: Vec<IpNet> = (0..count).map(|_| random_net(rng)).collect();
            let output = normalise(input.iter().copied());
            check_normalised(&input, &output, &probes);

            // Idempotent and blind to input order.
            assert_eq!(
                normalise(output.iter().copied()),
                output,
                "not idempotent on {output:?}"
            );
            let mut shuffled = input.clone();
            shuffled.shuffle(rng);
            assert_eq!(
                normalise(shuffled.iter().copied()),
                output,
                "order matters for {input:?}"
            );

            // ipnet's aggregation is an independent oracle for the
            // canonical form.
            let truncated: Vec<IpNet> = input.iter().map(IpNet::trunc).collect();
            let mut oracle = IpNet::aggregate(&truncated);
            oracle.sort_by_key(|n| (family_of(n), widen(n.network())));
            assert_eq!(output, oracle, "ipnet aggregates {input:?} differently");
        }
    });
}

#[test]
fn normalise_keeps_ranges_split() {
    // Splitting adjacent ranges and normalising the pieces is splitting
    // their union.
    with_seed(|rng| {
        for _ in 0..CASES {
            let (family, first, last) = random_range(rng);
            if first == last {
                continue;
            }
            let mid = rng.gen_range(first..last);
            let range = |a: u128, b: u128| {
                AddressRange::new(family.addr(a), family.addr(b))
                    .unwrap_or_else(|| panic!("bad range {a}-{b}"))
            };
            let pieces = split_range(range(first, mid))
                .into_iter()
                .chain(split_range(range(mid + 1, last)));
            assert_eq!(
                normalise(pieces),
                split_range(range(first, last)),
                "{} split at {}",
                range(first, last),
                family.addr(mid)
            );
        }
    });
}

#[test]
fn v4_and_v6_never_merge() {
    let input = [
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 1)),
        IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0),
            1,
        )),
        net(Family::V4, 1u128 << 31, 1),
        net(Family::V6, 0, 1),
    ];
    let output = normalise(input);
    assert_eq!(output, vec![net(Family::V4, 0, 0), net(Family::V6, 0, 0)]);
}
