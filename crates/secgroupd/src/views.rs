//! The read side of the API: the daemon's state, the rules and the kernel's
//! counters turned into the wire types of `secgroup-api`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use secgroup_api::{
    ConntrackList, Count, EffectiveRule as ApiRule, EventCounts as ApiEventCounts, GroupRule,
    GuardedInterface, Health, HealthState, Hits, InstanceDetail, InstanceStatus, InstanceSummary,
    PinOwner, ReloadOutcome, ReloadReport, SecurityGroupDetail, SecurityGroupSummary, Status,
    Timestamp, UnboundInterface, UnprotectedInterface, Verdicts,
};
use secgroup_dataplane::abi::Reason;
use secgroup_dataplane::{Observer, RuleCount, error_chain};
use secgroup_model::{Direction, Enforcement, Remote, RuleSet, SgId, Traffic};
use secgroup_policy::{RuleOrigin, render_service, render_services};

use crate::event::{ApiError, ApiReply, ApiRequest};
use crate::state::InForce;
use crate::trace::TracePorts;
use crate::wire::{json, rule_ref, unix_ms};

/// Converts the data plane's clock (CLOCK_BOOTTIME) to wall-clock time.
struct Clocks {
    dataplane_ns: u64,
    unix_ms: u64,
}

impl Clocks {
    fn now(observer: &Observer) -> Result<Clocks, ApiError> {
        Ok(Clocks {
            dataplane_ns: observer
                .now_ns()
                .map_err(internal("reading the data plane's clock"))?,
            unix_ms: unix_ms(),
        })
    }

    fn wall(&self, dataplane_ns: u64) -> Option<Timestamp> {
        (dataplane_ns != 0).then(|| {
            let ago_ms = self.dataplane_ns.saturating_sub(dataplane_ns) / 1_000_000;
            Timestamp::from_unix_ms(self.unix_ms.saturating_sub(ago_ms))
        })
    }
}

fn add_hits(hits: &mut Hits, counter: &RuleCount, clocks: &Clocks) {
    hits.packets += counter.packets;
    hits.bytes += counter.bytes;
    if let Some(at) = clocks.wall(counter.last_hit_ns)
        && hits
            .last_hit
            .as_ref()
            .is_none_or(|t| t.unix_ms < at.unix_ms)
    {
        hits.last_hit = Some(at);
    }
}

fn traffic_as_written(traffic: &Traffic) -> String {
    match traffic {
        Traffic::Service(service) => render_service(service),
        Traffic::ServiceSet(id) => id.to_string(),
        Traffic::ServiceSetGroup(id) => id.to_string(),
    }
}

fn bound_instances(rules: &RuleSet, sg: &SgId) -> Vec<String> {
    rules
        .instances
        .values()
        .filter(|i| i.security_groups.contains(sg))
        .map(|i| i.id.to_string())
        .collect()
}

fn referenced_by(rules: &RuleSet, sg: &SgId) -> Vec<String> {
    rules
        .security_groups
        .values()
        .filter(|g| {
            Direction::ALL.iter().any(|d| {
                g.rules(*d)
                    .iter()
                    .any(|r| r.remote == Remote::SecurityGroup(sg.clone()))
            })
        })
        .map(|g| g.id.to_string())
        .collect()
}

fn internal(what: &str) -> impl FnOnce(secgroup_dataplane::DataplaneError) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {}", error_chain(&e)))
}

/// Answers a read from the snapshot in force and the kernel's counters.
/// Blocking (map reads): call it off the async workers.
pub fn answer(
    now: &InForce,
    observer: &Observer,
    ports: &TracePorts,
    request: ApiRequest,
) -> ApiReply {
    match request {
        ApiRequest::Status => json(&status(now)),
        ApiRequest::SecurityGroups => json(&security_groups(now)),
        ApiRequest::SecurityGroup(id) => json(&security_group(now, observer, &id)?),
        ApiRequest::Instances => json(&instances(now)),
        ApiRequest::Instance(id) => json(&instance(now, observer, &id)?),
        ApiRequest::Conntrack { instance, limit } => {
            json(&conntrack(now, observer, instance.as_deref(), limit)?)
        }
        ApiRequest::Trace(request) => json(&crate::trace::trace(now, observer, ports, &request)?),
        ApiRequest::Reload | ApiRequest::FlushConntrack { .. } => {
            Err(ApiError::internal("a mutating call reached the read path"))
        }
    }
}

/// The last reload's report, with the warnings of the rules it put in
/// force once their lint (which runs after the reload) is done.
fn last_reload(now: &InForce) -> Option<ReloadReport> {
    let mut report = now.last_reload.clone()?;
    if report.outcome != ReloadOutcome::Failed
        && report.warnings.is_empty()
        && let Some(warnings) = now.loaded.as_ref().and_then(|l| l.warnings.get())
    {
        report.warnings = warnings.to_vec();
    }
    Some(report)
}

/// `GET /v1/status` encoded once per snapshot (and once more when its
/// warnings arrive), not once per request: with a thousand instances the
/// answer is about 200 KB of JSON, and a client polling during a reload
/// shared two cores with it. A status depends on nothing but the snapshot.
#[derive(Default)]
pub struct StatusCache(Mutex<Option<CachedStatus>>);

struct CachedStatus {
    snapshot: Arc<InForce>,
    linted: bool,
    body: Vec<u8>,
}

impl StatusCache {
    pub fn answer(&self, now: &Arc<InForce>) -> ApiReply {
        let linted = now
            .loaded
            .as_ref()
            .is_some_and(|l| l.warnings.get().is_some());
        let fresh = |c: &&CachedStatus| Arc::ptr_eq(&c.snapshot, now) && c.linted == linted;
        if let Some(cached) = self.lock().as_ref().filter(fresh) {
            return Ok(cached.body.clone());
        }
        // Encoded without the lock: readers of the cached answer never
        // wait for an encoding.
        let body = json(&status(now))?;
        *self.lock() = Some(CachedStatus {
            snapshot: Arc::clone(now),
            linted,
            body: body.clone(),
        });
        Ok(body)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedStatus>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub fn status(now: &InForce) -> Status {
    let mut instances = Vec::new();
    if let Some(loaded) = &now.loaded {
        for instance in loaded.policy.instances.values() {
            if let Some(interface) = &instance.interface {
                instances.push(InstanceStatus {
                    id: instance.id.to_string(),
                    interface: interface.clone(),
                    enforcement: instance.enforcement.to_string(),
                    log: instance.log.to_string(),
                    attach: now.attach_state(&instance.id, interface),
                });
            }
        }
    }
    let reason = if now.loaded.is_none() && now.pinned {
        "enforcing the policy a previous secgroupd pinned (no valid rules loaded yet)"
    } else {
        "no instance binds this interface: its IP traffic is dropped"
    };
    let unbound_interfaces = now
        .unbound()
        .into_iter()
        .map(|ifindex| UnboundInterface {
            ifindex,
            name: now.hooked.get(&ifindex).cloned().flatten(),
            reason: reason.to_owned(),
        })
        .collect();
    let reasons = crate::health::reasons(now);
    let audit_instances = instances
        .iter()
        .filter(|i| i.enforcement == Enforcement::Audit.as_str())
        .map(|i| i.id.clone())
        .collect();
    Status {
        audit_instances,
        source: now.source.as_ref().map(|s| s.status(now.etcd_applied)),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        rules_dir: now.rules_dir.clone(),
        pin_dir: now.pin_dir.clone(),
        policy: now.policy_source(),
        generation: now.generation,
        reloads: now.reloads,
        keep_established: now.keep_established,
        last_reload: last_reload(now),
        last_error: now.last_error.clone(),
        instances,
        unbound_interfaces,
        guarded_interfaces: now
            .guarded
            .iter()
            .map(|(ifindex, name)| GuardedInterface {
                ifindex: *ifindex,
                name: name.clone(),
            })
            .collect(),
        unprotected_interfaces: now
            .unprotected
            .iter()
            .map(|l| UnprotectedInterface {
                ifindex: l.ifindex,
                name: l.name.clone(),
                kind: l.kind.clone().unwrap_or_default(),
            })
            .collect(),
        health: Health {
            state: if reasons.is_empty() {
                HealthState::Ok
            } else {
                HealthState::Degraded
            },
            reasons,
        },
        owner: now.owner.clone().map(|o| PinOwner {
            pid: o.pid,
            socket: o.socket,
            since: Timestamp::from_unix_ms(o.started_unix_ms),
        }),
        abi_version: secgroup_dataplane::Dataplane::abi().version,
    }
}

pub fn security_groups(now: &InForce) -> Vec<SecurityGroupSummary> {
    let Some(loaded) = &now.loaded else {
        return Vec::new();
    };
    let rules = &loaded.rules;
    rules
        .security_groups
        .values()
        .map(|g| SecurityGroupSummary {
            id: g.id.to_string(),
            name: g.name.clone(),
            ingress_rules: g.ingress.len(),
            egress_rules: g.egress.len(),
            bound_instances: bound_instances(rules, &g.id),
            referenced_by: referenced_by(rules, &g.id),
        })
        .collect()
}

pub fn security_group(
    now: &InForce,
    observer: &Observer,
    id: &str,
) -> Result<SecurityGroupDetail, ApiError> {
    let known = || {
        now.loaded
            .as_ref()
            .map(|l| {
                l.rules
                    .security_groups
                    .keys()
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let loaded = now
        .loaded
        .as_ref()
        .ok_or_else(|| ApiError::unknown("security group", id, known()))?;
    let sg = SgId::new(id).ok_or_else(|| ApiError::unknown("security group", id, known()))?;
    let group = loaded
        .rules
        .security_groups
        .get(&sg)
        .ok_or_else(|| ApiError::unknown("security group", id, known()))?;
    let compiled = loaded.policy.security_groups.get(&sg);

    let clocks = Clocks::now(observer)?;
    let mut hits: HashMap<(Direction, usize), Hits> = HashMap::new();
    for counter in observer
        .rule_counts()
        .map_err(internal("reading rule counters"))?
    {
        if let Some(origin) = now
            .rule_origins
            .get(&counter.rule_uid)
            .filter(|o| o.sg == sg)
        {
            add_hits(
                hits.entry((origin.direction, origin.index)).or_default(),
                &counter,
                &clocks,
            );
        }
    }
    let rules_of = |direction: Direction| -> Vec<GroupRule> {
        group
            .rules(direction)
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let effective = compiled.and_then(|c| {
                    c.rules(direction)
                        .rules
                        .iter()
                        .find(|r| r.origin.index == index)
                });
                GroupRule {
                    index,
                    action: rule.action.to_string(),
                    traffic: traffic_as_written(&rule.traffic),
                    remote: rule.remote.to_string(),
                    description: rule.description.clone(),
                    services: effective
                        .map(|r| render_services(&r.services))
                        .unwrap_or_default(),
                    remotes: effective
                        .map(|r| r.remotes.iter().map(ToString::to_string).collect())
                        .unwrap_or_default(),
                    hits: hits.get(&(direction, index)).cloned().unwrap_or_default(),
                }
            })
            .collect()
    };
    Ok(SecurityGroupDetail {
        id: group.id.to_string(),
        name: group.name.clone(),
        description: group.description.clone(),
        ingress: rules_of(Direction::Ingress),
        egress: rules_of(Direction::Egress),
        bound_instances: bound_instances(&loaded.rules, &sg),
        referenced_by: referenced_by(&loaded.rules, &sg),
    })
}

pub fn instances(now: &InForce) -> Vec<InstanceSummary> {
    let Some(loaded) = &now.loaded else {
        return Vec::new();
    };
    loaded
        .policy
        .instances
        .values()
        .map(|i| InstanceSummary {
            id: i.id.to_string(),
            interface: i.interface.clone(),
            ips: i.ips.iter().map(ToString::to_string).collect(),
            security_groups: i.security_groups.iter().map(ToString::to_string).collect(),
            attach: i
                .interface
                .as_deref()
                .map(|name| now.attach_state(&i.id, name)),
            enforcement: i.enforcement.to_string(),
            log: i.log.to_string(),
        })
        .collect()
}

pub fn instance(now: &InForce, observer: &Observer, id: &str) -> Result<InstanceDetail, ApiError> {
    let instance = now.find_instance(id)?;
    let ifindex = now.bound_ifindex(&instance.id);
    let clocks = Clocks::now(observer)?;
    let mut hits: HashMap<RuleOrigin, Hits> = HashMap::new();
    if let Some(ifindex) = ifindex {
        for counter in observer
            .rule_counts()
            .map_err(internal("reading rule counters"))?
        {
            if counter.ifindex == ifindex
                && let Some(origin) = now.rule_origins.get(&counter.rule_uid)
            {
                add_hits(hits.entry(origin.clone()).or_default(), &counter, &clocks);
            }
        }
    }
    let rules_of = |direction: Direction| -> Vec<ApiRule> {
        instance
            .rules(direction)
            .rules
            .iter()
            .enumerate()
            .map(|(position, rule)| ApiRule {
                position,
                action: rule.action.to_string(),
                services: render_services(&rule.services),
                remotes: rule.remotes.iter().map(ToString::to_string).collect(),
                origin: rule_ref(&rule.origin),
                hits: hits.get(&rule.origin).cloned().unwrap_or_default(),
                log: rule.log,
            })
            .collect()
    };
    let verdicts = match ifindex {
        Some(ifindex) => {
            let by_reason = |direction: Direction| -> Result<BTreeMap<String, Count>, ApiError> {
                let stats = observer
                    .interface_stats(ifindex, direction)
                    .map_err(internal("reading verdict counters"))?;
                Ok(Reason::ALL
                    .iter()
                    .filter(|r| stats.packets[**r as usize] != 0)
                    .map(|r| {
                        let count = Count {
                            packets: stats.packets[*r as usize],
                            bytes: stats.bytes[*r as usize],
                        };
                        (r.as_str().to_owned(), count)
                    })
                    .collect())
            };
            Some(Verdicts {
                ingress: by_reason(Direction::Ingress)?,
                egress: by_reason(Direction::Egress)?,
            })
        }
        None => None,
    };
    Ok(InstanceDetail {
        id: instance.id.to_string(),
        interface: instance.interface.clone(),
        mac: instance.mac.map(|m| m.to_string()),
        port_security: instance.port_security.to_string(),
        ips: instance.ips.iter().map(ToString::to_string).collect(),
        security_groups: instance
            .security_groups
            .iter()
            .map(ToString::to_string)
            .collect(),
        attach: instance
            .interface
            .as_deref()
            .map(|name| now.attach_state(&instance.id, name)),
        enforcement: instance.enforcement.to_string(),
        log: instance.log.to_string(),
        events: match ifindex {
            Some(ifindex) => Some(event_counts(observer, ifindex)?),
            None => None,
        },
        ingress: rules_of(Direction::Ingress),
        egress: rules_of(Direction::Egress),
        verdicts,
    })
}

/// The interface's event counters; zero before its first logged verdict.
fn event_counts(observer: &Observer, ifindex: u32) -> Result<ApiEventCounts, ApiError> {
    let counts = observer
        .event_counts()
        .map_err(internal("reading event counters"))?;
    Ok(counts
        .iter()
        .find(|c| c.ifindex == ifindex)
        .map(|c| ApiEventCounts {
            emitted: c.emitted,
            suppressed: c.suppressed + c.lost,
        })
        .unwrap_or_default())
}

/// `None` = every interface; `Some(None)` = an instance with no
/// interface bound here (nothing to list or flush).
fn conntrack_scope(now: &InForce, instance: Option<&str>) -> Result<Option<Option<u32>>, ApiError> {
    match instance {
        None => Ok(None),
        Some(id) => {
            let instance = now.find_instance(id)?;
            Ok(Some(now.bound_ifindex(&instance.id)))
        }
    }
}

pub fn conntrack(
    now: &InForce,
    observer: &Observer,
    instance: Option<&str>,
    limit: usize,
) -> Result<ConntrackList, ApiError> {
    let scope = conntrack_scope(now, instance)?;
    if scope == Some(None) {
        return Ok(ConntrackList {
            total: 0,
            truncated: false,
            entries: Vec::new(),
        });
    }
    let now_ns = observer
        .now_ns()
        .map_err(internal("reading the data plane's clock"))?;
    let mut entries = observer
        .conntrack()
        .map_err(internal("reading conntrack"))?;
    entries.retain(|(key, _)| scope.is_none_or(|s| s == Some(key.ifindex)));
    entries.sort_by_key(|(key, entry)| (key.ifindex, entry.created_ns));
    let total = entries.len();
    let entries = entries
        .into_iter()
        .take(limit)
        .map(|(key, entry)| now.flow(&key, &entry, now_ns))
        .collect();
    Ok(ConntrackList {
        total,
        truncated: total > limit,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use secgroup_api::{ReloadTrigger, Status};

    use super::*;
    use crate::rules::{LoadTimings, Loaded, Warnings};

    fn snapshot(warnings: &Warnings, generation: u64) -> Arc<InForce> {
        Arc::new(InForce {
            loaded: Some(Arc::new(Loaded {
                rules: RuleSet::default(),
                policy: secgroup_policy::Policy::default(),
                files: Vec::new(),
                timings: LoadTimings::default(),
                warnings: warnings.clone(),
            })),
            generation,
            last_reload: Some(ReloadReport {
                trigger: ReloadTrigger::Watch,
                outcome: ReloadOutcome::Applied,
                finished: Timestamp::from_unix_ms(0),
                duration_ms: 1.0,
                generation,
                summary: "changed".to_owned(),
                warnings: Vec::new(),
            }),
            ..InForce::default()
        })
    }

    fn answered(cache: &StatusCache, now: &Arc<InForce>) -> Status {
        let body = cache.answer(now).unwrap_or_else(|e| panic!("{e:?}"));
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn status_follows_snapshots_and_late_warnings() {
        let cache = StatusCache::default();
        let warnings = Warnings::default();
        let first = snapshot(&warnings, 1);
        let status = answered(&cache, &first);
        assert_eq!(status.generation, 1);
        let report = status.last_reload.unwrap_or_else(|| panic!("no report"));
        assert!(report.warnings.is_empty(), "the lint is not done yet");

        // The lint finishes after the reload: the same snapshot shows them.
        warnings.set(vec!["a.json:1:1: $: questionable".to_owned()]);
        let report = answered(&cache, &first)
            .last_reload
            .unwrap_or_else(|| panic!("no report"));
        assert_eq!(report.warnings, ["a.json:1:1: $: questionable"]);

        // A new snapshot is a new answer.
        let second = snapshot(&Warnings::default(), 2);
        assert_eq!(answered(&cache, &second).generation, 2);
        assert_eq!(answered(&cache, &first).generation, 1);
    }
}
