//! One etcd write → the new verdict in force on every host of a fleet,
//! and what a host's first sync costs when etcd holds a fleet's worth of
//! instances.
//!
//! Both run on the test bed's [`Fleet`]: host namespaces, each with a
//! bridge, VMs (veth pairs) and its own release secgroupd fed from one
//! real etcd in a fabric namespace (see `secgroup_testbed::fleet`).
//!
//! **Propagation** (`fleet` / `propagation`): `daemons` hosts, each with
//! one VM in `sg-db`, whose ingress admits `sg-web` on tcp 5432. An
//! instance of a host outside the lab (`ins-mover`, 198.51.100.200)
//! joins and leaves `sg-web`, one put of its document per change. Timed
//! from just before the put request (client connected, `store.rs`)
//! until, on every host, `GET /v1/status` reports an applied revision at
//! least the put's AND `POST /v1/trace` of tcp 5432 from the mover to
//! the host's VM (the live kernel program) gives the new verdict, the
//! reference evaluator agreeing. One thread per host polls every 2 ms;
//! the change's figure is the slowest host's, each host's own is kept
//! too. A change not in force everywhere after 5 s is a failure.
//!
//! **First sync** (`fleet` / `first-sync`): etcd loaded with
//! `sync_instances` instances spread over `sync_hosts` other hosts (one
//! IPv6 address each, in groups of 1,000 members; every 100th is also
//! in `sg-web`), then one host with a few VMs of its own starts its
//! daemon: timed from the spawn to READY=1 and to its status reporting
//! the store's revision applied; its RSS then. Then `sync_changes`
//! membership changes of one remote instance (in and out of `sg-web`),
//! timed as above on that host alone (`large-store-change`).
//!
//! Nothing here asserts a timing; a wrong verdict is an error.

mod store;
mod sync;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_api::{Client, Direction, TraceRequest};
use secgroup_testbed::{Daemon, Fleet, Vm, accept, group, instance_on};
use serde_json::{Value, json};

use crate::record::{Record, Results};
use crate::stats::percentile;
use store::Store;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Hosts (daemons) in the propagation fleet.
    pub daemons: usize,
    /// Membership changes timed across them.
    pub changes: usize,
    /// Instances in etcd for the first sync.
    pub sync_instances: usize,
    /// Hosts they are spread over.
    pub sync_hosts: usize,
    /// Membership changes timed on the large store.
    pub sync_changes: usize,
    /// The release secgroupd.
    pub secgroupd: PathBuf,
}

const SCENARIO: &str = "fleet";
/// How long one change may take before it counts as a failure.
const IN_FORCE_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(2);
/// With the large store a change takes seconds: asking less often keeps
/// the polls from slowing the daemon they measure.
const POLL_LARGE: Duration = Duration::from_millis(10);
/// From spawn to READY=1, a first sync of a large store included.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const PORT: u16 = 5432;
/// The instance whose membership changes: on a host outside the lab.
const MOVER: &str = "ins-mover";
const MOVER_IP: &str = "198.51.100.200";

/// Measures propagation, then the first sync; records under `fleet`.
pub fn run(settings: &Settings, results: &mut Results) -> Result<()> {
    if !settings.secgroupd.is_file() {
        bail!(
            "no secgroupd at {} (build it with `cargo build --release -p secgroupd`, or set SECGROUPD)",
            settings.secgroupd.display()
        );
    }
    eprintln!(
        "secgroup-bench: fleet: one etcd write → verdict on {} hosts",
        settings.daemons
    );
    propagation(settings, results)?;
    eprintln!(
        "secgroup-bench: fleet: first sync with {} instances over {} hosts in etcd",
        settings.sync_instances, settings.sync_hosts
    );
    sync::first_sync(settings, results)
}

/// The groups both parts use: `sg-db` admits `sg-web` on tcp 5432.
fn base_groups() -> Vec<(String, String, String)> {
    let sg_db = group(
        "sg-db",
        vec![accept("tcp", &PORT.to_string(), "sg-web")],
        vec![accept("all", "", "")],
    );
    let open = |id: &str| group(id, vec![], vec![accept("all", "", "")]);
    [sg_db, open("sg-web"), open("sg-other")]
        .into_iter()
        .map(|g| object("security_groups", &g))
        .collect()
}

/// `(kind, id, JSON text)` of one document.
fn object(kind: &str, document: &Value) -> (String, String, String) {
    let id = document["id"].as_str().unwrap_or_default().to_owned();
    (kind.to_owned(), id, document.to_string())
}

/// An instance on host `host` that only lends `ip` (no interface of a
/// lab host), in `sg-other` and, if `member`, `sg-web`.
fn remote_instance(id: &str, host: &str, interface: &str, ip: &str, member: bool) -> Value {
    let groups: &[&str] = if member {
        &["sg-other", "sg-web"]
    } else {
        &["sg-other"]
    };
    json!({
        "id": id,
        "host": host,
        "interface": interface,
        "ips": [ip],
        "security_groups": groups,
    })
}

/// One daemon of the lab, its VM and its API.
struct Member<'f> {
    vm: Vm<'f>,
    /// Held for its life: killed on drop.
    _daemon: Daemon,
    client: Client,
}

fn start_daemon(fleet: &Fleet, host: &str, settings: &Settings) -> Result<Daemon> {
    fleet
        .host(host)
        .secgroupd(&settings.secgroupd, &fleet.etcd)
        .env("SECGROUP_LOG", "info")
        .ready_timeout(READY_TIMEOUT)
        .try_start()
        .with_context(|| format!("starting secgroupd on {host}"))
}

fn propagation(settings: &Settings, results: &mut Results) -> Result<()> {
    let names: Vec<String> = (0..settings.daemons).map(|i| format!("hv-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let fleet = Fleet::new("bfleet", &refs);
    let store = Store::new(&fleet);
    let vms: Vec<Vm<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| fleet.host(name).vm(&format!("vm{i}"), 10 + i as u8))
        .collect();
    let mut objects = base_groups();
    for (vm, name) in vms.iter().zip(&names) {
        objects.push(object("instances", &instance_on(vm, name, &["sg-db"])));
    }
    let mover = |member| remote_instance(MOVER, "hv-far", "tap-mover", MOVER_IP, member);
    objects.push(object("instances", &mover(false)));
    let loaded = store.put_all(objects)?;

    let mut members = Vec::new();
    for (vm, name) in vms.into_iter().zip(&names) {
        let daemon = start_daemon(&fleet, name, settings)?;
        let client = Client::new(daemon.socket()).with_timeout(Duration::from_secs(10));
        members.push(Member {
            vm,
            _daemon: daemon,
            client,
        });
    }
    let disagreements = AtomicUsize::new(0);
    let started = Instant::now();
    in_force_everywhere(
        &members,
        &disagreements,
        (loaded, false),
        started,
        Duration::from_secs(30),
    )?
    .context("the first revision never came into force on every host")?;

    let mut all = Vec::new();
    let mut reported = Vec::new();
    let mut each = Vec::new();
    let mut failures = 0;
    for change in 0..settings.changes {
        let member = change % 2 == 0;
        let (started, revision) = store.put_timed("instances", MOVER, mover(member).to_string())?;
        let change_of = (revision, member);
        match in_force_everywhere(
            &members,
            &disagreements,
            change_of,
            started,
            IN_FORCE_TIMEOUT,
        )? {
            Some(per_host) => {
                let slowest = |f: fn(&Reached) -> f64| per_host.iter().map(f).fold(0.0, f64::max);
                all.push(slowest(|r| r.kernel));
                reported.push(slowest(|r| r.reported));
                each.extend(per_host.iter().map(|r| r.kernel));
            }
            None => {
                eprintln!(
                    "secgroup-bench: fleet change {change} (revision {revision}) not in force everywhere after {IN_FORCE_TIMEOUT:?}"
                );
                failures += 1;
                let settle = Duration::from_secs(60);
                in_force_everywhere(&members, &disagreements, change_of, started, settle)?
                    .with_context(|| format!("change {change} never came into force"))?;
            }
        }
    }
    let variant = "propagation";
    let push = |results: &mut Results, metric: &str, value: f64, unit: &str| {
        results.push(Record::new(SCENARIO, variant, 0, metric, value, unit));
    };
    push(results, "hosts", settings.daemons as f64, "hosts");
    for (prefix, samples) in [
        ("all-hosts", &all),
        ("all-hosts-reported", &reported),
        ("each-host", &each),
    ] {
        for (p, name) in [(50.0, "p50"), (99.0, "p99"), (100.0, "max")] {
            if let Some(v) = percentile(samples, p) {
                push(results, &format!("{prefix}-{name}"), v, "ms");
            }
        }
    }
    push(results, "changes", (all.len() + failures) as f64, "changes");
    push(results, "failures", failures as f64, "changes");
    push(
        results,
        "disagreements",
        disagreements.load(Ordering::Relaxed) as f64,
        "traces",
    );
    drop(members);
    Ok(())
}

/// What one host is asked: its daemon, its VM's instance, the remote
/// whose verdict changes; and where to count the traces in which the
/// kernel and the reference evaluator disagreed.
struct Probe<'a> {
    client: &'a Client,
    instance: String,
    remote: IpAddr,
    disagreements: &'a AtomicUsize,
    /// How often to ask: a poll competes with the daemon for the CPUs.
    poll: Duration,
}

/// Polls every member on a thread of its own until it has applied
/// `revision` and its kernel gives the mover's tcp 5432 to its VM the
/// verdict `member` implies; each member's milliseconds since `started`,
/// or `None` if one was late past `timeout`.
fn in_force_everywhere(
    members: &[Member<'_>],
    disagreements: &AtomicUsize,
    (revision, member): (i64, bool),
    started: Instant,
    timeout: Duration,
) -> Result<Option<Vec<Reached>>> {
    let remote: IpAddr = MOVER_IP.parse().context("the mover's address")?;
    std::thread::scope(|scope| {
        let waits: Vec<_> = members
            .iter()
            .map(|m| {
                let probe = Probe {
                    client: &m.client,
                    instance: m.vm.instance(),
                    remote,
                    disagreements,
                    poll: POLL,
                };
                scope.spawn(move || wait_in_force(&probe, (revision, member), started, timeout))
            })
            .collect();
        let mut times = Vec::new();
        for wait in waits {
            match wait.join() {
                Ok(Ok(Some(ms))) => times.push(ms),
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(_) => bail!("a polling thread panicked"),
            }
        }
        Ok(Some(times))
    })
}

/// When a change reached one daemon: its kernel giving the new verdict,
/// and its status reporting the revision in force (with the kernel and
/// the reference evaluator agreeing), in ms since the write.
#[derive(Debug, Clone, Copy)]
struct Reached {
    kernel: f64,
    reported: f64,
}

/// [`in_force_everywhere`] for one daemon: until its kernel gives the
/// verdict `member` implies, and its status reports `revision` (or a
/// later one) in force with the reference evaluator agreeing.
fn wait_in_force(
    probe: &Probe<'_>,
    (revision, member): (i64, bool),
    started: Instant,
    timeout: Duration,
) -> Result<Option<Reached>> {
    let ms = || started.elapsed().as_secs_f64() * 1e3;
    let mut kernel = None;
    let mut applied = false;
    loop {
        if !applied {
            let status: Value = probe
                .client
                .get(secgroup_api::paths::STATUS)
                .context("GET /v1/status")?;
            if !status["last_error"].is_null() {
                bail!(
                    "secgroupd rejected a generated revision: {}",
                    status["last_error"]
                );
            }
            applied = status["source"]["etcd"]["revision"].as_i64() >= Some(revision);
        }
        let (accepts, agreed) = verdict(probe)?;
        if kernel.is_none() && accepts == member {
            kernel = Some(ms());
        }
        if let Some(kernel) = kernel
            && applied
            && agreed
            && accepts == member
        {
            return Ok(Some(Reached {
                kernel,
                reported: ms(),
            }));
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(probe.poll);
    }
}

/// Whether the live kernel program accepts a first SYN from the probe's
/// remote to its instance on [`PORT`], and whether the reference
/// evaluator agrees (traces where it does not are counted).
fn verdict(probe: &Probe<'_>) -> Result<(bool, bool)> {
    let request = TraceRequest {
        port: Some(PORT),
        ..TraceRequest::new(
            probe.instance.clone(),
            Direction::Ingress,
            "tcp",
            probe.remote,
        )
    };
    let trace: secgroup_api::TraceResponse = probe
        .client
        .post(secgroup_api::paths::TRACE, Some(&request))
        .context("POST /v1/trace")?;
    if trace.disagree {
        let seen = probe.disagreements.fetch_add(1, Ordering::Relaxed);
        if seen < 3 {
            eprintln!(
                "secgroup-bench: fleet: {}: the kernel and the reference evaluator disagree on {}: kernel {} ({}), reference {} ({})",
                probe.instance,
                trace.packet.text,
                trace.kernel.action,
                trace.kernel.reason,
                trace.reference.action,
                trace.reference.matched,
            );
        }
    }
    Ok((trace.kernel.action == "accept", !trace.disagree))
}
