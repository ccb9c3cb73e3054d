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

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_api::{AttachState, Client, Direction, Status, TraceRequest, TraceResponse};
use secgroup_model::Action;
use secgroup_testbed::{NetNs, PinDir, Scratch, Secgroupd, Veth, poll, uninstall, unique_with};

use crate::record::{Record, Results};
use crate::rules::{GROUP_QUOTA, LAST_PORTS, LAST_REMOTE, LAST_RULE_REMOTE, PROBE_PORT};
use crate::stats::percentile;
use crate::throughput::topology::{PREFIX, namespace};

#[derive(Debug, Clone)]
pub struct Settings {
    /// Rule-file changes timed per layout.
    pub changes: usize,
    /// VMs (veth pairs) on the host.
    pub interfaces: usize,
    /// Rules per direction of every VM, in groups of [`GROUP_QUOTA`].
    pub rules: usize,
    /// The secgroupd binary (a release build).
    pub secgroupd: PathBuf,
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

fn status(client: &Client) -> Result<Status> {
    client
        .get(secgroup_api::paths::STATUS)
        .context("GET /v1/status")
}

/// The probe, as an ingress packet of VM `vm`: UDP from a host only the
/// last rule names, to a port inside its range.
fn trace(client: &Client, vm: usize) -> Result<TraceResponse> {
    let request = TraceRequest {
        instance: instance_id(vm),
        direction: Direction::Ingress,
        protocol: "udp".to_owned(),
        remote: IpAddr::V4(LAST_RULE_REMOTE),
        port: Some(PROBE_PORT),
        local: None,
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

// ---- Rule files -----------------------------------------------------------

pub fn instance_id(vm: usize) -> String {
    format!("ins-{vm:03}")
}

fn interface(vm: usize) -> String {
    format!("{IF_PREFIX}{vm:03}")
}

/// VM `vm`'s address: 192.0.2.1 and on (fits 250 VMs).
fn address(vm: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, (vm % 250 + 1) as u8)
}

/// The rules directory's contents and the probe rule's current ingress
/// action (one per VM in the own-group layout, one for all otherwise).
/// Only ingress flips: the egress probe rule always accepts, so a change
/// rebuilds ingress tables only, as in `control`'s apply figures.
#[derive(Debug, Clone)]
pub struct RuleDir {
    layout: Layout,
    vms: usize,
    rules: usize,
    actions: Vec<Action>,
}

impl RuleDir {
    /// Every probe rule starts as accept.
    pub fn new(layout: Layout, vms: usize, rules: usize) -> RuleDir {
        let lists = match layout {
            Layout::OwnGroup => vms,
            Layout::SharedGroup | Layout::SharedBase => 1,
        };
        RuleDir {
            layout,
            vms,
            // The shared base is the first group: the list must go beyond it.
            rules: if layout == Layout::SharedBase {
                rules.max(GROUP_QUOTA + 1)
            } else {
                rules.max(1)
            },
            actions: vec![Action::Accept; lists],
        }
    }

    fn list_of(&self, vm: usize) -> usize {
        match self.layout {
            Layout::OwnGroup => vm,
            Layout::SharedGroup | Layout::SharedBase => 0,
        }
    }

    /// The action VM `vm`'s probe should get now.
    pub fn action_of(&self, vm: usize) -> Action {
        self.actions[self.list_of(vm)]
    }

    /// The position of the probe rule in every VM's list: the last rule,
    /// or the last of the shared base group.
    pub fn probe_position(&self) -> usize {
        match self.layout {
            Layout::OwnGroup | Layout::SharedGroup => self.rules - 1,
            Layout::SharedBase => GROUP_QUOTA - 1,
        }
    }

    /// Inverts the probe rule that decides VM `vm`'s probe; returns the file
    /// that holds it and that file's new contents.
    pub fn flip(&mut self, vm: usize) -> (String, String) {
        let list = self.list_of(vm);
        self.actions[list] = match self.actions[list] {
            Action::Accept => Action::Drop,
            Action::Drop => Action::Accept,
        };
        match self.layout {
            Layout::OwnGroup => self.vm_file(vm),
            Layout::SharedGroup => self.shared_file(),
            Layout::SharedBase => self.base_file(),
        }
    }

    /// Every file: (name, contents).
    pub fn files(&self) -> Vec<(String, String)> {
        match self.layout {
            Layout::OwnGroup => (0..self.vms).map(|vm| self.vm_file(vm)).collect(),
            Layout::SharedGroup => {
                let groups = group_ids("sg-shared", 0..self.rules.div_ceil(GROUP_QUOTA));
                let instances: Vec<String> =
                    (0..self.vms).map(|vm| instance(vm, &groups)).collect();
                vec![
                    self.shared_file(),
                    (
                        "instances.json".to_owned(),
                        format!("{{\"instances\":[\n{}\n]}}\n", instances.join(",\n")),
                    ),
                ]
            }
            Layout::SharedBase => std::iter::once(self.base_file())
                .chain((0..self.vms).map(|vm| self.vm_file(vm)))
                .collect(),
        }
    }

    fn write_all(&self, dir: &Path) -> Result<()> {
        for (name, text) in self.files() {
            let path = dir.join(&name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Rule `k` of every list in `direction`: a filler, or the probe rule.
    fn rule(&self, k: usize, list: usize, ingress: bool) -> String {
        if k != self.probe_position() {
            return filler(k);
        }
        let action = if ingress {
            self.actions[list]
        } else {
            Action::Accept
        };
        format!(
            r#"{{"action":"{}","protocol":"udp","port":"{}-{}","remote":"{LAST_REMOTE}"}}"#,
            action.as_str(),
            LAST_PORTS.start(),
            LAST_PORTS.end()
        )
    }

    /// Groups `groups` (numbers of 100-rule slices of the list) named
    /// `prefix-gN`, with `list`'s probe action.
    fn groups(&self, prefix: &str, groups: std::ops::Range<usize>, list: usize) -> String {
        let texts: Vec<String> = groups
            .map(|g| {
                let slice = g * GROUP_QUOTA..((g + 1) * GROUP_QUOTA).min(self.rules);
                let side = |ingress| {
                    slice
                        .clone()
                        .map(|k| self.rule(k, list, ingress))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!(
                    r#"{{"id":"{prefix}-g{g}","ingress":[{}],"egress":[{}]}}"#,
                    side(true),
                    side(false)
                )
            })
            .collect();
        texts.join(",\n")
    }

    /// VM `vm`'s file: its own groups (all ten, or all but the shared
    /// base) and its instance.
    fn vm_file(&self, vm: usize) -> (String, String) {
        let prefix = format!("sg-vm{vm:03}");
        let all = self.rules.div_ceil(GROUP_QUOTA);
        let (own, mut bound) = match self.layout {
            Layout::SharedBase => (1..all, vec!["sg-base-g0".to_owned()]),
            Layout::OwnGroup | Layout::SharedGroup => (0..all, Vec::new()),
        };
        bound.extend(group_ids(&prefix, own.clone()));
        let text = format!(
            "{{\"security_groups\":[\n{}\n],\"instances\":[\n{}\n]}}\n",
            self.groups(&prefix, own, self.list_of(vm)),
            instance(vm, &bound)
        );
        (format!("vm-{vm:03}.json"), text)
    }

    /// The ten groups every VM is bound to.
    fn shared_file(&self) -> (String, String) {
        let groups = self.groups("sg-shared", 0..self.rules.div_ceil(GROUP_QUOTA), 0);
        (
            "shared.json".to_owned(),
            format!("{{\"security_groups\":[\n{groups}\n]}}\n"),
        )
    }

    /// The base group every VM is bound to first (its slice 0 of the list).
    fn base_file(&self) -> (String, String) {
        // Named sg-base-g0 by `groups`; VMs bind it by that name.
        let groups = self.groups("sg-base", 0..1, 0);
        (
            "base.json".to_owned(),
            format!("{{\"security_groups\":[\n{groups}\n]}}\n"),
        )
    }
}

fn group_ids(prefix: &str, groups: std::ops::Range<usize>) -> Vec<String> {
    groups.map(|g| format!("{prefix}-g{g}")).collect()
}

/// Filler rule `i`: TCP (even) or UDP (odd) to one port from one host of
/// 203.0.113.0/24, never matching the probe (which comes from
/// [`LAST_RULE_REMOTE`]).
fn filler(i: usize) -> String {
    let protocol = if i.is_multiple_of(2) { "tcp" } else { "udp" };
    format!(
        r#"{{"action":"accept","protocol":"{protocol}","port":{},"remote":"203.0.113.{}"}}"#,
        1024 + i / 256,
        i % 256
    )
}

fn instance(vm: usize, groups: &[String]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
    format!(
        r#"{{"id":"{}","interface":"{}","ips":["{}"],"security_groups":[{}]}}"#,
        instance_id(vm),
        interface(vm),
        address(vm),
        groups.join(",")
    )
}

// ---- The host -------------------------------------------------------------

/// The host namespace with its veth pairs, and a temp dir; both removed
/// on drop.
struct Host {
    ns: NetNs,
    dir: Scratch,
}

impl Host {
    fn new(vms: usize) -> Result<Host> {
        let dir = Scratch::try_at(std::env::temp_dir().join(unique_with(PREFIX, "daemon")))?;
        let host = Host {
            ns: namespace("daemon")?,
            dir,
        };
        let peers: Vec<(String, String)> = (0..vms)
            .map(|vm| (interface(vm), format!("{PEER_PREFIX}{vm:03}")))
            .collect();
        let pairs: Vec<Veth<'_>> = peers
            .iter()
            .map(|(tap, peer)| Veth::new(&host.ns, tap, &host.ns, peer))
            .collect();
        Veth::try_create_all(&pairs)?;
        Ok(host)
    }
}

/// One daemon's files: rules directory, socket, log, pin directory.
struct Run {
    dir: PathBuf,
    rules_dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    pin_dir: PathBuf,
}

impl Run {
    fn new(host: &Host, layout: Layout) -> Result<Run> {
        let dir = host.dir.join(layout.variant());
        let rules_dir = dir.join("rules");
        std::fs::create_dir_all(&rules_dir)
            .with_context(|| format!("creating {}", rules_dir.display()))?;
        Ok(Run {
            rules_dir,
            socket: dir.join("sock"),
            log: dir.join("secgroupd.log"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/sgbench-{}", std::process::id())),
            dir,
        })
    }
}

/// secgroupd in the host namespace. On drop: killed, then its hooks and
/// pins removed with `secgroupd --uninstall`, then the pin directory.
struct Daemon<'h> {
    // Field order is drop order: the process goes first.
    process: Option<secgroup_testbed::Daemon>,
    host: &'h Host,
    binary: PathBuf,
    socket: PathBuf,
    pins: PinDir,
    log: PathBuf,
}

impl<'h> Daemon<'h> {
    fn start(settings: &Settings, host: &'h Host, run: &Run) -> Result<Daemon<'h>> {
        // The guard holds the pin directory before the daemon creates it.
        let mut daemon = Daemon {
            process: None,
            host,
            binary: settings.secgroupd.clone(),
            socket: run.socket.clone(),
            pins: PinDir::at(run.pin_dir.clone()),
            log: run.log.clone(),
        };
        let process = Secgroupd::new(&settings.secgroupd, &run.dir)
            .netns(&host.ns)
            .rules_dir(&run.rules_dir)
            .socket(&run.socket)
            .bpffs(&run.pin_dir)
            .log(&run.log)
            .env("SECGROUP_LOG", "info")
            .ready_timeout(READY_TIMEOUT)
            .try_start()
            .context("starting secgroupd")?;
        daemon.process = Some(process);
        Ok(daemon)
    }

    fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Duration::from_secs(30))
    }

    /// Waits until all `vms` instances are attached (READY=1 comes after
    /// the first attach, but a link event may still be on its way).
    fn wait_attached(&self, vms: usize) -> Result<()> {
        let client = self.client();
        let attached = |status: &Status| {
            status
                .instances
                .iter()
                .filter(|i| matches!(i.attach, AttachState::Attached { .. }))
                .count()
        };
        let mut last = status(&client)?;
        let done = poll(Duration::from_secs(60), || match status(&client) {
            Ok(now) => {
                let all = attached(&now) == vms;
                last = now;
                all.then_some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        });
        if let Some(result) = done {
            return result;
        }
        let failed: Vec<String> = last
            .instances
            .iter()
            .filter_map(|i| match &i.attach {
                AttachState::Attached { .. } => None,
                other => Some(format!("{}: {other:?}", i.id)),
            })
            .take(5)
            .collect();
        bail!(
            "{} of {vms} instances attached after 60 s: {}",
            attached(&last),
            failed.join("; ")
        )
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
        // Unpinning detaches every hook and frees the maps; dropping
        // `pins` removes whatever is left by hand.
        if !uninstall(&self.binary, &self.host.ns, &self.pins.path, &self.socket) {
            eprintln!(
                "secgroup-bench: `secgroupd --uninstall --bpffs {}` failed; removing the pins by hand",
                self.pins.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::InstanceId;
    use secgroup_policy::{Matched, Packet};

    /// The verdict and deciding position the reference evaluator gives VM
    /// `vm`'s probe in `direction` under `dir`'s files.
    fn probe_verdict(
        dir: &RuleDir,
        vm: usize,
        direction: secgroup_model::Direction,
    ) -> (Action, Option<usize>) {
        let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
        let id = InstanceId::new(&instance_id(vm)).unwrap_or_else(|| panic!("bad id"));
        let packet = Packet {
            protocol: 17,
            remote: IpAddr::V4(LAST_RULE_REMOTE),
            local: IpAddr::V4(address(vm)),
            src_port: 61000,
            dst_port: PROBE_PORT,
            icmp_type: 0,
            icmp_code: 0,
        };
        let instance = policy
            .instances
            .get(&id)
            .unwrap_or_else(|| panic!("no instance {id}"));
        assert_eq!(
            instance.ingress.rules.len(),
            dir.rules,
            "{id}: rules per direction"
        );
        let verdict = instance.rules(direction).evaluate(direction, &packet);
        let position = match verdict.matched {
            Matched::Rule { position, .. } => Some(position),
            Matched::Implicit(_) | Matched::DefaultDrop => None,
        };
        (verdict.action, position)
    }

    /// After flipping `flips` (VM numbers) in order, each VM's ingress probe
    /// gets `expected` from the probe rule, as `action_of` says, and its
    /// egress probe is still accepted by it.
    #[track_caller]
    fn check(layout: Layout, vms: usize, rules: usize, flips: &[usize], expected: &[Action]) {
        use secgroup_model::Direction::{Egress, Ingress};
        let mut dir = RuleDir::new(layout, vms, rules);
        for &vm in flips {
            let (name, text) = dir.flip(vm);
            let files = dir.files();
            let written = files
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{layout:?}: flip wrote {name}, not a file of the dir"));
            assert_eq!(written.1, text, "{layout:?}: flip's text is the file's");
        }
        let position = Some(dir.probe_position());
        for (vm, &want) in expected.iter().enumerate() {
            assert_eq!(dir.action_of(vm), want, "{layout:?} vm {vm}: action_of");
            assert_eq!(
                probe_verdict(&dir, vm, Ingress),
                (want, position),
                "{layout:?} vm {vm}: the ingress probe's verdict"
            );
            assert_eq!(
                probe_verdict(&dir, vm, Egress),
                (Action::Accept, position),
                "{layout:?} vm {vm}: the egress probe's verdict"
            );
        }
    }

    #[test]
    fn flips_change_exactly_the_probe_verdicts_they_claim() {
        use Action::{Accept, Drop};
        use Layout::{OwnGroup, SharedBase, SharedGroup};
        let cases: &[(Layout, usize, &[usize], &[Action])] = &[
            (OwnGroup, 250, &[], &[Accept, Accept, Accept]),
            (OwnGroup, 250, &[1], &[Accept, Drop, Accept]),
            (OwnGroup, 250, &[1, 2, 1], &[Accept, Accept, Drop]),
            (OwnGroup, 1000, &[0], &[Drop, Accept, Accept]),
            (SharedGroup, 250, &[], &[Accept, Accept, Accept]),
            (SharedGroup, 250, &[2], &[Drop, Drop, Drop]),
            (SharedGroup, 100, &[0, 1], &[Accept, Accept, Accept]),
            (SharedBase, 250, &[], &[Accept, Accept, Accept]),
            (SharedBase, 250, &[1], &[Drop, Drop, Drop]),
            (SharedBase, 1000, &[0, 2], &[Accept, Accept, Accept]),
        ];
        for &(layout, rules, flips, expected) in cases {
            check(layout, 3, rules, flips, expected);
        }
    }

    #[test]
    fn only_the_shared_base_layout_gives_every_vm_a_different_list() {
        for (layout, distinct) in [
            (Layout::OwnGroup, 4),
            (Layout::SharedGroup, 1),
            (Layout::SharedBase, 4),
        ] {
            let dir = RuleDir::new(layout, 4, 300);
            let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
            let mut lists: Vec<_> = policy
                .instances
                .values()
                .map(|i| format!("{:?}", i.ingress))
                .collect();
            lists.sort();
            lists.dedup();
            assert_eq!(lists.len(), distinct, "{layout:?}: distinct ingress lists");
        }
    }

    #[test]
    fn every_vm_gets_its_own_interface_and_address() {
        let dir = RuleDir::new(Layout::SharedGroup, 100, 10);
        let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
        let mut interfaces: Vec<_> = policy
            .instances
            .values()
            .filter_map(|i| i.interface.clone())
            .collect();
        interfaces.sort();
        interfaces.dedup();
        assert_eq!(interfaces.len(), 100, "distinct interfaces");
    }
}
