//! [`InForce`]: a plain snapshot of what the daemon enforces, published by
//! the engine after every change (a `tokio::sync::watch` of `Arc`s). API
//! reads work on the latest snapshot and never wait for a reload; a
//! snapshot is never half-updated: it is replaced whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use secgroup_api::{
    AttachState, ConntrackEntry, PolicySource, ReloadError, ReloadReport, Timestamp,
};
use secgroup_dataplane::abi::{self, CtEntry, CtKey, CtState, NO_RULE};
use secgroup_dataplane::{Owner, XdpAttachMode};
use secgroup_model::{Direction, InstanceId, Protocol};
use secgroup_policy::{RuleList, RuleOrigin};

use crate::event::ApiError;
use crate::rules::Loaded;
use crate::wire::rule_ref;

/// Hooks on an interface, attached or adopted by the daemon.
#[derive(Debug, Clone)]
pub struct Hooked {
    /// The interface's name when attached (or last seen).
    pub name: String,
    pub xdp_mode: XdpAttachMode,
    pub adopted: bool,
}

/// Why an interface has no hooks although an instance binds it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub ifindex: u32,
    pub error: String,
}

/// Writes to the pins by someone else, as last found.
#[derive(Debug, Clone)]
pub struct Tampered {
    pub at: Timestamp,
    pub findings: Vec<String>,
}

/// What `/metrics` says of reloads beyond the last one: kept as counts,
/// so a snapshot stays small however many reloads there were.
#[derive(Debug, Clone, Default)]
pub struct ReloadStats {
    pub failures: u64,
    pub last_success: Option<Timestamp>,
    /// Reloads by duration, one count per bucket of
    /// [`RELOAD_BUCKETS_S`] and one past the last.
    pub buckets: [u64; RELOAD_BUCKETS_S.len() + 1],
    pub total_s: f64,
}

/// The upper bounds of the reload-duration buckets, in seconds: a reload
/// that touches no map takes about a millisecond, a big directory seconds.
pub const RELOAD_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl ReloadStats {
    /// Counts one finished reload.
    pub fn record(&mut self, report: &ReloadReport) {
        if report.outcome == secgroup_api::ReloadOutcome::Failed {
            self.failures += 1;
        } else {
            self.last_success = Some(report.finished.clone());
        }
        let seconds = report.duration_ms / 1000.0;
        let bucket = RELOAD_BUCKETS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(RELOAD_BUCKETS_S.len());
        self.buckets[bucket] += 1;
        self.total_s += seconds;
    }
}

/// Everything the API shows, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    pub rules_dir: String,
    pub pin_dir: String,
    pub keep_established: bool,
    /// The rules in force, as this daemon loaded them.
    pub loaded: Option<Arc<Loaded>>,
    /// The maps hold a previous daemon's policy this one has not replaced.
    pub pinned: bool,
    pub generation: u64,
    pub reloads: u64,
    pub last_reload: Option<ReloadReport>,
    /// Failures, the last success and every duration, since start.
    pub reload_stats: ReloadStats,
    pub last_error: Option<ReloadError>,
    /// ifindex → instance, as the last successful apply bound them.
    pub bound: BTreeMap<u32, InstanceId>,
    pub hooks: BTreeMap<u32, Hooked>,
    /// Interfaces hooked for a guarded pattern that no instance binds.
    pub guarded: BTreeMap<u32, String>,
    /// VM-like interfaces (tun, veth, macvtap) that nothing hooks: their
    /// traffic is not filtered at all.
    pub unprotected: Vec<secgroup_dataplane::Link>,
    /// Attach failures by interface name.
    pub failures: BTreeMap<String, Failure>,
    /// Interfaces with hooks (ours or pinned by a predecessor), with their
    /// names as last looked up.
    pub hooked: BTreeMap<u32, Option<String>>,
    /// Interfaces whose lookup failed transiently, with the error.
    pub lookup_errors: BTreeMap<String, String>,
    pub tampered: Option<Tampered>,
    pub diverged: Option<String>,
    pub private_bpffs: bool,
    pub owner: Option<Owner>,
    /// Rule uid → origin: what the raw counters are matched against.
    pub rule_origins: Arc<HashMap<u32, RuleOrigin>>,
    /// Table id → whose list it is, for every table an interface uses.
    pub tables: HashMap<u32, (InstanceId, Direction)>,
    /// The reverse of `bound`; cleared whenever `bound` changes.
    pub bound_index: crate::bound_index::BoundIndex,
    /// Where the rules come from; its etcd side is read live (connection,
    /// revisions), never waiting for the engine.
    pub source: Option<crate::source::Source>,
    /// The etcd revision whose content is in force (etcd sources).
    pub etcd_applied: Option<crate::source::Applied>,
}

impl InForce {
    pub fn policy_source(&self) -> PolicySource {
        match (&self.loaded, self.pinned) {
            (Some(_), _) => PolicySource::RulesDir,
            (None, true) => PolicySource::Pinned,
            (None, false) => PolicySource::None,
        }
    }

    /// The instance named `id`, or a 404 listing the known ones.
    pub fn find_instance(&self, id: &str) -> Result<&secgroup_policy::InstancePolicy, ApiError> {
        let known = || {
            self.loaded
                .as_ref()
                .map(|l| l.policy.instances.keys().map(ToString::to_string).collect())
                .unwrap_or_default()
        };
        let loaded = self
            .loaded
            .as_ref()
            .ok_or_else(|| ApiError::unknown("instance", id, known()))?;
        InstanceId::new(id)
            .and_then(|id| loaded.policy.instances.get(&id))
            .ok_or_else(|| ApiError::unknown("instance", id, known()))
    }

    pub fn bound_ifindex(&self, id: &InstanceId) -> Option<u32> {
        self.bound_index.get(&self.bound, id)
    }

    /// The rule list a table id stands for, if an interface uses it.
    pub fn table_rules(&self, table: u32) -> Option<&RuleList> {
        let (id, direction) = self.tables.get(&table)?;
        let loaded = self.loaded.as_ref()?;
        Some(loaded.policy.instances.get(id)?.rules(*direction))
    }

    /// One conntrack entry as the API shows it, its rule named when the
    /// table is one in force; `now_ns` is the data plane's clock.
    pub fn flow(&self, key: &CtKey, entry: &CtEntry, now_ns: u64) -> ConntrackEntry {
        let rule = (entry.rule_pos != NO_RULE)
            .then(|| self.table_rules(entry.table))
            .flatten()
            .and_then(|list| list.rules.get(entry.rule_pos as usize))
            .map(|r| rule_ref(&r.origin));
        ConntrackEntry {
            instance: self.bound.get(&key.ifindex).map(ToString::to_string),
            ifindex: key.ifindex,
            protocol: Protocol::Number(key.proto).to_string(),
            local: key.local(),
            local_port: key.local_port(),
            remote: key.remote(),
            remote_port: key.remote_port(),
            direction: if entry.origin_dir == abi::DIR_EGRESS {
                secgroup_api::Direction::Egress
            } else {
                secgroup_api::Direction::Ingress
            },
            state: CtState::from_u8(entry.state).map_or_else(
                || format!("unknown-{}", entry.state),
                |s| s.as_str().to_owned(),
            ),
            packets_in: entry.packets[abi::DIR_INGRESS as usize],
            packets_out: entry.packets[abi::DIR_EGRESS as usize],
            bytes_in: entry.bytes[abi::DIR_INGRESS as usize],
            bytes_out: entry.bytes[abi::DIR_EGRESS as usize],
            age_ms: now_ns.saturating_sub(entry.created_ns) / 1_000_000,
            expires_in_ms: entry.expires_ns.saturating_sub(now_ns) / 1_000_000,
            rule,
        }
    }

    pub fn attach_state(&self, id: &InstanceId, interface: &str) -> AttachState {
        let failed = |ifindex: Option<u32>| {
            self.failures.get(interface).map(|f| AttachState::Failed {
                ifindex: Some(f.ifindex).or(ifindex),
                error: f.error.clone(),
            })
        };
        match self.bound_ifindex(id) {
            Some(ifindex) => match self.hooks.get(&ifindex) {
                Some(hooked) => AttachState::Attached {
                    ifindex,
                    xdp_mode: hooked.xdp_mode.as_str().to_owned(),
                    adopted: hooked.adopted,
                },
                None => failed(Some(ifindex)).unwrap_or(AttachState::Failed {
                    ifindex: Some(ifindex),
                    error: "bound but not attached".to_owned(),
                }),
            },
            None => failed(None).unwrap_or(AttachState::Waiting),
        }
    }

    /// Interfaces with hooks that no instance binds and no pattern guards.
    pub fn unbound(&self) -> BTreeSet<u32> {
        self.hooked
            .keys()
            .filter(|i| !self.bound.contains_key(i) && !self.guarded.contains_key(i))
            .copied()
            .collect()
    }

    /// Number of bound interfaces with hooks.
    pub fn attached(&self) -> usize {
        self.hooks
            .keys()
            .filter(|i| self.bound.contains_key(i))
            .count()
    }
}
