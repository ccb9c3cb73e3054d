//! A thousand VMs on one host, through the real secgroupd: the figures
//! of the scale targets (start, changes in force, a new interface, memory
//! over many reloads, API reads during a reload).
//!
//! One host namespace with `vms` veth pairs; the rules directory has the
//! shared-base layout with 110 rules per direction: every VM is bound
//! first to `sg-base-g0` (100 rules, `base.json`), then to a 10-rule group
//! of its own (`vm-NNN.json`), so every VM's list differs. One more
//! instance names an interface that does not exist yet (the "new
//! interface" VM).
//!
//! In order, with one daemon (restarted once):
//! 1. **cold start** (nothing pinned): from spawning secgroupd to READY,
//!    and to every interface attached with the probe's verdict in force
//!    (grace periods expedited during the bulk attach, the default);
//! 2. **shared-base change** × `changes`: the base group's probe rule
//!    flips (every VM's ingress list changes), write → verdict as in
//!    `daemon.rs`; meanwhile a reader thread times `GET /v1/status`;
//! 3. **own-group change** × `changes`: the last rule of one VM's own
//!    group flips (one list changes), probed with [`OWN_PROBE_PORT`];
//! 4. RSS after the first of those reloads and after `reloads` in all
//!    (more own-group changes), and the kernel memory of the maps;
//! 5. **new interface** × `new_interfaces`: the spare VM's veth is
//!    created; from just before `ip link add` until the trace of its
//!    probe returns the rule's verdict from its hooks; then deleted;
//! 6. **restart adopting pins**: SIGKILL, start again on the same pins;
//! 7. **cold start at the normal pace**: the daemon and its pins removed,
//!    then a cold start with `--expedite-grace-periods=false` (one full
//!    RCU grace period per TCX hook).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_api::{AttachState, Client, Direction, Status, TraceRequest};
use secgroup_model::Action;

use super::host::{Daemon, Host, Run};
use super::rule_dir::{OWN_PROBE_PORT, RuleDir, instance_id, probe_local};
use super::{Layout, POLL, Settings, check_verdict, status};
use crate::record::{Record, Results};
use crate::rules::{LAST_RULE_REMOTE, PROBE_PORT};
use crate::stats::percentile;

/// Rules per direction of every VM: the 100-rule base and 10 of its own.
pub const RULES: usize = 110;
/// How long one change may take before it counts as a failure: longer
/// than the 100-VM layouts' 5 s, so that slow changes are measured (in
/// the percentiles) rather than only counted.
const IN_FORCE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ThousandSettings {
    pub vms: usize,
    /// Changes timed per kind (shared base, own group).
    pub changes: usize,
    /// Reloads before the second RSS figure.
    pub reloads: usize,
    pub new_interfaces: usize,
}

/// One probe: which VM, which port, the verdict wanted and the rule that
/// must decide it.
#[derive(Debug, Clone, Copy)]
struct Probe {
    vm: usize,
    port: u16,
    want: Action,
    position: usize,
}

impl Probe {
    fn base(rules: &RuleDir, vm: usize) -> Probe {
        Probe {
            vm,
            port: PROBE_PORT,
            want: rules.action_of(vm),
            position: rules.probe_position(),
        }
    }

    fn own(rules: &RuleDir, vm: usize) -> Probe {
        let (position, want) = rules.own_probe(vm);
        Probe {
            vm,
            port: OWN_PROBE_PORT,
            want,
            position,
        }
    }

    /// Whether the kernel gives this probe its verdict now.
    fn holds(&self, client: &Client) -> Result<bool> {
        let request = TraceRequest {
            port: Some(self.port),
            local: Some(IpAddr::V4(probe_local(self.vm))),
            ..TraceRequest::new(
                instance_id(self.vm),
                Direction::Ingress,
                "udp",
                IpAddr::V4(LAST_RULE_REMOTE),
            )
        };
        match client.post(secgroup_api::paths::TRACE, Some(&request)) {
            Ok(trace) => Ok(check_verdict(&trace, self.want, self.position).is_ok()),
            // Not attached yet (the new-interface VM): not in force.
            Err(secgroup_api::ClientError::Api { .. }) => Ok(false),
            Err(e) => Err(e).context("POST /v1/trace"),
        }
    }
}

pub fn run(settings: &Settings, thousand: &ThousandSettings, results: &mut Results) -> Result<()> {
    let vms = thousand.vms;
    eprintln!(
        "secgroup-bench: {vms} VMs × {RULES} rules (shared base + own group) through secgroupd"
    );
    let host = Host::new(vms)?;
    // One instance more than interfaces: the new-interface VM.
    let spare = vms;
    let mut rules = RuleDir::new(Layout::SharedBase, vms + 1, RULES);
    let run = Run::named(&host, "daemon-thousand")?;
    rules.write_all(&run.rules_dir)?;
    let record = |results: &mut Results, variant: &str, metric: &str, value: f64, unit: &str| {
        results.push(Record::new("control", variant, RULES, metric, value, unit));
    };

    // 1. Cold start.
    let started = Instant::now();
    let mut daemon = Daemon::start(settings, &host, &run)?;
    let ready = started.elapsed();
    let client = daemon.client();
    daemon.wait_attached(vms)?;
    wait_probe(&client, Probe::base(&rules, vms - 1), super::READY_TIMEOUT)?;
    let enforcing = started.elapsed();
    record(results, "daemon-start-cold", "vms", vms as f64, "vms");
    record(results, "daemon-start-cold", "ready-ms", ms(ready), "ms");
    record(
        results,
        "daemon-start-cold",
        "enforcing-ms",
        ms(enforcing),
        "ms",
    );
    let rss_start = daemon.rss()?;

    // 2. Shared-base changes, with a reader timing API reads meanwhile.
    let stop = AtomicBool::new(false);
    let mut rss_first = rss_start;
    let (base, reads) = std::thread::scope(|s| {
        let reader = s.spawn(|| read_latencies(&daemon.client(), &stop));
        let mut flip = |change: usize| {
            let vm = change % vms;
            let (name, text) = rules.flip(vm);
            (name, text, Probe::base(&rules, vm))
        };
        let base = changes(&client, &run, 1, &mut flip).and_then(|mut first| {
            rss_first = daemon.rss()?;
            let rest = changes(&client, &run, thousand.changes.saturating_sub(1), |i| {
                flip(i + 1)
            })?;
            first.samples.extend(rest.samples);
            first.failures += rest.failures;
            Ok(first)
        });
        stop.store(true, Ordering::Relaxed);
        (base, reader.join())
    });
    let base = base?;
    let reads = reads.map_err(|_| anyhow::anyhow!("the API reader panicked"))??;
    push_changes(results, "daemon-shared-base", vms, &base);
    push_latencies(results, "daemon-api-read", &reads);

    // 3. Own-group changes.
    let own = changes(&client, &run, thousand.changes, |change| {
        let vm = (change * 7) % vms;
        let (name, text) = rules.flip_own(vm);
        (name, text, Probe::own(&rules, vm))
    })?;
    push_changes(results, "daemon-own-group", vms, &own);

    // 4. RSS after `reloads` reloads in all.
    let done = status(&client)?.reloads as usize;
    let more = thousand.reloads.saturating_sub(done);
    changes(&client, &run, more, |change| {
        let vm = (change * 13) % vms;
        let (name, text) = rules.flip_own(vm);
        (name, text, Probe::own(&rules, vm))
    })?;
    let reloads = status(&client)?.reloads;
    let rss_last = daemon.rss()?;
    record(results, "daemon-rss", "after-start", rss_start, "bytes");
    record(
        results,
        "daemon-rss",
        "after-first-reload",
        rss_first,
        "bytes",
    );
    record(results, "daemon-rss", "after-reloads", rss_last, "bytes");
    record(results, "daemon-rss", "reloads", reloads as f64, "reloads");
    record(
        results,
        "daemon-rss",
        "map-memlock",
        daemon.map_memlock()?,
        "bytes",
    );

    // 5. A new interface for a VM already in the rules.
    let mut samples = Vec::new();
    let probe = Probe::own(&rules, spare);
    for _ in 0..thousand.new_interfaces {
        let started = Instant::now();
        host.add_pair(spare)?;
        if wait_probe(&client, probe, IN_FORCE_TIMEOUT).is_ok() {
            samples.push(ms(started.elapsed()));
        }
        host.delete_pair(spare)?;
        wait_detached(&client, &instance_id(spare))?;
    }
    push_changes(
        results,
        "daemon-new-interface",
        vms,
        &Changes {
            failures: thousand.new_interfaces - samples.len(),
            samples,
        },
    );

    // 6. Restart on the pins.
    keep_log(&daemon, "main");
    let started = Instant::now();
    daemon.restart(settings, &host, &run)?;
    let ready = started.elapsed();
    let client = daemon.client();
    daemon.wait_attached(vms)?;
    wait_probe(&client, Probe::base(&rules, vms - 1), super::READY_TIMEOUT)?;
    let enforcing = started.elapsed();
    record(results, "daemon-start-adopt", "vms", vms as f64, "vms");
    record(results, "daemon-start-adopt", "ready-ms", ms(ready), "ms");
    record(
        results,
        "daemon-start-adopt",
        "enforcing-ms",
        ms(enforcing),
        "ms",
    );

    // 7. Cold start again, grace periods not expedited.
    keep_log(&daemon, "restarted");
    drop(daemon);
    let started = Instant::now();
    let daemon = Daemon::start_with(
        settings,
        &host,
        &run,
        &[("SECGROUP_EXPEDITE_GRACE_PERIODS", "false")],
    )?;
    let ready = started.elapsed();
    let client = daemon.client();
    daemon.wait_attached(vms)?;
    wait_probe(&client, Probe::base(&rules, vms - 1), super::READY_TIMEOUT)?;
    let enforcing = started.elapsed();
    let variant = "daemon-start-cold-normal-pace";
    record(results, variant, "vms", vms as f64, "vms");
    record(results, variant, "ready-ms", ms(ready), "ms");
    record(results, variant, "enforcing-ms", ms(enforcing), "ms");
    keep_log(&daemon, "normal-pace");
    Ok(())
}

/// Copies the daemon's log (its `reload phases` lines say where a start's
/// time went) out of the run's directory, which goes with the run.
fn keep_log(daemon: &Daemon<'_>, what: &str) {
    let kept = std::env::temp_dir().join(format!("secgroup-bench-thousand-{what}.log"));
    match std::fs::copy(&daemon.log, &kept) {
        Ok(_) => eprintln!(
            "secgroup-bench: the {what} daemon's log: {}",
            kept.display()
        ),
        Err(e) => eprintln!("secgroup-bench: keeping {}: {e}", daemon.log.display()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Changes {
    samples: Vec<f64>,
    failures: usize,
}

/// `count` rule-file changes, each made by `change(i)` (file, contents,
/// the probe that shows it in force), timed from the `rename(2)`.
fn changes(
    client: &Client,
    run: &Run,
    count: usize,
    mut change: impl FnMut(usize) -> (String, String, Probe),
) -> Result<Changes> {
    let mut out = Changes {
        samples: Vec::new(),
        failures: 0,
    };
    for i in 0..count {
        let (name, text, probe) = change(i);
        let before = status(client)?;
        let tmp = run.rules_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        let started = Instant::now();
        std::fs::rename(&tmp, run.rules_dir.join(&name))
            .with_context(|| format!("renaming onto {name}"))?;
        loop {
            let now = status(client)?;
            if now.reloads > before.reloads
                && let Some(error) = &now.last_error
            {
                bail!(
                    "secgroupd rejected a generated rule file: {}",
                    error.message
                );
            }
            if now.generation > before.generation && probe.holds(client)? {
                out.samples.push(ms(started.elapsed()));
                break;
            }
            if started.elapsed() > IN_FORCE_TIMEOUT {
                eprintln!(
                    "secgroup-bench: change {i} ({name}) not in force after {IN_FORCE_TIMEOUT:?}"
                );
                out.failures += 1;
                wait_probe(client, probe, super::SETTLE_TIMEOUT)?;
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    Ok(out)
}

fn wait_probe(client: &Client, probe: Probe, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    while !probe.holds(client)? {
        if started.elapsed() > timeout {
            bail!("{probe:?} not in force after {timeout:?}");
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn wait_detached(client: &Client, id: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let now: Status = status(client)?;
        let attached = now
            .instances
            .iter()
            .any(|i| i.id == id && matches!(i.attach, AttachState::Attached { .. }));
        if !attached {
            return Ok(());
        }
        if started.elapsed() > IN_FORCE_TIMEOUT {
            bail!("{id} still attached {IN_FORCE_TIMEOUT:?} after its interface was deleted");
        }
        std::thread::sleep(POLL);
    }
}

/// `GET /v1/status` latencies (ms), back to back until `stop`.
fn read_latencies(client: &Client, stop: &AtomicBool) -> Result<Vec<f64>> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        status(client)?;
        samples.push(ms(started.elapsed()));
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(samples)
}

fn push_changes(results: &mut Results, variant: &str, vms: usize, changes: &Changes) {
    results.push(Record::new(
        "control", variant, RULES, "vms", vms as f64, "vms",
    ));
    push_latencies_as(results, variant, "write-to-verdict", &changes.samples);
    for (metric, value) in [
        ("changes", (changes.samples.len() + changes.failures) as f64),
        ("failures", changes.failures as f64),
    ] {
        results.push(Record::new(
            "control", variant, RULES, metric, value, "changes",
        ));
    }
}

fn push_latencies(results: &mut Results, variant: &str, samples: &[f64]) {
    push_latencies_as(results, variant, "latency", samples);
}

fn push_latencies_as(results: &mut Results, variant: &str, what: &str, samples: &[f64]) {
    for (p, name) in [(50.0, "p50"), (99.0, "p99"), (100.0, "max")] {
        if let Some(v) = percentile(samples, p) {
            let metric = format!("{what}-{name}");
            results.push(Record::new("control", variant, RULES, &metric, v, "ms"));
        }
    }
}
