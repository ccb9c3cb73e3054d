//! `GET /v1/events`: the live stream of verdict events, one JSON object per
//! line ([`StreamLine`]), and the filters a client may ask for
//! ([`EventFilter`]).
//!
//! The stream starts with a [`StreamLine::Subscribed`] line, sent once the
//! daemon is delivering events to this client: whatever happens after it
//! is in the stream. A client that reads too slowly loses events rather
//! than slowing the daemon: a [`StreamLine::Lost`] line says how many.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::types::{Direction, Timestamp};

/// What happened to a logged packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventVerdict {
    Accept,
    Drop,
    /// Audit mode: the rules (or the default) drop it, but it passed.
    WouldDrop,
}

impl EventVerdict {
    pub const ALL: [EventVerdict; 3] = [
        EventVerdict::Accept,
        EventVerdict::Drop,
        EventVerdict::WouldDrop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventVerdict::Accept => "accept",
            EventVerdict::Drop => "drop",
            EventVerdict::WouldDrop => "would-drop",
        }
    }

    pub fn parse(word: &str) -> Option<EventVerdict> {
        EventVerdict::ALL.into_iter().find(|v| v.as_str() == word)
    }
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    pub fn parse(word: &str) -> Option<Direction> {
        [Direction::Ingress, Direction::Egress]
            .into_iter()
            .find(|d| d.as_str() == word)
    }
}

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StreamLine {
    /// The first line: events from here on reach this client.
    Subscribed {
        filter: EventFilter,
    },
    Event(Box<VerdictEvent>),
    /// This client read too slowly: `count` events that matched were
    /// dropped for it (the daemon never waits for a reader).
    Lost {
        count: u64,
    },
}

/// One logged verdict, resolved against the policy in force when it was
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictEvent {
    /// When the kernel decided.
    pub time: Timestamp,
    /// `None` when the interface is bound to no instance the daemon knows
    /// (a guarded interface, or one a previous daemon bound).
    pub instance: Option<String>,
    pub interface: Option<String>,
    pub ifindex: u32,
    pub direction: Direction,
    pub verdict: EventVerdict,
    /// As counted: `accept-rule`, `drop-default`, `would-drop-rule`,
    /// `drop-spoofed-ip`, ...
    pub reason: String,
    /// `None` for a frame that is not IP (port security's ethertype and
    /// ARP drops, malformed headers).
    pub flow: Option<EventFlow>,
    /// The rule that decided; `None` for the default, port security and
    /// the other reasons no rule decides.
    pub rule: Option<EventRule>,
    /// Events this interface could not report (its rate limit) since the
    /// previous one it did.
    pub suppressed: u32,
}

impl std::fmt::Display for VerdictEvent {
    /// `ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432
    /// by sg-db ingress #2 "deny the office"`: what `secgroupctl monitor`
    /// and the daemon's log print (the time is theirs to add).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match (&self.instance, &self.interface) {
            (Some(instance), _) => instance.clone(),
            (None, Some(interface)) => interface.clone(),
            (None, None) => format!("ifindex {}", self.ifindex),
        };
        let verdict = self.verdict.as_str().to_ascii_uppercase();
        write!(f, "{who} {} {verdict}", self.direction.as_str())?;
        match &self.flow {
            Some(flow) => write!(f, " {flow}")?,
            None => f.write_str(" non-IP frame")?,
        }
        match &self.rule {
            Some(rule) => {
                write!(
                    f,
                    " by {} {} #{}",
                    rule.security_group,
                    rule.direction.as_str(),
                    rule.index
                )?;
                if let Some(description) = &rule.description {
                    write!(f, " {description:?}")?;
                }
            }
            None => match self.reason.as_str() {
                "drop-default" | "would-drop-default" => f.write_str(" by default")?,
                reason => match reason.strip_prefix("drop-spoofed-") {
                    Some(_) => write!(f, " by port-security ({reason})")?,
                    None if matches!(
                        reason,
                        "drop-router-advert" | "drop-dhcp-server" | "drop-ethertype"
                    ) =>
                    {
                        write!(f, " by port-security ({reason})")?
                    }
                    None => write!(f, " ({reason})")?,
                },
            },
        }
        if self.suppressed > 0 {
            write!(f, " (+{} suppressed)", self.suppressed)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for EventFlow {
    /// `tcp 203.0.113.9:51234 → 198.51.100.10:5432`, `icmp 203.0.113.9 →
    /// 198.51.100.10 type 8 code 0`, `[2001:db8::1]:80` for IPv6.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = |ip: IpAddr, port: Option<u16>| match (ip, port) {
            (IpAddr::V4(v4), Some(port)) => format!("{v4}:{port}"),
            (IpAddr::V6(v6), Some(port)) => format!("[{v6}]:{port}"),
            (ip, None) => ip.to_string(),
        };
        write!(
            f,
            "{} {} → {}",
            self.protocol,
            end(self.src, self.src_port),
            end(self.dst, self.dst_port)
        )?;
        if let (Some(t), Some(c)) = (self.icmp_type, self.icmp_code) {
            write!(f, " type {t} code {c}")?;
        }
        Ok(())
    }
}

/// The packet, as the interface saw it: `src` → `dst`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFlow {
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `gre` or the number.
    pub protocol: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TCP and UDP (ICMP echo: the id); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// ICMP and ICMPv6 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
}

/// The deciding rule: rule `index` of `direction` in `security_group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRule {
    pub security_group: String,
    pub direction: Direction,
    /// 0-based, in the group's list (`#2` is index 2).
    pub index: usize,
    /// The rule's identity: its `id`, or `~` and a digest of its content.
    pub key: String,
    pub description: Option<String>,
    /// Its position in the instance's concatenated list.
    pub position: u32,
}

/// Which events a client wants; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<EventVerdict>,
    /// The deciding rule's security group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, event: &VerdictEvent) -> bool {
        let instance = self
            .instance
            .as_ref()
            .is_none_or(|want| event.instance.as_ref() == Some(want));
        let direction = self.direction.is_none_or(|d| d == event.direction);
        let verdict = self.verdict.is_none_or(|v| v == event.verdict);
        let group = self.group.as_ref().is_none_or(|want| {
            event
                .rule
                .as_ref()
                .is_some_and(|r| r.security_group == *want)
        });
        instance && direction && verdict && group
    }

    /// The query string's pairs, in the order of [`crate::paths::events`].
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(instance) = &self.instance {
            pairs.push(("instance", instance.clone()));
        }
        if let Some(direction) = self.direction {
            pairs.push(("direction", direction.as_str().to_owned()));
        }
        if let Some(verdict) = self.verdict {
            pairs.push(("verdict", verdict.as_str().to_owned()));
        }
        if let Some(group) = &self.group {
            pairs.push(("group", group.clone()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> VerdictEvent {
        VerdictEvent {
            time: Timestamp::from_unix_ms(1_700_000_000_123),
            instance: Some("ins-db-1".into()),
            interface: Some("tap-db1".into()),
            ifindex: 7,
            direction: Direction::Ingress,
            verdict: EventVerdict::Drop,
            reason: "drop-rule".into(),
            flow: Some(EventFlow {
                protocol: "tcp".into(),
                src: "203.0.113.9".parse().unwrap_or_else(|e| panic!("{e}")),
                dst: "198.51.100.10".parse().unwrap_or_else(|e| panic!("{e}")),
                src_port: Some(51234),
                dst_port: Some(5432),
                icmp_type: None,
                icmp_code: None,
            }),
            rule: Some(EventRule {
                security_group: "sg-db".into(),
                direction: Direction::Ingress,
                index: 2,
                key: "deny-office".into(),
                description: Some("deny the office".into()),
                position: 2,
            }),
            suppressed: 0,
        }
    }

    #[test]
    fn json_lines() {
        let line = StreamLine::Event(Box::new(event()));
        let json = serde_json::to_string(&line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json,
            r#"{"type":"event","time":{"at":"2023-11-14T22:13:20.123Z","unix_ms":1700000000123},"instance":"ins-db-1","interface":"tap-db1","ifindex":7,"direction":"ingress","verdict":"drop","reason":"drop-rule","flow":{"protocol":"tcp","src":"203.0.113.9","dst":"198.51.100.10","src_port":51234,"dst_port":5432},"rule":{"security_group":"sg-db","direction":"ingress","index":2,"key":"deny-office","description":"deny the office","position":2},"suppressed":0}"#
        );
        let back: StreamLine = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, line);
        let lost =
            serde_json::to_string(&StreamLine::Lost { count: 3 }).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lost, r#"{"type":"lost","count":3}"#);
        let subscribed = StreamLine::Subscribed {
            filter: EventFilter {
                verdict: Some(EventVerdict::WouldDrop),
                ..EventFilter::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&subscribed).unwrap_or_else(|e| panic!("{e}")),
            r#"{"type":"subscribed","filter":{"verdict":"would-drop"}}"#
        );
    }

    #[test]
    fn lines_for_people() {
        let e = event();
        assert_eq!(
            e.to_string(),
            "ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by sg-db ingress #2 \"deny the office\""
        );
        let default_drop = VerdictEvent {
            rule: None,
            reason: "drop-default".into(),
            suppressed: 4,
            ..e.clone()
        };
        assert_eq!(
            default_drop.to_string(),
            "ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by default (+4 suppressed)"
        );
        let spoofed = VerdictEvent {
            rule: None,
            direction: Direction::Egress,
            reason: "drop-spoofed-ip".into(),
            flow: Some(EventFlow {
                protocol: "icmpv6".into(),
                src: "2001:db8::66".parse().unwrap_or_else(|e| panic!("{e}")),
                dst: "2001:db8::1".parse().unwrap_or_else(|e| panic!("{e}")),
                src_port: None,
                dst_port: None,
                icmp_type: Some(128),
                icmp_code: Some(0),
            }),
            ..e.clone()
        };
        assert_eq!(
            spoofed.to_string(),
            "ins-db-1 egress DROP icmpv6 2001:db8::66 → 2001:db8::1 type 128 code 0 by port-security (drop-spoofed-ip)"
        );
        let audited = VerdictEvent {
            verdict: EventVerdict::WouldDrop,
            reason: "would-drop-rule".into(),
            instance: None,
            rule: e.rule.clone().map(|r| EventRule {
                description: None,
                ..r
            }),
            ..e
        };
        assert_eq!(
            audited.to_string(),
            "tap-db1 ingress WOULD-DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by sg-db ingress #2"
        );
    }

    #[test]
    fn filters() {
        let e = event();
        let cases = [
            (EventFilter::default(), true),
            (
                EventFilter {
                    instance: Some("ins-db-1".into()),
                    direction: Some(Direction::Ingress),
                    verdict: Some(EventVerdict::Drop),
                    group: Some("sg-db".into()),
                },
                true,
            ),
            (
                EventFilter {
                    instance: Some("ins-db-2".into()),
                    ..EventFilter::default()
                },
                false,
            ),
            (
                EventFilter {
                    direction: Some(Direction::Egress),
                    ..EventFilter::default()
                },
                false,
            ),
            (
                EventFilter {
                    verdict: Some(EventVerdict::WouldDrop),
                    ..EventFilter::default()
                },
                false,
            ),
            (
                EventFilter {
                    group: Some("sg-web".into()),
                    ..EventFilter::default()
                },
                false,
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(filter.matches(&e), expected, "{filter:?}");
        }
        // A default drop has no rule: a group filter never matches it.
        let default_drop = VerdictEvent { rule: None, ..e };
        let by_group = EventFilter {
            group: Some("sg-db".into()),
            ..EventFilter::default()
        };
        assert!(!by_group.matches(&default_drop));
    }
}
