//! The rule files: the generated rules directory of each layout, and how
//! a change rewrites it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use anyhow::{Context, Result};
use secgroup_model::Action;

use super::{IF_PREFIX, Layout};
use crate::rules::{GROUP_QUOTA, LAST_PORTS, LAST_REMOTE};

/// The port of the own-group probe (outside [`LAST_PORTS`], so the
/// shared base's probe rule never decides it).
pub const OWN_PROBE_PORT: u16 = 60001;

pub fn instance_id(vm: usize) -> String {
    format!("ins-{vm:03}")
}

pub(super) fn interface(vm: usize) -> String {
    format!("{IF_PREFIX}{vm:03}")
}

/// VM `vm`'s address: 192.0.2.1 and on for the first 250, then
/// 2001:db8:2::fa and on (two instances of a host never share one).
pub(super) fn address(vm: usize) -> IpAddr {
    if vm < 250 {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, (vm + 1) as u8))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, vm as u16))
    }
}

/// The address a probe of VM `vm` is sent to: its own IPv4 address, or
/// one of the same family as the probe's remote for VMs that have none
/// (no rule looks at it).
pub(super) fn probe_local(vm: usize) -> Ipv4Addr {
    match address(vm) {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::new(192, 0, 2, 254),
    }
}

/// The rules directory's contents and the probe rule's current ingress
/// action (one per VM in the own-group layout, one for all otherwise).
/// Only ingress flips: the egress probe rule always accepts, so a change
/// rebuilds ingress tables only, as in `control`'s apply figures.
#[derive(Debug, Clone)]
pub struct RuleDir {
    layout: Layout,
    vms: usize,
    pub(super) rules: usize,
    actions: Vec<Action>,
    /// Shared-base layout only: the action of the last rule of each VM's
    /// own groups, the only rule its own-group probe
    /// ([`OWN_PROBE_PORT`]) matches.
    own_actions: Vec<Action>,
}

impl RuleDir {
    /// Every probe rule starts as accept.
    pub fn new(layout: Layout, vms: usize, rules: usize) -> RuleDir {
        let lists = match layout {
            Layout::OwnGroup => vms,
            Layout::SharedGroup | Layout::SharedBase => 1,
        };
        RuleDir {
            layout,
            vms,
            // The shared base is the first group: the list must go beyond it.
            rules: if layout == Layout::SharedBase {
                rules.max(GROUP_QUOTA + 1)
            } else {
                rules.max(1)
            },
            actions: vec![Action::Accept; lists],
            own_actions: vec![Action::Accept; vms],
        }
    }

    fn list_of(&self, vm: usize) -> usize {
        match self.layout {
            Layout::OwnGroup => vm,
            Layout::SharedGroup | Layout::SharedBase => 0,
        }
    }

    /// The action VM `vm`'s probe should get now.
    pub fn action_of(&self, vm: usize) -> Action {
        self.actions[self.list_of(vm)]
    }

    /// The position of the probe rule in every VM's list: the last rule,
    /// or the last of the shared base group.
    pub fn probe_position(&self) -> usize {
        match self.layout {
            Layout::OwnGroup | Layout::SharedGroup => self.rules - 1,
            Layout::SharedBase => GROUP_QUOTA - 1,
        }
    }

    /// Shared-base layout: the position of the own-group probe rule (the
    /// last of the list) and the action VM `vm`'s own probe gets now.
    pub fn own_probe(&self, vm: usize) -> (usize, Action) {
        (self.rules - 1, self.own_actions[vm])
    }

    /// Shared-base layout: inverts the last rule of VM `vm`'s own groups;
    /// returns its file and that file's new contents.
    pub fn flip_own(&mut self, vm: usize) -> (String, String) {
        self.own_actions[vm] = match self.own_actions[vm] {
            Action::Accept => Action::Drop,
            Action::Drop => Action::Accept,
        };
        self.vm_file(vm)
    }

    /// Inverts the probe rule that decides VM `vm`'s probe; returns the file
    /// that holds it and that file's new contents.
    pub fn flip(&mut self, vm: usize) -> (String, String) {
        let list = self.list_of(vm);
        self.actions[list] = match self.actions[list] {
            Action::Accept => Action::Drop,
            Action::Drop => Action::Accept,
        };
        match self.layout {
            Layout::OwnGroup => self.vm_file(vm),
            Layout::SharedGroup => self.shared_file(),
            Layout::SharedBase => self.base_file(),
        }
    }

    /// Every file: (name, contents).
    pub fn files(&self) -> Vec<(String, String)> {
        match self.layout {
            Layout::OwnGroup => (0..self.vms).map(|vm| self.vm_file(vm)).collect(),
            Layout::SharedGroup => {
                let groups = group_ids("sg-shared", 0..self.rules.div_ceil(GROUP_QUOTA));
                let instances: Vec<String> =
                    (0..self.vms).map(|vm| instance(vm, &groups)).collect();
                vec![
                    self.shared_file(),
                    (
                        "instances.json".to_owned(),
                        format!("{{\"instances\":[\n{}\n]}}\n", instances.join(",\n")),
                    ),
                ]
            }
            Layout::SharedBase => std::iter::once(self.base_file())
                .chain((0..self.vms).map(|vm| self.vm_file(vm)))
                .collect(),
        }
    }

    pub(super) fn write_all(&self, dir: &Path) -> Result<()> {
        for (name, text) in self.files() {
            let path = dir.join(&name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Rule `k` of every list in `direction`: a filler, or the probe rule
    /// (or, in VM `own`'s groups of the shared-base layout, its last rule:
    /// the own-group probe rule).
    fn rule(&self, k: usize, list: usize, ingress: bool, own: Option<usize>) -> String {
        if let Some(vm) = own
            && self.layout == Layout::SharedBase
            && k == self.rules - 1
        {
            let action = if ingress {
                self.own_actions[vm]
            } else {
                Action::Accept
            };
            return format!(
                r#"{{"action":"{}","protocol":"udp","port":"{OWN_PROBE_PORT}","remote":"{LAST_REMOTE}"}}"#,
                action.as_str()
            );
        }
        if k != self.probe_position() {
            return filler(k);
        }
        let action = if ingress {
            self.actions[list]
        } else {
            Action::Accept
        };
        format!(
            r#"{{"action":"{}","protocol":"udp","port":"{}-{}","remote":"{LAST_REMOTE}"}}"#,
            action.as_str(),
            LAST_PORTS.start(),
            LAST_PORTS.end()
        )
    }

    /// Groups `groups` (numbers of 100-rule slices of the list) named
    /// `prefix-gN`, with `list`'s probe action.
    fn groups(
        &self,
        prefix: &str,
        groups: std::ops::Range<usize>,
        list: usize,
        own: Option<usize>,
    ) -> String {
        let texts: Vec<String> = groups
            .map(|g| {
                let slice = g * GROUP_QUOTA..((g + 1) * GROUP_QUOTA).min(self.rules);
                let side = |ingress| {
                    slice
                        .clone()
                        .map(|k| self.rule(k, list, ingress, own))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                format!(
                    r#"{{"id":"{prefix}-g{g}","ingress":[{}],"egress":[{}]}}"#,
                    side(true),
                    side(false)
                )
            })
            .collect();
        texts.join(",\n")
    }

    /// VM `vm`'s file: its own groups (all ten, or all but the shared
    /// base) and its instance.
    fn vm_file(&self, vm: usize) -> (String, String) {
        let prefix = format!("sg-vm{vm:03}");
        let all = self.rules.div_ceil(GROUP_QUOTA);
        let (own, mut bound) = match self.layout {
            Layout::SharedBase => (1..all, vec!["sg-base-g0".to_owned()]),
            Layout::OwnGroup | Layout::SharedGroup => (0..all, Vec::new()),
        };
        bound.extend(group_ids(&prefix, own.clone()));
        let text = format!(
            "{{\"security_groups\":[\n{}\n],\"instances\":[\n{}\n]}}\n",
            self.groups(&prefix, own, self.list_of(vm), Some(vm)),
            instance(vm, &bound)
        );
        (format!("vm-{vm:03}.json"), text)
    }

    /// The ten groups every VM is bound to.
    fn shared_file(&self) -> (String, String) {
        let groups = self.groups("sg-shared", 0..self.rules.div_ceil(GROUP_QUOTA), 0, None);
        (
            "shared.json".to_owned(),
            format!("{{\"security_groups\":[\n{groups}\n]}}\n"),
        )
    }

    /// The base group every VM is bound to first (its slice 0 of the list).
    fn base_file(&self) -> (String, String) {
        // Named sg-base-g0 by `groups`; VMs bind it by that name.
        let groups = self.groups("sg-base", 0..1, 0, None);
        (
            "base.json".to_owned(),
            format!("{{\"security_groups\":[\n{groups}\n]}}\n"),
        )
    }
}

fn group_ids(prefix: &str, groups: std::ops::Range<usize>) -> Vec<String> {
    groups.map(|g| format!("{prefix}-g{g}")).collect()
}

/// Filler rule `i`: TCP (even) or UDP (odd) to one port from one host of
/// 203.0.113.0/24, never matching the probe (which comes from
/// [`LAST_RULE_REMOTE`](crate::rules::LAST_RULE_REMOTE)).
fn filler(i: usize) -> String {
    let protocol = if i.is_multiple_of(2) { "tcp" } else { "udp" };
    format!(
        r#"{{"action":"accept","protocol":"{protocol}","port":{},"remote":"203.0.113.{}"}}"#,
        1024 + i / 256,
        i % 256
    )
}

fn instance(vm: usize, groups: &[String]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
    format!(
        r#"{{"id":"{}","interface":"{}","ips":["{}"],"security_groups":[{}]}}"#,
        instance_id(vm),
        interface(vm),
        address(vm),
        groups.join(",")
    )
}
