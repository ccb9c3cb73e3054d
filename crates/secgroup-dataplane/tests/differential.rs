//! The kernel program must agree with the reference evaluator on every
//! packet: random rule lists (mixed actions, overlapping v4/v6 prefixes,
//! port ranges, multi-service rules, several groups, some rules logged)
//! bound with a random log mode and enforcement × random packets biased
//! to rule boundaries, through both hooks, comparing verdict, reason and
//! matched rule position, and, run again as real traffic, whether the
//! packet passes and becomes an event naming the same rule.
//!
//! SECGROUP_DIFF_SEED reruns one seed; SECGROUP_DIFF_LISTS sets how many
//! rule lists to try.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_classifier::testing::{describe, random_packet, random_rule_list};
use secgroup_dataplane::abi::NO_RULE;
use secgroup_dataplane::{Dataplane, EventLimits, EventStream, InterfaceBinding};
use secgroup_model::{Direction, InstanceId};
use secgroup_policy::{Enforcement, InstancePolicy, LogMode, PortSecurity, RuleList, Verdict};

const PACKETS_PER_LIST: usize = 60;

/// Gives each packet its own local address: a flow the kernel accepted is
/// tracked, and a later packet of the same flow would be decided by
/// conntrack, not by the rules under test. Only the remote side matters to
/// the rules.
fn unique_local(n: u32, remote: IpAddr) -> IpAddr {
    match remote {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0,
            0,
            0,
            (n >> 16) as u16,
            n as u16,
        )),
    }
}

/// An instance of this host enforcing `list` in its direction, with a
/// random log mode and enforcement: the evaluator's view of a binding.
fn instance(rng: &mut StdRng, list: &RuleList, direction: Direction) -> InstancePolicy {
    let (ingress, egress) = match direction {
        Direction::Ingress => (list.clone(), RuleList::default()),
        Direction::Egress => (RuleList::default(), list.clone()),
    };
    InstancePolicy {
        id: InstanceId::new("ins-diff").unwrap_or_else(|| panic!("bad id")),
        interface: Some("lo".to_owned()),
        mac: None,
        ips: Vec::new(),
        security_groups: Vec::new(),
        port_security: PortSecurity {
            enabled: false,
            mac: None,
            allowed: Vec::new(),
        },
        log: [LogMode::None, LogMode::Drops, LogMode::All][rng.gen_range(0..3)],
        enforcement: if rng.gen_bool(0.3) {
            Enforcement::Audit
        } else {
            Enforcement::Enforce
        },
        ingress,
        egress,
    }
}

/// Runs `p` again as real traffic (from yet another local address, so a
/// new flow): whether it passed must be the evaluator's `passes`, and it
/// must give exactly one event, naming the same rule, iff `logged`.
fn check_logged(
    dp: &Dataplane,
    events: &mut EventStream,
    direction: Direction,
    p: &secgroup_policy::Packet,
    verdict: &Verdict,
) -> Result<(), String> {
    let passed = dp
        .test_runner()
        .run_unrequested(
            Dataplane::hook_for(direction),
            &frame_for(direction, p),
            None,
            &[],
        )
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {}", error_chain(&e)))
        .passed;
    let mut got = Vec::new();
    events.drain(|e| got.push(e));
    let (reason, position) = expected_reason(verdict);
    let want = verdict
        .logged
        .then_some((reason, (position != NO_RULE).then_some(position)));
    let kernel: Vec<_> = got.iter().map(|e| (e.reason, e.rule_position)).collect();
    if passed != verdict.passes || kernel != want.into_iter().collect::<Vec<_>>() {
        return Err(format!(
            "{direction} {p} as traffic: evaluator says {verdict} (passes {}, logged {}); \
             kernel passed: {passed}, events: {kernel:?}",
            verdict.passes, verdict.logged
        ));
    }
    Ok(())
}

fn run_seed(seed: u64, lists: usize) {
    let mut dp = load_dataplane();
    // No rate limit worth the name: every logged verdict must arrive.
    let unlimited = EventLimits::new(EventLimits::MAX_RATE, EventLimits::MAX_BURST)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    dp.set_event_limits(unlimited)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let mut events = dp
        .events()
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut packet_no = 0u32;
    for round in 0..lists {
        // Mostly small lists (cheap, dense in edge cases), some large ones.
        let n_rules = match rng.gen_range(0..100) {
            0..=59 => rng.gen_range(0..12),
            60..=94 => rng.gen_range(12..120),
            _ => rng.gen_range(120..=600),
        };
        let list = random_rule_list(&mut rng, n_rules);
        let direction = list
            .rules
            .first()
            .map_or(Direction::Ingress, |r| r.origin.direction);
        let inst = instance(&mut rng, &list, direction);
        dp.apply(&[InterfaceBinding {
            ifindex: TEST_IFINDEX,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: inst.log,
            enforcement: inst.enforcement,
        }])
        .unwrap_or_else(|e| panic!("seed {seed} round {round}: apply: {}", error_chain(&e)));

        for _ in 0..PACKETS_PER_LIST {
            let mut p = random_packet(&mut rng, &list);
            packet_no += 1;
            p.local = unique_local(packet_no, p.remote);
            let verdict = inst.evaluate(direction, &p);
            let frame = frame_for(direction, &p);
            let outcome = run_frame(&dp, direction, &frame);
            packet_no += 1;
            p.local = unique_local(packet_no, p.remote);
            let checked = compare_verdict(&verdict, direction, &p, &outcome)
                .and_then(|()| check_logged(&dp, &mut events, direction, &p, &verdict));
            if let Err(why) = checked {
                panic!(
                    "DIFFERENTIAL MISMATCH (seed {seed}, round {round}; rerun with SECGROUP_DIFF_SEED={seed})\n\
                     {why}\nlog {}, enforcement {:?}; rule list:\n{}",
                    inst.log.as_str(),
                    inst.enforcement,
                    describe(&list)
                );
            }
        }
    }
}

#[test]
fn kernel_agrees_with_the_reference_evaluator() {
    if !kernel_tests_enabled("kernel_agrees_with_the_reference_evaluator") {
        return;
    }
    let lists: usize = std::env::var("SECGROUP_DIFF_LISTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seeds: Vec<u64> = match std::env::var("SECGROUP_DIFF_SEED") {
        Ok(seed) => vec![
            seed.parse()
                .unwrap_or_else(|e| panic!("SECGROUP_DIFF_SEED: {e}")),
        ],
        Err(_) => {
            let base: u64 = rand::thread_rng().r#gen();
            eprintln!("differential: base seed {base}");
            (0..4).map(|i| base.wrapping_add(i)).collect()
        }
    };
    let per_seed = lists.div_ceil(seeds.len());
    for seed in seeds {
        run_seed(seed, per_seed);
    }
}

/// The shipped example directory (every seed scenario, templates, sets,
/// group references, IPv6) through both hooks: for each local instance,
/// random packets biased to its rules' edges get the evaluator's verdict.
#[test]
fn kernel_agrees_with_the_evaluator_on_the_example_rules() {
    if !kernel_tests_enabled("kernel_agrees_with_the_evaluator_on_the_example_rules") {
        return;
    }
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let rules = secgroup_rulesdir::load_paths(&[examples], &secgroup_model::Limits::default())
        .unwrap_or_else(|e| panic!("config/examples does not load: {}", error_chain(&e)));
    let policy = secgroup_policy::compile(&rules);
    let mut dp = load_dataplane();
    let seed: u64 = rand::thread_rng().r#gen();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut packet_no = 0u32;
    let mut local_instances = 0;
    for inst in policy.instances.values().filter(|i| i.interface.is_some()) {
        local_instances += 1;
        dp.apply(&[InterfaceBinding {
            ifindex: TEST_IFINDEX,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }])
        .unwrap_or_else(|e| panic!("{}: apply: {}", inst.id, error_chain(&e)));
        for direction in Direction::ALL {
            let list = inst.rules(direction);
            for _ in 0..300 {
                let mut p = random_packet(&mut rng, list);
                packet_no += 1;
                p.local = unique_local(packet_no, p.remote);
                let outcome = run_frame(&dp, direction, &frame_for(direction, &p));
                if let Err(why) = compare(list, direction, &p, &outcome) {
                    panic!(
                        "{} (seed {seed}): {why}\nrules:\n{}",
                        inst.id,
                        describe(list)
                    );
                }
            }
        }
    }
    assert!(
        local_instances >= 5,
        "config/examples has only {local_instances} local instances"
    );
}
