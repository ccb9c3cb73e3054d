//! The floors: `floor.bpf.c`'s reference programs, loaded with aya and
//! run through BPF_PROG_TEST_RUN with the same frame, context and repeat
//! count as the data plane's programs, in the same process. The physical
//! floor does nothing; the stateful floors parse and look a flow up (see
//! [`Kind`]), against entries [`Floor::track`] writes.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aya::Ebpf;
use aya::maps::{HashMap, MapData};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp, XdpMode};
use secgroup_dataplane::Hook;
use secgroup_dataplane::abi::{Ct4Key, CtEntry, Iface};

/// The object `build.rs` compiled.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floor.bpf.o"));

const XDP: &str = "floor_xdp";
const TC: &str = "floor_tc";
const CT_MAP: &str = "floor_ct4";
const IFACE_MAP: &str = "floor_ifaces";
/// What a stateful floor returns when its lookups hit: XDP_PASS, TC_ACT_OK.
const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;

/// The reference programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Returns pass: what the kernel spends around any program.
    Nothing,
    /// Ethernet, IPv4 and UDP parsed, then one hit in an LRU hash with
    /// `sg_ct4`'s key, value and size: the cheapest program that knows a
    /// flow with a BPF hash.
    Conntrack,
    /// The same after a hit in a hash like `sg_ifaces` (the interface's
    /// entry by ifindex): the two lookups an established packet makes.
    IfaceConntrack,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Nothing, Kind::Conntrack, Kind::IfaceConntrack];

    fn program(self, hook: Hook) -> &'static str {
        match (self, hook) {
            (Kind::Nothing, Hook::Xdp) => XDP,
            (Kind::Nothing, Hook::Tc) => TC,
            (Kind::Conntrack, Hook::Xdp) => "floor_ct_xdp",
            (Kind::Conntrack, Hook::Tc) => "floor_ct_tc",
            (Kind::IfaceConntrack, Hook::Xdp) => "floor_ct_iface_xdp",
            (Kind::IfaceConntrack, Hook::Tc) => "floor_ct_iface_tc",
        }
    }

    /// The record variant of its figure: `floor-xdp`, `floor-ct-tc`, ...
    pub fn variant(self, hook: Hook) -> &'static str {
        match (self, hook) {
            (Kind::Nothing, Hook::Xdp) => "floor-xdp",
            (Kind::Nothing, Hook::Tc) => "floor-tc",
            (Kind::Conntrack, Hook::Xdp) => "floor-ct-xdp",
            (Kind::Conntrack, Hook::Tc) => "floor-ct-tc",
            (Kind::IfaceConntrack, Hook::Xdp) => "floor-ct-iface-xdp",
            (Kind::IfaceConntrack, Hook::Tc) => "floor-ct-iface-tc",
        }
    }

    /// The metric of a figure divided by this floor's.
    pub fn ratio_metric(self) -> &'static str {
        match self {
            Kind::Nothing => "x-floor",
            Kind::Conntrack => "x-floor-ct",
            Kind::IfaceConntrack => "x-floor-ct-iface",
        }
    }
}

/// `sizeof(struct xdp_md)` and `sizeof(struct __sk_buff)`: the contexts the
/// data plane's test runs pass, so both sides pay for the same copying.
const XDP_MD_LEN: usize = 24;
const SKB_CTX_LEN: usize = 192;

pub struct Floor {
    ebpf: Ebpf,
}

impl Floor {
    pub fn load() -> Result<Floor> {
        let mut ebpf = Ebpf::load(OBJECT).context("loading floor.bpf.o")?;
        for kind in Kind::ALL {
            let name = kind.program(Hook::Xdp);
            let xdp: &mut Xdp = ebpf
                .program_mut(name)
                .ok_or_else(|| anyhow!("floor.bpf.o has no program {name}"))?
                .try_into()?;
            xdp.load().with_context(|| format!("loading {name}"))?;
            let name = kind.program(Hook::Tc);
            let tc: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or_else(|| anyhow!("floor.bpf.o has no program {name}"))?
                .try_into()?;
            tc.load().with_context(|| format!("loading {name}"))?;
        }
        Ok(Floor { ebpf })
    }

    /// Writes what the stateful floors must find for a frame of the flow
    /// `key` (as `sg_ct4` names it) on interface `key.ifindex`: its
    /// conntrack entry and the interface's entry.
    pub fn track(&mut self, key: Ct4Key) -> Result<()> {
        let mut flows: HashMap<&mut MapData, Ct4Key, CtEntry> = HashMap::try_from(
            self.ebpf
                .map_mut(CT_MAP)
                .ok_or_else(|| anyhow!("floor.bpf.o has no map {CT_MAP}"))?,
        )?;
        flows
            .insert(key, CtEntry::default(), 0)
            .context("writing the stateful floor's flow")?;
        let mut ifaces: HashMap<&mut MapData, u32, Iface> = HashMap::try_from(
            self.ebpf
                .map_mut(IFACE_MAP)
                .ok_or_else(|| anyhow!("floor.bpf.o has no map {IFACE_MAP}"))?,
        )?;
        ifaces
            .insert(key.ifindex, Iface::default(), 0)
            .context("writing the stateful floor's interface")?;
        Ok(())
    }

    /// The kernel-reported mean time per run of the do-nothing program of
    /// `hook` over `repeat` runs of `frame`.
    pub fn run(&self, hook: Hook, frame: &[u8], repeat: u32) -> Result<Duration> {
        self.run_kind(Kind::Nothing, hook, frame, repeat)
    }

    /// The same for any floor. A stateful floor must have found its
    /// entries (the frame of a flow [`Floor::track`] wrote): a miss is an
    /// error, so the figure never measures the cheaper path.
    pub fn run_kind(&self, kind: Kind, hook: Hook, frame: &[u8], repeat: u32) -> Result<Duration> {
        let name = kind.program(hook);
        let mut out = vec![0u8; frame.len() + 256];
        let result = match hook {
            Hook::Xdp => {
                let mut ctx_in = [0u8; XDP_MD_LEN];
                // data_end: the kernel insists it equals the frame length.
                ctx_in[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
                let mut ctx_out = [0u8; XDP_MD_LEN];
                let program: &Xdp = self.program(name)?.try_into()?;
                program.test_run(TestRunOptions {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    ctx_in: Some(&ctx_in),
                    ctx_out: Some(&mut ctx_out),
                    repeat,
                    ..TestRunOptions::default()
                })
            }
            Hook::Tc => {
                let ctx_in = [0u8; SKB_CTX_LEN];
                let mut ctx_out = [0u8; SKB_CTX_LEN];
                let program: &SchedClassifier = self.program(name)?.try_into()?;
                program.test_run(TestRunOptions {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    ctx_in: Some(&ctx_in),
                    ctx_out: Some(&mut ctx_out),
                    repeat,
                    ..TestRunOptions::default()
                })
            }
        }
        .with_context(|| format!("BPF_PROG_TEST_RUN of {name}"))?;
        let pass = match hook {
            Hook::Xdp => XDP_PASS,
            Hook::Tc => TC_ACT_OK,
        };
        if kind != Kind::Nothing && result.return_value != pass {
            bail!(
                "{name} returned {} for the benchmark's frame: its lookups missed, \
                 the figure would measure a miss",
                result.return_value
            );
        }
        Ok(result.duration)
    }

    /// Attaches the do-nothing XDP program to `ifindex` (of the calling
    /// thread's namespace) in driver mode, as the data plane attaches its
    /// own: the throughput benchmark's measure of what merely having XDP
    /// on an interface costs.
    pub fn attach_xdp(&mut self, ifindex: u32) -> Result<XdpLinkId> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(XDP)
            .ok_or_else(|| anyhow!("floor.bpf.o has no program {XDP}"))?
            .try_into()?;
        program
            .attach_to_if_index(ifindex, XdpMode::Driver)
            .with_context(|| format!("attaching floor_xdp to ifindex {ifindex}"))
    }

    pub fn detach_xdp(&mut self, link: XdpLinkId) -> Result<()> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(XDP)
            .ok_or_else(|| anyhow!("floor.bpf.o has no program {XDP}"))?
            .try_into()?;
        program.detach(link).context("detaching floor_xdp")
    }

    fn program(&self, name: &str) -> Result<&aya::programs::Program> {
        self.ebpf
            .program(name)
            .ok_or_else(|| anyhow!("floor.bpf.o has no program {name}"))
    }
}
