//! The measurements behind `cargo xtask bench` (which builds this crate in
//! release, runs its binary as root and turns `results.json` into a table
//! and a plot). One module per part of the benchmark:
//!
//! - `perpacket`: kernel cost per packet with BPF_PROG_TEST_RUN, against
//!   the do-nothing programs of `floor`, and what port security adds;
//! - `logging`: what verdict events add per packet (off vs on, paired);
//! - `throughput`: UDP through a Linux bridge between two VM namespaces,
//!   unfiltered, filtered by secgroup, and filtered by nftables;
//! - `control`: compile time, apply latency, hot-swap losses, map memory;
//! - `daemon`: the place for end-to-end figures through secgroupd;
//! - `fleet`: one etcd write → verdict on every host of a fleet, and a
//!   host's first sync with a fleet's worth of instances in etcd.
//!
//! Shared: `rules` generates rule files, `stats` takes medians and
//! percentiles, `record` is the results format, `machine` describes the
//! machine. `report` renders results as a table and a plot. Nothing here asserts a
//! timing: figures are reported, goals are judged by the reader (and
//! summarised by the xtask). What is checked is that each figure measures
//! the path it claims to (the decision the kernel reports, that a filter
//! really filters), because a fast wrong path is worse than no number.

pub mod control;
pub mod daemon;
pub mod fleet;
pub mod floor;
pub mod logging;
pub mod machine;
pub mod perpacket;
pub mod record;
pub mod report;
pub mod rules;
pub mod stats;
pub mod throughput;
