//! The physical floor: `floor.bpf.c`'s do-nothing programs, loaded with
//! aya and run through BPF_PROG_TEST_RUN with the same frame, context and
//! repeat count as the data plane's programs, in the same process.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aya::Ebpf;
use aya::programs::xdp::XdpLinkId;
use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp, XdpMode};
use secgroup_dataplane::Hook;

/// The object `build.rs` compiled.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floor.bpf.o"));

const XDP: &str = "floor_xdp";
const TC: &str = "floor_tc";

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
        let xdp: &mut Xdp = ebpf
            .program_mut(XDP)
            .ok_or_else(|| anyhow!("floor.bpf.o has no program {XDP}"))?
            .try_into()?;
        xdp.load().context("loading floor_xdp")?;
        let tc: &mut SchedClassifier = ebpf
            .program_mut(TC)
            .ok_or_else(|| anyhow!("floor.bpf.o has no program {TC}"))?
            .try_into()?;
        tc.load().context("loading floor_tc")?;
        Ok(Floor { ebpf })
    }

    /// The kernel-reported mean time per run of the floor program of
    /// `hook` over `repeat` runs of `frame`.
    pub fn run(&self, hook: Hook, frame: &[u8], repeat: u32) -> Result<Duration> {
        let mut out = vec![0u8; frame.len() + 256];
        let result = match hook {
            Hook::Xdp => {
                let mut ctx_in = [0u8; XDP_MD_LEN];
                // data_end: the kernel insists it equals the frame length.
                ctx_in[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
                let mut ctx_out = [0u8; XDP_MD_LEN];
                let program: &Xdp = self.program(XDP)?.try_into()?;
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
                let program: &SchedClassifier = self.program(TC)?.try_into()?;
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
        .with_context(|| format!("BPF_PROG_TEST_RUN of the {hook:?} floor"))?;
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
