//! Properties of port-range splitting, on seeded random ranges plus every
//! range with both ends in a small window.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_classifier::port_prefixes;

/// The prefixes of `port_prefixes(lo, hi)` are disjoint, cover exactly
/// `lo..=hi`, come in increasing order, and are each maximal (the parent
/// block sticks out of the range), which makes the cover the minimal one.
fn check(lo: u16, hi: u16) {
    let prefixes = port_prefixes(lo, hi);
    let fail = |why: String| -> ! { panic!("port_prefixes({lo}, {hi}) = {prefixes:?}: {why}") };
    let mut next = u32::from(lo);
    for &(port, len) in &prefixes {
        if len > 16 {
            fail(format!("length {len} past 16"));
        }
        let size = 1u32 << (16 - len);
        let first = u32::from(port);
        if first % size != 0 {
            fail(format!("{port}/{len} has host bits"));
        }
        // Contiguous from lo, in order: disjoint and no gap.
        if first != next {
            fail(format!("{port}/{len} starts at {first}, expected {next}"));
        }
        next = first + size;
        if len > 0 {
            let parent_size = size * 2;
            let parent_first = first - first % parent_size;
            let parent_last = parent_first + parent_size - 1;
            if parent_first >= u32::from(lo) && parent_last <= u32::from(hi) {
                fail(format!(
                    "{port}/{len} could merge into its parent {parent_first}-{parent_last}"
                ));
            }
        }
    }
    if next != u32::from(hi) + 1 {
        fail(format!(
            "cover ends at {}, expected {hi}",
            next.wrapping_sub(1)
        ));
    }
}

#[test]
fn random_ranges() {
    let mut rng = StdRng::seed_from_u64(0x9047);
    for _ in 0..20_000 {
        let (a, b) = (rng.gen_range(0..=u16::MAX), rng.gen_range(0..=u16::MAX));
        check(a.min(b), a.max(b));
        // Narrow ranges too, where alignment matters most.
        let lo = rng.gen_range(0..=u16::MAX);
        check(lo, lo.saturating_add(rng.gen_range(0..64)));
    }
}

#[test]
fn every_range_near_the_ends() {
    for window in [0u16..=70, 65_470..=65_535, 32_700..=32_840] {
        for lo in window.clone() {
            for hi in lo..=*window.end() {
                check(lo, hi);
            }
        }
    }
}

#[test]
fn count_is_minimal_on_known_ranges() {
    // Ranges whose minimal cover is easy to count by hand.
    let cases: &[(u16, u16, usize)] = &[
        (0, 65535, 1),
        (1, 65535, 16),
        (0, 65534, 16),
        (1, 65534, 30),
        (1024, 65535, 6),
        (32768, 32768, 1),
    ];
    for &(lo, hi, count) in cases {
        let got = port_prefixes(lo, hi).len();
        assert_eq!(
            got, count,
            "port_prefixes({lo}, {hi}) has {got} prefixes, expected {count}"
        );
    }
}
