//! `secgroupctl status` and `secgroupctl reload`.

use secgroup_api::{
    AttachState, HealthState, PolicySource, ReloadOutcome, ReloadReport, ReloadTrigger, Status,
    paths,
};

use crate::daemon::Daemon;
use crate::fmt::{self, Width, ellipsis, field};
use crate::outcome::{Code, Output, Result, json};

pub fn status(daemon: &Daemon, as_json: bool, width: Width) -> Result<Output> {
    let status: Status = daemon.get(paths::STATUS)?;
    let code = if problems(&status).is_empty() {
        Code::Success
    } else {
        Code::No
    };
    let output = if as_json {
        json(&status)?
    } else {
        Output::success(render_status(&status, fmt::now_ms(), width))
    };
    Ok(output.with_code(code))
}

pub fn reload(daemon: &Daemon, as_json: bool) -> Result<Output> {
    let report: ReloadReport = daemon.post::<(), _>(paths::RELOAD, None)?;
    let code = if report.outcome == ReloadOutcome::Failed {
        Code::No
    } else {
        Code::Success
    };
    // The located problems of a failure are kept in the status; show them
    // here so the operator need not ask twice.
    let diagnostics = if report.outcome == ReloadOutcome::Failed {
        daemon
            .get::<Status>(paths::STATUS)
            .ok()
            .and_then(|status| status.last_error)
            .map(|error| error.diagnostics)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if as_json {
        // The daemon's report, and the problems the text lists too.
        let mut value = serde_json::to_value(&report)
            .map_err(|e| anyhow::anyhow!("cannot print the report: {e}"))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("diagnostics".to_owned(), diagnostics.into());
        }
        return Ok(json(&value)?.with_code(code));
    }
    let mut text = format!(
        "reload {} in {:.1} ms, generation {}: {}\n",
        outcome_text(report.outcome),
        report.duration_ms,
        report.generation,
        report.summary
    );
    if report.outcome == ReloadOutcome::Failed {
        for diagnostic in &diagnostics {
            text.push_str(&format!("  {diagnostic}\n"));
        }
        text.push_str("the policy in force is unchanged\n");
    }
    for warning in &report.warnings {
        text.push_str(&format!("  warning: {warning}\n"));
    }
    Ok(Output::success(text).with_code(code))
}

/// Why the daemon is not healthy, as it says itself; empty when it is.
fn problems(status: &Status) -> Vec<String> {
    if status.health.state == HealthState::Ok {
        return Vec::new();
    }
    status
        .health
        .reasons
        .iter()
        .map(|r| format!("{}: {}", r.kind, r.message))
        .collect()
}

fn outcome_text(outcome: ReloadOutcome) -> &'static str {
    match outcome {
        ReloadOutcome::Applied => "applied",
        ReloadOutcome::Unchanged => "unchanged",
        ReloadOutcome::Failed => "FAILED",
    }
}

fn trigger_text(trigger: ReloadTrigger) -> &'static str {
    match trigger {
        ReloadTrigger::Startup => "at startup",
        ReloadTrigger::Watch => "on a file change",
        ReloadTrigger::Signal => "on SIGHUP",
        ReloadTrigger::Api => "on request",
    }
}

pub fn attach_text(attach: &AttachState) -> (&'static str, String) {
    match attach {
        AttachState::Attached {
            ifindex,
            xdp_mode,
            adopted,
        } => (
            "attached",
            format!(
                "ifindex {ifindex}, xdp {xdp_mode}{}",
                if *adopted { ", adopted" } else { "" }
            ),
        ),
        AttachState::Waiting => ("waiting", "the interface does not exist yet".to_owned()),
        AttachState::Failed { ifindex, error } => (
            "FAILED",
            match ifindex {
                Some(i) => format!("ifindex {i}: {error}"),
                None => error.clone(),
            },
        ),
    }
}

fn render_status(status: &Status, now_ms: u64, width: Width) -> String {
    let mut text = format!("secgroupd {}\n", status.version);
    text.push_str(&field("rules dir", &status.rules_dir));
    text.push_str(&field(
        "pin dir",
        &format!("{} (layout version {})", status.pin_dir, status.abi_version),
    ));
    if let Some(owner) = &status.owner {
        text.push_str(&field(
            "owner",
            &format!(
                "pid {} (socket {}), since {}",
                owner.pid,
                owner.socket,
                fmt::ago(now_ms, owner.since.unix_ms)
            ),
        ));
    }
    let policy = match status.policy {
        PolicySource::RulesDir => "the rules directory",
        PolicySource::Pinned => "pinned by a previous secgroupd (no valid rules loaded yet)",
        PolicySource::None => "NONE",
    };
    text.push_str(&field(
        "policy",
        &format!(
            "{policy}, generation {} ({}{})",
            status.generation,
            fmt::count(status.reloads as usize, "reload"),
            if status.keep_established {
                ", keep-established"
            } else {
                ""
            }
        ),
    ));
    let last_reload = match &status.last_reload {
        None => "never".to_owned(),
        Some(r) => format!(
            "{} {} {} in {:.1} ms: {}",
            outcome_text(r.outcome),
            fmt::ago(now_ms, r.finished.unix_ms),
            trigger_text(r.trigger),
            r.duration_ms,
            r.summary
        ),
    };
    text.push_str(&field(
        "last reload",
        &ellipsis(&last_reload, width.after(15)),
    ));
    if let Some(r) = status
        .last_reload
        .as_ref()
        .filter(|r| !r.warnings.is_empty())
    {
        text.push_str(&field(
            "warnings",
            &format!(
                "{} in the rules in force (secgroupctl validate explains)",
                r.warnings.len()
            ),
        ));
        for warning in &r.warnings {
            text.push_str(&format!("  {warning}\n"));
        }
    }
    match &status.last_error {
        None => text.push_str(&field("last error", "none")),
        Some(e) => {
            text.push_str(&field(
                "last error",
                &ellipsis(
                    &format!("{}: {}", fmt::ago(now_ms, e.at.unix_ms), e.message),
                    width.after(15),
                ),
            ));
            for diagnostic in &e.diagnostics {
                text.push_str(&format!("  {diagnostic}\n"));
            }
        }
    }
    let mut counts = [0usize; 3];
    for instance in &status.instances {
        counts[match instance.attach {
            AttachState::Attached { .. } => 0,
            AttachState::Waiting => 1,
            AttachState::Failed { .. } => 2,
        }] += 1;
    }
    text.push_str(&field(
        "instances",
        &format!(
            "{} attached, {} waiting, {} failed",
            counts[0], counts[1], counts[2]
        ),
    ));
    let problems = problems(status);
    if problems.is_empty() {
        text.push_str(&field("health", "ok"));
    } else {
        text.push_str(&field("health", "DEGRADED"));
        for problem in &problems {
            text.push_str(&format!("  {problem}\n"));
        }
    }
    if !status.audit_instances.is_empty() {
        text.push_str(&field(
            "AUDIT MODE",
            &format!(
                "{} (their rules' drops PASS, reported as would-drop)",
                status.audit_instances.join(", ")
            ),
        ));
    }
    if !status.instances.is_empty() {
        text.push('\n');
        let rows = status
            .instances
            .iter()
            .map(|i| {
                let (state, mut detail) = attach_text(&i.attach);
                if i.enforcement == "audit" {
                    detail.push_str("; AUDIT: drops pass");
                }
                vec![i.id.clone(), i.interface.clone(), state.to_owned(), detail]
            })
            .collect();
        text.push_str(&fmt::table(
            &["INSTANCE", "INTERFACE", "STATE", "DETAIL"],
            rows,
            &[],
            &[0, 3],
            width,
        ));
    }
    if !status.unbound_interfaces.is_empty() {
        text.push_str("\nunbound interfaces (hooks left behind; their IP traffic is dropped):\n");
        for u in &status.unbound_interfaces {
            text.push_str(&format!(
                "  ifindex {} ({}): {}\n",
                u.ifindex,
                u.name.as_deref().unwrap_or("?"),
                u.reason
            ));
        }
    }
    if !status.guarded_interfaces.is_empty() {
        text.push_str(
            "\nguarded interfaces (no instance binds them yet; their IP traffic is dropped):\n",
        );
        for g in &status.guarded_interfaces {
            text.push_str(&format!("  ifindex {} ({})\n", g.ifindex, g.name));
        }
    }
    if !status.unprotected_interfaces.is_empty() {
        text.push_str(
            "\nUNPROTECTED interfaces (no hooks, no --interface-pattern covers them; their traffic is not \
             filtered):\n",
        );
        for u in &status.unprotected_interfaces {
            text.push_str(&format!(
                "  ifindex {} ({}, {})\n",
                u.ifindex, u.name, u.kind
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use secgroup_api::{DegradedReason, Health, InstanceStatus, PinOwner, ReloadError, Timestamp};

    use super::*;

    fn status() -> Status {
        Status {
            version: "0.1.0".into(),
            rules_dir: "/etc/secgroup/rules.d".into(),
            pin_dir: "/sys/fs/bpf/secgroup".into(),
            policy: PolicySource::RulesDir,
            generation: 3,
            reloads: 4,
            keep_established: false,
            last_reload: Some(ReloadReport {
                trigger: ReloadTrigger::Watch,
                outcome: ReloadOutcome::Applied,
                finished: Timestamp::from_unix_ms(1_000_000 - 180_000),
                duration_ms: 12.34,
                generation: 3,
                summary: "groups +0 -0 ~1".into(),
                warnings: Vec::new(),
            }),
            last_error: None,
            instances: vec![
                InstanceStatus {
                    id: "ins-web-1".into(),
                    interface: "tap-web1".into(),
                    enforcement: "enforce".into(),
                    log: "none".into(),
                    attach: AttachState::Attached {
                        ifindex: 7,
                        xdp_mode: "generic".into(),
                        adopted: false,
                    },
                },
                InstanceStatus {
                    id: "ins-db-1".into(),
                    interface: "tap-db1".into(),
                    enforcement: "enforce".into(),
                    log: "none".into(),
                    attach: AttachState::Waiting,
                },
            ],
            unbound_interfaces: Vec::new(),
            guarded_interfaces: Vec::new(),
            unprotected_interfaces: Vec::new(),
            health: Health {
                state: HealthState::Ok,
                reasons: Vec::new(),
            },
            owner: Some(PinOwner {
                pid: 4242,
                socket: "/run/secgroup/secgroupd.sock".into(),
                since: Timestamp::from_unix_ms(1_000_000 - 600_000),
            }),
            abi_version: 2,
            audit_instances: Vec::new(),
            source: None,
        }
    }

    #[test]
    fn healthy() {
        assert_eq!(
            render_status(&status(), 1_000_000, Width::Columns(100)),
            "secgroupd 0.1.0\n\
             rules dir:     /etc/secgroup/rules.d\n\
             pin dir:       /sys/fs/bpf/secgroup (layout version 2)\n\
             owner:         pid 4242 (socket /run/secgroup/secgroupd.sock), since 10m ago\n\
             policy:        the rules directory, generation 3 (4 reloads)\n\
             last reload:   applied 3m ago on a file change in 12.3 ms: groups +0 -0 ~1\n\
             last error:    none\n\
             instances:     1 attached, 1 waiting, 0 failed\n\
             health:        ok\n\
             \n\
             INSTANCE   INTERFACE  STATE     DETAIL\n\
             ins-web-1  tap-web1   attached  ifindex 7, xdp generic\n\
             ins-db-1   tap-db1    waiting   the interface does not exist yet\n"
        );
        assert!(problems(&status()).is_empty());
    }

    /// `last reload` and `last error` are cut with `…` on a narrow
    /// terminal only; whole off one.
    #[test]
    fn long_lines() {
        let mut s = status();
        let summary = format!("groups +0 -0 ~1, {}", "instances +1 -0 ~0, ".repeat(6));
        if let Some(r) = s.last_reload.as_mut() {
            r.summary = summary.clone();
        }
        let message = format!(
            "invalid rule files: {}",
            "sg-web.json:3:7 unknown group, ".repeat(4)
        );
        s.last_error = Some(ReloadError {
            at: Timestamp::from_unix_ms(1_000_000 - 5_000),
            message: message.clone(),
            diagnostics: Vec::new(),
        });
        let line = |text: &str, label: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} in\n{text}"))
                .to_owned()
        };
        let narrow = render_status(&s, 1_000_000, Width::Columns(60));
        for label in ["last reload:", "last error:"] {
            let l = line(&narrow, label);
            assert_eq!(l.chars().count(), 60, "{l}");
            assert!(l.ends_with('…'), "{l}");
        }
        let whole = render_status(&s, 1_000_000, Width::Unlimited);
        assert!(line(&whole, "last reload:").ends_with(&summary), "{whole}");
        assert!(
            line(&whole, "last error:").ends_with(&format!("5s ago: {message}")),
            "{whole}"
        );
    }

    #[test]
    fn audit_is_loud() {
        let mut s = status();
        s.instances[0].enforcement = "audit".into();
        s.audit_instances = vec!["ins-web-1".into()];
        let text = render_status(&s, 1_000_000, Width::Columns(100));
        for expected in [
            "health:        ok\nAUDIT MODE:    ins-web-1 (their rules' drops PASS, reported as would-drop)\n",
            "ins-web-1  tap-web1   attached  ifindex 7, xdp generic; AUDIT: drops pass\n",
        ] {
            assert!(text.contains(expected), "{text}\nlacks\n{expected}");
        }
    }

    #[test]
    fn degraded() {
        let mut s = status();
        s.last_error = Some(ReloadError {
            at: Timestamp::from_unix_ms(1_000_000 - 5_000),
            message: "invalid rule files (1 problem)".into(),
            diagnostics: vec!["/r/x.json:1:2: $: bad".into()],
        });
        s.instances[1].attach = AttachState::Failed {
            ifindex: Some(9),
            error: "xdp refused".into(),
        };
        s.health = Health {
            state: HealthState::Degraded,
            reasons: vec![
                DegradedReason {
                    kind: "reload-failed".into(),
                    message: "the last reload failed: invalid rule files (1 problem)".into(),
                },
                DegradedReason {
                    kind: "not-enforced".into(),
                    message: "instance ins-db-1 is bound to tap-db1 but not enforced: xdp refused"
                        .into(),
                },
            ],
        };
        let text = render_status(&s, 1_000_000, Width::Columns(100));
        for expected in [
            "last error:    5s ago: invalid rule files (1 problem)\n  /r/x.json:1:2: $: bad\n",
            "health:        DEGRADED\n  reload-failed: the last reload failed: invalid rule files (1 problem)\n  \
             not-enforced: instance ins-db-1 is bound to tap-db1 but not enforced: xdp refused\n",
            "ins-db-1   tap-db1    FAILED    ifindex 9: xdp refused\n",
        ] {
            assert!(text.contains(expected), "{text}\nlacks\n{expected}");
        }
    }
}
