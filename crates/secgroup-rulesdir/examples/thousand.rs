//! Where a one-VM reload's time goes in process, at the scale of the
//! `thousand` bench layout: `vms` VM files (a 10-rule group of its own
//! and its instance, bound first to a 100-rule base group of
//! `base.json`). Times, per change of one VM's file (or of the base
//! group's last rule, with a third argument `1`): the load through a kept
//! cache, the recompile from the previous load, the comparison with the
//! previous policy and the lint. `cargo run --release -p
//! secgroup-rulesdir --example thousand [vms] [changes] [base]`.
//! Measures, asserts nothing.

use std::time::{Duration, Instant};

use secgroup_model::{DecodeCache, Limits, SourceFile};

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
    let sources = |files: &[(String, String)]| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .map(|(n, t)| (n.clone(), t.clone().into_bytes()))
            .collect()
    };
    let load = |files: &[(String, String)], cache: &mut DecodeCache, known: &[String]| {
        let owned = sources(files);
        let docs: Vec<SourceFile<'_>> = owned
            .iter()
            .map(|(name, bytes)| SourceFile { name, bytes })
            .collect();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let started = Instant::now();
        let loaded = secgroup_model::load_with_cache(&docs, &limits, &known, cache)
            .unwrap_or_else(|e| panic!("{e}"));
        (loaded, started.elapsed())
    };
    let known: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let (loaded, first) = load(&files, &mut cache, &[]);
    let started = Instant::now();
    let mut policy = secgroup_policy::compile(&loaded.rules);
    let mut rules = loaded.rules;
    time_lookups(&policy);
    println!(
        "first load {} ms, compile {} ms",
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
        } else {
            files[vm + 1] = vm_file(vm, last);
        }
        let (loaded, load_time) = load(&files, &mut cache, &known);
        let started = Instant::now();
        let new = secgroup_policy::recompile(&rules, &policy, &loaded.rules);
        let compile = started.elapsed();
        let started = Instant::now();
        let same = new == policy;
        let diff = secgroup_policy::diff(&policy, &new);
        let compare = started.elapsed();
        let started = Instant::now();
        let warnings = secgroup_policy::lint(&loaded.rules, &new, &loaded.index);
        let lint = started.elapsed();
        println!(
            "change {change}: load {} ms, compile {} ms, compare {} ms (same {same}, {diff}), lint {} ms ({} warnings)",
            ms(load_time),
            ms(compile),
            ms(compare),
            ms(lint),
            warnings.len()
        );
        policy = new;
        rules = loaded.rules;
    }
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
