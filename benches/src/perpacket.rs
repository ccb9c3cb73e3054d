//! Per-packet cost in the kernel: frames run through the live programs
//! with BPF_PROG_TEST_RUN, `repeat` times per run; the kernel reports the
//! mean time per run. Each figure is the median of `runs` runs, and each
//! run is paired with a run of the floor program on the same frame, so
//! the ratio to the floor is taken within a pair.
//!
//! The established flow is also divided by two stateful floors
//! (`floor.bpf.c`): parse, then the flow's hit in an LRU hash like
//! `sg_ct4`, without and with the interface's hit in a hash like
//! `sg_ifaces` before it. They are the cheapest programs that can know a
//! flow with BPF hashes, so the ratio to them says how much of the cost is
//! the lookups any such design pays and how much is secgroup's own work.
//!
//! Why the new-flow scenarios end in a DROP rule: an accepted packet
//! creates a conntrack entry, so with `repeat` every run after the first
//! would be a conntrack hit, not a classification. A dropped packet leaves
//! no entry, so every one of the `repeat` runs classifies from scratch.
//! The first run of every measurement is checked against the decision the
//! scenario is about, so a figure never silently measures another path.
//!
//! Port security (XDP, new-flow-last-rule and established): a second data
//! plane, loaded side by side, binds the same lists with the VM's
//! port-security spec enforced (its MAC, two addresses, one address pair).
//! The frame comes from the VM's own MAC and address, so it passes port
//! security and is classified as without it; its decisions are checked
//! like the others. The two planes then run in many short pairs, and the
//! cost of port security is the median of the within-pair ratios on ÷ off.
//! Port security adds some 20 ns to a figure of 150 to 300 ns, the size of
//! a busy machine's run-to-run noise: pairs a few milliseconds long see the
//! same phase of the machine, runs of a second do not.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};
use secgroup_dataplane::abi::{Ct4Key, CtKey, Reason};
use secgroup_dataplane::packet::Packet;
use secgroup_dataplane::{
    Dataplane, Hook, InterfaceBinding, LoadOptions, TestRunOutcome, TestRunner,
};
use secgroup_model::{Action, InstanceId};

use crate::floor::{Floor, Kind};
use crate::record::{Record, Results};
use crate::rules::{self, LastRemote, ListSpec, Vm};
use crate::stats::{median, median_ratio};
use secgroup_policy::{Enforcement, LogMode};

/// The interface frames run on: without an ifindex in the test context the
/// kernel uses the loopback device of the caller's namespace.
const TEST_IFINDEX: u32 = 1;
/// Members of the referenced group in the sg-reference scenario.
pub const MEMBERS: usize = 10_000;
/// The variants of the port-security figures (XDP): `-off` and `-on`.
const PORT_SECURITY_VARIANT: &str = "secgroup-xdp-port-security";
pub const PORT_SECURITY_OFF: &str = "secgroup-xdp-port-security-off";
pub const PORT_SECURITY_ON: &str = "secgroup-xdp-port-security-on";
/// Pairs of port-security runs per run of the other figures.
const PAIRS_PER_RUN: usize = 10;
/// The scenarios also measured with port security on.
pub const PORT_SECURITY_SCENARIOS: [&str; 2] = ["new-flow-last-rule", "established"];
/// The destination MAC of the VM's frames (the host side of its tap).
const GATEWAY_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x5b, 0x00, 0x01];

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

    /// Whether the scenario is also measured with port security on.
    fn with_port_security(self) -> bool {
        matches!(self, Scenario::NewFlowLastRule | Scenario::Established)
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

/// The floors a scenario's figures are divided by: the established flow's
/// also by the stateful floors, which find its flow (see floor.rs).
fn floors_of(scenario: Scenario) -> &'static [Kind] {
    if scenario == Scenario::Established {
        &Kind::ALL
    } else {
        &Kind::ALL[..1]
    }
}

/// The `sg_ct4` key of [`frame`]'s flow, as the programs build it: local =
/// the VM.
fn flow_key(hook: Hook, vm: &Vm, remote: IpAddr) -> Result<Ct4Key> {
    let (local_port, remote_port) = match hook {
        Hook::Xdp => (rules::PROBE_SRC_PORT, rules::PROBE_PORT),
        Hook::Tc => (rules::PROBE_PORT, rules::PROBE_SRC_PORT),
    };
    let udp = 17;
    CtKey::new(
        TEST_IFINDEX,
        udp,
        IpAddr::V4(vm.v4),
        local_port,
        remote,
        remote_port,
    )
    .to_v4()
    .ok_or_else(|| anyhow!("the stateful floors know IPv4 flows only, not {remote}"))
}

/// The probe frame as `hook` sees it: XDP gets what the VM sends (egress,
/// remote = destination, from the VM's MAC and address: what its port
/// security allows), TC what is sent to it (ingress, remote = source).
fn frame(hook: Hook, vm: &Vm, remote: IpAddr) -> Vec<u8> {
    let local = match remote {
        IpAddr::V4(_) => IpAddr::V4(vm.v4),
        IpAddr::V6(_) => IpAddr::V6(vm.v6),
    };
    let mut packet = match hook {
        Hook::Xdp => Packet::udp(local, rules::PROBE_SRC_PORT, remote, rules::PROBE_PORT),
        Hook::Tc => Packet::udp(remote, rules::PROBE_SRC_PORT, local, rules::PROBE_PORT),
    };
    if let Some(mac) = vm.mac {
        packet = match hook {
            Hook::Xdp => packet.with_macs(mac, GATEWAY_MAC),
            Hook::Tc => packet.with_macs(GATEWAY_MAC, mac),
        };
    }
    packet.frame()
}

fn ns(d: std::time::Duration) -> f64 {
    d.as_nanos() as f64
}

pub fn run(settings: &Settings, results: &mut Results) -> Result<()> {
    let mut floor = Floor::load()?;
    let (mut dp, _) = Dataplane::load(&LoadOptions::default()).context("loading the data plane")?;
    let runner = dp.test_runner();
    // Unpinned, so the two planes share no map: the second is the same
    // program with the same lists, port security on.
    let (mut dp_psec, _) = Dataplane::load(&LoadOptions::default())
        .context("loading the data plane with port security")?;
    let runner_psec = dp_psec.test_runner();
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
            let binding = |port_security| InterfaceBinding {
                ifindex: TEST_IFINDEX,
                ingress: &instance.ingress,
                egress: &instance.egress,
                keep_established: false,
                instance_uid: 1,
                port_security,
                log: LogMode::None,
                enforcement: Enforcement::Enforce,
            };
            dp.apply(&[binding(None)])
                .context("applying the benchmark policy")?;
            dp.flush_conntrack(None)?;
            let psec = scenario.with_port_security();
            if psec {
                if !instance.port_security.enabled || instance.port_security.mac.is_none() {
                    bail!("the benchmark VM has no port-security spec with a MAC");
                }
                dp_psec
                    .apply(&[binding(Some(&instance.port_security))])
                    .context("applying the benchmark policy with port security")?;
                dp_psec.flush_conntrack(None)?;
            }
            let remote = scenario.remote(&spec)?;
            let (first, repeated) = scenario.expected(rules);

            for hook in [Hook::Xdp, Hook::Tc] {
                let what = format!("{} {} with {rules} rules", scenario.name(), variant(hook));
                let frame = frame(hook, &vm, remote);
                let outcome = runner.run(hook, &frame, None, 1)?;
                first.check(&outcome, &what)?;
                let kinds = floors_of(scenario);
                if kinds.len() > 1 {
                    floor.track(flow_key(hook, &vm, remote)?)?;
                }
                // Warm caches and the branch predictor before sampling.
                runner.run(hook, &frame, None, settings.repeat / 10 + 1)?;
                for &kind in kinds {
                    floor.run_kind(kind, hook, &frame, settings.repeat / 10 + 1)?;
                }

                // Timed without asking for a report, as real traffic runs
                // (a requested run skips the counters); the verdict is
                // checked by a requested run after each sample.
                let mut cost = Vec::new();
                let mut floor_cost = vec![Vec::new(); kinds.len()];
                for _ in 0..settings.runs {
                    for (&kind, samples) in kinds.iter().zip(&mut floor_cost) {
                        samples.push(ns(floor.run_kind(kind, hook, &frame, settings.repeat)?));
                    }
                    let timed =
                        runner.run_unrequested_repeat(hook, &frame, None, &[], settings.repeat)?;
                    cost.push(ns(timed.duration));
                    repeated.check(&runner.run(hook, &frame, None, 1)?, &what)?;
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
                for (&kind, samples) in kinds.iter().zip(&floor_cost) {
                    if let Some(r) = median_ratio(&cost, samples) {
                        let metric = kind.ratio_metric();
                        results.push(Record::new(name, variant(hook), rules, metric, r, "x"));
                    }
                }
                if psec && hook == Hook::Xdp {
                    let planes = [(&runner, "off"), (&runner_psec, "on")];
                    let probe = Probe {
                        frame: &frame,
                        first,
                        repeated,
                        what: &what,
                    };
                    port_security(&planes, &probe, settings, rules, name, results)?;
                }
                for (&kind, samples) in kinds.iter().zip(floor_cost) {
                    floors
                        .entry(kind.variant(hook))
                        .or_default()
                        .extend(samples);
                }
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

/// The frame a scenario sends through XDP and the decisions it must get.
struct Probe<'a> {
    frame: &'a [u8],
    first: Expect,
    repeated: Expect,
    what: &'a str,
}

/// Port security's cost: many short runs of the plane without it and the
/// plane with it, in pairs (the order alternating from pair to pair), so
/// that a phase of the shared machine hits both members of a pair. Each
/// run is `repeat / 10` packets; there are `10 × runs` pairs. Records each
/// plane's median and the median of the ratios on ÷ off.
fn port_security(
    planes: &[(&TestRunner, &str); 2],
    probe: &Probe<'_>,
    settings: &Settings,
    rules: usize,
    scenario: &str,
    results: &mut Results,
) -> Result<()> {
    let repeat = settings.repeat / PAIRS_PER_RUN as u32 + 1;
    let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (runner, state) in planes {
        let what = format!("{} (port security {state})", probe.what);
        let outcome = runner.run(Hook::Xdp, probe.frame, None, 1)?;
        // The plane without it ran the first packet already.
        if *state == "on" {
            probe.first.check(&outcome, &what)?;
        } else {
            probe.repeated.check(&outcome, &what)?;
        }
        runner.run(Hook::Xdp, probe.frame, None, repeat)?;
    }
    for pair in 0..settings.runs * PAIRS_PER_RUN {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (runner, state) = planes[i];
            // Timed as real traffic runs (counters included), checked by
            // one requested run.
            let timed = runner.run_unrequested_repeat(Hook::Xdp, probe.frame, None, &[], repeat)?;
            samples[i].push(ns(timed.duration));
            let outcome = runner.run(Hook::Xdp, probe.frame, None, 1)?;
            probe
                .repeated
                .check(&outcome, &format!("{} (port security {state})", probe.what))?;
        }
    }
    let [off, on] = &samples;
    for ((_, state), samples) in planes.iter().zip(&samples) {
        if let Some(m) = median(samples) {
            let variant = format!("{PORT_SECURITY_VARIANT}-{state}");
            results.push(Record::new(
                scenario,
                &variant,
                rules,
                "ns-per-packet",
                m,
                "ns",
            ));
        }
    }
    if let Some(r) = median_ratio(on, off) {
        results.push(Record::new(
            scenario,
            PORT_SECURITY_ON,
            rules,
            "x-port-security-off",
            r,
            "x",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_security_scenarios_are_the_ones_measured_with_it() {
        let measured: Vec<&str> = Scenario::ALL
            .into_iter()
            .filter(|s| s.with_port_security())
            .map(Scenario::name)
            .collect();
        assert_eq!(measured, PORT_SECURITY_SCENARIOS);
    }

    #[test]
    fn the_xdp_frame_comes_from_the_vm_and_the_tc_frame_goes_to_it() {
        let vm = Vm::bench();
        let mac = vm.mac.unwrap_or_else(|| panic!("the bench VM has no MAC"));
        let remote = IpAddr::V4(rules::LAST_RULE_REMOTE);
        let xdp = frame(Hook::Xdp, &vm, remote);
        assert_eq!(xdp[6..12], mac, "XDP source MAC");
        assert_eq!(xdp[26..30], vm.v4.octets(), "XDP source address");
        let tc = frame(Hook::Tc, &vm, remote);
        assert_eq!(tc[0..6], mac, "TC destination MAC");
        assert_eq!(tc[30..34], vm.v4.octets(), "TC destination address");
    }
}
