//! `secgroupctl instance list` and `instance show`: what each VM is
//! allowed to do, as the one first-match list per direction it enforces.

use secgroup_api::{Count, EffectiveRule, InstanceDetail, InstanceSummary, paths};

use crate::daemon::Daemon;
use crate::fmt::{self, Width, field, list};
use crate::outcome::{Output, Result, json};
use crate::sg::hit_cells;
use crate::status::attach_text;

pub fn list_instances(daemon: &Daemon, as_json: bool, width: Width) -> Result<Output> {
    let instances: Vec<InstanceSummary> = daemon.get(paths::INSTANCES)?;
    if as_json {
        return json(&instances);
    }
    Ok(Output::success(render_list(&instances, width)))
}

pub fn show(daemon: &Daemon, id: &str, as_json: bool, width: Width) -> Result<Output> {
    let instance: InstanceDetail = daemon.get(&paths::instance(id))?;
    if as_json {
        return json(&instance);
    }
    Ok(Output::success(render_detail(
        &instance,
        fmt::now_ms(),
        width,
    )))
}

fn render_list(instances: &[InstanceSummary], width: Width) -> String {
    if instances.is_empty() {
        return "no instances are defined\n".to_owned();
    }
    let rows = instances
        .iter()
        .map(|i| {
            let state = i.attach.as_ref().map_or("elsewhere", |a| attach_text(a).0);
            vec![
                i.id.clone(),
                i.interface.clone().unwrap_or_else(|| "-".to_owned()),
                state.to_owned(),
                list(&i.ips, width.share(40)),
                list(&i.security_groups, width.share(40)),
            ]
        })
        .collect();
    fmt::table(
        &["ID", "INTERFACE", "STATE", "IPS", "SECURITY GROUPS"],
        rows,
        &[],
        // Addresses are never cut; `list` leaves whole ones out instead.
        &[],
        width,
    )
}

fn render_detail(instance: &InstanceDetail, now_ms: u64, width: Width) -> String {
    let mut text = instance.id.clone();
    match (&instance.interface, &instance.attach) {
        (Some(interface), Some(attach)) => {
            let (state, detail) = attach_text(attach);
            text.push_str(&format!(" on {interface}: {state} ({detail})\n"));
        }
        _ => text.push_str(": on another host (no interface here)\n"),
    }
    text.push_str(&field("ips", &list(&instance.ips, width.after(15))));
    if let Some(mac) = &instance.mac {
        text.push_str(&field("mac", mac));
    }
    if !instance.port_security.is_empty() {
        text.push_str(&field("port security", &instance.port_security));
    }
    text.push_str(&field(
        "groups",
        &format!(
            "{} (evaluated in this order)",
            list(&instance.security_groups, width.after(40))
        ),
    ));
    if instance.enforcement == "audit" {
        text.push_str(&field(
            "enforcement",
            "AUDIT MODE: drops by its rules and the default PASS (reported as would-drop)",
        ));
    }
    if instance.log != "none"
        || instance
            .events
            .is_some_and(|e| e.emitted + e.suppressed > 0)
    {
        let mut log = format!("{} (besides logged rules)", instance.log);
        if let Some(events) = instance.events {
            log.push_str(&format!(
                "; {} reported, {} suppressed",
                events.emitted, events.suppressed
            ));
        }
        text.push_str(&field("log", &log));
    }
    for (direction, rules) in [("ingress", &instance.ingress), ("egress", &instance.egress)] {
        text.push('\n');
        text.push_str(&format!(
            "{direction}: {}, first match wins, then drop\n",
            fmt::count(rules.len(), "effective rule")
        ));
        if rules.is_empty() {
            continue;
        }
        let rows = rules.iter().map(|r| rule_row(r, now_ms, width)).collect();
        text.push_str(&fmt::table(
            &[
                "POS", "ACTION", "TRAFFIC", "REMOTES", "FROM", "PACKETS", "LAST HIT",
            ],
            rows,
            &[0, 5],
            // Traffic (ports) and remotes (addresses) are never cut.
            &[4],
            width,
        ));
    }
    if let Some(verdicts) = &instance.verdicts {
        text.push('\n');
        text.push_str("verdicts (packets per reason):\n");
        for (direction, counts) in [("ingress", &verdicts.ingress), ("egress", &verdicts.egress)] {
            text.push_str(&reasons_line(direction, counts, width));
        }
    }
    text
}

/// Bytes are left to `--json` and `sg show`: the rest fits better.
fn rule_row(rule: &EffectiveRule, now_ms: u64, width: Width) -> Vec<String> {
    let [packets, _bytes, last_hit] = hit_cells(&rule.hits, now_ms);
    vec![
        rule.position.to_string(),
        if rule.log {
            format!("{} log", rule.action)
        } else {
            rule.action.clone()
        },
        rule.services.clone(),
        list(&rule.remotes, width.share(40)),
        format!("{} #{}", rule.origin.security_group, rule.origin.index),
        packets,
        last_hit,
    ]
}

/// `  ingress  accept-rule 3, drop-default 1`, wrapped under itself to
/// stay within `width` (one line off a terminal).
fn reasons_line(
    direction: &str,
    counts: &std::collections::BTreeMap<String, Count>,
    width: Width,
) -> String {
    const INDENT: usize = 11;
    let mut text = format!("  {direction:<8} ");
    if counts.is_empty() {
        text.push_str("none yet\n");
        return text;
    }
    let mut column = INDENT;
    let last = counts.len() - 1;
    for (i, (reason, count)) in counts.iter().enumerate() {
        let part = format!(
            "{reason} {}{}",
            count.packets,
            if i < last { "," } else { "" }
        );
        if column > INDENT && (column + 1).saturating_add(part.len()) > width.after(0) {
            text.push_str(&format!("\n{:INDENT$}", ""));
            column = INDENT;
        } else if column > INDENT {
            text.push(' ');
            column += 1;
        }
        text.push_str(&part);
        column += part.len();
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secgroup_api::{AttachState, Direction, Hits, RuleRef, Verdicts};

    use super::*;

    #[test]
    fn verdicts_wrap() {
        let counts: BTreeMap<String, Count> = [
            "accept-established",
            "accept-implicit",
            "accept-reply",
            "accept-rule",
            "drop-default",
            "pass-non-ip",
            "drop-revoked",
        ]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                (*r).to_owned(),
                Count {
                    packets: 10u64.pow(i as u32),
                    bytes: 0,
                },
            )
        })
        .collect();
        assert_eq!(
            reasons_line("ingress", &counts, Width::Columns(100)),
            "  ingress  accept-established 1, accept-implicit 10, accept-reply 100, accept-rule 1000,\n\
             \x20          drop-default 10000, drop-revoked 1000000, pass-non-ip 100000\n"
        );
    }

    #[test]
    fn detail() {
        let rule =
            |position: usize, services: &str, remotes: &[&str], packets: u64| EffectiveRule {
                position,
                action: "accept".into(),
                services: services.into(),
                remotes: remotes.iter().map(|r| (*r).to_owned()).collect(),
                origin: RuleRef {
                    security_group: "sg-vm".into(),
                    direction: Direction::Ingress,
                    index: position,
                },
                hits: Hits {
                    packets,
                    bytes: packets * 84,
                    last_hit: None,
                },
                log: false,
            };
        let instance = InstanceDetail {
            id: "ins-vm".into(),
            interface: Some("tap-vm".into()),
            mac: None,
            ips: vec!["198.51.100.2".into()],
            port_security: String::new(),
            security_groups: vec!["sg-vm".into()],
            attach: Some(AttachState::Attached {
                ifindex: 4,
                xdp_mode: "driver".into(),
                adopted: true,
            }),
            ingress: vec![
                rule(0, "icmp", &["0.0.0.0/0"], 3),
                rule(
                    1,
                    "tcp:22",
                    &["203.0.113.0/24", "2001:db8::/32", "198.51.100.0/24"],
                    0,
                ),
            ],
            egress: Vec::new(),
            enforcement: "enforce".into(),
            log: "none".into(),
            events: Some(secgroup_api::EventCounts::default()),
            verdicts: Some(Verdicts {
                ingress: BTreeMap::from([(
                    "accept-rule".to_owned(),
                    Count {
                        packets: 3,
                        bytes: 252,
                    },
                )]),
                egress: BTreeMap::new(),
            }),
        };
        assert_eq!(
            render_detail(&instance, 0, Width::Columns(100)),
            "ins-vm on tap-vm: attached (ifindex 4, xdp driver, adopted)\n\
             ips:           198.51.100.2\n\
             groups:        sg-vm (evaluated in this order)\n\
             \n\
             ingress: 2 effective rules, first match wins, then drop\n\
             POS  ACTION  TRAFFIC  REMOTES                              FROM      PACKETS  LAST HIT\n\
             \x20 0  accept  icmp     0.0.0.0/0                            sg-vm #0        3  -\n\
             \x20 1  accept  tcp:22   203.0.113.0/24, 2001:db8::/32, … +1  sg-vm #1        0  -\n\
             \n\
             egress: 0 effective rules, first match wins, then drop\n\
             \n\
             verdicts (packets per reason):\n\
             \x20 ingress  accept-rule 3\n\
             \x20 egress   none yet\n"
        );
        let audited = InstanceDetail {
            enforcement: "audit".into(),
            log: "drops".into(),
            events: Some(secgroup_api::EventCounts {
                emitted: 12,
                suppressed: 3,
            }),
            ingress: vec![EffectiveRule {
                log: true,
                ..rule(0, "icmp", &["0.0.0.0/0"], 3)
            }],
            ..instance
        };
        let text = render_detail(&audited, 0, Width::Columns(100));
        for expected in [
            "groups:        sg-vm (evaluated in this order)\n\
             enforcement:   AUDIT MODE: drops by its rules and the default PASS (reported as would-drop)\n\
             log:           drops (besides logged rules); 12 reported, 3 suppressed\n",
            "  0  accept log  icmp",
        ] {
            assert!(text.contains(expected), "{text}\nlacks\n{expected}");
        }
    }
}
