//! Per-packet cost in the kernel: frames run through the live programs
//! with BPF_PROG_TEST_RUN, `repeat` times per run; the kernel reports the
//! mean time per run. Each figure is the median of `runs` runs, and each
//! run is paired with a run of the floor program on the same frame, so
//! the ratio to the floor is taken within a pair.
//!
//! Why the new-flow scenarios end in a DROP rule: an accepted packet
//! creates a conntrack entry, so with `repeat` every run after the first
//! would be a conntrack hit, not a classification. A dropped packet leaves
//! no entry, so every one of the `repeat` runs classifies from scratch.
//! The first run of every measurement is checked against the decision the
//! scenario is about, so a figure never silently measures another path.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};
use secgroup_dataplane::abi::Reason;
use secgroup_dataplane::packet::Packet;
use secgroup_dataplane::{Dataplane, Hook, InterfaceBinding, LoadOptions, TestRunOutcome};
use secgroup_model::{Action, InstanceId};

use crate::floor::Floor;
use crate::record::{Record, Results};
use crate::rules::{self, LastRemote, ListSpec, Vm};
use crate::stats::{median, median_ratio};

/// The interface frames run on: without an ifindex in the test context the
/// kernel uses the loopback device of the caller's namespace.
const TEST_IFINDEX: u32 = 1;
/// Members of the referenced group in the sg-reference scenario.
pub const MEMBERS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub rule_counts: Vec<usize>,
    pub runs: usize,
    pub repeat: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Only the last rule (a DROP) matches.
    NewFlowLastRule,
    /// Nothing matches, after both lookups found entries.
    NewFlowDefaultDrop,
    /// A flow the last rule (an ACCEPT) let in once, then repeated.
    Established,
    /// Only the last rule (a DROP naming a 10,000-member group) matches.
    SgReference,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::NewFlowLastRule,
        Scenario::NewFlowDefaultDrop,
        Scenario::Established,
        Scenario::SgReference,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::NewFlowLastRule => "new-flow-last-rule",
            Scenario::NewFlowDefaultDrop => "new-flow-default-drop",
            Scenario::Established => "established",
            Scenario::SgReference => "sg-reference-10k",
        }
    }

    fn spec(self, rules: usize) -> ListSpec {
        ListSpec {
            rules,
            last_action: if self == Scenario::Established {
                Action::Accept
            } else {
                Action::Drop
            },
            last_remote: if self == Scenario::SgReference {
                LastRemote::Members(MEMBERS)
            } else {
                LastRemote::Subnet
            },
        }
    }

    fn remote(self, spec: &ListSpec) -> Result<IpAddr> {
        Ok(match self {
            Scenario::NewFlowLastRule | Scenario::Established => {
                IpAddr::V4(rules::LAST_RULE_REMOTE)
            }
            Scenario::NewFlowDefaultDrop => IpAddr::V4(rules::DEFAULT_DROP_REMOTE),
            Scenario::SgReference => {
                rules::member_probe(spec).ok_or_else(|| anyhow!("no member to probe"))?
            }
        })
    }

    /// The decision of the first run and of the repeated runs.
    fn expected(self, rules: usize) -> (Expect, Expect) {
        let last = rules as u32 - 1;
        match self {
            Scenario::NewFlowLastRule | Scenario::SgReference => {
                let e = Expect(Reason::DropRule, Some(last));
                (e, e)
            }
            Scenario::NewFlowDefaultDrop => (
                Expect(Reason::DropDefault, None),
                Expect(Reason::DropDefault, None),
            ),
            Scenario::Established => (
                Expect(Reason::AcceptRule, Some(last)),
                Expect(Reason::AcceptEstablished, None),
            ),
        }
    }
}

/// A reason and, for rule decisions, the rule position.
#[derive(Debug, Clone, Copy)]
struct Expect(Reason, Option<u32>);

impl Expect {
    fn check(self, outcome: &TestRunOutcome, what: &str) -> Result<()> {
        let decision = outcome.decision.ok_or_else(|| {
            anyhow!(
                "{what}: the program reported no decision (return {})",
                outcome.return_value
            )
        })?;
        let reason = Reason::from_u8(decision.reason);
        let position_ok = self.1.is_none_or(|p| p == decision.rule_pos);
        if reason != Some(self.0) || !position_ok || outcome.passed != self.0.is_accept() {
            bail!(
                "{what}: the data plane decided {} at rule {} (passed: {}), the benchmark expects {} at {:?}; \
                 the figure would measure another path",
                reason.map_or("an unknown reason".to_owned(), |r| r.to_string()),
                decision.rule_pos,
                outcome.passed,
                self.0,
                self.1
            );
        }
        Ok(())
    }
}

fn variant(hook: Hook) -> &'static str {
    match hook {
        Hook::Xdp => "secgroup-xdp",
        Hook::Tc => "secgroup-tc",
    }
}

fn floor_variant(hook: Hook) -> &'static str {
    match hook {
        Hook::Xdp => "floor-xdp",
        Hook::Tc => "floor-tc",
    }
}

/// The probe frame as `hook` sees it: XDP gets what the VM sends (egress,
/// remote = destination), TC what is sent to it (ingress, remote = source).
fn frame(hook: Hook, vm: &Vm, remote: IpAddr) -> Vec<u8> {
    let local = match remote {
        IpAddr::V4(_) => IpAddr::V4(vm.v4),
        IpAddr::V6(_) => IpAddr::V6(vm.v6),
    };
    let packet = match hook {
        Hook::Xdp => Packet::udp(local, rules::PROBE_SRC_PORT, remote, rules::PROBE_PORT),
        Hook::Tc => Packet::udp(remote, rules::PROBE_SRC_PORT, local, rules::PROBE_PORT),
    };
    packet.frame()
}

fn ns(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64
}

pub fn run(settings: &Settings, results: &mut Results) -> Result<()> {
    let floor = Floor::load()?;
    let (mut dp, _) = Dataplane::load(&LoadOptions::default()).context("loading the data plane")?;
    let runner = dp.test_runner();
    let vm = Vm::bench();
    let instance_id =
        InstanceId::new(&vm.id).ok_or_else(|| anyhow!("bad instance id {}", vm.id))?;
    let mut floors: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();

    for scenario in Scenario::ALL {
        for &rules in &settings.rule_counts {
            let spec = scenario.spec(rules);
            let policy = spec.compile(std::slice::from_ref(&vm))?;
            let instance = policy
                .instances
                .get(&instance_id)
                .ok_or_else(|| anyhow!("the compiled policy lacks {}", vm.id))?;
            dp.apply(&[InterfaceBinding {
                ifindex: TEST_IFINDEX,
                ingress: &instance.ingress,
                egress: &instance.egress,
                keep_established: false,
                instance_uid: 1,
                port_security: None,
            }])
            .context("applying the benchmark policy")?;
            dp.flush_conntrack(None)?;
            let remote = scenario.remote(&spec)?;
            let (first, repeated) = scenario.expected(rules);

            for hook in [Hook::Xdp, Hook::Tc] {
                let what = format!("{} {} with {rules} rules", scenario.name(), variant(hook));
                let frame = frame(hook, &vm, remote);
                let outcome = runner.run(hook, &frame, None, 1)?;
                first.check(&outcome, &what)?;
                // Warm caches and the branch predictor before sampling.
                runner.run(hook, &frame, None, settings.repeat / 10 + 1)?;
                floor.run(hook, &frame, settings.repeat / 10 + 1)?;

                let (mut cost, mut floor_cost) = (Vec::new(), Vec::new());
                for _ in 0..settings.runs {
                    floor_cost.push(ns(floor.run(hook, &frame, settings.repeat)?));
                    let outcome = runner.run(hook, &frame, None, settings.repeat)?;
                    repeated.check(&outcome, &what)?;
                    cost.push(ns(outcome.duration));
                }
                let name = scenario.name();
                if let Some(m) = median(&cost) {
                    results.push(Record::new(
                        name,
                        variant(hook),
                        rules,
                        "ns-per-packet",
                        m,
                        "ns",
                    ));
                }
                if let Some(r) = median_ratio(&cost, &floor_cost) {
                    results.push(Record::new(name, variant(hook), rules, "x-floor", r, "x"));
                }
                floors
                    .entry(floor_variant(hook))
                    .or_default()
                    .extend(floor_cost);
            }
        }
    }
    for (variant, samples) in floors {
        if let Some(m) = median(&samples) {
            results.push(Record::new("floor", variant, 0, "ns-per-packet", m, "ns"));
        }
    }
    Ok(())
}
