//! Expectations on real flows. A failed one says which flow, what was
//! expected and why, and what the daemon's trace and counters said about
//! every local instance the flow crosses.

use secgroup_api::{Direction, TraceRequest};
use std::fmt::Write as _;

use crate::control::Control;
use crate::traffic::{ACCEPT_TIMEOUT, BLOCK_TIMEOUT, Flow, Proto};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The flow completes.
    Accepted,
    /// No answer within [`BLOCK_TIMEOUT`].
    Blocked,
}

impl Control {
    /// Runs `flow` and panics with a full explanation unless it behaves
    /// as `expected`; `why` names the rule (or reason) that should decide.
    pub fn expect(&self, flow: Flow<'_>, expected: Expect, why: &str) {
        let timeout = match expected {
            Expect::Accepted => ACCEPT_TIMEOUT,
            Expect::Blocked => BLOCK_TIMEOUT,
        };
        let completed = flow.completes(timeout);
        let got = if completed {
            Expect::Accepted
        } else {
            Expect::Blocked
        };
        if got != expected {
            panic!(
                "flow {flow}: expected {expected:?} ({why}), got {got:?}\n{}",
                self.explain(&flow)
            );
        }
    }

    /// Several expectations in a row (a scenario's table).
    pub fn expect_all(&self, cases: &[(Flow<'_>, Expect, &str)]) {
        for (flow, expected, why) in cases {
            self.expect(*flow, *expected, why);
        }
    }

    /// What the daemon says about `flow`: for each local instance it
    /// leaves or enters, the trace of its first packet and the hits of
    /// the effective rules.
    pub fn explain(&self, flow: &Flow<'_>) -> String {
        let mut out = String::new();
        let status = self.status();
        if let Some(error) = &status.last_error {
            let _ = writeln!(out, "daemon's last error: {}", error.message);
        }
        for instance in &status.instances {
            let Some(detail) = self.instance(&instance.id) else {
                continue;
            };
            let crossings = [
                (Direction::Egress, flow.from.ip, flow.to.ip),
                (Direction::Ingress, flow.to.ip, flow.from.ip),
            ];
            for (direction, local, remote) in crossings {
                if !detail.ips.contains(&local.to_string()) {
                    continue;
                }
                let _ = writeln!(out, "{} {direction:?}:", instance.id);
                let request = TraceRequest {
                    port: (flow.proto != Proto::Ping).then_some(flow.port),
                    local: Some(local),
                    ..TraceRequest::new(
                        instance.id.clone(),
                        direction,
                        flow.protocol_name(),
                        remote,
                    )
                };
                match self.try_trace(&request) {
                    Ok(trace) => {
                        let _ = writeln!(
                            out,
                            "  trace: kernel {} ({}) rule {:?}; reference {} ({})",
                            trace.kernel.action,
                            trace.kernel.reason,
                            trace.kernel.rule.as_ref().and_then(|r| r.text.clone()),
                            trace.reference.action,
                            trace.reference.matched
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  trace failed: {e}");
                    }
                }
                let rules = match direction {
                    Direction::Ingress => &detail.ingress,
                    Direction::Egress => &detail.egress,
                };
                for rule in rules {
                    let _ = writeln!(
                        out,
                        "  #{} {} {} {:?} ({} {:?} #{}): {} packets",
                        rule.position,
                        rule.action,
                        rule.services,
                        rule.remotes,
                        rule.origin.security_group,
                        rule.origin.direction,
                        rule.origin.index,
                        rule.hits.packets
                    );
                }
                if let Some(verdicts) = &detail.verdicts {
                    let counts = match direction {
                        Direction::Ingress => &verdicts.ingress,
                        Direction::Egress => &verdicts.egress,
                    };
                    let _ = writeln!(out, "  verdicts: {counts:?}");
                }
            }
        }
        if out.is_empty() {
            out.push_str("(no local instance on this flow's path)\n");
        }
        out
    }
}
