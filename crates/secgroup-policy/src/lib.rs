//! Compiles a validated rule set into per-instance, per-direction
//! first-match lists and holds the reference evaluator: the specification
//! the eBPF data plane is tested against. Pure: no I/O.
//!
//! - `compiled`: the compiled types ([`Policy`], [`RuleList`], ...).
//! - `compile`: [`compile`], model to compiled policy.
//! - `prefix`: range splitting and prefix normalisation.
//! - `evaluate`: the reference evaluator and the implicit allows.
//! - `render`: rules rendered for operators.
//! - `diff`: what a reload changed.

mod compile;
mod compiled;
mod diff;
mod evaluate;
mod prefix;
mod render;
#[cfg(test)]
mod testing;

pub use compile::compile;
pub use compiled::*;
pub use diff::{Changes, PolicyDiff, RuleCounts, diff};
pub use evaluate::{ImplicitAllow, Matched, Packet, Verdict, implicit_allow};
pub use prefix::{normalise, split_range};
pub use render::{REMOTES_SHOWN, render_remotes, render_service, render_services};
