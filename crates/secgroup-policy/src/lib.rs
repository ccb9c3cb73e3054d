//! Compiles a validated rule set into per-instance, per-direction
//! first-match lists and holds the reference evaluator: the specification
//! the eBPF data plane is tested against. Pure: no I/O.
//!
//! - `compiled`: the compiled types ([`Policy`], [`RuleList`], ...).
//! - `compile`: [`compile`], model to compiled policy.
//! - `key`: [`RuleKey`], a rule's stable identity within its group.
//! - `prefix`: range splitting and prefix normalisation.
//! - `evaluate`: the reference evaluator and the implicit allows.
//! - `port_security`: what a VM may send at all (anti-spoofing) and its
//!   reference evaluator over frames.
//! - `render`: rules rendered for operators.
//! - `diff`: what a reload changed.
//! - `lint`: warnings about valid but suspicious rule sets ([`lint()`]),
//!   and which packets each rule of a list decides ([`reach`]).

mod compile;
mod compiled;
mod diff;
mod evaluate;
mod key;
pub mod lint;
mod port_security;
mod prefix;
mod render;
#[cfg(test)]
mod testing;

pub use compile::{compile, compile_bound, recompile, recompile_bound};
pub use compiled::*;
pub use diff::{Changes, PolicyDiff, RuleCounts, diff};
pub use evaluate::{ImplicitAllow, Matched, Packet, Verdict, implicit_allow};
pub use key::RuleKey;
pub use lint::{Linter, Reach, lint, reach};
pub use port_security::{
    AllowedSource, Frame, L4, Payload, PortSecurity, SpoofReason, ethertype, icmpv6, link_local,
};
pub use prefix::{normalise, split_range};
pub use render::{REMOTES_SHOWN, render_remotes, render_service, render_services};
pub use secgroup_model::{Enforcement, LogMode};
