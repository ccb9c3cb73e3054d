//! Figures that need the daemon, secgroupd, which does not exist yet.
//!
//! HOOK: [`rule_file_to_verdict`] is where "rule-file write → verdict"
//! latency goes once secgroupd can run: start it on a private pin
//! directory and rules directory, bind a VM interface (a veth in a
//! namespace, as `throughput` builds), then repeatedly rewrite one rule
//! file so that a probe flips between accept and drop, and time from the
//! `rename(2)` of the new file to the first probe (BPF_PROG_TEST_RUN
//! through a `TestRunner` on the adopted programs, or real packets) that
//! gets the new verdict; p50/p99 over 100 writes. Until then the closest
//! figure is `control`'s in-process `change-to-enforced` (bytes → load →
//! compile → apply), which leaves out only the file watcher and the
//! daemon's own scheduling.

use anyhow::Result;

use crate::record::Results;

/// Not measured yet: needs secgroupd (see the module docs). Says so on
/// stderr and records nothing, so no table shows a figure that was never
/// taken.
pub fn rule_file_to_verdict(_results: &mut Results) -> Result<()> {
    eprintln!(
        "secgroup-bench: rule-file-to-verdict: not measured, needs secgroupd (hook in benches/src/daemon.rs)"
    );
    Ok(())
}
