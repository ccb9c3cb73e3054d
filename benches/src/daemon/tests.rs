use super::rule_dir::probe_local;
use super::*;
use secgroup_model::InstanceId;
use secgroup_policy::{Matched, Packet};

/// The verdict and deciding position the reference evaluator gives VM
/// `vm`'s probe in `direction` under `dir`'s files.
fn probe_verdict(
    dir: &RuleDir,
    vm: usize,
    direction: secgroup_model::Direction,
) -> (Action, Option<usize>) {
    let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
    let id = InstanceId::new(&instance_id(vm)).unwrap_or_else(|| panic!("bad id"));
    let packet = Packet {
        protocol: 17,
        remote: IpAddr::V4(LAST_RULE_REMOTE),
        local: IpAddr::V4(probe_local(vm)),
        src_port: 61000,
        dst_port: PROBE_PORT,
        icmp_type: 0,
        icmp_code: 0,
    };
    let instance = policy
        .instances
        .get(&id)
        .unwrap_or_else(|| panic!("no instance {id}"));
    assert_eq!(
        instance.ingress.rules.len(),
        dir.rules,
        "{id}: rules per direction"
    );
    let verdict = instance.rules(direction).evaluate(direction, &packet);
    let position = match verdict.matched {
        Matched::Rule { position, .. } => Some(position),
        Matched::Implicit(_) | Matched::DefaultDrop => None,
    };
    (verdict.action, position)
}

/// After flipping `flips` (VM numbers) in order, each VM's ingress probe
/// gets `expected` from the probe rule, as `action_of` says, and its
/// egress probe is still accepted by it.
#[track_caller]
fn check(layout: Layout, vms: usize, rules: usize, flips: &[usize], expected: &[Action]) {
    use secgroup_model::Direction::{Egress, Ingress};
    let mut dir = RuleDir::new(layout, vms, rules);
    for &vm in flips {
        let (name, text) = dir.flip(vm);
        let files = dir.files();
        let written = files
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{layout:?}: flip wrote {name}, not a file of the dir"));
        assert_eq!(written.1, text, "{layout:?}: flip's text is the file's");
    }
    let position = Some(dir.probe_position());
    for (vm, &want) in expected.iter().enumerate() {
        assert_eq!(dir.action_of(vm), want, "{layout:?} vm {vm}: action_of");
        assert_eq!(
            probe_verdict(&dir, vm, Ingress),
            (want, position),
            "{layout:?} vm {vm}: the ingress probe's verdict"
        );
        assert_eq!(
            probe_verdict(&dir, vm, Egress),
            (Action::Accept, position),
            "{layout:?} vm {vm}: the egress probe's verdict"
        );
    }
}

#[test]
fn flips_change_exactly_the_probe_verdicts_they_claim() {
    use Action::{Accept, Drop};
    use Layout::{OwnGroup, SharedBase, SharedGroup};
    let cases: &[(Layout, usize, &[usize], &[Action])] = &[
        (OwnGroup, 250, &[], &[Accept, Accept, Accept]),
        (OwnGroup, 250, &[1], &[Accept, Drop, Accept]),
        (OwnGroup, 250, &[1, 2, 1], &[Accept, Accept, Drop]),
        (OwnGroup, 1000, &[0], &[Drop, Accept, Accept]),
        (SharedGroup, 250, &[], &[Accept, Accept, Accept]),
        (SharedGroup, 250, &[2], &[Drop, Drop, Drop]),
        (SharedGroup, 100, &[0, 1], &[Accept, Accept, Accept]),
        (SharedBase, 250, &[], &[Accept, Accept, Accept]),
        (SharedBase, 250, &[1], &[Drop, Drop, Drop]),
        (SharedBase, 1000, &[0, 2], &[Accept, Accept, Accept]),
    ];
    for &(layout, rules, flips, expected) in cases {
        check(layout, 3, rules, flips, expected);
    }
}

#[test]
fn only_the_shared_base_layout_gives_every_vm_a_different_list() {
    for (layout, distinct) in [
        (Layout::OwnGroup, 4),
        (Layout::SharedGroup, 1),
        (Layout::SharedBase, 4),
    ] {
        let dir = RuleDir::new(layout, 4, 300);
        let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
        let mut lists: Vec<_> = policy
            .instances
            .values()
            .map(|i| format!("{:?}", i.ingress))
            .collect();
        lists.sort();
        lists.dedup();
        assert_eq!(lists.len(), distinct, "{layout:?}: distinct ingress lists");
    }
}

#[test]
fn every_vm_gets_its_own_interface_and_address() {
    let dir = RuleDir::new(Layout::SharedGroup, 100, 10);
    let policy = crate::rules::compile(&dir.files()).unwrap_or_else(|e| panic!("{e:#}"));
    let mut interfaces: Vec<_> = policy
        .instances
        .values()
        .filter_map(|i| i.interface.clone())
        .collect();
    interfaces.sort();
    interfaces.dedup();
    assert_eq!(interfaces.len(), 100, "distinct interfaces");
}
