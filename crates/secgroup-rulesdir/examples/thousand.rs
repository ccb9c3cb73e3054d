//! Where a one-VM reload's time goes in process, at the scale of the
//! `thousand` bench layout: `vms` VM files (a 10-rule group of its own
//! and its instance, bound first to a 100-rule base group of
//! `base.json`), written to a directory under the system's temp
//! directory. Times, per change of one VM's file (a temp file renamed
//! over it; or of the base group's last rule, with a third argument `1`):
//! reading the directory (through `KeptFiles` unless the fifth argument
//! is `0`), the load through a kept decode cache, the recompile from the
//! previous load, the comparison with the previous policy and the lint
//! (through a kept `Linter`; none with a fourth argument `0`). `cargo run
//! --release -p secgroup-rulesdir --example thousand [vms] [changes]
//! [base] [lint] [kept]`. Measures, asserts nothing.

use std::time::{Duration, Instant};

use std::path::PathBuf;

use secgroup_model::{DecodeCache, Limits};
use secgroup_rulesdir::KeptFiles;

fn rule(k: usize, action: &str) -> String {
    let protocol = if k.is_multiple_of(2) { "tcp" } else { "udp" };
    format!(
        r#"{{"action":"{action}","protocol":"{protocol}","port":{},"remote":"203.0.113.{}"}}"#,
        1024 + k / 256,
        k % 256
    )
}

fn group(id: &str, rules: std::ops::Range<usize>, last: &str) -> String {
    let side: Vec<String> = rules
        .clone()
        .map(|k| rule(k, if k + 1 == rules.end { last } else { "accept" }))
        .collect();
    let side = side.join(",");
    format!(r#"{{"id":"{id}","ingress":[{side}],"egress":[{side}]}}"#)
}

fn vm_file(vm: usize, last: &str) -> (String, String) {
    let address = if vm < 250 {
        format!("192.0.2.{}", vm + 1)
    } else {
        format!("2001:db8:2::{vm:x}")
    };
    let text = format!(
        "{{\"security_groups\":[{}],\"instances\":[{{\"id\":\"ins-{vm:03}\",\"interface\":\"sgb{vm:03}\",\"ips\":[\"{address}\"],\"security_groups\":[\"sg-base\",\"sg-vm{vm:03}\"]}}]}}",
        group(&format!("sg-vm{vm:03}"), 100..110, last)
    );
    (format!("rules/vm-{vm:03}.json"), text)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let vms = args.first().copied().unwrap_or(1000);
    let changes = args.get(1).copied().unwrap_or(10);
    let base_changes = args.get(2) == Some(&1);
    let lint_too = args.get(3) != Some(&0);
    let keep_files = args.get(4) != Some(&0);
    let base_file = |last: &str| {
        let text = format!(
            "{{\"security_groups\":[{}]}}",
            group("sg-base", 0..100, last)
        );
        ("rules/base.json".to_owned(), text)
    };
    let mut files: Vec<(String, String)> = vec![base_file("accept")];
    files.extend((0..vms).map(|vm| vm_file(vm, "accept")));
    let limits = Limits::default();
    let mut cache = DecodeCache::default();
    let mut kept = KeptFiles::default();
    let dir = std::env::temp_dir().join(format!("secgroup-thousand-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rules")).unwrap_or_else(|e| panic!("{e}"));
    let write = |(name, text): &(String, String)| {
        let temp = dir.join(format!("{name}.tmp"));
        std::fs::write(&temp, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&temp, dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    };
    files.iter().for_each(write);
    let rules_dir = [dir.join("rules")];
    let mut load = |cache: &mut DecodeCache, known: &[PathBuf]| {
        let started = Instant::now();
        let sources = if keep_files {
            secgroup_rulesdir::read_sources_kept(&rules_dir, limits.max_file_bytes, &mut kept)
        } else {
            secgroup_rulesdir::read_sources_limited(&rules_dir, limits.max_file_bytes)
        }
        .unwrap_or_else(|e| panic!("{e}"));
        let read = started.elapsed();
        let started = Instant::now();
        let loaded = sources
            .load_cached(&limits, known, cache)
            .unwrap_or_else(|e| panic!("{e}"));
        (loaded, read, started.elapsed())
    };
    let (loaded, first_read, first) = load(&mut cache, &[]);
    let known = loaded.files.clone();
    // Files written just now are read again until they are older than
    // the margin (see `kept.rs`): settle, as a daemon started on an
    // existing directory finds it.
    std::thread::sleep(secgroup_rulesdir::RACY_MARGIN);
    let _ = load(&mut cache, &known);
    let started = Instant::now();
    let mut policy = secgroup_policy::compile(&loaded.rules);
    let mut rules = loaded.rules;
    // Kept across lints, as the daemon keeps one (see
    // `secgroup_policy::Linter`); the first lint works out every list.
    let mut linter = secgroup_policy::Linter::default();
    if lint_too {
        let started = Instant::now();
        linter.lint(&rules, &policy, &loaded.index);
        println!("first lint {} ms", ms(started.elapsed()));
    }
    time_lookups(&policy);
    println!(
        "first read {} ms, load {} ms, compile {} ms",
        ms(first_read),
        ms(first),
        ms(started.elapsed())
    );
    for change in 0..changes {
        let vm = (change * 37) % vms;
        let last = if (change / 27) % 2 == 0 {
            "drop"
        } else {
            "accept"
        };
        if base_changes {
            files[0] = base_file(if change % 2 == 0 { "drop" } else { "accept" });
            write(&files[0]);
        } else {
            files[vm + 1] = vm_file(vm, last);
            write(&files[vm + 1]);
        }
        let (loaded, read_time, load_time) = load(&mut cache, &known);
        let started = Instant::now();
        let new = secgroup_policy::recompile(&rules, &policy, &loaded.rules);
        let compile = started.elapsed();
        let started = Instant::now();
        let same = new == policy;
        let diff = secgroup_policy::diff(&policy, &new);
        let compare = started.elapsed();
        let started = Instant::now();
        let warnings = if lint_too {
            linter.lint(&loaded.rules, &new, &loaded.index)
        } else {
            Vec::new()
        };
        let lint = started.elapsed();
        println!(
            "change {change}: read {} ms, load {} ms, compile {} ms, compare {} ms (same {same}, {diff}), lint {} ms ({} warnings)",
            ms(read_time),
            ms(load_time),
            ms(compile),
            ms(compare),
            ms(lint),
            warnings.len()
        );
        policy = new;
        rules = loaded.rules;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the data plane's apply pays per binding to find a list's table:
/// a hash lookup of the whole list (its store is keyed by content).
fn time_lookups(policy: &secgroup_policy::Policy) {
    let mut store = std::collections::HashMap::new();
    for (i, instance) in policy.instances.values().enumerate() {
        store.insert(instance.ingress.clone(), 2 * i);
        store.insert(instance.egress.clone(), 2 * i + 1);
    }
    let started = Instant::now();
    let mut found = 0;
    for instance in policy.instances.values() {
        found += usize::from(store.contains_key(&instance.ingress));
        found += usize::from(store.contains_key(&instance.egress));
    }
    println!("{found} list lookups: {} ms", ms(started.elapsed()));
}
