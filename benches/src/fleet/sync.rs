//! A host's first sync with a fleet's worth of instances in etcd, and
//! membership changes on that large store (see `mod.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use secgroup_api::Client;
use secgroup_testbed::{Fleet, instance_on};
use serde_json::Value;

use super::store::Store;
use super::{
    IN_FORCE_TIMEOUT, Member, POLL_LARGE, Probe, SCENARIO, Settings, base_groups, object,
    remote_instance, start_daemon, wait_in_force,
};
use crate::record::{Record, Results};
use crate::stats::percentile;

/// The host that syncs, and how many VMs of its own it has.
const HOST: &str = "hv-0007";
const LOCAL_VMS: usize = 3;
/// Members per group of the fleet's instances.
const GROUP_SIZE: usize = 1_000;

/// Instance `i` of the fleet: on host `i % hosts`, one IPv6 address.
fn fleet_instance(i: usize, hosts: usize, member: bool) -> (String, String, String) {
    let id = format!("ins-{i:06}");
    let host = format!("host-{:04}", i % hosts);
    let interface = format!("tap{}", i / hosts);
    let ip = format!("2001:db8:10::{:x}:{:x}", i >> 16, i & 0xffff);
    let mut document = remote_instance(&id, &host, &interface, &ip, member);
    document["security_groups"] = serde_json::json!([
        format!("sg-g{:04}", i / GROUP_SIZE),
        if member { "sg-web" } else { "sg-other" },
    ]);
    object("instances", &document)
}

pub(super) fn first_sync(settings: &Settings, results: &mut Results) -> Result<()> {
    let fleet = Fleet::new("bsync", &[HOST]);
    let store = Store::new(&fleet);
    let host = fleet.host(HOST);
    let vms: Vec<_> = (0..LOCAL_VMS)
        .map(|i| host.vm(&format!("l{i}"), 10 + i as u8))
        .collect();

    let mut objects = base_groups();
    let groups = settings.sync_instances.div_ceil(GROUP_SIZE);
    for g in 0..groups {
        let document = secgroup_testbed::group(
            &format!("sg-g{g:04}"),
            vec![secgroup_testbed::accept(
                "tcp",
                "22",
                &format!("sg-g{g:04}"),
            )],
            vec![secgroup_testbed::accept("all", "", "")],
        );
        objects.push(object("security_groups", &document));
    }
    for vm in &vms {
        objects.push(object("instances", &instance_on(vm, HOST, &["sg-db"])));
    }
    for i in 0..settings.sync_instances {
        objects.push(fleet_instance(i, settings.sync_hosts, i % 100 == 0));
    }
    let bytes: usize = objects.iter().map(|(_, _, v)| v.len()).sum();
    let keys = objects.len();
    let loading = Instant::now();
    let revision = store.put_all(objects)?;
    eprintln!(
        "secgroup-bench: fleet: {keys} keys ({:.1} MB) loaded in {:.1} s",
        bytes as f64 / 1e6,
        loading.elapsed().as_secs_f64()
    );

    let spawned = Instant::now();
    let daemon = start_daemon(&fleet, HOST, settings)?;
    let ready = spawned.elapsed();
    let client = Client::new(daemon.socket()).with_timeout(Duration::from_secs(30));
    let applied = secgroup_testbed::poll(Duration::from_secs(60), || {
        let status: Value = client.get(secgroup_api::paths::STATUS).ok()?;
        (status["source"]["etcd"]["revision"].as_i64() >= Some(revision)).then(|| spawned.elapsed())
    })
    .with_context(|| format!("{HOST} never reported revision {revision} applied"))?;
    let rss = crate::daemon::rss_bytes(daemon.pid())?;

    let variant = "first-sync";
    let push = |results: &mut Results, variant: &str, metric: &str, value: f64, unit: &str| {
        results.push(Record::new(SCENARIO, variant, 0, metric, value, unit));
    };
    push(
        results,
        variant,
        "instances",
        settings.sync_instances as f64,
        "instances",
    );
    push(
        results,
        variant,
        "hosts",
        settings.sync_hosts as f64,
        "hosts",
    );
    push(results, variant, "keys", keys as f64, "keys");
    push(results, variant, "bytes", bytes as f64, "bytes");
    push(
        results,
        variant,
        "ready-ms",
        ready.as_secs_f64() * 1e3,
        "ms",
    );
    push(
        results,
        variant,
        "applied-ms",
        applied.as_secs_f64() * 1e3,
        "ms",
    );
    push(results, variant, "rss", rss, "bytes");

    // Membership changes of one remote instance on the large store.
    let member = Member {
        vm: vms.into_iter().next().context("a local VM")?,
        _daemon: daemon,
        client,
    };
    let moving = 123 % settings.sync_instances;
    let (_, id, _) = fleet_instance(moving, settings.sync_hosts, false);
    let remote = format!("2001:db8:10::{:x}:{:x}", moving >> 16, moving & 0xffff)
        .parse()
        .context("the moving instance's address")?;
    let disagreements = AtomicUsize::new(0);
    let probe = Probe {
        client: &member.client,
        instance: member.vm.instance(),
        remote,
        disagreements: &disagreements,
        poll: POLL_LARGE,
    };
    let mut samples = Vec::new();
    let mut reported = Vec::new();
    let mut failures = 0;
    for change in 0..settings.sync_changes {
        let joins = change % 2 == 0;
        let (_, _, value) = fleet_instance(moving, settings.sync_hosts, joins);
        let (started, revision) = store.put_timed("instances", &id, value)?;
        let wait = |timeout| wait_in_force(&probe, (revision, joins), started, timeout);
        match wait(IN_FORCE_TIMEOUT)? {
            Some(reached) => {
                samples.push(reached.kernel);
                reported.push(reached.reported);
            }
            None => {
                failures += 1;
                wait(Duration::from_secs(60))?
                    .with_context(|| format!("change {change} never came into force"))?;
            }
        }
    }
    let variant = "large-store-change";
    for (prefix, samples) in [
        ("write-to-verdict", &samples),
        ("write-to-reported", &reported),
    ] {
        for (p, name) in [(50.0, "p50"), (99.0, "p99"), (100.0, "max")] {
            if let Some(v) = percentile(samples, p) {
                push(results, variant, &format!("{prefix}-{name}"), v, "ms");
            }
        }
    }
    push(
        results,
        variant,
        "changes",
        (samples.len() + failures) as f64,
        "changes",
    );
    push(results, variant, "failures", failures as f64, "changes");
    let disagreed = disagreements.load(Ordering::Relaxed) as f64;
    push(results, variant, "disagreements", disagreed, "traces");
    drop(probe);
    drop(member);
    Ok(())
}
