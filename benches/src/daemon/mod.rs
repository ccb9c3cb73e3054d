//! Rule-file write → verdict in force, through the real secgroupd.
//!
//! A "host" network namespace holds `interfaces` veth pairs whose host
//! ends are the VMs' interfaces; a rules directory (in a temp dir) binds
//! each to an instance with 1,000 rules per direction (ten groups of 100,
//! Tencent's quota). The release secgroupd runs in that namespace, entered
//! with `setns(CLONE_NEWNET)` only: `ip netns exec` would also give it a
//! private /sys without the host's bpffs (see docs/daemon.md). It has its
//! own socket and a private pin directory, `/sys/fs/bpf/sgbench-PID`.
//!
//! Then, `changes` times, a rule file is rewritten the way controllers
//! and editors save (a temp file renamed over the old one) so that a
//! probe's verdict flips: the only rule the probe matches (the last of
//! the list, or the last of the shared base group) swaps accept and
//! drop. Timed from just before the
//! `rename(2)` until the change is in force: `GET /v1/status` reports a
//! newer generation AND `POST /v1/trace` of the probe on a changed
//! interface (BPF_PROG_TEST_RUN of the live kernel program) returns the
//! new verdict, decided by that rule. Polled every millisecond; a change
//! not in force after 5 s counts as a failure.
//!
//! Only the ingress probe rule flips (the egress one always accepts), so a
//! change rebuilds ingress tables only, as in `control`'s apply figures.
//! Three layouts, each with its own secgroupd and pin directory:
//! - **own group** (`daemon-own-group`): one rule file per VM with its own
//!   ten groups; a change rewrites one VM's file: one table rebuilt;
//! - **shared group** (`daemon-shared-group`): every VM bound to the same
//!   ten groups, in one file; a change rewrites it. Every VM's list is the
//!   same, and the data plane keeps one table per distinct list, so one
//!   table is rebuilt whatever the number of VMs;
//! - **shared base** (`daemon-shared-base`): every VM bound first to one
//!   100-rule base group (its own file), then to nine groups of its own
//!   (one file per VM); a change rewrites the base: every VM's list
//!   differs, so one table per VM is rebuilt (the worst case, and the
//!   shape of `control`'s shared-group apply figure).
//!
//! Everything is removed on drop, panics included: daemon, hooks and pins
//! (`secgroupd --uninstall`), namespace, files.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_api::{Client, Direction, Status, TraceRequest, TraceResponse};
use secgroup_model::Action;

use crate::record::{Record, Results};
use crate::rules::{LAST_RULE_REMOTE, PROBE_PORT};
use crate::stats::percentile;
use host::{Daemon, Host, Run};

mod host;
mod rule_dir;
#[cfg(test)]
mod tests;
mod thousand;

pub use rule_dir::{RuleDir, instance_id};
pub use thousand::{RULES as THOUSAND_RULES, ThousandSettings, run as thousand_vms};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Rule-file changes timed per layout.
    pub changes: usize,
    /// VMs (veth pairs) on the host.
    pub interfaces: usize,
    /// Rules per direction of every VM, in groups of
    /// [`GROUP_QUOTA`](crate::rules::GROUP_QUOTA).
    pub rules: usize,
    /// The secgroupd binary (a release build).
    pub secgroupd: PathBuf,
    /// The 1,000-VM layout (`thousand.rs`).
    pub thousand: ThousandSettings,
}

/// How long one change may take before it counts as a failure.
const IN_FORCE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failure: how long to wait for the daemon to catch up before the
/// next change (so a late reload does not count against the next one).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(1);
/// From the start of secgroupd to READY=1 (the first reload of the whole
/// directory, 200 tables of 1,000 rules on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Host ends of the veth pairs: `sgb000`, ...; peers `sgp000`, ...
const IF_PREFIX: &str = "sgb";
const PEER_PREFIX: &str = "sgp";

/// The two rule-directory layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file per VM with its own groups.
    OwnGroup,
    /// One file with groups every VM is bound to, one with the instances.
    /// Every VM's list is the same, so the data plane keeps one table for
    /// all (tables are shared by content): a change rebuilds one.
    SharedGroup,
    /// One file with a 100-rule base group every VM is bound to first, and
    /// one file per VM with its own nine groups: every VM's list differs,
    /// so a change to the base rebuilds one table per VM.
    SharedBase,
}

impl Layout {
    pub fn variant(self) -> &'static str {
        match self {
            Layout::OwnGroup => "daemon-own-group",
            Layout::SharedGroup => "daemon-shared-group",
            Layout::SharedBase => "daemon-shared-base",
        }
    }
}

/// Measures both layouts and records `write-to-verdict-p50/-p99/-max`
/// (ms), `changes` and `failures` under scenario `control`.
pub fn rule_file_to_verdict(settings: &Settings, results: &mut Results) -> Result<()> {
    if !settings.secgroupd.is_file() {
        bail!(
            "no secgroupd at {} (build it with `cargo build --release -p secgroupd`, or set SECGROUPD)",
            settings.secgroupd.display()
        );
    }
    let host = Host::new(settings.interfaces)?;
    for layout in [Layout::OwnGroup, Layout::SharedGroup, Layout::SharedBase] {
        eprintln!(
            "secgroup-bench: rule-file write → verdict through secgroupd, {} ({} VMs × {} rules)",
            layout.variant(),
            settings.interfaces,
            settings.rules
        );
        let outcome = measure(settings, &host, layout)?;
        push(results, layout, settings, &outcome);
    }
    Ok(())
}

struct Outcome {
    /// Milliseconds of every change that came into force in time.
    samples: Vec<f64>,
    failures: usize,
}

fn push(results: &mut Results, layout: Layout, settings: &Settings, outcome: &Outcome) {
    let (variant, rules) = (layout.variant(), settings.rules);
    results.push(Record::new(
        "control",
        variant,
        rules,
        "vms",
        settings.interfaces as f64,
        "vms",
    ));
    for (metric, value) in [
        ("write-to-verdict-p50", percentile(&outcome.samples, 50.0)),
        ("write-to-verdict-p99", percentile(&outcome.samples, 99.0)),
        ("write-to-verdict-max", percentile(&outcome.samples, 100.0)),
    ] {
        if let Some(v) = value {
            results.push(Record::new("control", variant, rules, metric, v, "ms"));
        }
    }
    results.push(Record::new(
        "control",
        variant,
        rules,
        "changes",
        (outcome.samples.len() + outcome.failures) as f64,
        "changes",
    ));
    results.push(Record::new(
        "control",
        variant,
        rules,
        "failures",
        outcome.failures as f64,
        "changes",
    ));
}

fn measure(settings: &Settings, host: &Host, layout: Layout) -> Result<Outcome> {
    let rules = RuleDir::new(layout, settings.interfaces, settings.rules);
    let run = Run::new(host, layout)?;
    rules.write_all(&run.rules_dir)?;
    let daemon = Daemon::start(settings, host, &run)?;
    let client = daemon.client();
    daemon.wait_attached(settings.interfaces)?;

    // The probe must be decided by the rule we flip, before any change.
    let mut state = rules;
    let first = trace(&client, 0)?;
    check_verdict(&first, state.action_of(0), state.probe_position())
        .context("the probe's verdict before any change")?;

    let mut outcome = Outcome {
        samples: Vec::new(),
        failures: 0,
    };
    for change in 0..settings.changes {
        let vm = change % settings.interfaces;
        let (name, text) = state.flip(vm);
        let want = state.action_of(vm);
        let before: Status = status(&client)?;
        let tmp = run.rules_dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        let target = run.rules_dir.join(&name);
        let started = Instant::now();
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("renaming onto {}", target.display()))?;
        let position = state.probe_position();
        let wait =
            |timeout| wait_in_force(&client, &before, (vm, want, position), started, timeout);
        match wait(IN_FORCE_TIMEOUT)? {
            Some(took) => outcome.samples.push(took.as_secs_f64() * 1e3),
            None => {
                eprintln!(
                    "secgroup-bench: change {change} ({name}) not in force after {IN_FORCE_TIMEOUT:?}: counted as a failure"
                );
                outcome.failures += 1;
                if wait(SETTLE_TIMEOUT)?.is_none() {
                    bail!(
                        "change {change} ({name}) still not in force after {SETTLE_TIMEOUT:?}; daemon log: {}",
                        daemon.log.display()
                    );
                }
            }
        }
    }
    drop(daemon);
    Ok(outcome)
}

/// Polls until the daemon reports a generation newer than `before`'s and
/// the kernel gives VM `vm`'s probe the verdict `want` by the rule at
/// `position`; the time since
/// `started`, or `None` after `timeout`. A failed reload is an error: the
/// generated files are meant to be valid.
fn wait_in_force(
    client: &Client,
    before: &Status,
    (vm, want, position): (usize, Action, usize),
    started: Instant,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let mut new_generation = false;
    loop {
        if !new_generation {
            let now = status(client)?;
            if now.reloads > before.reloads
                && let Some(error) = &now.last_error
            {
                bail!(
                    "secgroupd rejected a generated rule file: {}\n{}",
                    error.message,
                    error.diagnostics.join("\n")
                );
            }
            new_generation = now.generation > before.generation;
        }
        if new_generation && check_verdict(&trace(client, vm)?, want, position).is_ok() {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// The resident set size (bytes) of process `pid`, from /proc.
pub fn rss_bytes(pid: i32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kib * 1024.0)
}

fn status(client: &Client) -> Result<Status> {
    client
        .get(secgroup_api::paths::STATUS)
        .context("GET /v1/status")
}

/// The probe, as an ingress packet of VM `vm`: UDP from a host only the
/// last rule names, to a port inside its range.
fn trace(client: &Client, vm: usize) -> Result<TraceResponse> {
    let request = TraceRequest {
        port: Some(PROBE_PORT),
        ..TraceRequest::new(
            instance_id(vm),
            Direction::Ingress,
            "udp",
            IpAddr::V4(LAST_RULE_REMOTE),
        )
    };
    client
        .post(secgroup_api::paths::TRACE, Some(&request))
        .context("POST /v1/trace")
}

/// Whether the kernel gave the probe `want`, by the rule at `position`
/// (so not through a conntrack entry or a default), and the reference
/// evaluator agrees.
fn check_verdict(trace: &TraceResponse, want: Action, position: usize) -> Result<()> {
    let kernel = &trace.kernel;
    let got = kernel.rule.as_ref().map(|r| r.position);
    if got != Some(position) {
        bail!("kernel decided by rule {got:?}, want rule {position}");
    }
    let reason = match want {
        Action::Accept => "accept-rule",
        Action::Drop => "drop-rule",
    };
    if kernel.action != want.as_str() || kernel.reason != reason {
        bail!(
            "kernel says {} ({}), want {} ({reason})",
            kernel.action,
            kernel.reason,
            want.as_str()
        );
    }
    if trace.disagree {
        bail!(
            "the kernel and the reference evaluator disagree on {}: kernel {} ({}), reference {} ({})",
            trace.packet.text,
            kernel.action,
            kernel.reason,
            trace.reference.action,
            trace.reference.matched
        );
    }
    Ok(())
}
