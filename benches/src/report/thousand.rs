//! The 1,000-VM layout (`daemon/thousand.rs`): its table, and the scale
//! targets judged against it.

use std::fmt::Write as _;

use super::format;
use super::goals::{Goal, at_most};
use crate::daemon::THOUSAND_RULES as RULES;
use crate::record::Results;

fn get(r: &Results, variant: &str, metric: &str) -> Option<f64> {
    r.get("control", variant, RULES as u64, metric)
}

/// The section of table.md, if the layout was measured.
pub fn table(out: &mut String, r: &Results) {
    let Some(vms) = get(r, "daemon-start-cold", "vms") else {
        return;
    };
    let _ = writeln!(
        out,
        "### {} VMs on one host, through secgroupd\n\nEvery VM bound to a 100-rule base group shared by all, then a 10-rule group of its own ({RULES} rules per direction, every list distinct); one veth pair per VM.\n\n| what | p50 | p99 | max | samples |\n|---|---:|---:|---:|---:|",
        format::count(vms)
    );
    for (variant, what, prefix) in [
        (
            "daemon-shared-base",
            "base group changed: rename → new verdict",
            "write-to-verdict",
        ),
        (
            "daemon-own-group",
            "one VM's own group changed: rename → new verdict",
            "write-to-verdict",
        ),
        (
            "daemon-new-interface",
            "new interface: `ip link add` → verdict from its hooks",
            "write-to-verdict",
        ),
        (
            "daemon-api-read",
            "`GET /v1/status` while base-group reloads run",
            "latency",
        ),
    ] {
        let ms =
            |p: &str| get(r, variant, &format!("{prefix}-{p}")).map_or("—".to_owned(), format::ms);
        let samples = get(r, variant, "changes").map_or("—".to_owned(), |n| {
            let failed = get(r, variant, "failures").unwrap_or(0.0);
            if failed > 0.0 {
                format!(
                    "{} ({} not in force within 30 s)",
                    format::count(n),
                    format::count(failed)
                )
            } else {
                format::count(n)
            }
        });
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {samples} |",
            ms("p50"),
            ms("p99"),
            ms("max")
        );
    }
    let once =
        |variant: &str, metric: &str| get(r, variant, metric).map_or("—".to_owned(), format::ms);
    let bytes = |metric: &str| get(r, "daemon-rss", metric).map_or("—".to_owned(), format::bytes);
    let _ = writeln!(
        out,
        "\nStart, nothing pinned: READY after {}, every interface enforcing after {}; with `--expedite-grace-periods=false` (a full grace period per TCX hook): {} and {}. Restart on the pins (SIGKILL, then start): {} and {}.\n\nRSS: {} after start, {} after the first reload, {} after {} reloads; kernel memory of the maps (`memlock`): {}.\n",
        once("daemon-start-cold", "ready-ms"),
        once("daemon-start-cold", "enforcing-ms"),
        once("daemon-start-cold-normal-pace", "ready-ms"),
        once("daemon-start-cold-normal-pace", "enforcing-ms"),
        once("daemon-start-adopt", "ready-ms"),
        once("daemon-start-adopt", "enforcing-ms"),
        bytes("after-start"),
        bytes("after-first-reload"),
        bytes("after-reloads"),
        get(r, "daemon-rss", "reloads").map_or("—".to_owned(), format::count),
        bytes("map-memlock"),
    );
}

/// The targets of "a thousand VMs on one host".
pub fn goals(r: &Results) -> Vec<Goal> {
    let vms = get(r, "daemon-start-cold", "vms").map_or("?".to_owned(), format::count);
    let ms = |variant: &str, metric: &str| get(r, variant, metric).map(|v| (v, format::ms(v)));
    let mut goals = vec![
        at_most(
            format!("{vms} VMs: cold start to every interface enforcing ≤ 2 s"),
            ms("daemon-start-cold", "enforcing-ms"),
            2000.0,
            format::ms,
        ),
        at_most(
            format!("{vms} VMs: restart adopting the pins ≤ 1 s"),
            ms("daemon-start-adopt", "enforcing-ms"),
            1000.0,
            format::ms,
        ),
        at_most(
            format!("{vms} VMs: one VM's own group changed, rename → verdict p99 ≤ 50 ms"),
            ms("daemon-own-group", "write-to-verdict-p99"),
            50.0,
            format::ms,
        ),
        at_most(
            format!("{vms} VMs: the group every VM is bound to changed, p99 ≤ 250 ms"),
            ms("daemon-shared-base", "write-to-verdict-p99"),
            250.0,
            format::ms,
        ),
        at_most(
            format!("{vms} VMs: a new interface hooked with its policy p99 ≤ 100 ms"),
            ms("daemon-new-interface", "write-to-verdict-p99"),
            100.0,
            format::ms,
        ),
        at_most(
            format!("{vms} VMs: API reads during a reload answer within 10 ms (p99)"),
            ms("daemon-api-read", "latency-p99"),
            10.0,
            format::ms,
        ),
    ];
    let growth = get(r, "daemon-rss", "after-reloads")
        .zip(get(r, "daemon-rss", "after-first-reload"))
        .map(|(last, first)| {
            let reloads = get(r, "daemon-rss", "reloads").unwrap_or(0.0);
            (
                last / first,
                format!(
                    "{} after {} reloads vs {} after the first = {}",
                    format::bytes(last),
                    format::count(reloads),
                    format::bytes(first),
                    format::ratio(last / first)
                ),
            )
        });
    goals.push(at_most(
        format!("{vms} VMs: RSS after 100 reloads ≤ 1.2× RSS after the first"),
        growth,
        1.2,
        |x| format!("{x:.2}×"),
    ));
    goals
}
