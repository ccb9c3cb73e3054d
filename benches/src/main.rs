//! `secgroup-bench`: runs the benchmark, or renders its results.
//! Normally started by `cargo xtask bench`, which builds it in release,
//! measures, then renders; run it directly to repeat one part:
//!
//! ```text
//! secgroup-bench [measure] [--quick] [--only per-packet,throughput,control,daemon,thousand,fleet] [--dir DIR]
//! secgroup-bench report [--dir DIR]
//! ```
//!
//! `measure` writes DIR/results.json and DIR/machine.json (DIR defaults
//! to target/bench) and needs root: it loads BPF programs and builds
//! network namespaces. `report` reads them and writes DIR/table.md and
//! DIR/performance.svg, and prints the table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_bench::machine::Machine;
use secgroup_bench::record::Results;
use secgroup_bench::{control, daemon, fleet, logging, perpacket, report, throughput};

const USAGE: &str = "\
usage: secgroup-bench [measure] [--quick] [--only per-packet,throughput,control,daemon,thousand,fleet] [--dir DIR]
       secgroup-bench report [--dir DIR]";
const PARTS: [&str; 6] = [
    "per-packet",
    "throughput",
    "control",
    "daemon",
    "thousand",
    "fleet",
];

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Measure,
    Report,
}

struct Args {
    command: Command,
    quick: bool,
    only: Vec<String>,
    dir: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        command: Command::Measure,
        quick: false,
        // `control` includes `daemon`, `thousand` and `fleet`; `--only
        // daemon` repeats just the 100-VM layouts, `--only thousand` the
        // 1,000-VM one, `--only fleet` the etcd fleet.
        only: PARTS[..3].iter().map(|p| (*p).to_owned()).collect(),
        dir: PathBuf::from("target/bench"),
    };
    let mut it = std::env::args().skip(1).peekable();
    match it.peek().map(String::as_str) {
        Some("measure") => {
            it.next();
        }
        Some("report") => {
            it.next();
            args.command = Command::Report;
        }
        _ => {}
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--only" => {
                let list = it.next().context("--only needs a list")?;
                args.only = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = args.only.iter().find(|p| !PARTS.contains(&p.as_str())) {
                    bail!(
                        "unknown part {bad:?} (parts: {})\n{USAGE}",
                        PARTS.join(", ")
                    );
                }
            }
            "--dir" => args.dir = it.next().context("--dir needs a path")?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// Parameters of a full and of a quick (`--quick`, under two minutes) run.
struct Plan {
    per_packet: perpacket::Settings,
    throughput: throughput::Settings,
    control: control::Settings,
    daemon: daemon::Settings,
    fleet: fleet::Settings,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Plan {
            per_packet: perpacket::Settings {
                rule_counts: vec![1, 16, 64, 256, 1024, 4096],
                runs: if quick { 3 } else { 5 },
                repeat: if quick { 100_000 } else { 1_000_000 },
            },
            throughput: throughput::Settings {
                rounds: if quick { 2 } else { 5 },
                trial: Duration::from_millis(if quick { 300 } else { 1000 }),
                threads,
                sockets_per_thread: 256,
                rule_counts: vec![10, 1000],
            },
            control: control::Settings {
                compile_sizes: vec![1_000, 10_000, 100_000],
                compile_runs: if quick { 1 } else { 5 },
                apply_changes: if quick { 10 } else { 100 },
                swaps: if quick { 10 } else { 100 },
                change_to_enforced: if quick { 2 } else { 10 },
            },
            daemon: daemon::Settings {
                changes: if quick { 20 } else { 100 },
                interfaces: if quick { 20 } else { 100 },
                rules: 1000,
                secgroupd: secgroupd_binary(),
                thousand: daemon::ThousandSettings {
                    vms: if quick { 200 } else { 1000 },
                    changes: if quick { 10 } else { 40 },
                    reloads: if quick { 30 } else { 100 },
                    new_interfaces: if quick { 5 } else { 20 },
                },
            },
            fleet: fleet::Settings {
                daemons: if quick { 3 } else { 5 },
                changes: if quick { 20 } else { 100 },
                sync_instances: if quick { 20_000 } else { 100_000 },
                sync_hosts: if quick { 200 } else { 1_000 },
                sync_changes: if quick { 10 } else { 40 },
                secgroupd: secgroupd_binary(),
            },
        }
    }
}

/// The release secgroupd: `$SECGROUPD`, or next to this binary (where
/// `cargo xtask bench` builds both).
fn secgroupd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SECGROUPD") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("secgroupd")))
        .unwrap_or_else(|| PathBuf::from("secgroupd"))
}

/// Raises the open-file limit to its hard maximum: the new-flow sender
/// holds a socket per source port.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid out-pointer, then a valid in-pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("secgroup-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    match args.command {
        Command::Measure => measure(&args),
        Command::Report => {
            print!("{}", report::render(&args.dir)?);
            eprintln!(
                "secgroup-bench: wrote {} and {}",
                args.dir.join("table.md").display(),
                args.dir.join("performance.svg").display()
            );
            Ok(())
        }
    }
}

fn measure(args: &Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root: it loads BPF programs and builds network namespaces");
    }
    raise_fd_limit();
    let plan = Plan::new(args.quick);
    let mut machine = Machine::probe(args.quick);
    let mut results = Results::default();
    let started = Instant::now();
    let wants = |part: &str| args.only.iter().any(|p| p == part);
    if wants("per-packet") {
        eprintln!("secgroup-bench: per-packet cost (BPF_PROG_TEST_RUN)");
        perpacket::run(&plan.per_packet, &mut results)?;
        eprintln!("secgroup-bench: what verdict events cost per packet");
        logging::run(&plan.per_packet, &mut results)?;
    }
    if wants("throughput") {
        eprintln!("secgroup-bench: throughput through a bridge");
        throughput::run(&plan.throughput, &mut results)?;
    }
    if wants("control") {
        eprintln!("secgroup-bench: control plane");
        control::compile_time(&plan.control, &mut results)?;
        control::apply_and_swap(&plan.control, &mut results)?;
    }
    if wants("control") || wants("daemon") {
        daemon::rule_file_to_verdict(&plan.daemon, &mut results)?;
    }
    if wants("control") || wants("thousand") {
        daemon::thousand_vms(&plan.daemon, &plan.daemon.thousand, &mut results)?;
    }
    if wants("control") || wants("fleet") {
        fleet::run(&plan.fleet, &mut results)?;
    }
    machine.finish(started.elapsed().as_secs_f64());
    let out = args.dir.join("results.json");
    results.write(&out)?;
    machine.write(&args.dir.join("machine.json"))?;
    eprintln!(
        "secgroup-bench: {} records in {:.0} s, written to {}",
        results.records().len(),
        machine.seconds,
        out.display()
    );
    Ok(())
}
