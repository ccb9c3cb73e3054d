//! The etcd fleet (`fleet/`): its table, and the propagation target
//! judged against it.

use std::fmt::Write as _;

use super::format;
use super::goals::{Goal, at_most};
use crate::record::Results;

fn get(r: &Results, variant: &str, metric: &str) -> Option<f64> {
    r.get("fleet", variant, 0, metric)
}

fn ms(r: &Results, variant: &str, metric: &str) -> String {
    get(r, variant, metric).map_or("—".to_owned(), format::ms)
}

/// The section of table.md, if the fleet was measured.
pub fn table(out: &mut String, r: &Results) {
    let Some(hosts) = get(r, "propagation", "hosts") else {
        return;
    };
    let _ = writeln!(
        out,
        "### Fleet on etcd\n\n{} hosts (network namespaces, each with its own secgroupd) fed from one etcd; one put changes an instance's membership of the group a rule on every host admits. Timed from the put until every host's kernel gives the new verdict.\n\n| what | p50 | p99 | max | samples |\n|---|---:|---:|---:|---:|",
        format::count(hosts)
    );
    let samples = |variant: &str| {
        get(r, variant, "changes").map_or("—".to_owned(), |n| {
            let failed = get(r, variant, "failures").unwrap_or(0.0);
            if failed > 0.0 {
                format!(
                    "{} ({} not in force within 5 s)",
                    format::count(n),
                    format::count(failed)
                )
            } else {
                format::count(n)
            }
        })
    };
    for (variant, what, prefix) in [
        (
            "propagation",
            "put → every host's kernel gives the new verdict",
            "all-hosts",
        ),
        (
            "propagation",
            "put → every host's status reports it (kernel and reference agreeing)",
            "all-hosts-reported",
        ),
        ("propagation", "put → verdict, each host", "each-host"),
        (
            "large-store-change",
            "put → kernel verdict, with the large store below",
            "write-to-verdict",
        ),
        (
            "large-store-change",
            "put → status reports it, with the large store below",
            "write-to-reported",
        ),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {} |",
            ms(r, variant, &format!("{prefix}-p50")),
            ms(r, variant, &format!("{prefix}-p99")),
            ms(r, variant, &format!("{prefix}-max")),
            samples(variant)
        );
    }
    let disagreed =
        |variant: &str| get(r, variant, "disagreements").map_or("—".to_owned(), format::count);
    let _ = writeln!(
        out,
        "\nTraces polled while a change came into force in which the kernel and the reference evaluator disagreed (the kernel enforcing the new revision before the daemon published it): {} across the hosts, {} with the large store.",
        disagreed("propagation"),
        disagreed("large-store-change")
    );
    let count = |metric: &str| get(r, "first-sync", metric).map_or("—".to_owned(), format::count);
    let bytes = |metric: &str| get(r, "first-sync", metric).map_or("—".to_owned(), format::bytes);
    let _ = writeln!(
        out,
        "\nFirst sync: {} instances over {} hosts in etcd ({} keys, {}); a host with a few VMs of its own is READY {} after its start, the store's revision applied after {}; RSS then {}.\n",
        count("instances"),
        count("hosts"),
        count("keys"),
        bytes("bytes"),
        ms(r, "first-sync", "ready-ms"),
        ms(r, "first-sync", "applied-ms"),
        bytes("rss"),
    );
}

/// The targets of "past one host".
pub fn goals(r: &Results) -> Vec<Goal> {
    let hosts = get(r, "propagation", "hosts").map_or("?".to_owned(), format::count);
    vec![at_most(
        format!("fleet of {hosts} hosts: one etcd write → verdict on every host p99 ≤ 200 ms"),
        get(r, "propagation", "all-hosts-p99").map(|v| (v, format::ms(v))),
        200.0,
        format::ms,
    )]
}
