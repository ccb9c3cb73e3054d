//! What the scenarios ask the daemon: status, per-rule hit counters,
//! traces. Everything goes through [`Control`], so moving these checks
//! to the `secgroupctl` CLI once its socket commands land means changing
//! this module only.

use std::collections::BTreeMap;
use std::time::Duration;

use secgroup_api::{
    AttachState, Client, ClientError, Count, Direction, InstanceDetail, SecurityGroupDetail,
    Status, TraceRequest, TraceResponse, paths,
};

use crate::daemon::Daemon;
use crate::wait::{poll, wait_for};

/// The daemon's socket, asked over the API.
pub struct Control {
    client: Client,
}

impl Control {
    pub fn of(daemon: &Daemon) -> Control {
        Control {
            client: Client::new(daemon.socket()).with_timeout(Duration::from_secs(10)),
        }
    }

    pub fn status(&self) -> Status {
        self.client
            .get(paths::STATUS)
            .unwrap_or_else(|e| panic!("GET {}: {e}", paths::STATUS))
    }

    /// `/v1/status` as plain JSON: for fields newer than this crate's
    /// view of the API (a fleet's `source`), and for printing whole.
    pub fn status_json(&self) -> serde_json::Value {
        self.client
            .get(paths::STATUS)
            .unwrap_or_else(|e| panic!("GET {}: {e}", paths::STATUS))
    }

    pub fn group(&self, id: &str) -> SecurityGroupDetail {
        let path = paths::security_group(id);
        self.client
            .get(&path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// An instance's effective rules with their hits, or `None` when the
    /// daemon cannot say (explanations must not fail on that).
    pub fn instance(&self, id: &str) -> Option<InstanceDetail> {
        self.client.get(&paths::instance(id)).ok()
    }

    /// Packets `instance`'s interface counted under `reason`
    /// (`drop-spoofed-ip`, `accept-rule`, ...) in `direction`; 0 when
    /// never seen or not attached.
    pub fn verdict_packets(&self, instance: &str, direction: Direction, reason: &str) -> u64 {
        self.verdicts(instance, direction)
            .get(reason)
            .map_or(0, |count| count.packets)
    }

    /// Every reason `instance`'s interface counted in `direction`.
    pub fn verdicts(&self, instance: &str, direction: Direction) -> BTreeMap<String, Count> {
        let path = paths::instance(instance);
        let detail: InstanceDetail = self
            .client
            .get(&path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let Some(verdicts) = detail.verdicts else {
            return BTreeMap::new();
        };
        match direction {
            Direction::Ingress => verdicts.ingress,
            Direction::Egress => verdicts.egress,
        }
    }

    /// Waits until `instance` has counted at least `packets` under
    /// `reason` in `direction` (counters are read live, a frame is
    /// counted as it is judged); panics with every count it has if not.
    pub fn wait_verdict(
        &self,
        instance: &str,
        direction: Direction,
        reason: &str,
        packets: u64,
        timeout: Duration,
    ) -> u64 {
        poll(timeout, || {
            let seen = self.verdict_packets(instance, direction, reason);
            (seen >= packets).then_some(seen)
        })
        .unwrap_or_else(|| {
            panic!(
                "{instance} should have counted {packets} packet(s) {reason} in {direction:?}                  within {timeout:?}; it counted {:?}",
                self.verdicts(instance, direction)
            )
        })
    }

    /// Packets counted on each rule of `group`'s `direction`, in order.
    pub fn hits(&self, group: &str, direction: Direction) -> Vec<u64> {
        let detail = self.group(group);
        let rules = match direction {
            Direction::Ingress => detail.ingress,
            Direction::Egress => detail.egress,
        };
        rules.iter().map(|r| r.hits.packets).collect()
    }

    /// One flow-opening packet through the live program, as the daemon
    /// traces it.
    pub fn trace(&self, request: &TraceRequest) -> TraceResponse {
        self.try_trace(request)
            .unwrap_or_else(|e| panic!("POST {} {request:?}: {e}", paths::TRACE))
    }

    pub fn try_trace(&self, request: &TraceRequest) -> Result<TraceResponse, ClientError> {
        self.client.post(paths::TRACE, Some(request))
    }

    /// The attach state of `instance`, if the daemon knows it.
    pub fn attach_state(&self, instance: &str) -> Option<AttachState> {
        self.status()
            .instances
            .into_iter()
            .find(|i| i.id == instance)
            .map(|i| i.attach)
    }

    /// Waits until `instance` is attached; returns its ifindex.
    pub fn wait_attached(&self, instance: &str, timeout: Duration) -> u32 {
        wait_for(
            timeout,
            &format!("{instance} to be attached"),
            || match self.attach_state(instance) {
                Some(AttachState::Attached { ifindex, .. }) => Some(ifindex),
                _ => None,
            },
        )
    }

    /// Runs `change` (a rules edit) and waits until the daemon has
    /// finished a reload after it; returns the status then.
    pub fn reload_after(&self, change: impl FnOnce()) -> Status {
        let before = self.status().reloads;
        change();
        self.wait_reload(before, Duration::from_secs(10))
    }

    /// Waits until the daemon has finished more than `reloads` reloads;
    /// returns the status then.
    pub fn wait_reload(&self, reloads: u64, timeout: Duration) -> Status {
        wait_for(timeout, "a reload", || {
            let status = self.status();
            (status.reloads > reloads).then_some(status)
        })
    }
}
