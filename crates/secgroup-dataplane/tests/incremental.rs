//! An apply onto a data plane that already holds a policy leaves the
//! kernel maps exactly as an apply onto a fresh data plane does: after
//! every step of a random sequence of changes (lists changed, kept,
//! shared between interfaces; interfaces added and removed), each
//! interface's tables read back from the kernel (`dump_table`) equal
//! those of a fresh data plane given the same bindings. Tables whose
//! list did not change keep their id (they are never rewritten), and
//! nothing is left behind: every table in the kernel is one an
//! interface uses.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_classifier::testing::random_rule_list;
use secgroup_dataplane::{Dataplane, InterfaceBinding, TableDump};
use secgroup_model::Direction;
use secgroup_policy::RuleList;

/// Fake ifindexes: `sg_ifaces` is a plain map; no interface is needed to
/// hold an entry.
const IFACES: std::ops::Range<u32> = 5000..5012;
const STEPS: usize = 15;

fn list(rng: &mut StdRng, direction: Direction) -> RuleList {
    let n = rng.gen_range(0..60);
    let mut list = random_rule_list(rng, n);
    for rule in list.rules_mut() {
        rule.origin.direction = direction;
    }
    list
}

/// Interface → (ingress, egress) of one step.
type Lists = BTreeMap<u32, (RuleList, RuleList)>;

fn next_step(rng: &mut StdRng, before: &Lists, pool: &mut Vec<(RuleList, RuleList)>) -> Lists {
    let mut after = Lists::new();
    for ifindex in IFACES {
        let kept = before.get(&ifindex);
        match rng.gen_range(0..10) {
            // Gone (its entry is removed).
            0 => {}
            // A fresh pair, remembered for sharing later.
            1 | 2 => {
                let pair = (list(rng, Direction::Ingress), list(rng, Direction::Egress));
                pool.push(pair.clone());
                after.insert(ifindex, pair);
            }
            // One side changed.
            3 => {
                let (_, egress) = kept.cloned().unwrap_or_default();
                after.insert(ifindex, (list(rng, Direction::Ingress), egress));
            }
            // The lists of another interface (tables shared by content).
            4 if !pool.is_empty() => {
                let pair = pool[rng.gen_range(0..pool.len())].clone();
                after.insert(ifindex, pair);
            }
            // Unchanged (or back with empty lists if it was gone).
            _ => {
                after.insert(ifindex, kept.cloned().unwrap_or_default());
            }
        }
    }
    after
}

fn apply(dp: &mut Dataplane, lists: &Lists) {
    dp.apply(&bindings(lists))
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
}

fn bindings(lists: &Lists) -> Vec<InterfaceBinding<'_>> {
    lists
        .iter()
        .map(|(ifindex, (ingress, egress))| InterfaceBinding {
            ifindex: *ifindex,
            ingress,
            egress,
            keep_established: false,
            instance_uid: *ifindex,
            port_security: None,
            log: secgroup_policy::LogMode::None,
            enforcement: secgroup_policy::Enforcement::Enforce,
        })
        .collect()
}

/// Each interface's two tables as the kernel holds them.
fn kernel_view(dp: &Dataplane) -> BTreeMap<u32, [TableDump; 2]> {
    dp.interfaces()
        .map(|(ifindex, iface)| {
            let dump = |id| {
                dp.dump_table(id)
                    .unwrap_or_else(|e| panic!("dump: {}", error_chain(&e)))
            };
            (ifindex, [dump(iface.table[0]), dump(iface.table[1])])
        })
        .collect()
}

#[test]
fn incremental_applies_leave_the_maps_as_a_fresh_apply_does() {
    if !kernel_tests_enabled("incremental_applies_leave_the_maps_as_a_fresh_apply_does") {
        return;
    }
    let seed: u64 = rand::thread_rng().r#gen();
    eprintln!("incremental: seed {seed}");
    // As tests and tools apply (frees inside apply), frees deferred until
    // after the change is published, and as the daemon does: replaced
    // tables retired, their grace period waited for on another thread,
    // deleted later (sometimes only after more applies).
    for frees in [Frees::Inline, Frees::Deferred, Frees::Reaped] {
        run_sequence(seed, frees);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frees {
    Inline,
    Deferred,
    Reaped,
}

fn run_sequence(seed: u64, frees: Frees) {
    let deferred = frees != Frees::Inline;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut dp = load_dataplane();
    dp.set_deferred_frees(deferred);
    let mut retired = Vec::new();
    let mut lists = Lists::new();
    let mut pool = Vec::new();
    let mut kept_tables = 0;
    let mut seen: HashSet<u32> = HashSet::new();
    for step in 0..STEPS {
        let next = next_step(&mut rng, &lists, &mut pool);
        let ids_before: BTreeMap<u32, [u32; 2]> =
            dp.interfaces().map(|(i, iface)| (i, iface.table)).collect();
        apply(&mut dp, &next);

        // Unchanged lists keep their tables.
        for (ifindex, (ingress, egress)) in &next {
            let Some((old_in, old_eg)) = lists.get(ifindex) else {
                continue;
            };
            let ids = dp
                .interface(*ifindex)
                .unwrap_or_else(|| panic!("step {step}: {ifindex} has no entry"))
                .table;
            for (d, (old, new)) in [(old_in, ingress), (old_eg, egress)]
                .into_iter()
                .enumerate()
            {
                if old == new {
                    assert_eq!(
                        Some(ids[d]),
                        ids_before.get(ifindex).map(|t| t[d]),
                        "seed {seed} frees {frees:?} step {step}: interface {ifindex}'s unchanged list got a new table"
                    );
                    kept_tables += 1;
                }
            }
        }

        let mut fresh = load_dataplane();
        apply(&mut fresh, &next);
        let (ours, theirs) = (kernel_view(&dp), kernel_view(&fresh));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "seed {seed} frees {frees:?} step {step}: interfaces with an entry"
        );
        for (ifindex, tables) in &ours {
            assert_eq!(
                tables, &theirs[ifindex],
                "seed {seed} frees {frees:?} step {step}: interface {ifindex}'s tables in the kernel differ from a fresh apply's"
            );
            assert!(
                !tables[0].is_empty() || next[ifindex].0.rules.is_empty(),
                "seed {seed} frees {frees:?} step {step}: interface {ifindex} has an empty ingress table in the kernel"
            );
        }
        // Deferred: the tables in use are right before the old ones go.
        if frees == Frees::Deferred {
            dp.free_unused_now();
        }
        if frees == Frees::Reaped {
            retired.extend(dp.retire_unused());
            // Two steps of three leave the garbage for later.
            if step % 3 != 2 {
                lists = next;
                continue;
            }
            let barrier = dp
                .grace_barrier()
                .unwrap_or_else(|e| panic!("grace barrier: {}", error_chain(&e)));
            std::thread::spawn(move || barrier.wait())
                .join()
                .unwrap_or_else(|_| panic!("the grace thread panicked"))
                .unwrap_or_else(|e| panic!("waiting for a grace period: {e}"));
            if let Some(token) = retired.last() {
                dp.grace_elapsed(*token);
            }
            retired.clear();
            while dp.reap_step() {}
            assert!(
                !dp.reaping_pending() && dp.retired_entries() == 0,
                "seed {seed} step {step}: retired tables left after their grace period"
            );
        }
        // No leftovers: the kernel holds exactly the tables in use.
        let used: HashSet<u32> = dp.interfaces().flat_map(|(_, iface)| iface.table).collect();
        assert_eq!(
            dp.table_count(),
            used.len(),
            "seed {seed} frees {frees:?} step {step}: tables kept that no interface uses"
        );
        seen.extend(used.iter().copied());
        for id in seen.difference(&used) {
            let left = dp
                .dump_table(*id)
                .unwrap_or_else(|e| panic!("dump: {}", error_chain(&e)));
            assert!(
                left.is_empty(),
                "seed {seed} frees {frees:?} step {step}: freed table {id} still has entries in the kernel: {left:?}"
            );
        }
        lists = next;
    }
    assert!(kept_tables > 30, "only {kept_tables} unchanged lists seen");
}

/// A binding set's entries per table map kind (rules, classes, v4, v6,
/// l4), as the classifier builds its tables: an upper bound of what each
/// kernel map receives (v4 and v6 entries split between two maps each).
fn entries(lists: &Lists) -> [usize; 5] {
    let mut sum = [0; 5];
    for (ingress, egress) in lists.values() {
        for list in [ingress, egress] {
            let s = secgroup_classifier::build(list)
                .unwrap_or_else(|e| panic!("building a table: {e}"))
                .stats();
            for (total, n) in
                sum.iter_mut()
                    .zip([s.rules, s.classes, s.v4_entries, s.v6_entries, s.l4_entries])
            {
                *total += n;
            }
        }
    }
    sum
}

fn fresh_lists(rng: &mut StdRng, rules: usize) -> Lists {
    let mut side = |direction| {
        let mut list = random_rule_list(rng, rules);
        for rule in list.rules_mut() {
            rule.origin.direction = direction;
        }
        list
    };
    IFACES
        .take(6)
        .map(|ifindex| (ifindex, (side(Direction::Ingress), side(Direction::Egress))))
        .collect()
}

/// Garbage waiting for deletion takes room only until a table needs it:
/// with table maps sized for two policies but not three, a small change
/// next to one policy's garbage leaves the garbage alone, a whole new
/// policy deletes it first and is applied, and one too large for the maps
/// even then fails whole, the policy in force untouched.
#[test]
fn garbage_makes_room_only_when_a_table_needs_it() {
    if !kernel_tests_enabled("garbage_makes_room_only_when_a_table_needs_it") {
        return;
    }
    let seed: u64 = rand::thread_rng().r#gen();
    eprintln!("garbage room: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let [a, b, c] = [(); 3].map(|()| fresh_lists(&mut rng, 40));
    let mut small = b.clone();
    let first = *small.keys().next().unwrap_or_else(|| unreachable!());
    small.get_mut(&first).unwrap_or_else(|| unreachable!()).0 = random_rule_list(&mut rng, 2);
    let [ea, eb, ec] = [&a, &b, &c].map(entries);
    // Room for the tables of b and c together (old and new tables are in
    // the maps at once during an apply), and for a's garbage beside b
    // and the small change's new table; not for a, b and c at once.
    let headroom = 64;
    let capacity = (0..5)
        .map(|k| (eb[k] + ec[k]).max(ea[k] + eb[k] + 16))
        .max()
        .unwrap_or(0)
        + headroom;
    let overflows = (0..5).any(|k| ea[k] + eb[k] + ec[k] > capacity + headroom);
    assert!(
        overflows,
        "seed {seed}: the lists are too small to need the garbage's room ({ea:?} {eb:?} {ec:?}, capacity {capacity})"
    );
    let options = secgroup_dataplane::LoadOptions {
        table_capacity: Some(u32::try_from(capacity).unwrap_or(u32::MAX)),
        ..Default::default()
    };
    let (mut dp, _) = Dataplane::load(&options)
        .unwrap_or_else(|e| panic!("loading the data plane: {}", error_chain(&e)));
    dp.set_deferred_frees(true);
    apply(&mut dp, &a);
    assert_eq!(dp.retire_unused(), None, "nothing replaced yet");
    apply(&mut dp, &b);
    assert!(
        dp.retire_unused().is_some(),
        "seed {seed}: a's tables retired"
    );
    let garbage = dp.retired_entries();

    // One table changed: written beside the garbage, which stays.
    apply(&mut dp, &small);
    assert!(
        dp.reaping_pending() && dp.retired_entries() == garbage,
        "seed {seed}: a small change deleted garbage it had room beside"
    );
    assert!(dp.retire_unused().is_some());

    // A whole new policy: no room beside the garbage, which goes first.
    apply(&mut dp, &c);
    assert!(
        !dp.reaping_pending() && dp.retired_entries() == 0,
        "seed {seed}: the garbage was not deleted to make room"
    );
    let mut fresh = load_dataplane();
    apply(&mut fresh, &c);
    assert_eq!(
        kernel_view(&dp),
        kernel_view(&fresh),
        "seed {seed}: after making room the kernel holds other tables than a fresh apply"
    );
    assert!(dp.retire_unused().is_some());

    // Too large for the maps even without garbage: refused whole.
    let too_big = fresh_lists(&mut rng, 120);
    let refused = dp.apply(&bindings(&too_big));
    match refused {
        Err(e) => assert!(
            e.is_map_full(),
            "seed {seed}: refused, but not for want of room: {}",
            error_chain(&e)
        ),
        Ok(_) => panic!("seed {seed}: a policy larger than the maps was applied"),
    }
    assert_eq!(
        kernel_view(&dp),
        kernel_view(&fresh),
        "seed {seed}: a refused apply changed the tables in force"
    );
}
