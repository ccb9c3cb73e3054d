//! The one crate that talks to the kernel: loads the eBPF object built from
//! `ebpf/`, turns compiled rule lists into classifier tables in BPF maps,
//! swaps them atomically, attaches the hooks to VM interfaces, and reads
//! counters and conntrack back.
//!
//! Nothing here decides policy: `secgroup-policy` says what a packet should
//! get, `secgroup-classifier` lays that out as tables, this crate puts the
//! tables where the programs read them.

pub mod abi;
mod batch;
mod bpffs;
#[cfg(test)]
mod btf;
pub(crate) mod dataplane;
mod error;
mod events;
mod linkinfo;
mod maps;
pub mod netns;
pub mod object;
mod observer;
pub mod packet;
mod pins;
mod portsec;
mod slots;
mod sys;
mod tables;
mod testrun;
mod uids;
mod uninstall;

pub use dataplane::{
    AbiStamp, AdoptReport, ApplyReport, AttachInfo, CtTimeouts, Dataplane, Expedite, GraceBarrier,
    GraceToken, InterfaceBinding, LoadOptions, Owner, RCU_EXPEDITED, RuleHits, TableDump,
    Tampering, XdpAttachMode,
};
pub use error::{DataplaneError, chain as error_chain};
pub use events::{EventFlow, EventLimits, EventStream, VerdictEvent};
pub use linkinfo::{Link, describe_link, list_links};
pub use observer::{ConntrackUsage, EventCounts, Observer, RuleCount};
pub use pins::PinLock;
pub use testrun::{Hook, TestRunOutcome, TestRunner};
pub use uninstall::uninstall;
