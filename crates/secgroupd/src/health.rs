//! Health: `degraded`, with every reason, whenever the daemon is not fully
//! enforcing what it reports. Computed from the daemon's state, so that
//! `status`, `/v1/status` and systemd's status line agree.

use secgroup_api::{AttachState, DegradedReason, PolicySource};

use crate::state::InForce;

fn reason(kind: &str, message: String) -> DegradedReason {
    DegradedReason {
        kind: kind.to_owned(),
        message,
    }
}

/// Every reason the daemon is degraded; empty when it is healthy.
pub fn reasons(daemon: &InForce) -> Vec<DegradedReason> {
    let mut out = Vec::new();
    if let Some(error) = &daemon.last_error {
        out.push(reason(
            "reload-failed",
            format!("the last reload failed: {}", error.message),
        ));
    }
    if let Some(unreachable) = daemon
        .source
        .as_ref()
        .and_then(|s| s.degraded(daemon.etcd_applied))
    {
        out.push(unreachable);
    }
    if daemon.loaded.is_none() && !daemon.pinned {
        out.push(reason("no-policy", "no policy is enforced".to_owned()));
    }
    if let Some(loaded) = &daemon.loaded {
        for instance in loaded.policy.instances.values() {
            let Some(interface) = &instance.interface else {
                continue;
            };
            if let AttachState::Failed { error, .. } = daemon.attach_state(&instance.id, interface)
            {
                out.push(reason(
                    "not-enforced",
                    format!(
                        "instance {} is bound to {interface} but not enforced: {error}",
                        instance.id
                    ),
                ));
            }
        }
    }
    for (name, error) in &daemon.lookup_errors {
        out.push(reason(
            "lookup-failed",
            format!(
                "interface {name} could not be looked up ({error}); its binding stays as it was"
            ),
        ));
    }
    if let Some(tampered) = &daemon.tampered {
        out.push(reason(
            "pins-tampered",
            format!(
                "the pins were changed by someone else at {} ({}); the policy was re-applied",
                tampered.at.at,
                tampered.findings.join("; ")
            ),
        ));
    }
    if let Some(diverged) = &daemon.diverged {
        out.push(reason(
            "kernel-diverged",
            format!("the kernel holds part of two policies: {diverged}"),
        ));
    }
    if daemon.private_bpffs {
        out.push(reason(
            "private-bpffs",
            "the pins are on a bpffs private to this daemon: every hook detaches when it exits"
                .to_owned(),
        ));
    }
    let source = daemon.policy_source();
    for (ifindex, name) in &daemon.hooked {
        if daemon.bound.contains_key(ifindex)
            || daemon.guarded.contains_key(ifindex)
            || source == PolicySource::Pinned
        {
            continue;
        }
        out.push(reason(
            "unbound-drops-all",
            format!(
                "interface {} ({ifindex}) carries hooks but no instance binds it: all its IP traffic is dropped",
                name.as_deref().unwrap_or("?")
            ),
        ));
    }
    out
}
