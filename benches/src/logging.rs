//! What verdict events cost per packet: two data planes loaded side by
//! side, the same lists bound to both, one with logging off (as every
//! other figure runs) and one with it on, run in alternating pairs of
//! short runs like port security's (see `perpacket`), so that the ratio
//! on ÷ off is taken within a pair.
//!
//! Scenarios (16 rules, both hooks):
//! - `established`: a tracked flow, the instance logging everything and
//!   its rule logged. Established packets are never events: this is the
//!   cost of the flag test when logging is on.
//! - `new-flow-logged-accept`: an accept rule with `"log": true` decides
//!   every packet. The frame is a TCP reset, which the rules accept
//!   without creating a flow, so each of `repeat` runs is classified and
//!   becomes an event, as a new flow's first packet does. A reader thread
//!   drains the ring buffer meanwhile, as the daemon does; the rate limit
//!   is set out of the way.
//! - `new-flow-logged-drop`: the last rule drops, the instance logs drops:
//!   every packet is an event (same reader, no limit).
//! - `flood-suppressed`: the same drops under the default rate limit (100
//!   per second, burst 200): after the burst every event is refused, which
//!   is what a flooding VM costs.
//!
//! Each first decision is checked (reason, position), and after the runs
//! the counts say what the events path did (written, suppressed, lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use secgroup_dataplane::abi::Reason;
use secgroup_dataplane::packet::{Packet, tcp_flags};
use secgroup_dataplane::{Dataplane, EventLimits, Hook, InterfaceBinding, LoadOptions, TestRunner};
use secgroup_model::{Action, InstanceId, Protocol};
use secgroup_policy::{Enforcement, InstancePolicy, LogMode, RuleList};

use crate::perpacket::Settings;
use crate::record::{Record, Results};
use crate::rules::{self, LastRemote, ListSpec, Vm};
use crate::stats::{median, median_ratio};

/// Variants: `secgroup-{xdp,tc}-logging-{off,on}`; the ratio is recorded
/// on the `-on` variant as `x-logging-off`.
pub const LOGGING_SCENARIOS: [&str; 4] = [
    "established",
    "new-flow-logged-accept",
    "new-flow-logged-drop",
    "flood-suppressed",
];
pub const LOGGING_RULES: usize = 16;
const PAIRS_PER_RUN: usize = 10;
const TEST_IFINDEX: u32 = 1;

pub fn variant(hook: Hook, on: bool) -> String {
    let hook = match hook {
        Hook::Xdp => "xdp",
        Hook::Tc => "tc",
    };
    format!("secgroup-{hook}-logging-{}", if on { "on" } else { "off" })
}

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    last_action: Action,
    /// The last rule matches TCP (a reset) instead of UDP.
    tcp_reset: bool,
    log: LogMode,
    rule_logged: bool,
    limited: bool,
    /// Reason of the repeated runs, and whether the last rule decides.
    reason: Reason,
    by_last_rule: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "established",
        last_action: Action::Accept,
        tcp_reset: false,
        log: LogMode::All,
        rule_logged: true,
        limited: false,
        reason: Reason::AcceptEstablished,
        by_last_rule: false,
    },
    Case {
        name: "new-flow-logged-accept",
        last_action: Action::Accept,
        tcp_reset: true,
        log: LogMode::None,
        rule_logged: true,
        limited: false,
        reason: Reason::AcceptRule,
        by_last_rule: true,
    },
    Case {
        name: "new-flow-logged-drop",
        last_action: Action::Drop,
        tcp_reset: false,
        log: LogMode::Drops,
        rule_logged: false,
        limited: false,
        reason: Reason::DropRule,
        by_last_rule: true,
    },
    Case {
        name: "flood-suppressed",
        last_action: Action::Drop,
        tcp_reset: false,
        log: LogMode::Drops,
        rule_logged: false,
        limited: true,
        reason: Reason::DropRule,
        by_last_rule: true,
    },
];

/// The instance of `case`: the spec's lists, the last rule of both made
/// TCP if asked and logged if asked, the instance's log mode.
fn instance(case: &Case, vm: &Vm) -> Result<InstancePolicy> {
    let spec = ListSpec {
        rules: LOGGING_RULES,
        last_action: case.last_action,
        last_remote: LastRemote::Subnet,
    };
    let policy = spec.compile(std::slice::from_ref(vm))?;
    let id = InstanceId::new(&vm.id).ok_or_else(|| anyhow!("bad instance id {}", vm.id))?;
    let mut inst = policy
        .instances
        .get(&id)
        .cloned()
        .ok_or_else(|| anyhow!("the compiled policy lacks {}", vm.id))?;
    for list in [&mut inst.ingress, &mut inst.egress] {
        let last = list
            .rules_mut()
            .last_mut()
            .ok_or_else(|| anyhow!("an empty benchmark list"))?;
        last.log = case.rule_logged;
        if case.tcp_reset {
            for service in &mut last.services {
                service.protocol = Protocol::Number(6);
            }
        }
    }
    inst.log = case.log;
    Ok(inst)
}

fn bind(dp: &mut Dataplane, ingress: &RuleList, egress: &RuleList, log: LogMode) -> Result<()> {
    dp.apply(&[InterfaceBinding {
        ifindex: TEST_IFINDEX,
        ingress,
        egress,
        keep_established: false,
        instance_uid: 1,
        port_security: None,
        log,
        enforcement: Enforcement::Enforce,
    }])
    .context("applying the logging benchmark policy")?;
    dp.flush_conntrack(None)?;
    dp.forget_interface(TEST_IFINDEX)?;
    Ok(())
}

fn frame(hook: Hook, vm: &Vm, tcp_reset: bool) -> Vec<u8> {
    let (vm_addr, remote) = (vm.v4.into(), rules::LAST_RULE_REMOTE.into());
    let (src, dst) = match hook {
        Hook::Xdp => (vm_addr, remote),
        Hook::Tc => (remote, vm_addr),
    };
    let (sport, dport) = (rules::PROBE_SRC_PORT, rules::PROBE_PORT);
    if tcp_reset {
        Packet::tcp(src, sport, dst, dport, tcp_flags::RST | tcp_flags::ACK).frame()
    } else {
        Packet::udp(src, sport, dst, dport).frame()
    }
}

fn check(
    runner: &TestRunner,
    hook: Hook,
    frame: &[u8],
    want: Reason,
    pos: Option<u32>,
    what: &str,
) -> Result<()> {
    let outcome = runner.run(hook, frame, None, 1)?;
    let d = outcome
        .decision
        .ok_or_else(|| anyhow!("{what}: no decision reported"))?;
    let reason = Reason::from_u8(d.reason);
    if reason != Some(want) || pos.is_some_and(|p| p != d.rule_pos) {
        bail!(
            "{what}: the data plane decided {reason:?} at {}, the benchmark expects {want} at {pos:?}",
            d.rule_pos
        );
    }
    Ok(())
}

/// Drains the plane's events on a thread of its own until dropped.
struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Reader {
    fn start(dp: &Dataplane) -> Result<Reader> {
        let mut events = dp.events()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut read = 0u64;
            while !flag.load(Ordering::Relaxed) {
                read += events.drain(|_| {}) as u64;
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            read + events.drain(|_| {}) as u64
        });
        Ok(Reader {
            stop,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ns(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64
}

pub fn run(settings: &Settings, results: &mut Results) -> Result<()> {
    let (mut off, _) =
        Dataplane::load(&LoadOptions::default()).context("loading the data plane")?;
    let (mut on, _) =
        Dataplane::load(&LoadOptions::default()).context("loading the data plane with logging")?;
    let vm = Vm::bench();
    let unlimited = EventLimits::new(EventLimits::MAX_RATE, EventLimits::MAX_BURST)?;
    let repeat = settings.repeat / PAIRS_PER_RUN as u32 + 1;
    for case in CASES {
        let inst = instance(&case, &vm)?;
        let plain = {
            let mut i = inst.clone();
            for list in [&mut i.ingress, &mut i.egress] {
                list.rules_mut().iter_mut().for_each(|r| r.log = false);
            }
            i
        };
        bind(&mut off, &plain.ingress, &plain.egress, LogMode::None)?;
        bind(&mut on, &inst.ingress, &inst.egress, inst.log)?;
        on.set_event_limits(if case.limited {
            EventLimits::default()
        } else {
            unlimited
        })?;
        let reader = Reader::start(&on)?;
        let last = LOGGING_RULES as u32 - 1;
        for hook in [Hook::Xdp, Hook::Tc] {
            let frame = frame(hook, &vm, case.tcp_reset);
            let planes = [(off.test_runner(), false), (on.test_runner(), true)];
            for (runner, logged) in &planes {
                let what = format!("{} {}", case.name, variant(hook, *logged));
                if case.name == "established" {
                    check(runner, hook, &frame, Reason::AcceptRule, Some(last), &what)?;
                }
                let pos = case.by_last_rule.then_some(last);
                check(runner, hook, &frame, case.reason, pos, &what)?;
                // Warm up, as real traffic (the logged plane logs).
                runner.run_unrequested_repeat(hook, &frame, None, &[], repeat)?;
            }
            let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for pair in 0..settings.runs * PAIRS_PER_RUN {
                let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let timed =
                        planes[i]
                            .0
                            .run_unrequested_repeat(hook, &frame, None, &[], repeat)?;
                    samples[i].push(ns(timed.duration));
                }
            }
            for ((_, logged), samples) in planes.iter().zip(&samples) {
                if let Some(m) = median(samples) {
                    let v = variant(hook, *logged);
                    results.push(Record::new(
                        case.name,
                        &v,
                        LOGGING_RULES,
                        "ns-per-packet",
                        m,
                        "ns",
                    ));
                }
            }
            if let Some(r) = median_ratio(&samples[1], &samples[0]) {
                let v = variant(hook, true);
                results.push(Record::new(
                    case.name,
                    &v,
                    LOGGING_RULES,
                    "x-logging-off",
                    r,
                    "x",
                ));
            }
        }
        let read = reader.finish();
        let counts = on.observer()?.event_counts()?;
        let (emitted, suppressed, lost) = counts.iter().fold((0, 0, 0), |(e, s, l), c| {
            (e + c.emitted, s + c.suppressed, l + c.lost)
        });
        if case.name == "established" && emitted + suppressed + lost > 0 {
            bail!("established packets became events ({emitted} written)");
        }
        if case.name != "established" && emitted == 0 {
            bail!("{}: no event was written", case.name);
        }
        let total = (emitted + suppressed + lost).max(1) as f64;
        // Both hooks together: the counts are the interface's.
        let v = "secgroup-logging-on";
        for (metric, n) in [
            ("events-written-share", emitted),
            ("events-suppressed-share", suppressed),
            ("events-lost-share", lost),
        ] {
            results.push(Record::new(
                case.name,
                v,
                LOGGING_RULES,
                metric,
                n as f64 / total,
                "x",
            ));
        }
        results.push(Record::new(
            case.name,
            v,
            LOGGING_RULES,
            "events-read",
            read as f64,
            "packets",
        ));
    }
    Ok(())
}
