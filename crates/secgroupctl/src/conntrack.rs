//! `secgroupctl conntrack list` and `conntrack flush`.

use std::net::IpAddr;

use secgroup_api::{ConntrackEntry, ConntrackList, Direction, FlushResult, paths};

use crate::cli::{ConntrackFlushArgs, ConntrackListArgs};
use crate::daemon::Daemon;
use crate::fmt::{self, Width};
use crate::outcome::{Output, Result, json};

pub fn list(
    daemon: &Daemon,
    args: &ConntrackListArgs,
    as_json: bool,
    width: Width,
) -> Result<Output> {
    let path = paths::conntrack(args.instance.as_deref(), args.limit.map(|n| n as usize));
    let flows: ConntrackList = daemon.get(&path)?;
    if as_json {
        return json(&flows);
    }
    Ok(Output::success(render_list(&flows, width)))
}

pub fn flush(daemon: &Daemon, args: &ConntrackFlushArgs, as_json: bool) -> Result<Output> {
    // clap makes --instance and --all exclusive and one of them required.
    let instance = if args.all {
        None
    } else {
        args.instance.as_deref()
    };
    let result: FlushResult = daemon.post::<(), _>(&paths::conntrack_flush(instance), None)?;
    if as_json {
        // The daemon's answer, and whose flows they were (the text says).
        return json(&serde_json::json!({
            "flushed": result.flushed,
            "instance": instance,
        }));
    }
    let scope = match instance {
        Some(id) => format!("of {id}"),
        None => "of every interface".to_owned(),
    };
    Ok(Output::success(format!(
        "flushed {} {scope}\n",
        fmt::count(result.flushed, "tracked flow")
    )))
}

/// `198.51.100.2:22`, `[2001:db8::5]:22`, or the bare address for
/// protocols without ports.
fn endpoint(protocol: &str, addr: IpAddr, port: u16) -> String {
    let has_ports = matches!(protocol, "tcp" | "udp");
    match (has_ports, addr) {
        (false, _) => addr.to_string(),
        (true, IpAddr::V4(a)) => format!("{a}:{port}"),
        (true, IpAddr::V6(a)) => format!("[{a}]:{port}"),
    }
}

/// The instance's end first; the arrow points the way the flow was
/// opened: `→` by the instance (egress), `←` by the remote (ingress).
fn row(flow: &ConntrackEntry) -> Vec<String> {
    let arrow = match flow.direction {
        Direction::Ingress => "←",
        Direction::Egress => "→",
    };
    // The rule's direction is the one the flow was opened in: the group
    // and index say the rest.
    let rule = flow.rule.as_ref().map_or_else(
        || "-".to_owned(),
        |r| format!("{} #{}", r.security_group, r.index),
    );
    vec![
        flow.instance
            .clone()
            .unwrap_or_else(|| format!("if{}", flow.ifindex)),
        flow.protocol.clone(),
        format!(
            "{} {arrow} {}",
            endpoint(&flow.protocol, flow.local, flow.local_port),
            endpoint(&flow.protocol, flow.remote, flow.remote_port)
        ),
        flow.state.clone(),
        format!("{}/{}", flow.packets_in, flow.packets_out),
        fmt::span_ms(flow.expires_in_ms),
        rule,
    ]
}

fn render_list(flows: &ConntrackList, width: Width) -> String {
    if flows.entries.is_empty() {
        return "no tracked flows\n".to_owned();
    }
    let rows = flows.entries.iter().map(row).collect();
    let mut text = fmt::table(
        &[
            "INSTANCE", "PROTO", "FLOW", "STATE", "IN/OUT", "EXPIRES", "RULE",
        ],
        rows,
        &[4, 5],
        // The flow's addresses and ports are never cut.
        &[0, 6],
        width,
    );
    if flows.truncated {
        text.push_str(&format!(
            "{} of {} flows shown (--limit)\n",
            flows.entries.len(),
            flows.total
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use secgroup_api::RuleRef;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn flows() {
        let flow = ConntrackEntry {
            instance: Some("ins-vm".into()),
            ifindex: 4,
            protocol: "tcp".into(),
            local: ip("198.51.100.2"),
            local_port: 22,
            remote: ip("203.0.113.9"),
            remote_port: 40000,
            direction: Direction::Ingress,
            state: "established".into(),
            packets_in: 10,
            packets_out: 8,
            bytes_in: 900,
            bytes_out: 700,
            age_ms: 5000,
            expires_in_ms: 431_995_000,
            rule: Some(RuleRef {
                security_group: "sg-vm".into(),
                direction: Direction::Ingress,
                index: 1,
            }),
        };
        let ping = ConntrackEntry {
            instance: None,
            ifindex: 9,
            protocol: "icmpv6".into(),
            local: ip("2001:db8::2"),
            local_port: 7,
            remote: ip("2001:db8:ffff::1"),
            remote_port: 7,
            direction: Direction::Egress,
            state: "replied".into(),
            packets_in: 1,
            packets_out: 1,
            bytes_in: 104,
            bytes_out: 104,
            age_ms: 1000,
            expires_in_ms: 29_000,
            rule: None,
        };
        let list = ConntrackList {
            total: 3,
            truncated: true,
            entries: vec![flow, ping],
        };
        assert_eq!(
            render_list(&list, Width::Columns(100)),
            "INSTANCE  PROTO   FLOW                                 STATE        IN/OUT  EXPIRES  RULE\n\
             ins-vm    tcp     198.51.100.2:22 ← 203.0.113.9:40000  established    10/8       4d  sg-vm #1\n\
             if9       icmpv6  2001:db8::2 → 2001:db8:ffff::1       replied         1/1      29s  -\n\
             2 of 3 flows shown (--limit)\n"
        );
        // IPv6 flows keep their ports however narrow the terminal: the
        // table widens.
        let v6 = ConntrackEntry {
            local: ip("2001:db8::20"),
            local_port: 54321,
            remote: ip("2001:db8:ffff:ffff::1234"),
            remote_port: 443,
            ..list.entries[0].clone()
        };
        let v6_list = ConntrackList {
            total: 1,
            truncated: false,
            entries: vec![v6],
        };
        for width in [Width::Columns(40), Width::Columns(100), Width::Unlimited] {
            let text = render_list(&v6_list, width);
            assert!(
                text.contains("[2001:db8::20]:54321 ← [2001:db8:ffff:ffff::1234]:443"),
                "{width:?}:\n{text}"
            );
        }
    }
}
