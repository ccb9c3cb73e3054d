//! `secgroupctl sg list` and `sg show`: groups as the daemon enforces
//! them, with the hit counters of every interface summed.

use secgroup_api::{GroupRule, Hits, SecurityGroupDetail, SecurityGroupSummary, paths};

use crate::daemon::Daemon;
use crate::fmt::{self, Width, ellipsis, field, list};
use crate::outcome::{Output, Result, json};

pub fn list_groups(daemon: &Daemon, as_json: bool, width: Width) -> Result<Output> {
    let groups: Vec<SecurityGroupSummary> = daemon.get(paths::SECURITY_GROUPS)?;
    if as_json {
        return json(&groups);
    }
    Ok(Output::success(render_list(&groups, width)))
}

pub fn show(daemon: &Daemon, id: &str, as_json: bool, width: Width) -> Result<Output> {
    let group: SecurityGroupDetail = daemon.get(&paths::security_group(id))?;
    if as_json {
        return json(&group);
    }
    Ok(Output::success(render_detail(&group, fmt::now_ms(), width)))
}

fn render_list(groups: &[SecurityGroupSummary], width: Width) -> String {
    if groups.is_empty() {
        return "no security groups are defined\n".to_owned();
    }
    let rows = groups
        .iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.name.clone().unwrap_or_else(|| "-".to_owned()),
                g.ingress_rules.to_string(),
                g.egress_rules.to_string(),
                list(&g.bound_instances, width.share(40)),
                list(&g.referenced_by, width.share(40)),
            ]
        })
        .collect();
    fmt::table(
        &[
            "ID",
            "NAME",
            "INGRESS",
            "EGRESS",
            "INSTANCES",
            "REFERENCED BY",
        ],
        rows,
        &[2, 3],
        &[1],
        width,
    )
}

fn render_detail(group: &SecurityGroupDetail, now_ms: u64, width: Width) -> String {
    let mut text = group.id.clone();
    if let Some(name) = &group.name {
        text.push_str(&format!(" ({name})"));
    }
    if let Some(description) = &group.description {
        text.push_str(&format!(": {}", ellipsis(description, width.share(60))));
    }
    text.push('\n');
    text.push_str(&field(
        "bound to",
        &list(&group.bound_instances, width.after(15)),
    ));
    text.push_str(&field(
        "referenced by",
        &list(&group.referenced_by, width.after(15)),
    ));
    for (direction, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
        text.push('\n');
        if rules.is_empty() {
            text.push_str(&format!("{direction}: no rules\n"));
            continue;
        }
        text.push_str(&format!(
            "{direction}: {}, first match wins\n",
            fmt::count(rules.len(), "rule")
        ));
        let rows = rules.iter().map(|r| rule_row(r, now_ms)).collect();
        text.push_str(&fmt::table(
            &[
                "#",
                "ACTION",
                "TRAFFIC",
                "REMOTE",
                "DESCRIPTION",
                "PACKETS",
                "BYTES",
                "LAST HIT",
            ],
            rows,
            &[0, 5, 6],
            // Traffic (ports) and remotes (addresses) are never cut.
            &[4],
            width,
        ));
    }
    text
}

fn rule_row(rule: &GroupRule, now_ms: u64) -> Vec<String> {
    let mut row = vec![
        rule.index.to_string(),
        rule.action.clone(),
        rule.traffic.clone(),
        rule.remote.clone(),
        rule.description.clone().unwrap_or_else(|| "-".to_owned()),
    ];
    row.extend(hit_cells(&rule.hits, now_ms));
    row
}

/// PACKETS, BYTES, LAST HIT.
pub fn hit_cells(hits: &Hits, now_ms: u64) -> [String; 3] {
    [
        hits.packets.to_string(),
        fmt::bytes(hits.bytes),
        fmt::when(now_ms, hits.last_hit.as_ref()),
    ]
}

#[cfg(test)]
mod tests {
    use secgroup_api::Timestamp;

    use super::*;

    fn rule(
        index: usize,
        traffic: &str,
        remote: &str,
        description: Option<&str>,
        hits: Hits,
    ) -> GroupRule {
        GroupRule {
            index,
            action: "accept".into(),
            traffic: traffic.into(),
            remote: remote.into(),
            description: description.map(str::to_owned),
            services: traffic.into(),
            remotes: vec![remote.into()],
            hits,
        }
    }

    #[test]
    fn detail() {
        let now = 10_000_000;
        let group = SecurityGroupDetail {
            id: "sg-web".into(),
            name: Some("web".into()),
            description: None,
            ingress: vec![
                rule(
                    0,
                    "tcp:22",
                    "203.0.113.0/24",
                    Some("SSH from the office network, all of it"),
                    Hits {
                        packets: 12,
                        bytes: 2048,
                        last_hit: Some(Timestamp::from_unix_ms(now - 180_000)),
                    },
                ),
                rule(
                    1,
                    "tcp:80,443",
                    "198.51.100.10-198.51.100.20",
                    None,
                    Hits::default(),
                ),
            ],
            egress: Vec::new(),
            bound_instances: vec!["ins-web-1".into()],
            referenced_by: Vec::new(),
        };
        assert_eq!(
            render_detail(&group, now, Width::Columns(100)),
            "sg-web (web)\n\
             bound to:      ins-web-1\n\
             referenced by: -\n\
             \n\
             ingress: 2 rules, first match wins\n\
             #  ACTION  TRAFFIC     REMOTE                       DESCRIPTION           PACKETS    BYTES  LAST HIT\n\
             0  accept  tcp:22      203.0.113.0/24               SSH from the office…       12  2.0 KiB  3m ago\n\
             1  accept  tcp:80,443  198.51.100.10-198.51.100.20  -                           0      0 B  -\n\
             \n\
             egress: no rules\n"
        );
        // Off a terminal (or --wide), nothing is cut.
        let whole = render_detail(&group, now, Width::Unlimited);
        assert!(
            whole.contains("  SSH from the office network, all of it  "),
            "{whole}"
        );
        assert!(!whole.contains('…'), "{whole}");
    }
}
