//! Counter slots: every interface with an `sg_ifaces` entry counts its
//! verdicts in the per-CPU array `sg_slot_stats` at `slot * DIR_MAX + dir`
//! (an array lookup the verifier inlines, where a hash lookup by ifindex
//! cost every packet a hash computation). The slot is part of the
//! interface's entry, so it survives restarts with the pins, and is kept
//! for as long as the interface keeps an entry.
//!
//! A slot freed by an interface whose entry went is handed out again only
//! by a later apply, zeroed first; what the interface had counted moves
//! to `sg_if_stats` under its ifindex, where packets of an interface
//! without an entry count, so its totals stay readable. Interfaces beyond
//! [`MAX_IFACE_SLOTS`] get [`NO_SLOT`] and count there too (a hash lookup
//! per packet, as before slots).

use std::collections::{HashMap, HashSet};

use aya::maps::PerCpuValues;

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, names};

/// Gives every entry of `wanted` a slot: the one its interface holds in
/// `view`, or the lowest one nobody in `view` or `wanted` holds, or
/// [`NO_SLOT`] when none is left. Returns the slots handed out anew, to be
/// zeroed before any entry names them.
pub(crate) fn assign(view: &HashMap<u32, Iface>, wanted: &mut [(u32, Iface)]) -> Vec<u32> {
    let mut taken: HashSet<u32> = view.values().map(|i| i.slot).collect();
    let mut kept: HashSet<u32> = HashSet::new();
    let mut fresh = Vec::new();
    let mut next = 0u32;
    for (ifindex, iface) in wanted.iter_mut() {
        // A slot read back from the kernel is trusted only if in range and
        // not claimed twice (a tampered entry could name any).
        if let Some(old) = view.get(ifindex)
            && old.slot < MAX_IFACE_SLOTS
            && kept.insert(old.slot)
        {
            iface.slot = old.slot;
            continue;
        }
        while next < MAX_IFACE_SLOTS && taken.contains(&next) {
            next += 1;
        }
        if next == MAX_IFACE_SLOTS {
            iface.slot = NO_SLOT;
            continue;
        }
        taken.insert(next);
        iface.slot = next;
        fresh.push(next);
    }
    fresh
}

fn zeros() -> Result<PerCpuValues<IfaceStats>, DataplaneError> {
    let cpus = aya::util::nr_cpus().map_err(|(path, source)| DataplaneError::Io {
        action: "reading the possible CPUs from",
        path: path.into(),
        source,
    })?;
    PerCpuValues::try_from(vec![IfaceStats::default(); cpus]).map_err(|source| DataplaneError::Io {
        action: "sizing the per-CPU values of",
        path: names::SLOT_STATS.into(),
        source,
    })
}

/// Zeroes the counters of `slots` (both directions).
pub(crate) fn zero(maps: &mut Maps, slots: &[u32]) -> Result<(), DataplaneError> {
    for slot in slots {
        for dir in 0..DIR_MAX as u32 {
            maps.slot_stats
                .set(slot * DIR_MAX as u32 + dir, zeros()?, 0)
                .map_err(map_err(names::SLOT_STATS))?;
        }
    }
    Ok(())
}

/// Adds what `iface`'s slot counted to `sg_if_stats` under `ifindex`: its
/// entry is gone, and that is where the interface's counts are read now.
/// Best effort: a failure loses counts, never enforcement.
pub(crate) fn retire(maps: &mut Maps, ifindex: u32, iface: &Iface) {
    if iface.slot >= MAX_IFACE_SLOTS {
        return;
    }
    for dir in 0..DIR_MAX as u32 {
        let Ok(counted) = maps.slot_stats.get(&(iface.slot * DIR_MAX as u32 + dir), 0) else {
            continue;
        };
        let key = IfaceStatsKey { ifindex, dir };
        let mut sum: Vec<IfaceStats> = match maps.if_stats.get(&key, 0) {
            Ok(before) => before.iter().copied().collect(),
            Err(_) => vec![IfaceStats::default(); counted.len()],
        };
        for (total, add) in sum.iter_mut().zip(counted.iter()) {
            for r in 0..Reason::COUNT {
                total.packets[r] += add.packets[r];
                total.bytes[r] += add.bytes[r];
            }
        }
        if let Ok(values) = PerCpuValues::try_from(sum) {
            let _ = maps.if_stats.insert(key, values, 0);
        }
    }
}

/// One interface's counts of one direction: its slot's, if it has an
/// entry, plus what counted under its ifindex (without an entry, or
/// retired from an earlier slot), summed over CPUs.
pub(crate) fn sum<'a>(parts: impl Iterator<Item = &'a IfaceStats>) -> IfaceStats {
    let mut total = IfaceStats::default();
    for s in parts {
        for r in 0..Reason::COUNT {
            total.packets[r] += s.packets[r];
            total.bytes[r] += s.bytes[r];
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: u32) -> Iface {
        Iface {
            slot,
            ..Iface::default()
        }
    }

    #[test]
    fn slots_are_kept_reused_only_when_free_and_bounded() {
        let view: HashMap<u32, Iface> = [(10, entry(0)), (11, entry(2)), (12, entry(1))].into();
        // 10 keeps 0, 11 keeps 2; 12 leaves (its slot 1 stays taken for
        // this apply); 13 and 14 are new.
        let mut wanted = vec![
            (10, Iface::default()),
            (13, Iface::default()),
            (11, Iface::default()),
            (14, Iface::default()),
        ];
        let fresh = assign(&view, &mut wanted);
        let slots: Vec<u32> = wanted.iter().map(|(_, i)| i.slot).collect();
        assert_eq!(slots, vec![0, 3, 2, 4]);
        assert_eq!(fresh, vec![3, 4]);
        // A slot claimed twice (tampered pins) or out of range is not trusted.
        let view: HashMap<u32, Iface> =
            [(1, entry(5)), (2, entry(5)), (3, entry(MAX_IFACE_SLOTS))].into();
        let mut wanted = vec![
            (1, Iface::default()),
            (2, Iface::default()),
            (3, Iface::default()),
        ];
        assign(&view, &mut wanted);
        let mut slots: Vec<u32> = wanted.iter().map(|(_, i)| i.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 3, "{wanted:?}");
        assert!(slots.iter().all(|s| *s < MAX_IFACE_SLOTS));
        // More interfaces than slots: the last one counts by ifindex.
        let mut many: Vec<(u32, Iface)> = (0..=MAX_IFACE_SLOTS)
            .map(|i| (i, Iface::default()))
            .collect();
        assert_eq!(
            assign(&HashMap::new(), &mut many).len(),
            MAX_IFACE_SLOTS as usize
        );
        assert_eq!(many[MAX_IFACE_SLOTS as usize].1.slot, NO_SLOT);
    }
}
