//! Which tracked flows a policy change cuts. The kernel re-checks a flow's
//! original packet against the new rules on its next packet and drops it
//! (`drop-revoked`) if they refuse it; this says so in the log at the
//! moment of the change, flow by flow, using the reference evaluator.

use std::collections::BTreeMap;

use secgroup_api::ReloadTrigger;
use secgroup_dataplane::abi::{CtEntry, CtKey, DIR_EGRESS};
use secgroup_model::{Action, Direction, proto};
use secgroup_policy::{Packet, Policy};
use tracing::{info, warn};

use secgroup_dataplane::error_chain;

use super::Engine;

/// How many cut flows are logged one by one; the rest are counted.
const LOGGED: usize = 20;

/// The packet that opened a tracked flow, as the evaluator sees it.
pub fn original_packet(key: &CtKey, entry: &CtEntry) -> (Direction, Packet) {
    let direction = if entry.origin_dir == DIR_EGRESS {
        Direction::Egress
    } else {
        Direction::Ingress
    };
    let (local_port, remote_port) = (key.local_port(), key.remote_port());
    let (src_port, dst_port) = match direction {
        Direction::Egress => (local_port, remote_port),
        Direction::Ingress => (remote_port, local_port),
    };
    let icmp_type = match key.proto {
        proto::ICMP => 8,
        proto::ICMPV6 => 128,
        _ => 0,
    };
    (
        direction,
        Packet {
            protocol: key.proto,
            remote: key.remote(),
            local: key.local(),
            src_port,
            dst_port,
            icmp_type,
            icmp_code: 0,
        },
    )
}

/// Logs every tracked flow on an interface whose tables changed that the
/// new policy refuses. `before`: each interface's table ids before the
/// apply.
pub fn log_cut_flows(
    daemon: &Engine,
    before: &BTreeMap<u32, [u32; 2]>,
    policy: &Policy,
    trigger: ReloadTrigger,
) {
    if daemon.settings.keep_established {
        return; // tracked flows are spared by design
    }
    let after = daemon.interface_tables();
    let changed: Vec<u32> = after
        .iter()
        .filter(|(i, tables)| before.get(i) != Some(tables))
        .map(|(i, _)| *i)
        .collect();
    if changed.is_empty() {
        return;
    }
    let entries = match daemon.dp.conntrack() {
        Ok(entries) => entries,
        Err(e) => {
            warn!(error = %error_chain(&e), "reading conntrack to report cut flows failed");
            return;
        }
    };
    let mut cut = 0usize;
    for (key, entry) in &entries {
        if !changed.contains(&key.ifindex) {
            continue;
        }
        let Some(instance) = daemon
            .now
            .bound
            .get(&key.ifindex)
            .and_then(|id| policy.instances.get(id))
        else {
            continue;
        };
        let (direction, packet) = original_packet(key, entry);
        let verdict = instance.evaluate(direction, &packet);
        if verdict.action == Action::Drop {
            cut += 1;
            if cut <= LOGGED {
                info!(
                    ?trigger,
                    instance = %instance.id,
                    %direction,
                    flow = %packet,
                    verdict = %verdict,
                    "tracked flow cut by the new rules (dropped from its next packet on)"
                );
            }
        }
    }
    if cut > 0 {
        info!(
            ?trigger,
            cut,
            logged = cut.min(LOGGED),
            "tracked flows cut by the new rules"
        );
    }
}
