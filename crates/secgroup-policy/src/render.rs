//! Compiled rules rendered for operators: one line per rule, in the words of
//! the rule file.

use std::fmt;

use ipnet::IpNet;
use secgroup_model::{Direction, Ports, Service};

use crate::compiled::{EffectiveRule, RuleList, RuleOrigin};

/// How many remote prefixes a rule line shows before it summarises the
/// rest: a security group with a thousand members would otherwise make one
/// line of a thousand addresses.
pub const REMOTES_SHOWN: usize = 8;

impl fmt::Display for RuleOrigin {
    /// `sg-web ingress #2`: rule 2 (0-based, the index in the file's
    /// `ingress` array) of `sg-web`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} #{}", self.sg, self.direction, self.index)
    }
}

/// `tcp:22`, `tcp:80,443,8000-8100`, `tcp` (every port), `icmp`, `all`.
pub fn render_service(service: &Service) -> String {
    match &service.ports {
        Ports::All => service.protocol.to_string(),
        ports @ Ports::List(_) => format!("{}:{ports}", service.protocol),
    }
}

/// One service as [`render_service`] does; several in brackets; none as
/// `(no service)`, since such a rule matches nothing.
pub fn render_services(services: &[Service]) -> String {
    match services {
        [] => "(no service)".to_owned(),
        [one] => render_service(one),
        many => {
            let list: Vec<String> = many.iter().map(render_service).collect();
            format!("[{}]", list.join(", "))
        }
    }
}

/// One prefix bare, several in brackets, more than `shown` summarised as
/// `and N more`; none as `(no address)`, since such a rule matches nothing.
pub fn render_remotes(remotes: &[IpNet], shown: usize) -> String {
    match remotes {
        [] => "(no address)".to_owned(),
        [one] => one.to_string(),
        many => {
            let mut list: Vec<String> = many.iter().take(shown).map(IpNet::to_string).collect();
            if many.len() > shown {
                list.push(format!("and {} more", many.len() - shown));
            }
            format!("[{}]", list.join(", "))
        }
    }
}

impl fmt::Display for EffectiveRule {
    /// `accept tcp:22 from 198.51.100.0/24 (sg-web ingress #0)`; egress
    /// rules say `to`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let preposition = match self.origin.direction {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        };
        write!(
            f,
            "{} {} {preposition} {} ({})",
            self.action,
            render_services(&self.services),
            render_remotes(&self.remotes, REMOTES_SHOWN),
            self.origin
        )
    }
}

impl fmt::Display for RuleList {
    /// One numbered line per rule, then the implicit last line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, rule) in self.rules.iter().enumerate() {
            writeln!(f, "{position:>4}  {rule}")?;
        }
        writeln!(f, "   -  drop everything else")
    }
}

#[cfg(test)]
mod tests {
    use secgroup_model::{Action, Protocol, proto};

    use super::*;
    use crate::testing::*;

    fn rule(
        direction: Direction,
        action: Action,
        services: Vec<Service>,
        remotes: &[&str],
    ) -> EffectiveRule {
        EffectiveRule {
            origin: RuleOrigin {
                sg: sg_id("sg-web"),
                direction,
                index: 2,
                key: crate::RuleKey::Content { digest: 0, nth: 0 },
            },
            action,
            services,
            remotes: nets(remotes),
            log: false,
        }
    }

    fn service(protocol: Protocol) -> Service {
        Service {
            protocol,
            ports: Ports::All,
        }
    }

    #[test]
    fn rule_lines() {
        let many: Vec<String> = (1..=10).map(|i| format!("198.51.100.{i}/32")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases: Vec<(EffectiveRule, &str)> = vec![
            (
                rule(
                    Direction::Ingress,
                    Action::Accept,
                    vec![tcp_service("22")],
                    &["198.51.100.0/24"],
                ),
                "accept tcp:22 from 198.51.100.0/24 (sg-web ingress #2)",
            ),
            (
                rule(
                    Direction::Egress,
                    Action::Drop,
                    vec![tcp_service("80,443,8000-8100"), udp_service("all")],
                    &["0.0.0.0/0", "::/0"],
                ),
                "drop [tcp:80,443,8000-8100, udp] to [0.0.0.0/0, ::/0] (sg-web egress #2)",
            ),
            (
                rule(
                    Direction::Ingress,
                    Action::Accept,
                    vec![
                        service(Protocol::All),
                        service(Protocol::Number(proto::ICMPV6)),
                        service(Protocol::Number(proto::GRE)),
                        service(Protocol::Number(132)),
                    ],
                    &["2001:db8::/32"],
                ),
                "accept [all, icmpv6, gre, 132] from 2001:db8::/32 (sg-web ingress #2)",
            ),
            (
                rule(Direction::Ingress, Action::Accept, vec![], &[]),
                "accept (no service) from (no address) (sg-web ingress #2)",
            ),
            (
                rule(
                    Direction::Ingress,
                    Action::Accept,
                    vec![service(Protocol::All)],
                    &many,
                ),
                "accept all from [198.51.100.1/32, 198.51.100.2/32, 198.51.100.3/32, \
                 198.51.100.4/32, 198.51.100.5/32, 198.51.100.6/32, 198.51.100.7/32, \
                 198.51.100.8/32, and 2 more] (sg-web ingress #2)",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(rule.to_string(), expected);
        }
    }

    #[test]
    fn rule_list() {
        let list = RuleList::from(vec![rule(
            Direction::Ingress,
            Action::Accept,
            vec![tcp_service("22")],
            &["198.51.100.0/24"],
        )]);
        assert_eq!(
            list.to_string(),
            "   0  accept tcp:22 from 198.51.100.0/24 (sg-web ingress #2)\n   -  drop everything else\n"
        );
    }
}
