//! `secgroupctl monitor`: the daemon's verdict events as they happen, one
//! line each (`12:01:07.123 ins-db-1 ingress DROP tcp 203.0.113.9:51234 →
//! 198.51.100.10:5432 by sg-db ingress #2 "deny the office"`, the time in
//! UTC), or with `--json` every line of `GET /v1/events` as it comes. The
//! one command that prints as it goes instead of building its output
//! first: it runs until interrupted.

use std::io::{self, Write};

use secgroup_api::{EventFilter, EventVerdict, StreamLine};

use crate::cli::{DirectionArg, MonitorArgs, VerdictArg};
use crate::daemon::Daemon;
use crate::outcome::{Error, Output, Result};

pub fn run(daemon: &Daemon, args: &MonitorArgs, as_json: bool) -> Result<Output> {
    let filter = EventFilter {
        instance: args.instance.clone(),
        direction: args.direction.map(|d| match d {
            DirectionArg::Ingress => secgroup_api::Direction::Ingress,
            DirectionArg::Egress => secgroup_api::Direction::Egress,
        }),
        verdict: args.verdict.map(|v| match v {
            VerdictArg::Accept => EventVerdict::Accept,
            VerdictArg::Drop => EventVerdict::Drop,
            VerdictArg::WouldDrop => EventVerdict::WouldDrop,
        }),
        group: args.group.clone(),
    };
    let lines = daemon.events(&filter)?;
    let mut stdout = io::stdout().lock();
    for line in lines {
        let line = line.map_err(|e| daemon.error(e))?;
        let text = if as_json {
            serde_json::to_string(&line)?
        } else {
            match render(&line) {
                Some(text) => text,
                None => continue,
            }
        };
        // A closed pipe (`monitor | head`) ends the watch quietly.
        if writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(Output::success(""));
        }
    }
    Err(Error::Daemon(
        "it closed the event stream (stopping or restarting?)".to_owned(),
    ))
}

/// One line for a person; `None` for the stream's first line.
fn render(line: &StreamLine) -> Option<String> {
    match line {
        StreamLine::Subscribed { .. } => None,
        StreamLine::Event(event) => {
            // `2024-05-01T12:01:07.123Z` → `12:01:07.123`.
            let at = &event.time.at;
            let time = at
                .split_once('T')
                .map_or(at.as_str(), |(_, t)| t.trim_end_matches('Z'));
            Some(format!("{time} {event}"))
        }
        StreamLine::Lost { count } => Some(format!(
            "({count} events not shown: this monitor read too slowly)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use secgroup_api::{Direction, EventRule, Timestamp, VerdictEvent};

    use super::*;

    #[test]
    fn lines() {
        let event = VerdictEvent {
            time: Timestamp::from_unix_ms(1_700_000_067_123),
            instance: Some("ins-db-1".into()),
            interface: Some("tap-db1".into()),
            ifindex: 7,
            direction: Direction::Ingress,
            verdict: EventVerdict::Drop,
            reason: "drop-rule".into(),
            flow: Some(secgroup_api::EventFlow {
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
                key: "~0123".into(),
                description: Some("deny the office".into()),
                position: 2,
            }),
            suppressed: 0,
        };
        assert_eq!(
            render(&StreamLine::Event(Box::new(event))).as_deref(),
            Some(
                "22:14:27.123 ins-db-1 ingress DROP tcp 203.0.113.9:51234 → 198.51.100.10:5432 by sg-db ingress #2 \"deny the office\""
            )
        );
        assert_eq!(
            render(&StreamLine::Lost { count: 5 }).as_deref(),
            Some("(5 events not shown: this monitor read too slowly)")
        );
        assert_eq!(
            render(&StreamLine::Subscribed {
                filter: EventFilter::default()
            }),
            None
        );
    }
}
