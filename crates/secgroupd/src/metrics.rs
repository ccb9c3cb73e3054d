//! `/metrics`: the snapshot in force and the kernel's counters in the
//! Prometheus text format (0.0.4) or OpenMetrics, encoded by
//! `prometheus-client`. Like every read it never waits for the engine:
//! [`read`] takes what the kernel counts (blocking map reads, through the
//! [`Observer`]), [`render`] turns that and an [`InForce`] into text and
//! does nothing else. Every scrape builds a fresh registry from the two:
//! counters here are the kernel's and the snapshot's, never the
//! process's own.

use std::collections::BTreeMap;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use secgroup_dataplane::abi::{IfaceStats, Reason};
use secgroup_dataplane::{ConntrackUsage, DataplaneError, Observer, RuleCount, error_chain};
use secgroup_model::Direction;

use crate::event::ApiError;
use crate::state::{InForce, RELOAD_BUCKETS_S, ReloadStats};

/// The exposition format of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what `promtool check metrics` reads.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`, for a scraper that
    /// asks for it.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else 0.0.4.
    pub fn from_accept(accept: Option<&str>) -> Format {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every kind of degraded reason `health.rs` reports: each gets a series,
/// 0 while it does not apply, so alerts need no `absent()`.
const DEGRADED_KINDS: [&str; 9] = [
    "reload-failed",
    "no-policy",
    "not-enforced",
    "lookup-failed",
    "pins-tampered",
    "kernel-diverged",
    "private-bpffs",
    "unbound-drops-all",
    "etcd-unreachable",
];

/// What the kernel counts, read at one scrape.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub rules: Vec<RuleCount>,
    /// Per bound interface and direction.
    pub verdicts: Vec<(u32, Direction, IfaceStats)>,
    pub conntrack: Option<ConntrackUsage>,
    /// Verdict events per interface.
    pub events: Vec<secgroup_dataplane::EventCounts>,
}

/// Reads the counters of every interface the snapshot binds. Blocking.
pub fn read(now: &InForce, observer: &Observer) -> Result<Counts, DataplaneError> {
    let mut verdicts = Vec::new();
    for ifindex in now.bound.keys() {
        for direction in Direction::ALL {
            verdicts.push((
                *ifindex,
                direction,
                observer.interface_stats(*ifindex, direction)?,
            ));
        }
    }
    Ok(Counts {
        rules: observer.rule_counts()?,
        verdicts,
        conntrack: Some(observer.conntrack_usage()?),
        events: observer.event_counts()?,
    })
}

/// [`read`] then [`render`], as the API answers it. Blocking.
pub fn scrape(now: &InForce, observer: &Observer, format: Format) -> Result<String, ApiError> {
    let counts = read(now, observer)
        .map_err(|e| ApiError::internal(format!("reading the counters: {}", error_chain(&e))))?;
    render(now, &counts, format)
        .map_err(|e| ApiError::internal(format!("encoding the metrics: {e}")))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RuleLabels {
    instance: String,
    group: String,
    direction: &'static str,
    index: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    instance: String,
    direction: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Labelled series in the order given (`Family` hashes them): a scrape
/// reads the same from one time to the next.
#[derive(Debug)]
struct Series<L> {
    kind: MetricType,
    series: Vec<(L, u64)>,
}

impl<L> Series<L> {
    fn counters(series: impl IntoIterator<Item = (L, u64)>) -> Series<L> {
        Series {
            kind: MetricType::Counter,
            series: series.into_iter().collect(),
        }
    }

    fn gauges(series: impl IntoIterator<Item = (L, u64)>) -> Series<L> {
        Series {
            kind: MetricType::Gauge,
            series: series.into_iter().collect(),
        }
    }
}

impl<L: EncodeLabelSet + std::fmt::Debug> EncodeMetric for Series<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, value) in &self.series {
            let mut series = encoder.encode_family(labels)?;
            if self.kind == MetricType::Counter {
                series.encode_counter::<NoLabelSet, _, u64>(value, None)?;
            } else {
                series.encode_gauge(value)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// A histogram kept elsewhere (the snapshot's [`ReloadStats`]), encoded
/// as it is: `prometheus-client`'s own only grows by observation.
#[derive(Debug)]
struct ReloadDurations(ReloadStats);

impl EncodeMetric for ReloadDurations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        let buckets: Vec<(f64, u64)> = RELOAD_BUCKETS_S
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(stats.buckets.iter().copied())
            .collect();
        let count = stats.buckets.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(stats.total_s, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn gauge<T: TryInto<i64>>(value: T) -> ConstGauge {
    ConstGauge::new(value.try_into().unwrap_or(i64::MAX))
}

/// The text of `/metrics` for this snapshot and these counts.
pub fn render(now: &InForce, counts: &Counts, format: Format) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("secgroup");
    register_rules(&mut registry, now, counts);
    register_verdicts(&mut registry, now, counts);
    register_events(&mut registry, now, counts);
    register_daemon(&mut registry, now, counts);
    let mut text = String::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
    }
    Ok(text)
}

/// Per rule of every bound instance, 0 until hit: the raw counters
/// matched to the rules' origins, as `views.rs` does.
fn register_rules(registry: &mut Registry, now: &InForce, counts: &Counts) {
    let mut rules: BTreeMap<RuleLabels, (u64, u64)> = BTreeMap::new();
    let labels =
        |instance: &secgroup_model::InstanceId, origin: &secgroup_policy::RuleOrigin| RuleLabels {
            instance: instance.to_string(),
            group: origin.sg.to_string(),
            direction: origin.direction.as_str(),
            index: origin.index,
        };
    if let Some(loaded) = &now.loaded {
        for id in now.bound.values() {
            let Some(instance) = loaded.policy.instances.get(id) else {
                continue;
            };
            for direction in Direction::ALL {
                for rule in instance.rules(direction).rules.iter() {
                    rules.entry(labels(id, &rule.origin)).or_default();
                }
            }
        }
    }
    for count in &counts.rules {
        if let (Some(id), Some(origin)) = (
            now.bound.get(&count.ifindex),
            now.rule_origins.get(&count.rule_uid),
        ) {
            let sum = rules.entry(labels(id, origin)).or_default();
            sum.0 += count.packets;
            sum.1 += count.bytes;
        }
    }
    let packets = Series::counters(rules.iter().map(|(l, (p, _))| (l.clone(), *p)));
    let bytes = Series::counters(rules.into_iter().map(|(l, (_, b))| (l, b)));
    registry.register(
        "rule_packets",
        "Packets a rule decided, per instance (index: the rule's position in its group's list of that direction)",
        packets,
    );
    registry.register_with_unit(
        "rule",
        "Bytes of the packets a rule decided, per instance",
        Unit::Bytes,
        bytes,
    );
}

/// Per bound instance, direction and verdict reason, every reason.
fn register_verdicts(registry: &mut Registry, now: &InForce, counts: &Counts) {
    let mut packets = Vec::new();
    let mut bytes = Vec::new();
    for (ifindex, direction, stats) in &counts.verdicts {
        let Some(instance) = now.bound.get(ifindex) else {
            continue;
        };
        for reason in Reason::ALL {
            let labels = VerdictLabels {
                instance: instance.to_string(),
                direction: direction.as_str(),
                reason: reason.as_str(),
            };
            packets.push((labels.clone(), stats.packets[reason as usize]));
            bytes.push((labels, stats.bytes[reason as usize]));
        }
    }
    let packets = Series::counters(packets);
    let bytes = Series::counters(bytes);
    registry.register(
        "verdict_packets",
        "Packets judged, per instance, direction and verdict reason",
        packets,
    );
    registry.register_with_unit(
        "verdict",
        "Bytes of the packets judged, per instance, direction and verdict reason",
        Unit::Bytes,
        bytes,
    );
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    instance: String,
    direction: &'static str,
}

/// Per bound instance: events reported and suppressed, would-drops (all
/// `would-drop-*` reasons together) and whether it is in audit mode.
fn register_events(registry: &mut Registry, now: &InForce, counts: &Counts) {
    let instance = |id: &secgroup_model::InstanceId| InstanceLabels {
        instance: id.to_string(),
    };
    let mut emitted = Vec::new();
    let mut suppressed = Vec::new();
    let mut audit = Vec::new();
    for (ifindex, id) in &now.bound {
        let c = counts.events.iter().find(|c| c.ifindex == *ifindex);
        emitted.push((instance(id), c.map_or(0, |c| c.emitted)));
        suppressed.push((instance(id), c.map_or(0, |c| c.suppressed + c.lost)));
        let audited = now
            .loaded
            .as_ref()
            .and_then(|l| l.policy.instances.get(id))
            .is_some_and(|i| i.enforcement == secgroup_model::Enforcement::Audit);
        audit.push((instance(id), u64::from(audited)));
    }
    let would_drop = counts
        .verdicts
        .iter()
        .filter_map(|(ifindex, direction, stats)| {
            let id = now.bound.get(ifindex)?;
            let packets = Reason::ALL
                .iter()
                .filter(|r| r.is_would_drop())
                .map(|r| stats.packets[*r as usize])
                .sum();
            let labels = DirectionLabels {
                instance: id.to_string(),
                direction: direction.as_str(),
            };
            Some((labels, packets))
        });
    registry.register(
        "events",
        "Verdict events reported, per instance (logged rules, log modes, audit)",
        Series::counters(emitted),
    );
    registry.register(
        "events_suppressed",
        "Verdict events not reported, per instance: over its rate limit (--log-rate, --log-burst) or no room left for the reader",
        Series::counters(suppressed),
    );
    registry.register(
        "would_drop_packets",
        "Packets audit mode passed that its rules or the default drop, per instance and direction",
        Series::counters(would_drop.collect::<Vec<_>>()),
    );
    registry.register(
        "audit_mode",
        "1 for an instance in audit mode (its rules' drops pass), else 0",
        Series::gauges(audit),
    );
}

/// Conntrack, reloads, interfaces, health.
fn register_daemon(registry: &mut Registry, now: &InForce, counts: &Counts) {
    if let Some(ct) = counts.conntrack {
        registry.register(
            "conntrack_entries",
            "Entries the conntrack table holds (expired ones keep their slot until reused)",
            gauge(ct.entries),
        );
        registry.register(
            "conntrack_capacity",
            "Entries the conntrack table can hold; past it the least recently used go",
            gauge(ct.capacity),
        );
    }
    let stats = &now.reload_stats;
    registry.register(
        "reloads",
        "Reloads since start, failed ones included",
        ConstCounter::new(now.reloads),
    );
    registry.register(
        "reload_failures",
        "Reloads since start that changed nothing because they failed",
        ConstCounter::new(stats.failures),
    );
    registry.register_with_unit(
        "reload_duration",
        "How long reloads took",
        Unit::Seconds,
        ReloadDurations(stats.clone()),
    );
    if let Some(last) = &now.last_reload {
        registry.register_with_unit(
            "last_reload_duration",
            "How long the last reload took",
            Unit::Seconds,
            ConstGauge::<f64>::new(last.duration_ms / 1000.0),
        );
    }
    if let Some(at) = &stats.last_success {
        registry.register_with_unit(
            "last_successful_reload_timestamp",
            "When the last successful reload finished, since the epoch",
            Unit::Seconds,
            ConstGauge::<f64>::new(at.unix_ms as f64 / 1000.0),
        );
    }
    registry.register(
        "generation",
        "The policy generation in force (kept in the pins; only grows)",
        gauge(now.generation),
    );

    let interfaces = Series::gauges(
        [
            ("attached", now.attached()),
            ("guarded", now.guarded.len()),
            ("failed", now.failures.len()),
            ("unbound", now.unbound().len()),
            ("unprotected", now.unprotected.len()),
        ]
        .map(|(state, n)| (StateLabels { state }, n as u64)),
    );
    registry.register(
        "interfaces",
        "Interfaces by state: attached (bound, hooked), guarded (hooked for a pattern, unbound), \
         failed (bound, attach failed), unbound (hooked, nothing binds or guards it: drops IP), \
         unprotected (VM-like, not hooked: not filtered)",
        interfaces,
    );

    let reasons = crate::health::reasons(now);
    registry.register(
        "healthy",
        "1 when every bound interface enforces its policy as reported, 0 when degraded",
        gauge(u8::from(reasons.is_empty())),
    );
    let mut kinds: BTreeMap<String, u64> = DEGRADED_KINDS
        .iter()
        .map(|kind| ((*kind).to_owned(), 0))
        .collect();
    for reason in &reasons {
        *kinds.entry(reason.kind.clone()).or_default() += 1;
    }
    let degraded = Series::gauges(kinds.into_iter().map(|(kind, n)| (KindLabels { kind }, n)));
    registry.register(
        "degraded_reasons",
        "Reasons the daemon is degraded, by kind (see the status's health)",
        degraded,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use secgroup_api::{ReloadOutcome, ReloadReport, ReloadTrigger, Timestamp};
    use secgroup_model::{InstanceId, SgId};
    use secgroup_policy::RuleOrigin;

    use super::*;

    fn report(outcome: ReloadOutcome, duration_ms: f64) -> ReloadReport {
        ReloadReport {
            trigger: ReloadTrigger::Api,
            outcome,
            finished: Timestamp::from_unix_ms(1_700_000_000_500),
            duration_ms,
            generation: 3,
            summary: String::new(),
            warnings: Vec::new(),
        }
    }

    fn snapshot() -> InForce {
        let id = |s: &str| InstanceId::new(s).unwrap_or_else(|| panic!("{s}"));
        let sg = SgId::new("sg-web").unwrap_or_else(|| panic!("sg-web"));
        let mut now = InForce {
            generation: 3,
            reloads: 2,
            pinned: true,
            ..InForce::default()
        };
        now.bound.insert(7, id("ins-a"));
        now.guarded.insert(9, "tap9".into());
        let origin = |index: usize| RuleOrigin {
            sg: sg.clone(),
            direction: Direction::Egress,
            index,
            key: secgroup_policy::RuleKey::Content {
                digest: index as u64,
                nth: 0,
            },
        };
        now.rule_origins = Arc::new(HashMap::from([(11, origin(0)), (12, origin(1))]));
        now.reload_stats
            .record(&report(ReloadOutcome::Applied, 3.0));
        let failed = report(ReloadOutcome::Failed, 20_000.0);
        now.reload_stats.record(&failed);
        now.last_reload = Some(failed);
        now.last_error = Some(secgroup_api::ReloadError {
            at: Timestamp::from_unix_ms(1_700_000_001_000),
            message: "bad".into(),
            diagnostics: Vec::new(),
        });
        now
    }

    fn counts() -> Counts {
        let count = |ifindex, rule_uid, packets, bytes| RuleCount {
            ifindex,
            rule_uid,
            packets,
            bytes,
            last_hit_ns: 0,
        };
        let mut stats = IfaceStats::default();
        stats.packets[Reason::ALL[0] as usize] = 4;
        stats.bytes[Reason::ALL[0] as usize] = 400;
        Counts {
            // uid 12 counted twice on one interface sums; interface 8 is
            // bound to nothing and uid 13 has no origin: both left out.
            rules: vec![
                count(7, 11, 5, 500),
                count(7, 12, 1, 60),
                count(7, 12, 2, 120),
                count(8, 11, 9, 900),
                count(7, 13, 9, 900),
            ],
            verdicts: vec![(7, Direction::Egress, stats)],
            conntrack: Some(ConntrackUsage {
                entries: 17,
                capacity: 65536,
            }),
            events: vec![secgroup_dataplane::EventCounts {
                ifindex: 7,
                emitted: 5,
                suppressed: 30,
                lost: 2,
            }],
        }
    }

    fn lines(format: Format) -> Vec<String> {
        render(&snapshot(), &counts(), format)
            .unwrap_or_else(|e| panic!("{e}"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn samples() {
        let lines = lines(Format::Prometheus);
        let reason = Reason::ALL[0].as_str();
        for expected in [
            "# TYPE secgroup_rule_packets_total counter",
            r#"secgroup_rule_packets_total{instance="ins-a",group="sg-web",direction="egress",index="0"} 5"#,
            r#"secgroup_rule_packets_total{instance="ins-a",group="sg-web",direction="egress",index="1"} 3"#,
            r#"secgroup_rule_bytes_total{instance="ins-a",group="sg-web",direction="egress",index="1"} 180"#,
            &format!(
                r#"secgroup_verdict_packets_total{{instance="ins-a",direction="egress",reason="{reason}"}} 4"#
            ),
            &format!(
                r#"secgroup_verdict_bytes_total{{instance="ins-a",direction="egress",reason="{reason}"}} 400"#
            ),
            "secgroup_conntrack_entries 17",
            r#"secgroup_events_total{instance="ins-a"} 5"#,
            r#"secgroup_events_suppressed_total{instance="ins-a"} 32"#,
            r#"secgroup_would_drop_packets_total{instance="ins-a",direction="egress"} 0"#,
            r#"secgroup_audit_mode{instance="ins-a"} 0"#,
            "secgroup_conntrack_capacity 65536",
            "secgroup_reloads_total 2",
            "secgroup_reload_failures_total 1",
            "# TYPE secgroup_reload_duration_seconds histogram",
            r#"secgroup_reload_duration_seconds_bucket{le="0.001"} 0"#,
            r#"secgroup_reload_duration_seconds_bucket{le="0.005"} 1"#,
            r#"secgroup_reload_duration_seconds_bucket{le="10"} 1"#,
            r#"secgroup_reload_duration_seconds_bucket{le="+Inf"} 2"#,
            "secgroup_reload_duration_seconds_sum 20.003",
            "secgroup_reload_duration_seconds_count 2",
            "secgroup_last_reload_duration_seconds 20.0",
            "secgroup_last_successful_reload_timestamp_seconds 1700000000.5",
            "secgroup_generation 3",
            r#"secgroup_interfaces{state="attached"} 0"#,
            r#"secgroup_interfaces{state="guarded"} 1"#,
            "secgroup_healthy 0",
            r#"secgroup_degraded_reasons{kind="reload-failed"} 1"#,
            r#"secgroup_degraded_reasons{kind="not-enforced"} 0"#,
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "missing {expected:?} in:\n{}",
                lines.join("\n")
            );
        }
        let rule_series = lines
            .iter()
            .filter(|l| l.starts_with("secgroup_rule_packets_total{"))
            .count();
        assert_eq!(rule_series, 2, "{lines:#?}");
    }

    #[test]
    fn openmetrics() {
        let lines = lines(Format::OpenMetrics);
        assert_eq!(lines.last().map(String::as_str), Some("# EOF"));
        assert!(lines.iter().any(|l| l == "# TYPE secgroup_reloads counter"));
        assert!(
            lines
                .iter()
                .any(|l| l == "# UNIT secgroup_reload_duration_seconds seconds")
        );
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
