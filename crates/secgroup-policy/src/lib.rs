//! Compiles a validated rule set into per-instance, per-direction
//! first-match lists and holds the reference evaluator: the specification
//! the eBPF data plane is tested against. Pure: no I/O.

mod compiled;

pub use compiled::*;
