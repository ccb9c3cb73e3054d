//! Throughput through the hypervisor path: UDP from VM A to VM B across
//! the host's bridge, counted at VM B's interface, with
//!
//! - `none`: no filter;
//! - `xdp-pass`: a do-nothing XDP program on both taps, which is what
//!   switching a veth to XDP costs by itself (see docs/performance.md);
//! - `secgroup`: both hooks on both taps (`Dataplane::attach_in`), each VM
//!   enforcing a list of N rules per direction whose last rule accepts
//!   the traffic;
//! - `nftables`: the same rules in an inet forward chain with conntrack
//!   first, over br_netfilter (see `nft`), one rule after another;
//! - `nftables-sets`: the same, each list one lookup in a set of
//!   intervals (the lists accept only, so order does not matter):
//!   nftables at its strongest.
//!
//! Traffic: new flows (every datagram of a trial a (source port,
//! destination port) pair not sent before in it: each sending thread cycles
//! its own sockets over a window of destination ports sized for more than
//! the trial can send; windows move on through the port range from trial
//! to trial) and one
//! established flow (answered once, so every conntrack calls it
//! established), each with 64- and 1400-byte payloads.
//!
//! Variants alternate within a round (A B C A B C …, the starting variant
//! rotating), so slow phases of a shared machine hit them all; ratios are
//! taken within a round and their median reported. Before the first round
//! every variant is checked to filter: traffic the rules accept arrives,
//! traffic they do not is dropped (by all but `none` and `xdp-pass`).

mod nft;
pub(crate) mod topology;
mod traffic;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aya::programs::xdp::XdpLinkId;
use secgroup_dataplane::{Dataplane, InterfaceBinding, LoadOptions, XdpAttachMode, netns};
use secgroup_model::{Action, InstanceId};
use secgroup_policy::{Enforcement, LogMode, Policy};

use crate::floor::Floor;
use crate::record::{Record, Results};
use crate::rules::{LAST_PORTS, LastRemote, ListSpec, Vm};
use crate::stats::{median, median_ratio};
use nft::{NftTable, NftVm};
use topology::{TAP_A, TAP_B, Topology, VM_A, VM_B};
use traffic::{ESTABLISHED_PORT, Receiver, Sender};

#[derive(Debug, Clone)]
pub struct Settings {
    pub rounds: usize,
    pub trial: Duration,
    pub threads: usize,
    pub sockets_per_thread: usize,
    pub rule_counts: Vec<usize>,
}

const PAYLOADS: [usize; 2] = [64, 1400];
/// Filter checks: a port the last rule accepts (kept out of the new-flow
/// windows) and one no rule names.
const CHECK_ACCEPTED: u16 = *LAST_PORTS.end();
const CHECK_DROPPED: u16 = 80;
const CHECK_PACKETS: usize = 200;
/// Packets still in flight when the senders stop are counted after this.
const SETTLE: Duration = Duration::from_millis(50);
/// More datagrams per second than this machine's senders manage (about
/// 300,000): each trial's port window holds this many flows per second.
const MAX_PPS: f64 = 2_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    None,
    XdpPass,
    Secgroup(usize),
    Nftables(usize),
    NftSets(usize),
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::None => "none",
            Variant::XdpPass => "xdp-pass",
            Variant::Secgroup(_) => "secgroup",
            Variant::Nftables(_) => "nftables",
            Variant::NftSets(_) => "nftables-sets",
        }
    }

    /// Whether the variant drops what the rules do not accept.
    fn filters(self) -> bool {
        matches!(
            self,
            Variant::Secgroup(_) | Variant::Nftables(_) | Variant::NftSets(_)
        )
    }

    fn rules(self) -> usize {
        match self {
            Variant::None | Variant::XdpPass => 0,
            Variant::Secgroup(n) | Variant::Nftables(n) | Variant::NftSets(n) => n,
        }
    }
}

/// (traffic, payload, variant) -> per-round (received, sent) packets per
/// second.
type Samples = BTreeMap<(Traffic, usize, Variant), Vec<(f64, f64)>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Traffic {
    NewFlows,
    Established,
}

impl Traffic {
    fn scenario(self, payload: usize) -> String {
        match self {
            Traffic::NewFlows => format!("throughput-new-flows-{payload}B"),
            Traffic::Established => format!("throughput-established-{payload}B"),
        }
    }
}

/// The two VMs: the same list for both, bound to the taps.
fn vms() -> [Vm; 2] {
    [
        Vm::new(
            "ins-a",
            TAP_A,
            VM_A,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa),
        ),
        Vm::new(
            "ins-b",
            TAP_B,
            VM_B,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xb),
        ),
    ]
}

/// What a variant left in place, undone by [`Bench::deactivate`].
enum Active<'t> {
    Nothing,
    XdpPass([XdpLinkId; 2]),
    Secgroup([u32; 2]),
    Nftables(NftTable<'t>),
}

struct Bench<'t> {
    topology: &'t Topology,
    dp: Dataplane,
    floor: Floor,
    policies: BTreeMap<usize, Policy>,
    sender: Sender,
    receiver: Receiver,
    settings: Settings,
    /// Destination ports each new-flow trial gets, and the next window.
    window: usize,
    next_window: usize,
    xdp_mode: Option<XdpAttachMode>,
}

impl<'t> Bench<'t> {
    fn activate(&mut self, variant: Variant) -> Result<Active<'t>> {
        match variant {
            Variant::None => Ok(Active::Nothing),
            Variant::XdpPass => {
                let floor = &mut self.floor;
                let links = netns::run_in(
                    &self.topology.host.path(),
                    move || -> Result<[XdpLinkId; 2]> {
                        let a = floor.attach_xdp(netns::ifindex(TAP_A)?)?;
                        match netns::ifindex(TAP_B)
                            .map_err(anyhow::Error::from)
                            .and_then(|b| floor.attach_xdp(b))
                        {
                            Ok(b) => Ok([a, b]),
                            Err(e) => {
                                let _ = floor.detach_xdp(a);
                                Err(e)
                            }
                        }
                    },
                )??;
                Ok(Active::XdpPass(links))
            }
            Variant::Secgroup(rules) => {
                let host = self.topology.host.path();
                let a = self
                    .dp
                    .attach_in(&host, TAP_A)
                    .context("attaching to tap-a")?;
                let b = self
                    .dp
                    .attach_in(&host, TAP_B)
                    .context("attaching to tap-b")?;
                self.xdp_mode = Some(a.xdp_mode);
                let policy = self
                    .policies
                    .get(&rules)
                    .ok_or_else(|| anyhow!("no policy with {rules} rules"))?;
                let mut bindings = Vec::new();
                for (vm, ifindex) in vms().iter().zip([a.ifindex, b.ifindex]) {
                    let id = InstanceId::new(&vm.id).ok_or_else(|| anyhow!("bad id {}", vm.id))?;
                    let instance = policy
                        .instances
                        .get(&id)
                        .ok_or_else(|| anyhow!("no {id} in the policy"))?;
                    bindings.push(InterfaceBinding {
                        ifindex,
                        ingress: &instance.ingress,
                        egress: &instance.egress,
                        keep_established: false,
                        instance_uid: ifindex,
                        port_security: None,
                        log: LogMode::None,
                        enforcement: Enforcement::Enforce,
                    });
                }
                self.dp
                    .apply(&bindings)
                    .context("applying the throughput policy")?;
                Ok(Active::Secgroup([a.ifindex, b.ifindex]))
            }
            Variant::Nftables(rules) | Variant::NftSets(rules) => {
                self.topology.set_bridge_netfilter(true)?;
                let nft_vms = [
                    NftVm {
                        name: "vm_a",
                        addr: VM_A,
                    },
                    NftVm {
                        name: "vm_b",
                        addr: VM_B,
                    },
                ];
                let ruleset = match variant {
                    Variant::NftSets(_) => nft::ruleset_sets(rules, &nft_vms),
                    _ => nft::ruleset(rules, &nft_vms),
                };
                let table = NftTable::load(&self.topology.host, &ruleset)
                    .context("loading the nftables ruleset (is nftables installed?)")?;
                Ok(Active::Nftables(table))
            }
        }
    }

    fn deactivate(&mut self, active: Active<'t>) -> Result<()> {
        match active {
            Active::Nothing => Ok(()),
            Active::XdpPass(links) => {
                for link in links {
                    self.floor.detach_xdp(link)?;
                }
                Ok(())
            }
            Active::Secgroup(ifindexes) => {
                for ifindex in ifindexes {
                    self.dp.detach(ifindex)?;
                }
                Ok(())
            }
            Active::Nftables(table) => {
                drop(table);
                self.topology.set_bridge_netfilter(false)
            }
        }
    }

    fn with<T>(
        &mut self,
        variant: Variant,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let active = self.activate(variant)?;
        let result = work(self);
        let undone = self.deactivate(active);
        let value = result?;
        undone?;
        Ok(value)
    }

    /// Trickles accepted and refused traffic through `variant` and insists
    /// it filters (or, for `none`, that it does not).
    fn check(&mut self, variant: Variant) -> Result<()> {
        self.with(variant, |bench| {
            let received = |bench: &Self, port: u16| -> Result<u64> {
                let before = bench.topology.received_by_b()?;
                bench.sender.trickle(port, CHECK_PACKETS);
                std::thread::sleep(Duration::from_millis(100));
                Ok(bench.topology.received_by_b()?.saturating_sub(before))
            };
            let accepted = received(bench, CHECK_ACCEPTED)?;
            let refused = received(bench, CHECK_DROPPED)?;
            let enough = CHECK_PACKETS as u64 * 9 / 10;
            // A few ARP frames may arrive in either window.
            let filtered = refused <= 5;
            if accepted < enough || filtered != variant.filters() {
                bail!(
                    "{} with {} rules does not behave as a filter should: {accepted} of {CHECK_PACKETS} accepted \
                     datagrams and {refused} of {CHECK_PACKETS} refused ones reached VM B",
                    variant.name(),
                    variant.rules()
                );
            }
            Ok(())
        })
    }

    /// One trial: packets per second received by VM B and sent by VM A.
    fn trial(&mut self, variant: Variant, traffic: Traffic, payload: usize) -> Result<(f64, f64)> {
        let ports = if traffic == Traffic::NewFlows {
            Some(self.take_window())
        } else {
            None
        };
        let trial = self.settings.trial;
        self.with(variant, |bench| {
            if traffic == Traffic::Established {
                bench.sender.handshake(&bench.receiver)?;
            }
            let before = bench.topology.received_by_b()?;
            let sent = match ports {
                Some(ports) => bench.sender.new_flows(payload, ports, trial)?,
                None => bench.sender.established(payload, trial)?,
            };
            std::thread::sleep(SETTLE);
            let received = bench.topology.received_by_b()?.saturating_sub(before);
            if sent.wrapped {
                eprintln!(
                    "secgroup-bench: warning: {} {payload}B: the port window ran out, some flows repeated",
                    variant.name()
                );
            }
            let seconds = sent.elapsed.as_secs_f64();
            Ok((received as f64 / seconds, sent.packets as f64 / seconds))
        })
    }

    /// The next trial's destination ports: consecutive windows tile the
    /// new-flow port range and start over at its beginning.
    fn take_window(&mut self) -> std::ops::RangeInclusive<u16> {
        let first = usize::from(ESTABLISHED_PORT) + 1;
        let span = usize::from(CHECK_ACCEPTED) - first;
        let windows = (span / self.window).max(1);
        let start = first + (self.next_window % windows) * self.window;
        let end = (start + self.window - 1).min(usize::from(CHECK_ACCEPTED) - 1);
        self.next_window += 1;
        start as u16..=end as u16
    }
}

pub fn run(settings: &Settings, results: &mut Results) -> Result<()> {
    topology::sweep_stale();
    let topology = Topology::new().context("building the bridge and VM namespaces")?;
    let (dp, _) = Dataplane::load(&LoadOptions::default()).context("loading the data plane")?;
    let mut policies = BTreeMap::new();
    for &rules in &settings.rule_counts {
        let spec = ListSpec {
            rules,
            last_action: Action::Accept,
            last_remote: LastRemote::Subnet,
        };
        policies.insert(rules, spec.compile(&vms())?);
    }
    let mut variants = vec![Variant::None, Variant::XdpPass];
    variants.extend(settings.rule_counts.iter().map(|&n| Variant::Secgroup(n)));
    variants.extend(settings.rule_counts.iter().map(|&n| Variant::Nftables(n)));
    variants.extend(settings.rule_counts.iter().map(|&n| Variant::NftSets(n)));

    let sender = Sender::new(
        &topology.vm_a.path(),
        settings.threads,
        settings.sockets_per_thread,
    )?;
    // Room for MAX_PPS during a whole trial without repeating a flow.
    let flows = MAX_PPS * settings.trial.as_secs_f64();
    let window = (flows / sender.flows_per_port() as f64).ceil() as usize;
    let span = usize::from(CHECK_ACCEPTED - ESTABLISHED_PORT - 1);
    let mut bench = Bench {
        topology: &topology,
        dp,
        floor: Floor::load()?,
        policies,
        sender,
        receiver: Receiver::new(&topology.vm_b.path())?,
        settings: settings.clone(),
        window: window.clamp(1, span),
        next_window: 0,
        xdp_mode: None,
    };
    eprintln!(
        "secgroup-bench: throughput: {} sending threads, {} new flows per destination port, {} ports per trial",
        settings.threads,
        bench.sender.flows_per_port(),
        bench.window
    );
    for &variant in &variants {
        bench.check(variant)?;
    }
    if let Some(mode) = bench.xdp_mode {
        eprintln!("secgroup-bench: throughput: XDP attached in {mode:?} mode on the veth taps");
    }

    let mut samples = Samples::new();
    for round in 0..settings.rounds {
        for traffic in [Traffic::NewFlows, Traffic::Established] {
            for payload in PAYLOADS {
                let mut order = variants.clone();
                order.rotate_left(round % variants.len());
                for variant in order {
                    let sample = bench
                        .trial(variant, traffic, payload)
                        .with_context(|| format!("{} {traffic:?} {payload}B", variant.name()))?;
                    samples
                        .entry((traffic, payload, variant))
                        .or_default()
                        .push(sample);
                }
            }
        }
        eprintln!(
            "secgroup-bench: throughput: round {} of {} done",
            round + 1,
            settings.rounds
        );
    }
    report(&samples, results);
    Ok(())
}

fn report(samples: &Samples, results: &mut Results) {
    let rx = |key: &(Traffic, usize, Variant)| -> Vec<f64> {
        samples
            .get(key)
            .map(|s| s.iter().map(|(rx, _)| *rx).collect())
            .unwrap_or_default()
    };
    for (&(traffic, payload, variant), trials) in samples {
        let scenario = traffic.scenario(payload);
        let (name, rules) = (variant.name(), variant.rules());
        let received: Vec<f64> = trials.iter().map(|(rx, _)| *rx).collect();
        let sent: Vec<f64> = trials.iter().map(|(_, tx)| *tx).collect();
        if let Some(m) = median(&received) {
            results.push(Record::new(&scenario, name, rules, "rx-pps", m, "pps"));
        }
        if let Some(m) = median(&sent) {
            results.push(Record::new(&scenario, name, rules, "tx-pps", m, "pps"));
        }
        if variant != Variant::None
            && let Some(r) = median_ratio(&received, &rx(&(traffic, payload, Variant::None)))
        {
            results.push(Record::new(&scenario, name, rules, "x-none", r, "x"));
        }
        if let Variant::Secgroup(n) = variant {
            if let Some(r) = median_ratio(&received, &rx(&(traffic, payload, Variant::Nftables(n))))
            {
                results.push(Record::new(&scenario, name, rules, "x-nftables", r, "x"));
            }
            if let Some(r) = median_ratio(&received, &rx(&(traffic, payload, Variant::NftSets(n))))
            {
                results.push(Record::new(
                    &scenario,
                    name,
                    rules,
                    "x-nftables-sets",
                    r,
                    "x",
                ));
            }
            if let Some(r) = median_ratio(&received, &rx(&(traffic, payload, Variant::XdpPass))) {
                results.push(Record::new(&scenario, name, rules, "x-xdp-pass", r, "x"));
            }
        }
    }
}
