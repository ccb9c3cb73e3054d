//! The read side of the API: the daemon's state, the rules and the kernel's
//! counters turned into the wire types of `secgroup-api`.

use std::collections::{BTreeMap, HashMap};

use secgroup_api::{
    AttachState, ConntrackEntry, ConntrackList, Count, EffectiveRule as ApiRule, FlushResult,
    GroupRule, Health, HealthState, Hits, InstanceDetail, InstanceStatus, InstanceSummary,
    PinOwner, PolicySource, RuleRef, SecurityGroupDetail, SecurityGroupSummary, Status, Timestamp,
    UnboundInterface, Verdicts,
};
use secgroup_dataplane::RuleHits;
use secgroup_dataplane::abi::{self, CtState, NO_RULE, Reason};
use secgroup_model::{Direction, InstanceId, Protocol, Remote, RuleSet, SgId, Traffic};
use secgroup_policy::{RuleOrigin, render_service, render_services};
use tracing::info;

use crate::daemon::{Daemon, error_chain, unix_ms};
use crate::event::ApiError;

pub fn api_direction(direction: Direction) -> secgroup_api::Direction {
    match direction {
        Direction::Ingress => secgroup_api::Direction::Ingress,
        Direction::Egress => secgroup_api::Direction::Egress,
    }
}

pub fn rule_ref(origin: &RuleOrigin) -> RuleRef {
    RuleRef {
        security_group: origin.sg.to_string(),
        direction: api_direction(origin.direction),
        index: origin.index,
    }
}

/// Converts the data plane's clock (CLOCK_BOOTTIME) to wall-clock time.
struct Clocks {
    dataplane_ns: u64,
    unix_ms: u64,
}

impl Clocks {
    fn now(daemon: &Daemon) -> Clocks {
        Clocks {
            dataplane_ns: daemon.dp.now_ns(),
            unix_ms: unix_ms(),
        }
    }

    fn wall(&self, dataplane_ns: u64) -> Option<Timestamp> {
        (dataplane_ns != 0).then(|| {
            let ago_ms = self.dataplane_ns.saturating_sub(dataplane_ns) / 1_000_000;
            Timestamp::from_unix_ms(self.unix_ms.saturating_sub(ago_ms))
        })
    }
}

fn add_hits(hits: &mut Hits, counter: &RuleHits, clocks: &Clocks) {
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

impl Daemon {
    pub(crate) fn bound_ifindex(&self, id: &InstanceId) -> Option<u32> {
        self.bound
            .iter()
            .find(|(_, bound)| *bound == id)
            .map(|(ifindex, _)| *ifindex)
    }

    pub(crate) fn attach_state(&self, id: &InstanceId, interface: &str) -> AttachState {
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
                    xdp_mode: hooked.info.xdp_mode.as_str().to_owned(),
                    adopted: hooked.info.adopted,
                },
                None => failed(Some(ifindex)).unwrap_or(AttachState::Failed {
                    ifindex: Some(ifindex),
                    error: "bound but not attached".to_owned(),
                }),
            },
            None => failed(None).unwrap_or(AttachState::Waiting),
        }
    }

    pub(crate) fn status(&self) -> Status {
        let mut instances = Vec::new();
        if let Some(loaded) = &self.loaded {
            for instance in loaded.policy.instances.values() {
                if let Some(interface) = &instance.interface {
                    instances.push(InstanceStatus {
                        id: instance.id.to_string(),
                        interface: interface.clone(),
                        attach: self.attach_state(&instance.id, interface),
                    });
                }
            }
        }
        let reason = if self.loaded.is_none() && self.pinned {
            "enforcing the policy a previous secgroupd pinned (no valid rules loaded yet)"
        } else {
            "no instance binds this interface: its IP traffic is dropped"
        };
        let unbound_interfaces = self
            .hooked_interfaces()
            .into_iter()
            .filter(|i| !self.bound.contains_key(i))
            .map(|ifindex| UnboundInterface {
                ifindex,
                name: crate::iface::name_of(ifindex),
                reason: reason.to_owned(),
            })
            .collect();
        let reasons = crate::health::reasons(self);
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            rules_dir: self.settings.rules_dir.display().to_string(),
            pin_dir: self.settings.pin_dir.display().to_string(),
            policy: self.policy_source(),
            generation: self.generation,
            reloads: self.reloads,
            keep_established: self.settings.keep_established,
            last_reload: self.last_reload.clone(),
            last_error: self.last_error.clone(),
            instances,
            unbound_interfaces,
            health: Health {
                state: if reasons.is_empty() {
                    HealthState::Ok
                } else {
                    HealthState::Degraded
                },
                reasons,
            },
            owner: self.dp.owner().map(|o| PinOwner {
                pid: o.pid,
                socket: o.socket,
                since: Timestamp::from_unix_ms(o.started_unix_ms),
            }),
            abi_version: secgroup_dataplane::Dataplane::abi().version,
        }
    }

    pub(crate) fn policy_source(&self) -> PolicySource {
        match (&self.loaded, self.pinned) {
            (Some(_), _) => PolicySource::RulesDir,
            (None, true) => PolicySource::Pinned,
            (None, false) => PolicySource::None,
        }
    }

    pub(crate) fn security_groups(&self) -> Result<Vec<SecurityGroupSummary>, ApiError> {
        let Some(loaded) = &self.loaded else {
            return Ok(Vec::new());
        };
        let rules = &loaded.rules;
        Ok(rules
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
            .collect())
    }

    pub(crate) fn security_group(&self, id: &str) -> Result<SecurityGroupDetail, ApiError> {
        let known = || {
            self.loaded
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
        let loaded = self
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

        let clocks = Clocks::now(self);
        let mut hits: HashMap<(Direction, usize), Hits> = HashMap::new();
        for counter in self
            .dp
            .rule_hits()
            .map_err(internal("reading rule counters"))?
        {
            if let Some(origin) = counter.origin.as_ref().filter(|o| o.sg == sg) {
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

    pub(crate) fn instances(&self) -> Result<Vec<InstanceSummary>, ApiError> {
        let Some(loaded) = &self.loaded else {
            return Ok(Vec::new());
        };
        Ok(loaded
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
                    .map(|name| self.attach_state(&i.id, name)),
            })
            .collect())
    }

    /// The instance named `id`, or a 404 listing the known ones.
    fn find_instance(&self, id: &str) -> Result<&secgroup_policy::InstancePolicy, ApiError> {
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

    pub(crate) fn instance(&self, id: &str) -> Result<InstanceDetail, ApiError> {
        let instance = self.find_instance(id)?;
        let ifindex = self.bound_ifindex(&instance.id);
        let clocks = Clocks::now(self);
        let mut hits: HashMap<RuleOrigin, Hits> = HashMap::new();
        if let Some(ifindex) = ifindex {
            for counter in self
                .dp
                .rule_hits()
                .map_err(internal("reading rule counters"))?
            {
                if counter.ifindex == ifindex
                    && let Some(origin) = &counter.origin
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
                })
                .collect()
        };
        let verdicts = match ifindex {
            Some(ifindex) => {
                let by_reason =
                    |direction: Direction| -> Result<BTreeMap<String, Count>, ApiError> {
                        let stats = self
                            .dp
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
            ips: instance.ips.iter().map(ToString::to_string).collect(),
            security_groups: instance
                .security_groups
                .iter()
                .map(ToString::to_string)
                .collect(),
            attach: instance
                .interface
                .as_deref()
                .map(|name| self.attach_state(&instance.id, name)),
            ingress: rules_of(Direction::Ingress),
            egress: rules_of(Direction::Egress),
            verdicts,
        })
    }

    /// `None` = every interface; `Some(None)` = an instance with no
    /// interface bound here (nothing to list or flush).
    fn conntrack_scope(&self, instance: Option<&str>) -> Result<Option<Option<u32>>, ApiError> {
        match instance {
            None => Ok(None),
            Some(id) => {
                let instance = self.find_instance(id)?;
                Ok(Some(self.bound_ifindex(&instance.id)))
            }
        }
    }

    pub(crate) fn conntrack(
        &self,
        instance: Option<&str>,
        limit: usize,
    ) -> Result<ConntrackList, ApiError> {
        let scope = self.conntrack_scope(instance)?;
        if scope == Some(None) {
            return Ok(ConntrackList {
                total: 0,
                truncated: false,
                entries: Vec::new(),
            });
        }
        let now = self.dp.now_ns();
        let mut entries = self.dp.conntrack().map_err(internal("reading conntrack"))?;
        entries.retain(|(key, _)| scope.is_none_or(|s| s == Some(key.ifindex)));
        entries.sort_by_key(|(key, entry)| (key.ifindex, entry.created_ns));
        let total = entries.len();
        let entries = entries
            .into_iter()
            .take(limit)
            .map(|(key, entry)| {
                let rule = (entry.rule_pos != NO_RULE)
                    .then(|| self.dp.table_rules(entry.table))
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
                    age_ms: now.saturating_sub(entry.created_ns) / 1_000_000,
                    expires_in_ms: entry.expires_ns.saturating_sub(now) / 1_000_000,
                    rule,
                }
            })
            .collect();
        Ok(ConntrackList {
            total,
            truncated: total > limit,
            entries,
        })
    }

    pub(crate) fn flush_conntrack(
        &mut self,
        instance: Option<&str>,
    ) -> Result<FlushResult, ApiError> {
        let flushed = match self.conntrack_scope(instance)? {
            None => self.dp.flush_conntrack(None),
            Some(Some(ifindex)) => self.dp.flush_conntrack(Some(ifindex)),
            Some(None) => Ok(0),
        }
        .map_err(internal("flushing conntrack"))?;
        info!(
            instance = instance.unwrap_or("(all)"),
            flushed, "conntrack flushed"
        );
        Ok(FlushResult { flushed })
    }
}
