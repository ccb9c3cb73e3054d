//! The Markdown table of a run: one section per part of the benchmark,
//! then the goals.

use std::fmt::Write as _;

use super::format;
use super::goals::{Verdict, goals};
use crate::logging::{LOGGING_RULES, LOGGING_SCENARIOS};
use crate::machine::Machine;
use crate::perpacket::{PORT_SECURITY_OFF, PORT_SECURITY_ON, PORT_SECURITY_SCENARIOS};
use crate::record::Results;

const PER_PACKET: [&str; 4] = [
    "new-flow-last-rule",
    "new-flow-default-drop",
    "established",
    "sg-reference-10k",
];
const HOOKS: [(&str, &str); 2] = [
    ("secgroup-xdp", "XDP (egress)"),
    ("secgroup-tc", "TC (ingress)"),
];

pub fn markdown(r: &Results, machine: Option<&Machine>) -> String {
    let mut out = String::new();
    if let Some(m) = machine {
        let _ = writeln!(
            out,
            "Run of {} ({}, {:.0} s): {} × {}, Linux {}; load average {} before, {} after.\n",
            m.started,
            if m.quick { "--quick" } else { "full" },
            m.seconds,
            m.nproc,
            m.cpu,
            m.kernel,
            m.load_before,
            m.load_after
        );
    }
    per_packet(&mut out, r);
    port_security(&mut out, r);
    logging(&mut out, r);
    throughput(&mut out, r);
    control(&mut out, r);
    let _ = writeln!(
        out,
        "### Goals\n\n| goal | measured | verdict |\n|---|---|---|"
    );
    for goal in goals(r) {
        let verdict = match goal.verdict {
            Verdict::Met => "met".to_owned(),
            Verdict::Missed(by) => format!("**missed**: {by}"),
            Verdict::NotMeasured => "not measured".to_owned(),
        };
        let _ = writeln!(out, "| {} | {} | {verdict} |", goal.goal, goal.measured);
    }
    out
}

/// Column headers for rule counts: "1 rule", "4,096 rules".
fn rule_columns(counts: &[u64]) -> Vec<String> {
    counts
        .iter()
        .map(|&c| {
            if c == 1 {
                "1 rule".to_owned()
            } else {
                format!("{} rules", format::count(c as f64))
            }
        })
        .collect()
}

/// "350 ns (13×)": the cost and its ratio to the floor, per rule count.
fn cost_cells(r: &Results, scenario: &str, variant: &str, counts: &[u64]) -> Vec<String> {
    counts
        .iter()
        .map(|&n| {
            match (
                r.get(scenario, variant, n, "ns-per-packet"),
                r.get(scenario, variant, n, "x-floor"),
            ) {
                (Some(v), Some(x)) => format!("{} ({})", format::ns(v), format::ratio(x)),
                (Some(v), None) => format::ns(v),
                _ => "—".to_owned(),
            }
        })
        .collect()
}

fn per_packet(out: &mut String, r: &Results) {
    let counts = r.rule_counts("new-flow-last-rule", "secgroup-xdp");
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Per-packet cost\n\nKernel-reported ns per packet (BPF_PROG_TEST_RUN), median of the runs; \
         in brackets the median ratio to the do-nothing program on the same hook.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | hook | {} |",
        rule_columns(&counts).join(" | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(counts.len()));
    for scenario in PER_PACKET {
        for (variant, hook) in HOOKS {
            let cells = cost_cells(r, scenario, variant, &counts);
            let _ = writeln!(out, "| {scenario} | {hook} | {} |", cells.join(" | "));
        }
    }
    let floor = |variant| {
        r.get("floor", variant, 0, "ns-per-packet")
            .map_or("—".to_owned(), format::ns)
    };
    let _ = writeln!(
        out,
        "\nFloor (a program that only returns pass): XDP {}, TC {}.\n",
        floor("floor-xdp"),
        floor("floor-tc")
    );
    established_floors(out, r);
}

/// The established flow against each floor (floor.rs's `Kind`), the ratios'
/// range over the rule counts.
fn established_floors(out: &mut String, r: &Results) {
    const FLOORS: [(&str, &str); 3] = [
        ("floor", "x-floor"),
        ("floor-ct", "x-floor-ct"),
        ("floor-ct-iface", "x-floor-ct-iface"),
    ];
    let (variant, _) = HOOKS[0];
    if r.rule_counts("established", variant).is_empty()
        || r.get("floor", "floor-ct-xdp", 0, "ns-per-packet").is_none()
    {
        return;
    }
    let _ = writeln!(
        out,
        "Established flows against the floors: the do-nothing program; the cheapest program that \
         knows a flow with a BPF hash (Ethernet, IPv4 and UDP parsed, then the flow's hit in an LRU \
         hash with `sg_ct4`'s key: \"ct\"); the same after the interface's hit in a hash like \
         `sg_ifaces` (\"iface + ct\": the two lookups an established packet makes). ns per packet, \
         and the ratios' range over the rule counts.\n"
    );
    let _ = writeln!(
        out,
        "| hook | floor | ct | iface + ct | established | ÷ floor | ÷ ct | ÷ iface + ct |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (variant, hook) in HOOKS {
        let counts = r.rule_counts("established", variant);
        let suffix = variant.trim_start_matches("secgroup-");
        let mut cells: Vec<String> = FLOORS
            .iter()
            .map(|(floor, _)| {
                r.get("floor", &format!("{floor}-{suffix}"), 0, "ns-per-packet")
                    .map_or("—".to_owned(), format::ns)
            })
            .collect();
        let ns = range(r, variant, &counts, "ns-per-packet", |v| format!("{v:.0}"));
        cells.push(if ns == "—" { ns } else { format!("{ns} ns") });
        for (_, metric) in FLOORS {
            cells.push(range(r, variant, &counts, metric, format::ratio));
        }
        let _ = writeln!(out, "| {hook} | {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// "1.8–2.1×": the smallest and largest of an established figure over the
/// rule counts.
fn range(r: &Results, variant: &str, counts: &[u64], metric: &str, f: fn(f64) -> String) -> String {
    let values: Vec<f64> = counts
        .iter()
        .filter_map(|&n| r.get("established", variant, n, metric))
        .collect();
    let lo = values.iter().copied().reduce(f64::min);
    let hi = values.iter().copied().reduce(f64::max);
    match (lo, hi) {
        (Some(lo), Some(hi)) if f(lo) == f(hi) => f(lo),
        (Some(lo), Some(hi)) => format!("{}–{}", f(lo), f(hi)),
        _ => "—".to_owned(),
    }
}

fn port_security(out: &mut String, r: &Results) {
    let counts = r.rule_counts(PORT_SECURITY_SCENARIOS[0], PORT_SECURITY_ON);
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Port security (XDP)\n\nThe XDP program without and with the VM's port-security spec \
         (its MAC, two addresses, one address pair) on frames from the VM's own MAC and address, \
         run in alternating pairs of short runs: ns per packet, median of the runs; \
         on ÷ off: the median of the ratios within a pair.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | port security | {} |",
        rule_columns(&counts).join(" | ")
    );
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(counts.len()));
    for scenario in PORT_SECURITY_SCENARIOS {
        for (variant, what) in [(PORT_SECURITY_OFF, "off"), (PORT_SECURITY_ON, "on")] {
            let cells = cost_cells(r, scenario, variant, &counts);
            let _ = writeln!(out, "| {scenario} | {what} | {} |", cells.join(" | "));
        }
        let ratios: Vec<String> = counts
            .iter()
            .map(|&n| {
                r.get(scenario, PORT_SECURITY_ON, n, "x-port-security-off")
                    .map_or("—".to_owned(), |x| {
                        format!("{} ({})", format::ratio(x), format::added(x))
                    })
            })
            .collect();
        let _ = writeln!(out, "| {scenario} | on ÷ off | {} |", ratios.join(" | "));
    }
    out.push('\n');
}

fn logging(out: &mut String, r: &Results) {
    const N: u64 = LOGGING_RULES as u64;
    let on = |hook| format!("secgroup-{hook}-logging-on");
    if r.get(LOGGING_SCENARIOS[0], &on("xdp"), N, "x-logging-off")
        .is_none()
    {
        return;
    }
    let _ = writeln!(
        out,
        "### Verdict events ({LOGGING_RULES} rules)\n\nThe same lists on two data planes, logging off and on, \
         run in alternating pairs of short runs: ns per packet, median of the runs; on ÷ off: the median \
         of the ratios within a pair. Events written / suppressed / lost: shares of the logged verdicts.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | XDP off | XDP on | XDP on ÷ off | TC off | TC on | TC on ÷ off | written / suppressed / lost |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for scenario in LOGGING_SCENARIOS {
        let mut cells = Vec::new();
        for hook in ["xdp", "tc"] {
            for state in ["off", "on"] {
                let v = format!("secgroup-{hook}-logging-{state}");
                cells.push(
                    r.get(scenario, &v, N, "ns-per-packet")
                        .map_or("—".to_owned(), format::ns),
                );
            }
            cells.push(
                r.get(scenario, &on(hook), N, "x-logging-off")
                    .map_or("—".to_owned(), |x| {
                        format!("{} ({})", format::ratio(x), format::added(x))
                    }),
            );
        }
        let share = |metric| {
            r.get(scenario, "secgroup-logging-on", N, metric)
                .map_or("—".to_owned(), |x| format!("{:.0}%", x * 100.0))
        };
        cells.push(format!(
            "{} / {} / {}",
            share("events-written-share"),
            share("events-suppressed-share"),
            share("events-lost-share")
        ));
        let _ = writeln!(out, "| {scenario} | {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn throughput(out: &mut String, r: &Results) {
    let scenarios = [
        "throughput-new-flows-64B",
        "throughput-new-flows-1400B",
        "throughput-established-64B",
        "throughput-established-1400B",
    ];
    let counts = r.rule_counts(scenarios[0], "secgroup");
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Throughput through the bridge\n\nThousand UDP datagrams per second received by VM B, median of the \
         rounds. `xdp-pass`: a do-nothing XDP program on both taps; `nftables`: one rule after another; \
         `nftables sets`: each list one lookup in a set of intervals.\n"
    );
    let mut header = vec!["none".to_owned(), "xdp-pass".to_owned()];
    header.extend(counts.iter().map(|n| format!("secgroup {n}")));
    header.extend(counts.iter().map(|n| format!("nftables {n}")));
    header.extend(counts.iter().map(|n| format!("nftables sets {n}")));
    table_header(out, "traffic", &header);
    for scenario in scenarios {
        let pps = |variant, n| {
            r.get(scenario, variant, n, "rx-pps")
                .map_or("—".to_owned(), format::kpps)
        };
        let mut cells = vec![pps("none", 0), pps("xdp-pass", 0)];
        cells.extend(counts.iter().map(|&n| pps("secgroup", n)));
        cells.extend(counts.iter().map(|&n| pps("nftables", n)));
        cells.extend(counts.iter().map(|&n| pps("nftables-sets", n)));
        let _ = writeln!(
            out,
            "| {} | {} |",
            scenario.trim_start_matches("throughput-"),
            cells.join(" | ")
        );
    }
    let _ = writeln!(
        out,
        "\nsecgroup's throughput relative to each baseline: medians of the ratios within a round.\n"
    );
    let mut header = Vec::new();
    for (baseline, _) in RATIOS {
        header.extend(counts.iter().map(|n| match baseline {
            "nftables" => format!("secgroup {n} ÷ nftables {n}"),
            "nftables-sets" => format!("secgroup {n} ÷ nftables sets {n}"),
            _ => format!("secgroup {n} ÷ {baseline}"),
        }));
    }
    table_header(out, "traffic", &header);
    for scenario in scenarios {
        let mut cells = Vec::new();
        for (_, metric) in RATIOS {
            cells.extend(counts.iter().map(|&n| {
                r.get(scenario, "secgroup", n, metric)
                    .map_or("—".to_owned(), format::ratio)
            }));
        }
        let _ = writeln!(
            out,
            "| {} | {} |",
            scenario.trim_start_matches("throughput-"),
            cells.join(" | ")
        );
    }
    out.push('\n');
}

/// Baselines of the throughput ratios and their metrics.
const RATIOS: [(&str, &str); 4] = [
    ("none", "x-none"),
    ("xdp-pass", "x-xdp-pass"),
    ("nftables", "x-nftables"),
    ("nftables-sets", "x-nftables-sets"),
];

/// A header row with a left-aligned first column and numeric columns.
fn table_header(out: &mut String, first: &str, columns: &[String]) {
    let _ = writeln!(out, "| {first} | {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len()));
}

fn control(out: &mut String, r: &Results) {
    let sizes = r.rule_counts("compile", "secgroup");
    if !sizes.is_empty() {
        let _ = writeln!(
            out,
            "### Compile\n\nRule-file bytes to classifier tables, in process, median.\n\n\
             | effective rules | load + validate | compile | classifier build | total |\n|---:|---:|---:|---:|---:|"
        );
        for n in sizes {
            let cell = |metric| {
                r.get("compile", "secgroup", n, metric)
                    .map_or("—".to_owned(), format::ms)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                format::count(n as f64),
                cell("load-ms"),
                cell("compile-ms"),
                cell("build-ms"),
                cell("total-ms")
            );
        }
        out.push('\n');
    }
    if r.of("apply").next().is_some() {
        let _ = writeln!(
            out,
            "### Apply\n\n100 VMs × 1,000 rules per direction.\n\n| change | p50 | p99 | max | samples |\n|---|---:|---:|---:|---:|"
        );
        for (scenario, variant, what) in [
            (
                "apply",
                "shared-group-change",
                "a rule of the group all 100 VMs share (100 tables rebuilt)",
            ),
            (
                "apply",
                "one-vm-change",
                "a rule of one VM's own group (1 table rebuilt)",
            ),
            (
                "apply",
                "rcu-barrier",
                "the RCU grace period alone (one per apply that frees tables)",
            ),
            (
                "change-to-enforced",
                "in-process",
                "rule-file bytes → load → compile → apply, whole host",
            ),
        ] {
            let cell = |metric| r.get(scenario, variant, 1000, metric);
            let ms = |metric| cell(metric).map_or("—".to_owned(), format::ms);
            let changes = cell("changes").map_or("—".to_owned(), format::count);
            let _ = writeln!(
                out,
                "| {what} | {} | {} | {} | {changes} |",
                ms("p50-ms"),
                ms("p99-ms"),
                ms("max-ms")
            );
        }
        if let (Some(ms), Some(tables)) = (
            r.get("apply", "initial", 1000, "ms"),
            r.get("apply", "initial", 1000, "tables-written"),
        ) {
            let _ = writeln!(
                out,
                "\nFirst apply (empty maps): {}, {} tables written.",
                format::ms(ms),
                format::count(tables)
            );
        }
        let swap = |metric| {
            r.get("hot-swap", "secgroup", 1000, metric)
                .map_or("—".to_owned(), format::count)
        };
        let _ = writeln!(
            out,
            "\nHot swap: {} packets classified during {} swaps of the whole host's policy: {} lost, {} misclassified.\n",
            swap("classified"),
            swap("swaps"),
            swap("lost"),
            swap("misclassified")
        );
    }
    daemon_table(out, r);
    super::thousand::table(out, r);
    super::fleet::table(out, r);
    let mut maps: Vec<(String, f64)> = r
        .of("map-memory")
        .filter(|rec| rec.variant != "total")
        .map(|rec| (rec.variant.clone(), rec.value))
        .collect();
    if !maps.is_empty() {
        maps.sort_by(|a, b| b.1.total_cmp(&a.1));
        let _ = writeln!(
            out,
            "### BPF map memory\n\nSame configuration, `memlock` of each map.\n\n| map | memory |\n|---|---:|"
        );
        for (name, bytes) in maps {
            let _ = writeln!(out, "| {name} | {} |", format::bytes(bytes));
        }
        if let Some(total) = r.get("map-memory", "total", 1000, "memlock") {
            let _ = writeln!(out, "| **total** | **{}** |", format::bytes(total));
        }
        out.push('\n');
    }
}

/// Rule-file write → verdict in force, through secgroupd (`daemon.rs`).
fn daemon_table(out: &mut String, r: &Results) {
    let variants = [
        (
            "daemon-own-group",
            "one VM's file, its own ten groups (1 table rebuilt)",
        ),
        (
            "daemon-shared-group",
            "the ten groups every VM is bound to (identical lists: 1 table rebuilt)",
        ),
        (
            "daemon-shared-base",
            "the base group every VM is bound to first (distinct lists: 1 table per VM rebuilt)",
        ),
    ];
    if !variants
        .iter()
        .any(|(v, _)| r.get("control", v, 1000, "changes").is_some())
    {
        return;
    }
    let _ = writeln!(
        out,
        "### Rule-file write → verdict, through secgroupd\n\nFrom the `rename(2)` of a rewritten rule file to the new generation in the status and the probe's new verdict from the live kernel program (`/v1/trace`); 1,000 rules per direction per VM, ingress tables rebuilt.\n\n| file rewritten | VMs | p50 | p99 | max | changes | not in force within 5 s |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (variant, what) in variants {
        let cell = |metric| r.get("control", variant, 1000, metric);
        let ms = |metric| cell(metric).map_or("—".to_owned(), format::ms);
        let count = |metric| cell(metric).map_or("—".to_owned(), format::count);
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {} | {} | {} |",
            count("vms"),
            ms("write-to-verdict-p50"),
            ms("write-to-verdict-p99"),
            ms("write-to-verdict-max"),
            count("changes"),
            count("failures")
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    #[test]
    fn the_established_flow_is_shown_against_every_floor() {
        let mut r = Results::default();
        let floors = [
            ("floor-xdp", 6.0),
            ("floor-ct-xdp", 14.0),
            ("floor-ct-iface-xdp", 22.0),
        ];
        for (variant, ns) in floors {
            r.push(Record::new("floor", variant, 0, "ns-per-packet", ns, "ns"));
        }
        // The per-packet section is there when new flows were measured.
        r.push(Record::new(
            "new-flow-last-rule",
            "secgroup-xdp",
            1,
            "ns-per-packet",
            100.0,
            "ns",
        ));
        for (rules, ns) in [(1, 44.0), (4096, 46.0)] {
            for (metric, value, unit) in [
                ("ns-per-packet", ns, "ns"),
                ("x-floor", ns / 6.0, "x"),
                ("x-floor-ct", ns / 14.0, "x"),
                ("x-floor-ct-iface", ns / 22.0, "x"),
            ] {
                r.push(Record::new(
                    "established",
                    "secgroup-xdp",
                    rules,
                    metric,
                    value,
                    unit,
                ));
            }
        }
        let text = markdown(&r, None);
        let row = format!(
            "| XDP (egress) | 6 ns | 14 ns | 22 ns | 44–46 ns | {}–{} | {}–{} | {}–{} |",
            format::ratio(44.0 / 6.0),
            format::ratio(46.0 / 6.0),
            format::ratio(44.0 / 14.0),
            format::ratio(46.0 / 14.0),
            format::ratio(2.0),
            format::ratio(46.0 / 22.0),
        );
        assert!(text.contains(&row), "no row {row:?} in\n{text}");
        assert!(
            text.contains("| TC (ingress) | — | — | — | — | — | — | — |"),
            "{text}"
        );
    }

    #[test]
    fn the_port_security_section_pairs_off_on_and_their_ratio() {
        let mut r = Results::default();
        for (variant, metric, value) in [
            (PORT_SECURITY_OFF, "ns-per-packet", 300.0),
            (PORT_SECURITY_ON, "ns-per-packet", 318.0),
            (PORT_SECURITY_ON, "x-port-security-off", 1.06),
        ] {
            r.push(Record::new(
                "new-flow-last-rule",
                variant,
                1,
                metric,
                value,
                "",
            ));
        }
        let text = markdown(&r, None);
        for row in [
            "| new-flow-last-rule | off | 300 ns |",
            "| new-flow-last-rule | on | 318 ns |",
            "| new-flow-last-rule | on ÷ off | 1.06× (+6.0%) |",
            "| established | on ÷ off | — |",
            "| XDP: port security adds ≤ 15% to new-flow-last-rule | \
             worst +6.0% (1.06× the cost without, at 1 rule) | met |",
        ] {
            assert!(text.contains(row), "no row {row:?} in\n{text}");
        }
    }
}
