//! BPF_PROG_TEST_RUN on the live programs: a crafted frame goes through the
//! real program against the real maps, and the program's own decision
//! report (abi.h `struct sg_decision`) comes back with the verdict.
//!
//! The programs report only when asked: [`TestRunner::run`] puts a report
//! slot and abi.h's `SG_DECISION_REQUEST` in the XDP metadata in front of
//! the frame or in TC's `__sk_buff` cb, where real traffic carries none;
//! [`TestRunner::run_unrequested`] runs a frame the way real traffic
//! arrives.
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

use crate::abi::{DECISION_REQUEST, Decision};
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

/// What the program did with a frame that did not ask for a report
/// ([`TestRunner::run_unrequested`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrequestedOutcome {
    /// The frame would continue.
    pub passed: bool,
    /// The raw return code of the program.
    pub return_value: u32,
    /// Where a report would go, after the run: XDP's metadata area in
    /// front of the frame (its length included), TC's `__sk_buff` cb.
    pub metadata: Vec<u8>,
    /// Mean time per run, as the kernel measured it.
    pub duration: Duration,
}

// Return codes (linux/bpf.h, linux/pkt_cls.h).
const XDP_PASS: u32 = 2;
const TC_ACT_OK: u32 = 0;
const TCX_NEXT: u32 = u32::MAX; // -1

// Offsets in the UAPI `struct __sk_buff` (append-only, so stable).
const SKB_IFINDEX: usize = 40;
const SKB_CB: usize = 48;
/// `sizeof(__sk_buff.cb)`: five words.
const SKB_CB_LEN: usize = 20;
/// `sizeof(struct __sk_buff)`: the kernel refuses (ENOSPC) a shorter
/// ctx_out.
const SKB_CTX_LEN: usize = 192;
// Offsets in `struct xdp_md`.
const XDP_MD_LEN: usize = 24;
const XDP_MD_DATA: usize = 0;
const XDP_MD_DATA_END: usize = 4;
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
    // attr points at buffers of the stated sizes that outlive the call.
    crate::sys::bpf(BPF_PROG_TEST_RUN, &mut attr)?;
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
    /// reported duration is the mean), asking for the decision report (the
    /// last run's). `ifindex`: the interface the frame
    /// pretends to use, which must exist in the calling thread's network
    /// namespace; `None` means that namespace's loopback.
    pub fn run(
        &self,
        hook: Hook,
        frame: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, DataplaneError> {
        let (raw, area) = match hook {
            Hook::Xdp => self.run_xdp(frame, &REQUEST, ifindex, repeat)?,
            Hook::Tc => self.run_tc(frame, &REQUEST, ifindex, repeat)?,
        };
        // The program fills the slot and leaves the request word and the
        // metadata length alone; anything else means it did not follow
        // the protocol, and the slot is not trusted.
        let intact =
            area.len() == REQUEST.len() && area[Decision::SIZE..] == REQUEST[Decision::SIZE..];
        let decision = if intact {
            Decision::from_bytes(&area)
        } else {
            None
        };
        Ok(TestRunOutcome {
            passed: passed(hook, raw.retval),
            return_value: raw.retval,
            decision,
            duration: Duration::from_nanos(u64::from(raw.duration_ns)),
        })
    }

    /// Runs `frame` once the way real traffic reaches the program of
    /// `hook`: without the report request. `metadata` is what the frame
    /// carries where a test run's request would go: for XDP the metadata
    /// area in front of it (empty for frames from veth and tap; a multiple
    /// of 4 bytes), for TC the start of `__sk_buff` cb (at most 20 bytes,
    /// the rest zero). The outcome shows what the program left there.
    pub fn run_unrequested(
        &self,
        hook: Hook,
        frame: &[u8],
        ifindex: Option<u32>,
        metadata: &[u8],
    ) -> Result<UnrequestedOutcome, DataplaneError> {
        self.run_unrequested_repeat(hook, frame, ifindex, metadata, 1)
    }

    /// [`run_unrequested`](Self::run_unrequested) `repeat` times in the
    /// kernel: what real traffic pays (counters included), for benchmarks.
    pub fn run_unrequested_repeat(
        &self,
        hook: Hook,
        frame: &[u8],
        ifindex: Option<u32>,
        metadata: &[u8],
        repeat: u32,
    ) -> Result<UnrequestedOutcome, DataplaneError> {
        let (raw, metadata) = match hook {
            Hook::Xdp => self.run_xdp(frame, metadata, ifindex, repeat)?,
            Hook::Tc => self.run_tc(frame, metadata, ifindex, repeat)?,
        };
        Ok(UnrequestedOutcome {
            passed: passed(hook, raw.retval),
            return_value: raw.retval,
            metadata,
            duration: Duration::from_nanos(u64::from(raw.duration_ns)),
        })
    }

    /// One XDP test run of `frame` behind `meta`; returns the metadata
    /// area as the program left it.
    fn run_xdp(
        &self,
        frame: &[u8],
        meta: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<(RawResult, Vec<u8>), DataplaneError> {
        // data_in is metadata then frame; ctx_in.data says where the frame
        // starts, and the kernel insists data_end is the end of data_in.
        let data_in = [meta, frame].concat();
        let mut out = vec![0u8; data_in.len() + 256];
        let mut ctx_in = [0u8; XDP_MD_LEN];
        let mut ctx_out = [0u8; XDP_MD_LEN];
        put_u32(&mut ctx_in, XDP_MD_DATA, meta.len() as u32);
        put_u32(&mut ctx_in, XDP_MD_DATA_END, data_in.len() as u32);
        if let Some(ifindex) = ifindex {
            put_u32(&mut ctx_in, XDP_MD_INGRESS_IFINDEX, ifindex);
        }
        let raw = prog_test_run(
            &self.xdp,
            &data_in,
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
        out.truncate(meta_len.min(out.len()));
        Ok((raw, out))
    }

    /// One TC test run of `frame` with cb starting as `cb`; returns cb as
    /// the program left it.
    fn run_tc(
        &self,
        frame: &[u8],
        cb: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<(RawResult, Vec<u8>), DataplaneError> {
        if cb.len() > SKB_CB_LEN {
            return Err(test_run_err(
                PROG_TC_INGRESS,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} bytes of cb, the kernel has {SKB_CB_LEN}", cb.len()),
                ),
            ));
        }
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx_in = [0u8; SKB_CTX_LEN];
        let mut ctx_out = [0u8; SKB_CTX_LEN];
        if let Some(ifindex) = ifindex {
            put_u32(&mut ctx_in, SKB_IFINDEX, ifindex);
        }
        ctx_in[SKB_CB..SKB_CB + cb.len()].copy_from_slice(cb);
        let raw = prog_test_run(
            &self.tc,
            frame,
            &mut out,
            &ctx_in,
            &mut ctx_out,
            repeat.max(1),
        )
        .map_err(|source| test_run_err(PROG_TC_INGRESS, source))?;
        Ok((raw, ctx_out[SKB_CB..SKB_CB + SKB_CB_LEN].to_vec()))
    }
}

/// The request a test run puts where the program reports (abi.h
/// `SG_DECISION_REQUEST`): an empty report slot, then the request word.
/// XDP carries it as metadata in front of the frame, TC in cb[0..4].
const REQUEST: [u8; Decision::SIZE + 4] = {
    let mut r = [0u8; Decision::SIZE + 4];
    let word = DECISION_REQUEST.to_ne_bytes();
    let mut i = 0;
    while i < 4 {
        r[Decision::SIZE + i] = word[i];
        i += 1;
    }
    r
};

fn passed(hook: Hook, retval: u32) -> bool {
    match hook {
        Hook::Xdp => retval == XDP_PASS,
        Hook::Tc => retval == TC_ACT_OK || retval == TCX_NEXT,
    }
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

fn test_run_err(name: &'static str, source: io::Error) -> DataplaneError {
    DataplaneError::TestRun { name, source }
}
