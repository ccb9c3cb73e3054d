//! Control-plane figures: how long a rules directory takes to become
//! tables, how long a change takes to be enforced, whether packets suffer
//! while changes land, and what the maps cost in kernel memory.
//!
//! Apply and hot swap use one configuration: 100 VMs with 1,000 rules per
//! direction each (a shared base group and nine of their own). VM 0 is
//! bound to the loopback ifindex so test frames can run on it; the others
//! are bound to made-up ifindexes, which `apply` does not mind: it writes
//! maps, it does not touch interfaces.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use secgroup_dataplane::packet::{Packet as Frame, tcp_flags};
use secgroup_dataplane::{Dataplane, Hook, InterfaceBinding, LoadOptions, TestRunner};
use secgroup_model::{Action, Direction, Ports, Protocol};
use secgroup_policy::{EffectiveRule, Enforcement, LogMode, Matched, Packet, Policy, RuleList};

use crate::record::{Record, Results};
use crate::rules::{self, Corpus};
use crate::stats::{median, percentile};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Effective rules of the compile figures.
    pub compile_sizes: Vec<usize>,
    pub compile_runs: usize,
    /// Changes timed per kind of change.
    pub apply_changes: usize,
    /// Policy swaps under continuous classification.
    pub swaps: usize,
    /// Rule-file changes timed from bytes to enforced tables.
    pub change_to_enforced: usize,
}

const LOOPBACK: u32 = 1;
/// Made-up ifindexes of VMs 1..: far above anything a test machine has.
const FAKE_IFINDEX_BASE: u32 = 100_000;
/// Classifying threads during the swaps (the hot-swap test uses 3; the
/// benchmark machine has 2 cores and the swapping thread needs one too).
const CLASSIFIERS: usize = 2;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Compile time: `secgroup_model::load` + `secgroup_policy::compile` +
/// `secgroup_classifier::build` of every list, for each corpus size.
pub fn compile_time(settings: &Settings, results: &mut Results) -> Result<()> {
    for &size in &settings.compile_sizes {
        let corpus = Corpus::for_compile(size);
        let files = corpus.files();
        let (mut load, mut compile, mut build, mut total) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..settings.compile_runs {
            let started = Instant::now();
            let rule_set = rules::load(&files)?;
            let loaded = Instant::now();
            let policy = secgroup_policy::compile(&rule_set);
            let compiled = Instant::now();
            let tables = build_all(&policy)?;
            let built = Instant::now();
            std::hint::black_box(tables);
            load.push(ms(loaded - started));
            compile.push(ms(compiled - loaded));
            build.push(ms(built - compiled));
            total.push(ms(built - started));
        }
        let rules = corpus.effective_rules();
        for (metric, samples) in [
            ("load-ms", &load),
            ("compile-ms", &compile),
            ("build-ms", &build),
            ("total-ms", &total),
        ] {
            if let Some(m) = median(samples) {
                results.push(Record::new("compile", "secgroup", rules, metric, m, "ms"));
            }
        }
    }
    Ok(())
}

/// Classifier tables of every list of every VM on this host.
pub fn build_all(policy: &Policy) -> Result<Vec<secgroup_classifier::Table>> {
    let mut tables = Vec::new();
    for instance in policy.instances.values().filter(|i| i.interface.is_some()) {
        for list in [&instance.ingress, &instance.egress] {
            tables.push(
                secgroup_classifier::build(list)
                    .with_context(|| format!("building {}", instance.id))?,
            );
        }
    }
    Ok(tables)
}

/// The per-VM lists of the apply configuration, in binding order.
#[derive(Clone)]
struct Host {
    ingress: Vec<RuleList>,
    egress: Vec<RuleList>,
}

impl Host {
    fn from_policy(policy: &Policy) -> Host {
        let vms: Vec<_> = policy
            .instances
            .values()
            .filter(|i| i.interface.is_some())
            .collect();
        Host {
            ingress: vms.iter().map(|i| i.ingress.clone()).collect(),
            egress: vms.iter().map(|i| i.egress.clone()).collect(),
        }
    }

    fn bindings(&self) -> Vec<InterfaceBinding<'_>> {
        self.ingress
            .iter()
            .zip(&self.egress)
            .enumerate()
            .map(|(i, (ingress, egress))| InterfaceBinding {
                ifindex: if i == 0 {
                    LOOPBACK
                } else {
                    FAKE_IFINDEX_BASE + i as u32
                },
                ingress,
                egress,
                keep_established: false,
                instance_uid: i as u32 + 1,
                port_security: None,
                log: LogMode::None,
                enforcement: Enforcement::Enforce,
            })
            .collect()
    }
}

fn flip(rule: &mut EffectiveRule) {
    rule.action = match rule.action {
        Action::Accept => Action::Drop,
        Action::Drop => Action::Accept,
    };
}

/// Apply latency, hot-swap losses, map memory and in-process
/// change-to-enforced time, all on the apply configuration.
pub fn apply_and_swap(settings: &Settings, results: &mut Results) -> Result<()> {
    let corpus = Corpus::for_apply();
    let files = corpus.files();
    let policy = rules::compile(&files)?;
    let base = Host::from_policy(&policy);
    let per_list = corpus.rules_per_list();
    let (mut dp, _) = Dataplane::load(&LoadOptions::default()).context("loading the data plane")?;

    let report = dp.apply(&base.bindings()).context("initial apply")?;
    results.push(Record::new(
        "apply",
        "initial",
        per_list,
        "ms",
        ms(report.duration),
        "ms",
    ));
    results.push(Record::new(
        "apply",
        "initial",
        per_list,
        "tables-written",
        report.tables_written as f64,
        "tables",
    ));

    // A change to the shared base group: every VM's ingress list changes,
    // 100 tables of 1,000 rules are built and written, 100 freed.
    let mut samples = Vec::new();
    for change in 0..settings.apply_changes {
        let mut host = base.clone();
        for list in &mut host.ingress {
            flip(&mut list.rules_mut()[change % rules::GROUP_QUOTA]);
        }
        let report = dp
            .apply(&host.bindings())
            .context("applying a base-group change")?;
        samples.push(ms(report.duration));
    }
    push_latencies(results, "apply", "shared-group-change", per_list, &samples);

    // A change to one VM's own group: one table built and written.
    let mut host = base.clone();
    dp.apply(&host.bindings())
        .context("re-applying the base policy")?;
    let mut samples = Vec::new();
    let own_rules = per_list - rules::GROUP_QUOTA;
    for change in 0..settings.apply_changes {
        let vm = change % host.ingress.len();
        let position = rules::GROUP_QUOTA + (change / host.ingress.len()) % own_rules;
        flip(&mut host.ingress[vm].rules_mut()[position]);
        let report = dp
            .apply(&host.bindings())
            .context("applying a one-VM change")?;
        samples.push(ms(report.duration));
    }
    push_latencies(results, "apply", "one-vm-change", per_list, &samples);

    // The RCU grace period alone: every apply that frees tables waits for
    // exactly one, whatever the number of interfaces.
    let mut samples = Vec::new();
    for _ in 0..settings.apply_changes.min(20) {
        let started = Instant::now();
        dp.rcu_barrier()
            .context("waiting for an RCU grace period")?;
        samples.push(ms(started.elapsed()));
    }
    push_latencies(results, "apply", "rcu-barrier", per_list, &samples);

    dp.apply(&base.bindings())
        .context("re-applying the base policy")?;
    hot_swap(settings, &mut dp, &base, per_list, results)?;
    map_memory(per_list, results)?;

    // Bytes to enforced tables, in process: what secgroupd will do on a
    // reload, minus the file watcher (see daemon.rs).
    let mut samples = Vec::new();
    for change in 0..settings.change_to_enforced {
        let changed = corpus.files_with_flipped_base_rule(Some(change % rules::GROUP_QUOTA));
        let started = Instant::now();
        let policy = rules::compile(&changed)?;
        let host = Host::from_policy(&policy);
        dp.apply(&host.bindings())
            .context("applying a reloaded rule set")?;
        samples.push(ms(started.elapsed()));
    }
    push_latencies(
        results,
        "change-to-enforced",
        "in-process",
        per_list,
        &samples,
    );
    Ok(())
}

fn push_latencies(
    results: &mut Results,
    scenario: &str,
    variant: &str,
    rules: usize,
    samples: &[f64],
) {
    for (metric, value) in [
        ("p50-ms", percentile(samples, 50.0)),
        ("p99-ms", percentile(samples, 99.0)),
        ("max-ms", percentile(samples, 100.0)),
    ] {
        if let Some(v) = value {
            results.push(Record::new(scenario, variant, rules, metric, v, "ms"));
        }
    }
    results.push(Record::new(
        scenario,
        variant,
        rules,
        "changes",
        samples.len() as f64,
        "changes",
    ));
}

/// Swaps between two full host policies (A: base; B: a fifth of the base
/// group's rules flipped, on every VM) while threads classify frames on
/// VM 0. A frame's verdict must be the one A or B gives: "lost" counts
/// frames both accept that were dropped, "misclassified" any other verdict
/// neither gives.
fn hot_swap(
    settings: &Settings,
    dp: &mut Dataplane,
    base: &Host,
    per_list: usize,
    results: &mut Results,
) -> Result<()> {
    let mut changed = base.clone();
    for list in &mut changed.ingress {
        for position in (0..rules::GROUP_QUOTA).step_by(5) {
            flip(&mut list.rules_mut()[position]);
        }
    }
    let (a, b) = (
        Arc::new(base.ingress[0].clone()),
        Arc::new(changed.ingress[0].clone()),
    );
    let probes = Arc::new(probes(&a));
    let runner = dp.test_runner();
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());

    let workers: Vec<_> = (0..CLASSIFIERS)
        .map(|t| {
            let (runner, stop, counts, probes, a, b) = (
                runner.clone(),
                stop.clone(),
                counts.clone(),
                probes.clone(),
                a.clone(),
                b.clone(),
            );
            std::thread::spawn(move || {
                classify_until(&runner, &stop, &counts, &probes, &a, &b, t as u64)
            })
        })
        .collect();

    let mut outcome = Ok(());
    for swap in 0..settings.swaps {
        let host = if swap % 2 == 0 { &changed } else { base };
        if let Err(e) = dp.apply(&host.bindings()) {
            outcome = Err(e).context(format!("swap {swap}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a classifying thread panicked"))??;
    }
    outcome?;
    let scenario = "hot-swap";
    results.push(Record::new(
        scenario,
        "secgroup",
        per_list,
        "swaps",
        settings.swaps as f64,
        "swaps",
    ));
    for (metric, counter) in [
        ("classified", &counts.classified),
        ("lost", &counts.lost),
        ("misclassified", &counts.misclassified),
    ] {
        let value = counter.load(Ordering::Relaxed) as f64;
        results.push(Record::new(
            scenario, "secgroup", per_list, metric, value, "packets",
        ));
    }
    Ok(())
}

/// The IPv4 documentation /24s: local addresses of hot-swap probes.
const LOCAL_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

#[derive(Default)]
struct Counts {
    classified: AtomicU64,
    lost: AtomicU64,
    misclassified: AtomicU64,
}

/// What one probe looks like to a list: (accepted, matching position).
fn expected(list: &RuleList, packet: &Packet) -> (bool, Option<usize>) {
    let verdict = list.evaluate(Direction::Ingress, packet);
    let position = match verdict.matched {
        Matched::Rule { position, .. } => Some(position),
        Matched::Implicit(_) | Matched::DefaultDrop => None,
    };
    (verdict.action == Action::Accept, position)
}

fn classify_until(
    runner: &TestRunner,
    stop: &AtomicBool,
    counts: &Counts,
    probes: &[Packet],
    a: &RuleList,
    b: &RuleList,
    thread: u64,
) -> Result<()> {
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mut probe = probes[(n % probes.len() as u64) as usize];
        // A flow never seen before (for 24 million frames per thread), so
        // the rules decide and not conntrack.
        probe.src_port = 1024 + (n % 64_000) as u16;
        let slot = ((n / 64_000) * CLASSIFIERS as u64 + thread) % 768;
        let [o1, o2, o3] = LOCAL_NETS[(slot / 256) as usize];
        probe.local = IpAddr::V4(Ipv4Addr::new(o1, o2, o3, (slot % 256) as u8));
        let outcome = runner.run(Hook::Tc, &frame(&probe), None, 1)?;
        let got_position = outcome.decision.and_then(|d| {
            let reason = secgroup_dataplane::abi::Reason::from_u8(d.reason)?;
            matches!(
                reason,
                secgroup_dataplane::abi::Reason::AcceptRule
                    | secgroup_dataplane::abi::Reason::DropRule
            )
            .then_some(d.rule_pos as usize)
        });
        let got = (outcome.passed, got_position);
        let (under_a, under_b) = (expected(a, &probe), expected(b, &probe));
        counts.classified.fetch_add(1, Ordering::Relaxed);
        if got != under_a && got != under_b {
            if under_a.0 && under_b.0 && !got.0 {
                counts.lost.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.misclassified.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// One probe per rule of `list` (built to match it; the evaluator says
/// whether an earlier rule wins) plus one that matches nothing.
fn probes(list: &RuleList) -> Vec<Packet> {
    let mut probes: Vec<Packet> = list.rules.iter().filter_map(probe_for).collect();
    probes.push(Packet {
        protocol: 17,
        remote: IpAddr::V4(rules::DEFAULT_DROP_REMOTE),
        local: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        src_port: 40000,
        dst_port: 9,
        icmp_type: 0,
        icmp_code: 0,
    });
    probes
}

fn probe_for(rule: &EffectiveRule) -> Option<Packet> {
    let service = rule.services.first()?;
    let remote = rule.remotes.iter().find(|r| r.addr().is_ipv4())?.network();
    let protocol = match service.protocol {
        Protocol::All => 17,
        Protocol::Number(n) => n,
    };
    let dst_port = match (&service.ports, protocol) {
        (Ports::List(ranges), _) => ranges.first()?.lo(),
        (Ports::All, 6 | 17) => 9,
        (Ports::All, _) => 0,
    };
    Some(Packet {
        protocol,
        remote,
        local: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        src_port: 40000,
        dst_port,
        icmp_type: if protocol == 1 { 8 } else { 0 },
        icmp_code: 0,
    })
}

/// An ingress frame (remote → local) for a probe: TCP SYN, UDP, ICMP echo
/// request, or an opaque payload for other protocols.
fn frame(p: &Packet) -> Vec<u8> {
    let frame = match p.protocol {
        6 => Frame::tcp(p.remote, p.src_port, p.local, p.dst_port, tcp_flags::SYN),
        17 => Frame::udp(p.remote, p.src_port, p.local, p.dst_port),
        // The echo id plays the source port's role in conntrack.
        1 => Frame::new(
            p.remote,
            p.local,
            secgroup_dataplane::packet::Transport::Echo {
                request: true,
                id: p.src_port,
                seq: 1,
            },
        ),
        proto => Frame::other(p.remote, p.local, proto),
    };
    frame.frame()
}

/// Kernel memory of the data plane's maps (`memlock` in
/// /proc/self/fdinfo, which is the map's actual usage on kernels ≥ 6.4),
/// per map and in total. Only maps named `sg_*` held by this process
/// count: other processes' data planes are not ours to measure.
fn map_memory(rules: usize, results: &mut Results) -> Result<()> {
    let mut per_map: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fdinfo").context("reading /proc/self/fdinfo")? {
        let Ok(text) = std::fs::read_to_string(entry?.path()) else {
            continue; // an fd closed meanwhile
        };
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) else {
            continue;
        };
        let info = aya::maps::MapInfo::from_id(id as u32).with_context(|| format!("map {id}"))?;
        if let Some(name) = info.name_as_str().filter(|n| n.starts_with("sg_")) {
            *per_map.entry(name.to_owned()).or_default() += memlock;
        }
    }
    let total: u64 = per_map.values().sum();
    for (name, bytes) in per_map {
        results.push(Record::new(
            "map-memory",
            &name,
            rules,
            "memlock",
            bytes as f64,
            "bytes",
        ));
    }
    results.push(Record::new(
        "map-memory",
        "total",
        rules,
        "memlock",
        total as f64,
        "bytes",
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_of_the_apply_corpus_is_decided_by_a_rule_or_the_default() {
        let policy =
            rules::compile(&Corpus::for_apply().files()).unwrap_or_else(|e| panic!("{e:#}"));
        let host = Host::from_policy(&policy);
        let list = &host.ingress[0];
        let probes = probes(list);
        assert_eq!(
            probes.len(),
            list.rules.len() + 1,
            "one probe per rule, plus a default drop"
        );
        let matched = probes
            .iter()
            .filter(|p| expected(list, p).1.is_some())
            .count();
        assert_eq!(
            matched,
            list.rules.len(),
            "every rule's probe matches some rule"
        );
        let (accepted, position) = expected(list, &probes[probes.len() - 1]);
        assert_eq!(
            (accepted, position),
            (false, None),
            "the last probe matches nothing"
        );
    }

    #[test]
    fn the_swap_partner_disagrees_on_some_probes() {
        let policy =
            rules::compile(&Corpus::for_apply().files()).unwrap_or_else(|e| panic!("{e:#}"));
        let base = Host::from_policy(&policy);
        let mut changed = base.ingress[0].clone();
        for position in (0..rules::GROUP_QUOTA).step_by(5) {
            flip(&mut changed.rules_mut()[position]);
        }
        let differing = probes(&base.ingress[0])
            .iter()
            .filter(|p| expected(&base.ingress[0], p).0 != expected(&changed, p).0)
            .count();
        assert!(
            differing >= 10,
            "only {differing} probes tell A from B: the swap test would prove little"
        );
    }
}
