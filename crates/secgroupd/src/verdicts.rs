//! Verdict events: a task reads the kernel's ring buffer as it becomes
//! readable, resolves each event against the snapshot in force (interface
//! → instance, rule uid → group, index and description), logs it as one
//! structured line (target `secgroup::event`) and publishes it on a
//! broadcast channel that `GET /v1/events` subscribers read.
//!
//! Nothing here waits for a reader: the broadcast channel drops the oldest
//! events for a subscriber that falls behind (it learns how many), and the
//! kernel counts what the ring buffer had no room for.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secgroup_api::{EventFlow, EventRule, EventVerdict, Timestamp, VerdictEvent};
use secgroup_dataplane::{EventStream, abi};
use secgroup_model::{Protocol, proto};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::engine::instance_uid;
use crate::state::InForce;
use crate::wire;

/// Events a subscriber may fall behind by before it loses the oldest.
pub const SUBSCRIBER_BACKLOG: usize = 4096;

/// Where resolved events are published.
pub type Publisher = broadcast::Sender<Arc<VerdictEvent>>;

pub fn channel() -> Publisher {
    broadcast::channel(SUBSCRIBER_BACKLOG).0
}

/// Reads `stream` until the process exits.
pub async fn run(
    stream: EventStream,
    snapshots: watch::Receiver<Arc<InForce>>,
    publisher: Publisher,
) {
    // SAFETY: the stream owns its descriptor (a duplicate of the pinned
    // ring buffer's) and always returns that one; it moves into the
    // AsyncFd and is closed only when the AsyncFd is dropped.
    let registered = unsafe { AsyncFd::register_with_interest(stream, Interest::READABLE) };
    let mut ready = match registered {
        Ok(ready) => ready,
        Err(e) => {
            warn!(error = %e, "cannot wait for verdict events: none will be reported");
            return;
        }
    };
    loop {
        let mut guard = match ready.readable_mut().await {
            Ok(guard) => guard,
            Err(e) => {
                warn!(error = %e, "waiting for verdict events failed: none will be reported");
                return;
            }
        };
        let now = snapshots.borrow().clone();
        guard.get_inner_mut().drain(|raw| {
            let event = resolve(&now, &raw);
            log(&event);
            // No subscriber is not an error: the log has it.
            let _ = publisher.send(Arc::new(event));
        });
        // Drained to empty: wait for the next wake-up.
        guard.clear_ready();
    }
}

fn log(event: &VerdictEvent) {
    let flow = event.flow.as_ref();
    let rule = event.rule.as_ref();
    info!(
        target: "secgroup::event",
        time = %event.time.at,
        instance = event.instance.as_deref(),
        interface = event.interface.as_deref(),
        ifindex = event.ifindex,
        direction = event.direction.as_str(),
        verdict = event.verdict.as_str(),
        reason = %event.reason,
        protocol = flow.map(|f| f.protocol.as_str()),
        src = flow.map(|f| f.src.to_string()),
        dst = flow.map(|f| f.dst.to_string()),
        src_port = flow.and_then(|f| f.src_port),
        dst_port = flow.and_then(|f| f.dst_port),
        icmp_type = flow.and_then(|f| f.icmp_type),
        icmp_code = flow.and_then(|f| f.icmp_code),
        security_group = rule.map(|r| r.security_group.as_str()),
        rule_index = rule.map(|r| r.index),
        rule_key = rule.map(|r| r.key.as_str()),
        rule_description = rule.and_then(|r| r.description.as_deref()),
        suppressed = event.suppressed,
        "{event}"
    );
}

/// The event as the API shows it, named through `now`.
pub fn resolve(now: &InForce, raw: &secgroup_dataplane::VerdictEvent) -> VerdictEvent {
    let instance = now.bound.get(&raw.ifindex).cloned().or_else(|| {
        // An interface this daemon has not bound (yet): the uid the
        // binding wrote says whose it was.
        let loaded = now.loaded.as_ref()?;
        loaded
            .policy
            .instances
            .keys()
            .find(|id| instance_uid(id) == raw.instance_uid)
            .cloned()
    });
    let interface = now
        .hooks
        .get(&raw.ifindex)
        .map(|h| h.name.clone())
        .or_else(|| now.guarded.get(&raw.ifindex).cloned())
        .or_else(|| {
            let id = instance.as_ref()?;
            now.loaded
                .as_ref()?
                .policy
                .instances
                .get(id)?
                .interface
                .clone()
        });
    VerdictEvent {
        time: timestamp(raw.time),
        instance: instance.map(|id| id.to_string()),
        interface,
        ifindex: raw.ifindex,
        direction: wire::api_direction(raw.direction),
        verdict: match raw.verdict {
            abi::EventVerdict::Accept => EventVerdict::Accept,
            abi::EventVerdict::Drop => EventVerdict::Drop,
            abi::EventVerdict::WouldDrop => EventVerdict::WouldDrop,
        },
        reason: raw.reason.as_str().to_owned(),
        flow: raw.flow.as_ref().map(flow),
        rule: rule(now, raw),
        suppressed: raw.suppressed,
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_ms(ms)
}

fn flow(f: &secgroup_dataplane::EventFlow) -> EventFlow {
    let ported = matches!(f.protocol, proto::TCP | proto::UDP);
    EventFlow {
        protocol: Protocol::Number(f.protocol).to_string(),
        src: f.src,
        dst: f.dst,
        src_port: ported.then_some(f.src_port),
        dst_port: ported.then_some(f.dst_port),
        icmp_type: f.icmp.map(|(t, _)| t),
        icmp_code: f.icmp.map(|(_, c)| c),
    }
}

fn rule(now: &InForce, raw: &secgroup_dataplane::VerdictEvent) -> Option<EventRule> {
    let origin = now.rule_origins.get(&raw.rule_uid?)?;
    let description = now.loaded.as_ref().and_then(|loaded| {
        let group = loaded.rules.security_groups.get(&origin.sg)?;
        group
            .rules(origin.direction)
            .get(origin.index)?
            .description
            .clone()
    });
    Some(EventRule {
        security_group: origin.sg.to_string(),
        direction: wire::api_direction(origin.direction),
        index: origin.index,
        key: origin.key.to_string(),
        description,
        position: raw.rule_position.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::time::Duration;

    use secgroup_model::{Direction, Limits, SourceFile};
    use secgroup_policy::RuleOrigin;

    fn snapshot() -> InForce {
        let group = r#"{"security_groups": [{"id": "sg-db", "ingress": [
  {"action": "accept", "protocol": "tcp", "port": 5432, "remote": "198.51.100.0/24"},
  {"action": "drop", "protocol": "tcp", "port": 5432, "id": "office", "description": "deny the office", "log": true}
]}],
"instances": [{"id": "ins-db-1", "interface": "tap-db1", "ips": ["198.51.100.10"], "security_groups": ["sg-db"]}]}"#;
        let sources = [SourceFile {
            name: "r.json",
            bytes: group.as_bytes(),
        }];
        let rules = secgroup_model::load(&sources, &Limits::default())
            .unwrap_or_else(|e| panic!("fixture: {e}"));
        let policy = secgroup_policy::compile(&rules);
        let instance = policy.instances.values().next().unwrap_or_else(|| panic!());
        let origin: RuleOrigin = instance.ingress.rules[1].origin.clone();
        let id = instance.id.clone();
        InForce {
            loaded: Some(Arc::new(crate::rules::Loaded {
                rules,
                policy,
                files: Vec::new(),
                timings: crate::rules::LoadTimings::default(),
                warnings: crate::rules::Warnings::default(),
            })),
            bound: BTreeMap::from([(7, id)]),
            rule_origins: Arc::new(HashMap::from([(99, origin)])),
            ..InForce::default()
        }
    }

    fn raw(rule_uid: Option<u32>, reason: abi::Reason) -> secgroup_dataplane::VerdictEvent {
        secgroup_dataplane::VerdictEvent {
            time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            boot_ns: 0,
            ifindex: 7,
            instance_uid: 0,
            direction: Direction::Ingress,
            verdict: abi::EventVerdict::Drop,
            reason,
            table: 3,
            rule_position: rule_uid.map(|_| 1),
            rule_uid,
            flow: Some(secgroup_dataplane::EventFlow {
                src: "203.0.113.9".parse().unwrap_or_else(|e| panic!("{e}")),
                dst: "198.51.100.10".parse().unwrap_or_else(|e| panic!("{e}")),
                protocol: proto::TCP,
                src_port: 51234,
                dst_port: 5432,
                icmp: None,
            }),
            suppressed: 0,
        }
    }

    #[test]
    fn events_name_instance_and_rule() {
        let now = snapshot();
        let event = resolve(&now, &raw(Some(99), abi::Reason::DropRule));
        assert_eq!(
            event.to_string(),
            "ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by sg-db ingress #1 \"deny the office\""
        );
        assert_eq!(event.time.unix_ms, 1_700_000_000_123);
        let rule = event.rule.unwrap_or_else(|| panic!("no rule"));
        assert_eq!((rule.key.as_str(), rule.position), ("office", 1));
        assert_eq!(event.interface.as_deref(), Some("tap-db1"));

        let default = resolve(&now, &raw(None, abi::Reason::DropDefault));
        assert_eq!(
            default.to_string(),
            "ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by default"
        );
        // A rule uid the snapshot does not know (a table being replaced):
        // the event still comes, without a rule.
        let unknown = resolve(&now, &raw(Some(12345), abi::Reason::DropRule));
        assert_eq!(unknown.rule, None);
        assert_eq!(unknown.reason, "drop-rule");
    }
}
