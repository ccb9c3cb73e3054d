//! secgroup-etcd against a real etcd (the test bed's: 127.0.0.1, free
//! ports, a temporary data directory, stopped on drop): snapshots,
//! publishing in one transaction, invalid values located by key, and the
//! follower's watch, compaction resync and reconnection.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use secgroup_etcd::{
    Change, ConnectOptions, Layout, Update, follow, follow_from, objects, publish,
};
use secgroup_model::{DecodeCache, Document, HostView, Limits, RuleSet, SourceFile};
use secgroup_testbed::{Etcd, etcd_or_skip};

const PREFIX: &str = "/secgroup/";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn options(etcd: &Etcd) -> ConnectOptions {
    ConnectOptions::plain(&[etcd.endpoint()], PREFIX).unwrap_or_else(|e| panic!("{e}"))
}

fn layout() -> Layout {
    Layout::new(PREFIX).unwrap_or_else(|e| panic!("{e}"))
}

/// A rules directory's content, validated as a publish does (the fleet).
fn rules(text: &str) -> RuleSet {
    let file = SourceFile {
        name: "fleet.json",
        bytes: text.as_bytes(),
    };
    secgroup_model::load_documents(
        &[Document::from(file)],
        &Limits::default(),
        &[],
        &mut DecodeCache::default(),
        HostView::Fleet,
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .rules
}

const FLEET: &str = r#"{
  "security_groups": [ { "id": "sg-web", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "80", "remote": "sg-web" } ] },
                       { "id": "sg-db" } ],
  "instances": [
    { "id": "ins-a", "host": "hv-a", "interface": "tap0", "ips": ["198.51.100.10"], "security_groups": ["sg-web"] },
    { "id": "ins-b", "host": "hv-b", "interface": "tap0", "ips": ["198.51.100.11"], "security_groups": ["sg-web"] }
  ]
}"#;

#[test]
fn publish_is_one_transaction_and_the_snapshot_reads_it_back() {
    if !etcd_or_skip("publish_is_one_transaction_and_the_snapshot_reads_it_back") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    let options = options(&etcd);
    let wanted = objects(&options.layout, &rules(FLEET));
    assert_eq!(wanted.len(), 4);
    etcd.put("/other/untouched", "x");
    etcd.put("/secgroup/readme", "a stray key");
    let before = etcd.revision();
    let published = rt
        .block_on(publish(&options, &wanted))
        .unwrap_or_else(|e| panic!("{e}"));
    // Four puts and a delete, all in one revision.
    assert_eq!(
        (published.put, published.deleted, published.unchanged),
        (4, 1, 0)
    );
    assert_eq!(published.revision, before + 1);
    let snapshot = rt
        .block_on(secgroup_etcd::snapshot(&options))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.revision, published.revision);
    assert_eq!(snapshot.values, wanted);
    assert_eq!(etcd.get("/other/untouched").as_deref(), Some("x"));
    // What is read back is what was published, seen from either host.
    let loaded = snapshot
        .load(&layout(), HostView::Host("hv-a"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.rules.instances.len(), 2);
    assert_eq!(
        loaded
            .rules
            .instances
            .values()
            .filter(|i| i.interface.is_some())
            .count(),
        1
    );

    // The same again changes nothing, not even the revision.
    let again = rt
        .block_on(publish(&options, &wanted))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.put, again.deleted, again.unchanged), (0, 0, 4));
    assert_eq!(etcd.revision(), published.revision);

    // A smaller directory: the prefix ends up equal to it.
    let smaller = FLEET.replace(
        r#",
                       { "id": "sg-db" }"#,
        "",
    );
    let smaller = objects(&options.layout, &rules(&smaller));
    let shrunk = rt
        .block_on(publish(&options, &smaller))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((shrunk.put, shrunk.deleted, shrunk.unchanged), (0, 1, 3));
    assert_eq!(shrunk.revision, published.revision + 1);
    assert_eq!(etcd.get("/secgroup/security_groups/sg-db"), None);
}

#[test]
fn invalid_values_and_stray_keys_are_located_by_key() {
    if !etcd_or_skip("invalid_values_and_stray_keys_are_located_by_key") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    let options = options(&etcd);
    etcd.put(
        "/secgroup/security_groups/sg-web",
        r#"{ "id": "sg-web", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "99999" } ] }"#,
    );
    etcd.put("/secgroup/vms/x", "{}");
    let snapshot = rt
        .block_on(secgroup_etcd::snapshot(&options))
        .unwrap_or_else(|e| panic!("{e}"));
    let errors = match snapshot.load(&layout(), HostView::Host("hv-a")) {
        Ok(_) => panic!("an invalid value was accepted"),
        Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    assert_eq!(
        errors,
        [
            "etcd:/secgroup/security_groups/sg-web:1:81: ingress[0].port: \"99999\" is not a port (out of range 1-65535)",
            "etcd:/secgroup/vms/x:1:1: $: not an object's key: \"vms\" is not a kind of object; keys are <prefix>KIND/ID with KIND one of security_groups, instances, address_sets, address_set_groups, service_sets, service_set_groups",
        ]
    );
}

/// Receives updates until `done` says so, or panics after `timeout`
/// with what came.
fn until(
    updates: &mpsc::Receiver<Update>,
    timeout: Duration,
    mut done: impl FnMut(&Update) -> bool,
) -> Vec<Update> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match updates.recv_timeout(left) {
            Ok(update) => {
                let stop = done(&update);
                seen.push(update);
                if stop {
                    return seen;
                }
            }
            Err(_) => panic!("no such update within {timeout:?}; got {seen:#?}"),
        }
    }
}

fn spawn_follower(
    rt: &tokio::runtime::Runtime,
    options: ConnectOptions,
    from: Option<i64>,
) -> mpsc::Receiver<Update> {
    let (tx, rx) = mpsc::channel();
    rt.spawn(follow_from(options, from, move |update| {
        let _ = tx.send(update);
    }));
    rx
}

#[test]
fn the_follower_sees_every_change_and_coalesces_bursts() {
    if !etcd_or_skip("the_follower_sees_every_change_and_coalesces_bursts") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    etcd.put("/secgroup/instances/ins-0", "0");
    let (tx, updates) = mpsc::channel();
    rt.spawn(follow(options(&etcd), move |update| {
        let _ = tx.send(update);
    }));
    let first = until(&updates, Duration::from_secs(20), |u| {
        matches!(u, Update::Reset { .. })
    });
    let Some(Update::Reset { snapshot, reason }) = first.last() else {
        panic!("{first:?}")
    };
    assert_eq!(*reason, "first sync");
    assert_eq!(snapshot.values.len(), 1);
    let start = snapshot.revision;

    // A burst of writes in one etcdctl call (one process, back to back).
    let mut script = String::new();
    for i in 1..=40 {
        script.push_str(&format!("put /secgroup/instances/ins-{i} v{i}\n"));
    }
    script.push_str("del /secgroup/instances/ins-0\n");
    for line in script.lines() {
        let args: Vec<&str> = line.split(' ').collect();
        etcd.etcdctl(&args, None)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    let last = etcd.revision();
    let mut view: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
    let mut revisions = Vec::new();
    until(&updates, Duration::from_secs(20), |u| match u {
        Update::Changes { revision, changes } => {
            revisions.push(*revision);
            for (key, change) in changes {
                let value = match change {
                    Change::Put(v) => Some(v.clone()),
                    Change::Delete => None,
                };
                view.insert(key.clone(), value);
            }
            *revision == last
        }
        _ => false,
    });
    // Every revision in order, each handed on whole, ending at the last.
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(revisions[0] > start);
    assert_eq!(view.len(), 41);
    assert_eq!(view["/secgroup/instances/ins-0"], None);
    assert_eq!(
        view["/secgroup/instances/ins-40"].as_deref(),
        Some(&b"v40"[..])
    );
    // A burst is coalesced whenever responses queue up; it is never
    // split into more updates than there were revisions.
    assert!(revisions.len() <= 41, "{revisions:?}");
}

#[test]
fn a_compacted_revision_forces_a_full_resync() {
    if !etcd_or_skip("a_compacted_revision_forces_a_full_resync") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    let old = etcd.put("/secgroup/instances/ins-1", "1");
    etcd.put("/secgroup/instances/ins-2", "2");
    let now = etcd.put("/secgroup/instances/ins-3", "3");
    etcd.etcdctl(&["compaction", &now.to_string()], None)
        .unwrap_or_else(|e| panic!("compacting: {e}"));
    // A reader that holds revision `old` resumes: its next revision is gone.
    let updates = spawn_follower(&rt, options(&etcd), Some(old));
    let seen = until(&updates, Duration::from_secs(20), |u| {
        matches!(u, Update::Reset { .. })
    });
    let Some(Update::Reset { snapshot, reason }) = seen.last() else {
        panic!("{seen:?}")
    };
    assert_eq!(*reason, "compacted");
    assert_eq!(snapshot.revision, now);
    assert_eq!(snapshot.values.len(), 3);
    // And it goes on watching from there.
    let next = etcd.put("/secgroup/instances/ins-4", "4");
    until(
        &updates,
        Duration::from_secs(20),
        |u| matches!(u, Update::Changes { revision, .. } if *revision == next),
    );
}

#[test]
fn an_outage_is_reported_and_the_watch_resumes_after_it() {
    if !etcd_or_skip("an_outage_is_reported_and_the_watch_resumes_after_it") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    let mut options = options(&etcd);
    options.timeout = Duration::from_secs(1);
    let updates = spawn_follower(&rt, options, None);
    until(&updates, Duration::from_secs(20), |u| {
        matches!(u, Update::Reset { .. })
    });
    etcd.stop();
    let seen = until(&updates, Duration::from_secs(30), |u| {
        matches!(u, Update::Unreachable { .. })
    });
    let Some(Update::Unreachable { error, .. }) = seen.last() else {
        panic!("{seen:?}")
    };
    assert!(error.contains(&etcd.endpoint()), "{error}");
    etcd.start();
    until(&updates, Duration::from_secs(30), |u| {
        matches!(u, Update::Reconnected { .. })
    });
    let next = etcd.put("/secgroup/instances/ins-after", "x");
    let seen = until(
        &updates,
        Duration::from_secs(20),
        |u| matches!(u, Update::Changes { revision, .. } if *revision == next),
    );
    // Resumed, not resynced: no snapshot in between.
    assert!(
        !seen.iter().any(|u| matches!(u, Update::Reset { .. })),
        "{seen:?}"
    );
}

#[test]
fn an_idle_watch_stays_up() {
    if !etcd_or_skip("an_idle_watch_stays_up") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    let updates = spawn_follower(&rt, options(&etcd), None);
    until(&updates, Duration::from_secs(20), |u| {
        matches!(u, Update::Reset { .. })
    });
    // Longer than a keepalive round (a client that pings more often than
    // etcd's --grpc-keepalive-min-time gets its connection closed).
    std::thread::sleep(Duration::from_secs(12));
    let next = etcd.put("/secgroup/instances/ins-late", "x");
    let seen = until(
        &updates,
        Duration::from_secs(10),
        |u| matches!(u, Update::Changes { revision, .. } if *revision == next),
    );
    assert!(
        seen.iter().all(|u| matches!(u, Update::Changes { .. })),
        "the watch broke while idle: {seen:#?}"
    );
}

#[test]
fn credentials_from_a_password_file() {
    if !etcd_or_skip("credentials_from_a_password_file") {
        return;
    }
    let etcd = Etcd::new();
    let rt = runtime();
    etcd.put(
        "/secgroup/address_sets/ipm-x",
        r#"{ "id": "ipm-x", "addresses": [] }"#,
    );
    etcd.etcdctl(&["user", "add", "root:r00t-pw"], None)
        .unwrap_or_else(|e| panic!("adding root: {e}"));
    etcd.etcdctl(&["auth", "enable"], None)
        .unwrap_or_else(|e| panic!("enabling auth: {e}"));
    let dir = std::env::temp_dir().join(format!("secgroup-etcd-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let with_password = |password: &str| {
        let file = dir.join("password");
        std::fs::write(&file, format!("{password}\n")).unwrap_or_else(|e| panic!("{e}"));
        secgroup_etcd::EtcdArgs {
            endpoints: vec![etcd.endpoint()],
            prefix: PREFIX.to_owned(),
            user: Some("root".to_owned()),
            password_file: Some(file),
            timeout: Duration::from_secs(5),
            ..secgroup_etcd::EtcdArgs::default()
        }
        .options()
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let snapshot = rt
        .block_on(secgroup_etcd::snapshot(&with_password("r00t-pw")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.values.len(), 1);
    // Without them, or with the wrong password: refused, and said so.
    let refused = rt.block_on(secgroup_etcd::snapshot(&options(&etcd)));
    assert!(refused.is_err(), "read without credentials: {refused:?}");
    let wrong = rt
        .block_on(secgroup_etcd::snapshot(&with_password("nope")))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(wrong.contains("authentication failed"), "{wrong}");
    let _ = std::fs::remove_dir_all(&dir);
}
