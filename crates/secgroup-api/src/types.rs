//! Request and response bodies. Field names are the JSON keys; enums are
//! kebab-case strings. Ids, addresses and rules travel as the strings an
//! operator writes: this crate does not depend on the rule model.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// For an unknown id: the ids that do exist, so a typo is easy to spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known: Option<Vec<String>>,
}

/// A point in time, for people and for programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// RFC 3339, UTC.
    pub at: String,
    pub unix_ms: u64,
}

impl Timestamp {
    pub fn from_unix_ms(unix_ms: u64) -> Timestamp {
        Timestamp {
            at: crate::rfc3339(unix_ms),
            unix_ms,
        }
    }
}

// ---- /v1/status ---------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The daemon's version.
    pub version: String,
    pub rules_dir: String,
    pub pin_dir: String,
    /// Which policy the kernel enforces.
    pub policy: PolicySource,
    /// Bumped every time a new policy is applied; a reload that changes
    /// nothing leaves it alone.
    pub generation: u64,
    /// Reload attempts finished, successful or not.
    pub reloads: u64,
    pub keep_established: bool,
    pub last_reload: Option<ReloadReport>,
    /// The error of the latest failed reload, until a reload succeeds.
    pub last_error: Option<ReloadError>,
    /// Every instance of the policy that lives on this host.
    pub instances: Vec<InstanceStatus>,
    /// Interfaces that carry secgroup's hooks but no instance binds: they
    /// drop all IP traffic (fail closed) until bound again or removed.
    pub unbound_interfaces: Vec<UnboundInterface>,
    /// Interfaces hooked because their name matches `--interface-pattern`
    /// that no instance binds yet: they drop all IP traffic.
    pub guarded_interfaces: Vec<GuardedInterface>,
    /// VM-like interfaces (tun, veth, macvtap) that nothing hooks and no
    /// pattern covers: their traffic passes unfiltered.
    pub unprotected_interfaces: Vec<UnprotectedInterface>,
    /// `ok`, or `degraded` with every reason.
    pub health: Health,
    /// Who owns the pin directory (holds its lock): this daemon.
    pub owner: Option<PinOwner>,
    /// The layout version of the pins this daemon reads and writes.
    pub abi_version: u32,
    /// Instances of this host in audit mode: their rules' drops pass.
    #[serde(default)]
    pub audit_instances: Vec<String>,
    /// Where the rules come from: the rules directory, etcd, or both
    /// (absent from older daemons).
    #[serde(default)]
    pub source: Option<SourceStatus>,
}

/// Where the daemon's rules come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `dir`, `etcd`, or `etcd+dir` (etcd and host-local rule files).
    pub kind: String,
    /// This host's name: instances whose `"host"` names another host
    /// only lend their addresses here.
    pub host: String,
    /// The rules directory read, if any.
    pub rules_dir: Option<String>,
    pub etcd: Option<EtcdStatus>,
}

/// The etcd side of the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtcdStatus {
    pub endpoints: Vec<String>,
    pub prefix: String,
    /// Whether the last attempt to reach etcd succeeded.
    pub connected: bool,
    /// Since when etcd has been unreachable (while it is).
    pub unreachable_since: Option<Timestamp>,
    /// Why, while it is.
    pub error: Option<String>,
    /// The etcd revision whose content is in force.
    pub revision: Option<i64>,
    /// The latest revision of the prefix this daemon has received.
    pub latest_revision: Option<i64>,
    /// Revisions received but not in force: 0 when up to date (more while
    /// a reload runs, or while the latest revision is rejected).
    pub behind: i64,
    /// From receiving the revision in force to enforcing it, ms.
    pub lag_ms: Option<f64>,
    /// Keys under the prefix at the latest revision.
    pub keys: usize,
}

/// `enforce` unless the answer says otherwise (older daemons).
fn enforce() -> String {
    "enforce".to_owned()
}

/// `none` unless the answer says otherwise (older daemons).
fn log_none() -> String {
    "none".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedInterface {
    pub ifindex: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnprotectedInterface {
    pub ifindex: u32,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub state: HealthState,
    /// Why it is degraded; empty when ok.
    pub reasons: Vec<DegradedReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthState {
    Ok,
    Degraded,
}

/// One reason the daemon is not fully enforcing what it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DegradedReason {
    /// A stable word for scripts: `reload-failed`, `not-enforced`,
    /// `attach-failed`, `pins-tampered`, `unbound-drops-all`,
    /// `no-policy`, `kernel-diverged`, `private-bpffs`.
    pub kind: String,
    /// The same for people, naming what is affected.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinOwner {
    pub pid: u64,
    pub socket: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicySource {
    /// The rules directory, as this daemon last loaded it.
    RulesDir,
    /// What a previous daemon pinned: this one has not loaded a valid rules
    /// directory yet and keeps enforcing that.
    Pinned,
    /// Nothing: no valid rules and nothing pinned.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadTrigger {
    Startup,
    /// A change in the rules directory.
    Watch,
    /// SIGHUP.
    Signal,
    /// `POST /v1/reload`.
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadOutcome {
    /// A new policy is in force.
    Applied,
    /// The rules compile to the policy already in force: no map was
    /// touched.
    Unchanged,
    /// The rules directory was rejected; the previous policy stays.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub trigger: ReloadTrigger,
    pub outcome: ReloadOutcome,
    pub finished: Timestamp,
    pub duration_ms: f64,
    /// The generation in force after this reload.
    pub generation: u64,
    /// What changed (`groups +1 -0 ~2, ...`), `no changes`, or the error.
    pub summary: String,
    /// What is valid but questionable in the rules now in force, one
    /// `file:line:column: path: message` each, as `secgroupctl validate`
    /// prints them; empty after a failed reload (the error says why).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadError {
    pub at: Timestamp,
    /// One line.
    pub message: String,
    /// For invalid rule files: one `file:line:column: path: message` per
    /// problem, as `secgroupctl validate` prints them.
    pub diagnostics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub interface: String,
    /// `enforce`, or `audit`: drops by its rules pass (would-drop).
    #[serde(default = "enforce")]
    pub enforcement: String,
    /// `none`, `drops` or `all`: which verdicts it reports as events.
    #[serde(default = "log_none")]
    pub log: String,
    #[serde(flatten)]
    pub attach: AttachState,
}

/// Whether an instance's interface carries the hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AttachState {
    Attached {
        ifindex: u32,
        /// `driver` or `generic`.
        xdp_mode: String,
        /// The hooks were left pinned by a previous daemon and taken over.
        adopted: bool,
    },
    /// The interface does not exist (yet): attached as soon as it appears.
    Waiting,
    /// The kernel refused; retried on the next link event or reload.
    Failed { ifindex: Option<u32>, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnboundInterface {
    pub ifindex: u32,
    /// `None` when the name could not be looked up.
    pub name: Option<String>,
    pub reason: String,
}

// ---- /v1/security-groups ------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSummary {
    pub id: String,
    pub name: Option<String>,
    pub ingress_rules: usize,
    pub egress_rules: usize,
    /// Instances bound to it, local or not.
    pub bound_instances: Vec<String>,
    /// Groups with a rule whose remote is this group.
    pub referenced_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupDetail {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub ingress: Vec<GroupRule>,
    pub egress: Vec<GroupRule>,
    pub bound_instances: Vec<String>,
    pub referenced_by: Vec<String>,
}

/// One rule of a group, as written and as resolved, with its hits summed
/// over every interface that enforces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRule {
    /// 0-based, in the file's order.
    pub index: usize,
    pub action: String,
    /// As written: `tcp:80,443`, `all`, or a service set id.
    pub traffic: String,
    /// As written: a CIDR, a range, `anywhere`, or a set or group id.
    pub remote: String,
    pub description: Option<String>,
    /// Resolved services (`tcp:80,443`, `[udp:53, tcp:53]`).
    pub services: String,
    /// Resolved remote prefixes.
    pub remotes: Vec<String>,
    pub hits: Hits,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hits {
    pub packets: u64,
    pub bytes: u64,
    pub last_hit: Option<Timestamp>,
}

// ---- /v1/instances ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSummary {
    pub id: String,
    /// `None` for instances on other hosts.
    pub interface: Option<String>,
    pub ips: Vec<String>,
    /// In binding order.
    pub security_groups: Vec<String>,
    /// `None` for instances on other hosts.
    pub attach: Option<AttachState>,
    #[serde(default = "enforce")]
    pub enforcement: String,
    #[serde(default = "log_none")]
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDetail {
    pub id: String,
    pub interface: Option<String>,
    pub mac: Option<String>,
    pub ips: Vec<String>,
    /// What port security lets the instance send from: `off`, or `mac ...;
    /// sources ...` (its addresses and allowed address pairs).
    #[serde(default)]
    pub port_security: String,
    pub security_groups: Vec<String>,
    pub attach: Option<AttachState>,
    /// `enforce`, or `audit`: drops by its rules pass (would-drop).
    #[serde(default = "enforce")]
    pub enforcement: String,
    /// `none`, `drops` or `all`.
    #[serde(default = "log_none")]
    pub log: String,
    /// Verdict events of its interface, when attached.
    #[serde(default)]
    pub events: Option<EventCounts>,
    /// The effective first-match list, rules of every group concatenated
    /// in binding order, with this interface's hits.
    pub ingress: Vec<EffectiveRule>,
    pub egress: Vec<EffectiveRule>,
    /// Packets per verdict reason, for an attached interface.
    pub verdicts: Option<Verdicts>,
}

/// Verdict events of one interface since its counters were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventCounts {
    /// Reported (written to the ring buffer).
    pub emitted: u64,
    /// Not reported: over the rate limit, or no room in the ring buffer.
    pub suppressed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveRule {
    /// 0-based position in the concatenated list.
    pub position: usize,
    pub action: String,
    pub services: String,
    pub remotes: Vec<String>,
    pub origin: RuleRef,
    pub hits: Hits,
    /// The rule reports what it decides (`"log": true`).
    #[serde(default)]
    pub log: bool,
}

/// Rule `index` of `direction` in `security_group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub security_group: String,
    pub direction: Direction,
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Reason (`accept-rule`, `drop-default`, ...) → counts; reasons never
    /// seen are left out.
    pub ingress: BTreeMap<String, Count>,
    pub egress: BTreeMap<String, Count>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// To the instance.
    Ingress,
    /// From the instance.
    Egress,
}

// ---- /v1/conntrack ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackList {
    /// Live entries matching the query, before the limit.
    pub total: usize,
    pub truncated: bool,
    pub entries: Vec<ConntrackEntry>,
}

/// One tracked flow, seen from the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackEntry {
    pub instance: Option<String>,
    pub ifindex: u32,
    pub protocol: String,
    pub local: IpAddr,
    /// For ICMP echo: the echo id.
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Who opened the flow.
    pub direction: Direction,
    pub state: String,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub age_ms: u64,
    pub expires_in_ms: u64,
    /// The rule that accepted the flow, when the daemon knows its table.
    pub rule: Option<RuleRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushResult {
    pub flushed: usize,
}

// ---- /v1/trace ----------------------------------------------------------

/// "What would happen to this packet": by default one packet that opens a
/// flow (a TCP SYN, a UDP datagram, an echo request); with a fixed
/// `source_port` (or `icmp_id`) and `tcp_flags`, any packet of a flow,
/// one already tracked included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    pub instance: String,
    pub direction: Direction,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `gre` or a protocol number.
    pub protocol: String,
    /// The other end: the source of an ingress packet, the destination of
    /// an egress one.
    pub remote: IpAddr,
    /// Destination port; required for tcp and udp, refused otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    /// The instance's address; defaults to its first of the remote's
    /// family. An address that is not the instance's traces a spoofed
    /// source (egress).
    #[serde(default)]
    pub local: Option<IpAddr>,
    /// Egress only: the frame's source MAC, `52:54:00:12:34:56`. Defaults
    /// to the instance's `mac` (a genuine frame); another one traces a
    /// spoofed MAC.
    #[serde(default)]
    pub source_mac: Option<String>,
    /// Source port (tcp and udp only): the remote's port for ingress, the
    /// instance's for egress. Default: a fresh one from 61000-65535 that
    /// no tracked flow uses, so the packet starts a new flow. A given one
    /// may name a tracked flow (see `TraceResponse::conntrack`).
    #[serde(default)]
    pub source_port: Option<u16>,
    /// icmp and icmpv6 only: the message type (default: echo request, 8
    /// or 128) and code (default 0). Error messages (they quote another
    /// flow's packet) are refused.
    #[serde(default)]
    pub icmp_type: Option<u8>,
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// The echo id of an echo request or reply: like `source_port`.
    #[serde(default)]
    pub icmp_id: Option<u16>,
    /// tcp only: the flags, comma-separated names of `syn`, `ack`, `fin`,
    /// `rst`, `psh`, `urg` (default `syn`).
    #[serde(default)]
    pub tcp_flags: Option<String>,
}

impl TraceRequest {
    /// The first packet of a new flow from or to `remote`, with every
    /// optional field at its default: set the others with struct update
    /// syntax (`TraceRequest { port: Some(22), ..TraceRequest::new(..) }`).
    pub fn new(
        instance: impl Into<String>,
        direction: Direction,
        protocol: impl Into<String>,
        remote: IpAddr,
    ) -> TraceRequest {
        TraceRequest {
            instance: instance.into(),
            direction,
            protocol: protocol.into(),
            remote,
            port: None,
            local: None,
            source_mac: None,
            source_port: None,
            icmp_type: None,
            icmp_code: None,
            icmp_id: None,
            tcp_flags: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceResponse {
    pub instance: String,
    pub interface: String,
    pub direction: Direction,
    /// The packet that was built and run.
    pub packet: TracePacket,
    /// What the eBPF program did with it (BPF_PROG_TEST_RUN on the live
    /// program and maps).
    pub kernel: KernelVerdict,
    /// What the reference evaluator says.
    pub reference: ReferenceVerdict,
    /// The two differ in action or in the deciding rule: a bug.
    pub disagree: bool,
    /// Why the two verdicts are not comparable rule for rule, when they
    /// are not (e.g. the packet matched an existing flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The kernel's conntrack entry of the packet's flow as it was before
    /// the run (the run leaves it as it was): what passes a packet of a
    /// tracked flow without the rules being consulted. `null`: no flow is
    /// tracked, the packet is classified as a new flow.
    #[serde(default)]
    pub conntrack: Option<ConntrackEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracePacket {
    pub protocol: u8,
    pub src: IpAddr,
    /// For ICMP echo: the echo id (as in `dst_port`).
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// tcp: the flags sent, `syn`, `ack,fin`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<String>,
    /// icmp, icmpv6: the message's type and code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// One line, as the evaluator prints packets.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelVerdict {
    /// `accept` or `drop`.
    pub action: String,
    /// The program's reason (`accept-rule`, `drop-default`, ...).
    pub reason: String,
    pub rule: Option<TracedRule>,
    pub duration_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceVerdict {
    pub action: String,
    /// Egress of a port-secured instance: `pass`, or the reason port
    /// security drops the frame before any rule (`drop-spoofed-ip`, ...).
    #[serde(default)]
    pub port_security: Option<String>,
    /// `sg-web ingress #2`, `implicit allow: DHCPv4 client`, `no rule
    /// matched`.
    pub matched: String,
    pub rule: Option<TracedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedRule {
    /// Position in the instance's concatenated list.
    pub position: usize,
    pub origin: Option<RuleRef>,
    /// The rule rendered, e.g. `accept tcp:22 from 198.51.100.0/24 (sg-web
    /// ingress #0)`.
    pub text: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON shape is the contract: these pin it down.
    fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        value: T,
        json: &str,
    ) {
        let encoded =
            serde_json::to_string(&value).unwrap_or_else(|e| panic!("encoding {value:?}: {e}"));
        assert_eq!(encoded, json);
        let decoded: T =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("decoding {json}: {e}"));
        assert_eq!(decoded, value);
    }

    #[test]
    fn json_shapes() {
        check(
            InstanceStatus {
                id: "ins-1".into(),
                interface: "tap1".into(),
                enforcement: "enforce".into(),
                log: "none".into(),
                attach: AttachState::Attached {
                    ifindex: 7,
                    xdp_mode: "driver".into(),
                    adopted: false,
                },
            },
            r#"{"id":"ins-1","interface":"tap1","enforcement":"enforce","log":"none","state":"attached","ifindex":7,"xdp_mode":"driver","adopted":false}"#,
        );
        check(
            InstanceStatus {
                id: "ins-1".into(),
                interface: "tap1".into(),
                enforcement: "enforce".into(),
                log: "none".into(),
                attach: AttachState::Waiting,
            },
            r#"{"id":"ins-1","interface":"tap1","enforcement":"enforce","log":"none","state":"waiting"}"#,
        );
        check(PolicySource::RulesDir, r#""rules-dir""#);
        check(ReloadTrigger::Signal, r#""signal""#);
        check(Direction::Egress, r#""egress""#);
        check(
            ErrorBody {
                error: "no such instance".into(),
                known: Some(vec!["ins-1".into()]),
            },
            r#"{"error":"no such instance","known":["ins-1"]}"#,
        );
        check(
            ErrorBody {
                error: "bad".into(),
                known: None,
            },
            r#"{"error":"bad"}"#,
        );
    }

    #[test]
    fn trace_requests() {
        let ok: TraceRequest = serde_json::from_str(
            r#"{"instance":"ins-1","direction":"ingress","protocol":"tcp","remote":"198.51.100.7","port":22}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.port, Some(22));
        assert_eq!(ok.local, None);
        let refused = [
            r#"{"instance":"ins-1","direction":"sideways","protocol":"tcp","remote":"198.51.100.7"}"#,
            r#"{"instance":"ins-1","direction":"ingress","protocol":"tcp","remote":"not-an-ip"}"#,
            r#"{"instance":"ins-1","direction":"ingress","protocol":"tcp","remote":"198.51.100.7","prot":22}"#,
            r#"{"direction":"ingress","protocol":"tcp","remote":"198.51.100.7"}"#,
        ];
        for json in refused {
            assert!(
                serde_json::from_str::<TraceRequest>(json).is_err(),
                "accepted {json}"
            );
        }
    }
}
