//! BPF_PROG_TEST_RUN on the live programs: a crafted frame goes through the
//! real program against the real maps, and the program's own decision
//! report (abi.h `struct sg_decision`) comes back with the verdict.
//!
//! [`TestRunner`] owns duplicates of the program fds and issues the syscall
//! itself (aya's `TestRun` needs a borrow of the program), so any number of
//! threads can run frames while the owner of the [`Dataplane`] swaps
//! policies: exactly what the hot-swap test and `trace` need.
//!
//! [`Dataplane`]: crate::Dataplane

use std::time::Duration;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::abi::Decision;
use crate::error::DataplaneError;
use crate::object::{PROG_TC_INGRESS, PROG_XDP_EGRESS};

/// Which hook a test frame goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// XDP on the VM's interface: frames the VM sends (egress rules).
    Xdp,
    /// TC on the VM interface's transmit side: frames to the VM (ingress rules).
    Tc,
}

/// What the program did with one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutcome {
    /// The frame would continue (XDP_PASS / TCX_NEXT or TC_ACT_OK).
    pub passed: bool,
    /// The raw return code of the program.
    pub return_value: u32,
    /// The program's decision report; `None` when it did not write one.
    pub decision: Option<Decision>,
    /// Kernel-measured time per run.
    pub duration: Duration,
}

// Return codes (linux/bpf.h, linux/pkt_cls.h).
const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;
const TCX_NEXT: u32 = u32::MAX; // -1

// Offsets in the UAPI `struct __sk_buff` (append-only, so stable).
const SKB_IFINDEX: usize = 40;
const SKB_CB: usize = 48;
/// `sizeof(struct __sk_buff)`: the kernel refuses (ENOSPC) a shorter
/// ctx_out.
const SKB_CTX_LEN: usize = 192;
// Offsets in `struct xdp_md`.
const XDP_MD_LEN: usize = 24;
const XDP_MD_DATA: usize = 0;
const XDP_MD_INGRESS_IFINDEX: usize = 12;

/// `BPF_PROG_TEST_RUN`, the bpf(2) command number.
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `test` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

struct RawResult {
    retval: u32,
    duration_ns: u32,
}

fn prog_test_run(
    prog: &OwnedFd,
    data_in: &[u8],
    data_out: &mut [u8],
    ctx_in: &[u8],
    ctx_out: &mut [u8],
    repeat: u32,
) -> io::Result<RawResult> {
    let mut attr = TestAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data_in.len() as u32,
        data_size_out: data_out.len() as u32,
        data_in: data_in.as_ptr() as u64,
        data_out: data_out.as_mut_ptr() as u64,
        repeat,
        ctx_size_in: ctx_in.len() as u32,
        ctx_size_out: ctx_out.len() as u32,
        ctx_in: ctx_in.as_ptr() as u64,
        ctx_out: ctx_out.as_mut_ptr() as u64,
        ..TestAttr::default()
    };
    // SAFETY: attr points at valid buffers of the stated sizes that outlive
    // the call; the kernel writes only within them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestAttr,
            size_of::<TestAttr>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RawResult {
        retval: attr.retval,
        duration_ns: attr.duration,
    })
}

/// Runs frames through the loaded programs; cheap to clone, usable from
/// any thread.
#[derive(Clone)]
pub struct TestRunner {
    xdp: Arc<OwnedFd>,
    tc: Arc<OwnedFd>,
}

impl TestRunner {
    pub(crate) fn new(xdp: OwnedFd, tc: OwnedFd) -> TestRunner {
        TestRunner {
            xdp: Arc::new(xdp),
            tc: Arc::new(tc),
        }
    }

    /// Runs `frame` through the program of `hook`, `repeat` times (the
    /// reported duration is the mean). `ifindex`: the interface the frame
    /// pretends to use, which must exist in the calling thread's network
    /// namespace; `None` means that namespace's loopback.
    pub fn run(
        &self,
        hook: Hook,
        frame: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, DataplaneError> {
        match hook {
            Hook::Xdp => self.run_xdp(frame, ifindex, repeat),
            Hook::Tc => self.run_tc(frame, ifindex, repeat),
        }
    }

    fn run_xdp(
        &self,
        frame: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, DataplaneError> {
        // Room for the frame plus the metadata the program prepends.
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx_in = [0u8; XDP_MD_LEN];
        let mut ctx_out = [0u8; XDP_MD_LEN];
        // The kernel insists data_end equals the frame length.
        ctx_in[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        if let Some(ifindex) = ifindex {
            ctx_in[XDP_MD_INGRESS_IFINDEX..XDP_MD_INGRESS_IFINDEX + 4]
                .copy_from_slice(&ifindex.to_ne_bytes());
        }
        let raw = prog_test_run(
            &self.xdp,
            frame,
            &mut out,
            &ctx_in,
            &mut ctx_out,
            repeat.max(1),
        )
        .map_err(|source| test_run_err(PROG_XDP_EGRESS, source))?;
        // data_out starts at data_meta; ctx_out.data is where the frame
        // begins relative to it, i.e. the metadata length.
        let meta_len = u32::from_ne_bytes([
            ctx_out[XDP_MD_DATA],
            ctx_out[XDP_MD_DATA + 1],
            ctx_out[XDP_MD_DATA + 2],
            ctx_out[XDP_MD_DATA + 3],
        ]) as usize;
        let decision = match meta_len.checked_sub(Decision::SIZE) {
            Some(start) => out.get(start..meta_len).and_then(Decision::from_bytes),
            None => None,
        };
        Ok(TestRunOutcome {
            passed: raw.retval == XDP_PASS,
            return_value: raw.retval,
            decision,
            duration: Duration::from_nanos(u64::from(raw.duration_ns)),
        })
    }

    fn run_tc(
        &self,
        frame: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, DataplaneError> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx_in = [0u8; SKB_CTX_LEN];
        let mut ctx_out = [0u8; SKB_CTX_LEN];
        if let Some(ifindex) = ifindex {
            ctx_in[SKB_IFINDEX..SKB_IFINDEX + 4].copy_from_slice(&ifindex.to_ne_bytes());
        }
        let raw = prog_test_run(
            &self.tc,
            frame,
            &mut out,
            &ctx_in,
            &mut ctx_out,
            repeat.max(1),
        )
        .map_err(|source| test_run_err(PROG_TC_INGRESS, source))?;
        Ok(TestRunOutcome {
            passed: raw.retval == TC_ACT_OK || raw.retval == TCX_NEXT,
            return_value: raw.retval,
            decision: Decision::from_bytes(&ctx_out[SKB_CB..SKB_CB + Decision::SIZE]),
            duration: Duration::from_nanos(u64::from(raw.duration_ns)),
        })
    }
}

fn test_run_err(name: &'static str, source: io::Error) -> DataplaneError {
    DataplaneError::TestRun { name, source }
}
