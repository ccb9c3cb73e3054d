//! Shared fixtures of the kernel tests: a private data plane (nothing
//! pinned, so tests run side by side), policies from rule-file JSON, and
//! frames run through the real programs with BPF_PROG_TEST_RUN.
//!
//! Without ifindex in the test context the kernel runs a frame "on" the
//! loopback device of the caller's namespace, so the instance under test is
//! bound to ifindex 1.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::net::IpAddr;

use secgroup_dataplane::abi::{Decision, NO_RULE, Reason};
use secgroup_dataplane::packet::{self, Transport};
use secgroup_dataplane::{Dataplane, Hook, InterfaceBinding, LoadOptions, TestRunOutcome};
use secgroup_model::{Direction, InstanceId, Limits, SourceFile};
use secgroup_policy::{Matched, Policy, RuleList, Verdict};

/// The ifindex test frames run on (loopback).
pub const TEST_IFINDEX: u32 = 1;

/// Returns from the test unless kernel tests can run (see
/// [`kernel_tests_enabled`]), named after the test's module path.
/// `#[macro_use] mod common;` brings it in.
#[allow(unused_macros)]
macro_rules! kernel_test {
    () => {
        if !kernel_tests_enabled(module_path!()) {
            return;
        }
    };
}

/// True when kernel tests can run. Without root they are skipped loudly,
/// except under CI=true where skipping would hide a broken data plane.
pub fn kernel_tests_enabled(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: CI=true but not running as root: kernel tests must run in CI");
    }
    eprintln!(
        "\n*** SKIPPED {test}: needs root (CAP_BPF, CAP_NET_ADMIN) to load BPF programs ***\n"
    );
    false
}

pub fn load_dataplane() -> Dataplane {
    let (dp, _) = Dataplane::load(&LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading the data plane: {}", error_chain(&e)));
    dp
}

pub use secgroup_dataplane::error_chain;

pub fn compile(json: &str) -> Policy {
    let files = [SourceFile {
        name: "test.json",
        bytes: json.as_bytes(),
    }];
    let rules = secgroup_model::load(&files, &Limits::default())
        .unwrap_or_else(|e| panic!("test rule file does not validate:\n{e}"));
    secgroup_policy::compile(&rules)
}

/// A loaded data plane enforcing one instance of a policy on the test
/// interface.
pub struct Fixture {
    pub dp: Dataplane,
    pub policy: Policy,
    pub instance: InstanceId,
}

impl Fixture {
    pub fn new(json: &str, instance: &str) -> Fixture {
        let mut fixture = Fixture {
            dp: load_dataplane(),
            policy: compile(json),
            instance: InstanceId::new(instance)
                .unwrap_or_else(|| panic!("bad instance id {instance}")),
        };
        fixture.bind(&fixture.policy.clone());
        fixture
    }

    /// Makes `policy` the enforced one (a hot swap when one is in force),
    /// with the instance's log mode and enforcement.
    pub fn bind(&mut self, policy: &Policy) {
        let inst = policy
            .instances
            .get(&self.instance)
            .unwrap_or_else(|| panic!("policy has no instance {}", self.instance));
        self.dp
            .apply(&[InterfaceBinding {
                ifindex: TEST_IFINDEX,
                ingress: &inst.ingress,
                egress: &inst.egress,
                keep_established: false,
                instance_uid: 1,
                port_security: None,
                log: inst.log,
                enforcement: inst.enforcement,
            }])
            .unwrap_or_else(|e| panic!("applying the policy: {}", error_chain(&e)));
        self.policy = policy.clone();
    }

    pub fn rules(&self, direction: Direction) -> &RuleList {
        self.policy
            .instances
            .get(&self.instance)
            .map(|i| i.rules(direction))
            .unwrap_or_else(|| panic!("no instance {}", self.instance))
    }

    /// Runs a frame the way `direction` sees it: egress frames through XDP,
    /// ingress frames through TC.
    pub fn run(&self, direction: Direction, frame: &[u8]) -> TestRunOutcome {
        run_frame(&self.dp, direction, frame)
    }

    pub fn send(&self, direction: Direction, pkt: &packet::Packet) -> TestRunOutcome {
        self.run(direction, &pkt.frame())
    }

    /// Runs a frame the way real traffic reaches the program: without the
    /// report request, so that it counts (a requested run, such as
    /// [`Fixture::run`]'s, counts nowhere). Returns whether it passed.
    pub fn run_unrequested(&self, direction: Direction, frame: &[u8]) -> bool {
        self.dp
            .test_runner()
            .run_unrequested(Dataplane::hook_for(direction), frame, None, &[])
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {}", error_chain(&e)))
            .passed
    }

    pub fn send_unrequested(&self, direction: Direction, pkt: &packet::Packet) -> bool {
        self.run_unrequested(direction, &pkt.frame())
    }
}

pub fn run_frame(dp: &Dataplane, direction: Direction, frame: &[u8]) -> TestRunOutcome {
    let hook = match direction {
        Direction::Ingress => Hook::Tc,
        Direction::Egress => Hook::Xdp,
    };
    dp.test_run(hook, frame, None, 1)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {}", error_chain(&e)))
}

/// The decision of an outcome, insisting the program reported one.
pub fn decision(outcome: &TestRunOutcome) -> Decision {
    outcome.decision.unwrap_or_else(|| {
        panic!(
            "the program reported no decision (return {})",
            outcome.return_value
        )
    })
}

pub fn reason(outcome: &TestRunOutcome) -> Reason {
    let d = decision(outcome);
    Reason::from_u8(d.reason).unwrap_or_else(|| panic!("unknown reason code {}", d.reason))
}

/// Asserts verdict, reason and (for rule decisions) the rule position.
#[track_caller]
pub fn expect(outcome: &TestRunOutcome, want: Reason, want_pos: Option<usize>, what: &str) {
    let got = reason(outcome);
    assert_eq!(got, want, "{what}: reason");
    assert_eq!(
        outcome.passed,
        want.is_accept(),
        "{what}: verdict (return code {}) disagrees with reason {got}",
        outcome.return_value
    );
    if let Some(pos) = want_pos {
        assert_eq!(
            decision(outcome).rule_pos,
            pos as u32,
            "{what}: matched rule position"
        );
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

/// A frame for an evaluator packet seen in `direction` (remote is the
/// source of ingress and the destination of egress). ICMP error types
/// carry a quoted packet of an untracked flow so they reach the rules.
pub fn frame_for(direction: Direction, p: &secgroup_policy::Packet) -> Vec<u8> {
    let (src, dst) = match direction {
        Direction::Ingress => (p.remote, p.local),
        Direction::Egress => (p.local, p.remote),
    };
    let v6 = p.remote.is_ipv6();
    let transport = match p.protocol {
        6 => Transport::Tcp {
            src: p.src_port,
            dst: p.dst_port,
            flags: packet::tcp_flags::SYN,
        },
        17 => Transport::Udp {
            src: p.src_port,
            dst: p.dst_port,
        },
        1 | 58 if (p.protocol == 58) == v6 => {
            let is_error = if v6 {
                (1..=4).contains(&p.icmp_type)
            } else {
                matches!(p.icmp_type, 3 | 4 | 5 | 11 | 12)
            };
            let body = if is_error {
                // Quote something the other side "sent": untracked.
                packet::Packet::udp(dst, 5353, src, 5353).ip_bytes()[..if v6 { 48 } else { 28 }]
                    .to_vec()
            } else {
                vec![0, 1, 0, 1]
            };
            Transport::Icmp {
                icmp_type: p.icmp_type,
                code: p.icmp_code,
                body,
            }
        }
        proto => Transport::Other {
            proto,
            payload: vec![0; 8],
        },
    };
    packet::Packet::new(src, dst, transport).frame()
}

/// Checks that the kernel decided `outcome` the way the reference
/// evaluator decides `p`; returns a description of the disagreement.
pub fn compare(
    list: &RuleList,
    direction: Direction,
    p: &secgroup_policy::Packet,
    outcome: &TestRunOutcome,
) -> Result<(), String> {
    compare_verdict(&list.evaluate(direction, p), direction, p, outcome)
}

/// The reason the kernel gives a packet the evaluator gave `verdict`,
/// and the deciding rule's position (`NO_RULE` unless a rule decided).
pub fn expected_reason(verdict: &Verdict) -> (Reason, u32) {
    match &verdict.matched {
        Matched::Rule { position, .. } => {
            let reason = match (verdict.action, verdict.passes) {
                (secgroup_model::Action::Accept, _) => Reason::AcceptRule,
                (secgroup_model::Action::Drop, false) => Reason::DropRule,
                (secgroup_model::Action::Drop, true) => Reason::WouldDropRule,
            };
            (reason, *position as u32)
        }
        Matched::Implicit(_) => (Reason::AcceptImplicit, NO_RULE),
        Matched::DefaultDrop if verdict.passes => (Reason::WouldDropDefault, NO_RULE),
        Matched::DefaultDrop => (Reason::DropDefault, NO_RULE),
    }
}

/// [`compare`] against a verdict of the evaluator's (an instance's, with
/// its enforcement).
pub fn compare_verdict(
    verdict: &Verdict,
    direction: Direction,
    p: &secgroup_policy::Packet,
    outcome: &TestRunOutcome,
) -> Result<(), String> {
    let d = outcome
        .decision
        .ok_or_else(|| format!("no decision reported (return {})", outcome.return_value))?;
    let reason = Reason::from_u8(d.reason).ok_or_else(|| format!("unknown reason {}", d.reason))?;
    let (want_reason, want_pos) = expected_reason(verdict);
    let kernel_pos = if want_pos != NO_RULE {
        d.rule_pos
    } else {
        NO_RULE
    };
    if reason != want_reason || kernel_pos != want_pos || outcome.passed != want_reason.is_accept()
    {
        return Err(format!(
            "{direction} {p}: evaluator says {verdict} (reason {want_reason}, position {want_pos:?}); \
             kernel says {reason} at position {} (passed: {})",
            d.rule_pos, outcome.passed
        ));
    }
    Ok(())
}
