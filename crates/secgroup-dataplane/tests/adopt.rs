//! A restart on the pins: tables and port-security sets whose header
//! verifies are adopted as they are (nothing rewritten, nothing swept);
//! one without a header, with another digest or a changed list is written
//! afresh and the old one swept; after an unfinished apply (the pins'
//! marker not clean) every key is read and strays are swept, their ids
//! never reused. Asserted through table ids and the kernel's own entries.

#[macro_use]
mod common;

use std::path::PathBuf;

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use common::*;
use secgroup_dataplane::abi::{ClassKey, Reason, RuleKey, RuleMeta, RuleSetBits};
use secgroup_dataplane::packet::Packet;
use secgroup_dataplane::{Dataplane, InterfaceBinding, LoadOptions, TableDump};
use secgroup_model::Direction::Ingress;
use secgroup_policy::{Enforcement, LogMode, Policy};

const VM: &str = "198.51.100.10";
const CLIENT: &str = "203.0.113.1";
/// The class id of headers and of the marker (`adopt.rs`).
const HEADER_CLASS: u32 = u32::MAX;
/// Interfaces of the tests: loopback (test runs) and two that only
/// exist in `sg_ifaces`.
const IFINDEXES: [u32; 3] = [TEST_IFINDEX, 90_001, 90_002];

/// A bpffs pin directory of this test, uninstalled on drop.
struct PinDir(PathBuf);

impl PinDir {
    fn new(tag: &str) -> PinDir {
        let dir = PathBuf::from(format!("/sys/fs/bpf/sgt-{tag}-{}", std::process::id()));
        let _ = secgroup_dataplane::uninstall(&dir);
        PinDir(dir)
    }

    fn load(&self) -> Dataplane {
        let options = LoadOptions {
            pin_dir: Some(self.0.clone()),
            ..LoadOptions::default()
        };
        let (dp, _) = Dataplane::load(&options)
            .unwrap_or_else(|e| panic!("loading with pins: {}", error_chain(&e)));
        dp
    }

    fn classes(&self) -> BpfHashMap<MapData, ClassKey, RuleSetBits> {
        let data = MapData::from_pin(self.0.join("sg_classes"))
            .unwrap_or_else(|e| panic!("opening pinned sg_classes: {e}"));
        Map::from_map_data(data)
            .unwrap_or_else(|e| panic!("typing sg_classes: {e}"))
            .try_into()
            .unwrap_or_else(|e| panic!("sg_classes: {e}"))
    }

    fn rules(&self) -> BpfHashMap<MapData, RuleKey, RuleMeta> {
        let data = MapData::from_pin(self.0.join("sg_rules"))
            .unwrap_or_else(|e| panic!("opening pinned sg_rules: {e}"));
        Map::from_map_data(data)
            .unwrap_or_else(|e| panic!("typing sg_rules: {e}"))
            .try_into()
            .unwrap_or_else(|e| panic!("sg_rules: {e}"))
    }

    /// Rewrites the record under (`table`, [`HEADER_CLASS`]) with `edit`.
    fn edit_record(&self, table: u32, edit: impl FnOnce(&mut RuleSetBits)) {
        let mut classes = self.classes();
        let key = ClassKey {
            table,
            class_id: HEADER_CLASS,
        };
        let mut bits = classes
            .get(&key, 0)
            .unwrap_or_else(|e| panic!("reading the record of {table}: {e}"));
        edit(&mut bits);
        classes
            .insert(key, bits, 0)
            .unwrap_or_else(|e| panic!("writing the record of {table}: {e}"));
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = secgroup_dataplane::uninstall(&self.0);
    }
}

fn policy(ingress: &str) -> Policy {
    compile(&format!(
        r#"{{
  "security_groups": [ {{ "id": "sg-test", "ingress": [{ingress}],
                          "egress": [{{"action":"accept","protocol":"tcp","port":"443"}}] }} ],
  "instances": [ {{ "id": "ins-vm", "interface": "tap-vm", "ips": ["{VM}"],
                   "mac": "52:54:00:00:00:01", "security_groups": ["sg-test"] }} ]
}}"#
    ))
}

fn accept_udp() -> Policy {
    policy(r#"{"action":"accept","protocol":"udp","port":"9000"}"#)
}

/// Binds every interface of [`IFINDEXES`] to the policy's instance, port
/// security on.
fn apply(dp: &mut Dataplane, policy: &Policy) -> secgroup_dataplane::ApplyReport {
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("the policy has no instance"));
    let bindings: Vec<InterfaceBinding<'_>> = IFINDEXES
        .iter()
        .map(|ifindex| InterfaceBinding {
            ifindex: *ifindex,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: Some(&inst.port_security),
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        })
        .collect();
    dp.apply(&bindings)
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)))
}

/// The ingress and egress table ids and the set id of the test interface.
fn ids(dp: &Dataplane) -> (u32, u32, u32) {
    let iface = dp
        .interface(TEST_IFINDEX)
        .unwrap_or_else(|| panic!("no entry for the test interface"));
    (iface.table[0], iface.table[1], iface.psec_set)
}

fn dump(dp: &Dataplane, id: u32) -> TableDump {
    dp.dump_table(id)
        .unwrap_or_else(|e| panic!("dumping table {id}: {}", error_chain(&e)))
}

fn udp_in() -> Packet {
    Packet::udp(ip(CLIENT), 5353, ip(VM), 9000)
}

fn expect_udp_accepted(dp: &Dataplane, what: &str) {
    expect(
        &run_frame(dp, Ingress, &udp_in().frame()),
        Reason::AcceptRule,
        Some(0),
        what,
    );
}

#[test]
fn a_restart_on_unchanged_rules_rewrites_and_sweeps_nothing() {
    kernel_test!();
    let pins = PinDir::new("adopt-same");
    let rules = accept_udp();
    let (before, dumps) = {
        let mut dp = pins.load();
        let first = apply(&mut dp, &rules);
        assert_eq!((first.tables_written, first.psec_sets_written), (2, 1));
        let (ingress, egress, _) = ids(&dp);
        assert!(dp.table_has_header(ingress) && dp.table_has_header(egress));
        // `dp` goes here: the pins stay.
        (
            dp.interfaces().collect::<Vec<_>>(),
            [dump(&dp, ingress), dump(&dp, egress)],
        )
    };
    let mut dp = pins.load();
    let report = apply(&mut dp, &rules);
    assert_eq!(
        (
            report.tables_written,
            report.psec_sets_written,
            report.interfaces_changed,
            report.tables_freed,
            report.stale_entries_swept,
            report.rcu_barriers
        ),
        (0, 0, 0, 0, 0, 0),
        "nothing rewritten, switched, freed or swept: {report:?}"
    );
    let mut after: Vec<_> = dp.interfaces().collect();
    let mut before = before;
    after.sort_by_key(|(i, _)| *i);
    before.sort_by_key(|(i, _)| *i);
    assert_eq!(after, before, "every interface keeps its tables and set");
    let (ingress, egress, set) = ids(&dp);
    assert_eq!([dump(&dp, ingress), dump(&dp, egress)], dumps);
    let inst = rules.instances.values().next();
    assert_eq!(dp.table_rules(ingress), inst.map(|i| &i.ingress));
    assert!(dp.port_security_set(set).is_some(), "the set is adopted");
    expect_udp_accepted(&dp, "the adopted tables enforce");
    assert!(
        !dp.rule_origins().is_empty(),
        "the adopted rules have their uids"
    );

    // The adopted tables are freed like any other once replaced: every
    // entry goes (their keys are rebuilt from the list).
    let changed = apply(
        &mut dp,
        &policy(r#"{"action":"accept","protocol":"tcp","port":"22"}"#),
    );
    assert_eq!(
        (changed.tables_written, changed.tables_freed),
        (1, 1),
        "{changed:?}"
    );
    assert!(
        dump(&dp, ingress).is_empty(),
        "the adopted ingress table is gone"
    );
    assert!(!dp.table_has_header(ingress));
    assert_eq!(ids(&dp).1, egress, "the egress list did not change");
}

#[test]
fn a_table_without_its_header_or_with_another_digest_is_rewritten_and_swept() {
    kernel_test!();
    let pins = PinDir::new("adopt-tampered");
    let rules = accept_udp();
    let (ingress, egress, set) = {
        let mut dp = pins.load();
        apply(&mut dp, &rules);
        ids(&dp)
    };
    // A half-written (or half-deleted) table has no header; one whose
    // content is not what this daemon would write has another digest.
    pins.classes()
        .remove(&ClassKey {
            table: ingress,
            class_id: HEADER_CLASS,
        })
        .unwrap_or_else(|e| panic!("removing the header: {e}"));
    pins.edit_record(egress, |bits| bits.words[1] ^= 1);
    pins.edit_record(set, |bits| bits.words[2] ^= 1);

    let mut dp = pins.load();
    let report = apply(&mut dp, &rules);
    assert_eq!(
        (report.tables_written, report.psec_sets_written),
        (2, 1),
        "neither table nor the set verifies: {report:?}"
    );
    assert!(report.stale_entries_swept > 0, "{report:?}");
    let (new_ingress, new_egress, new_set) = ids(&dp);
    assert!(
        new_ingress > egress && new_egress > egress && new_set > set,
        "fresh ids, never reused: {:?}",
        ids(&dp)
    );
    for old in [ingress, egress] {
        assert!(dump(&dp, old).is_empty(), "table {old} is swept");
        assert!(!dp.table_has_header(old));
    }
    expect_udp_accepted(&dp, "the rewritten tables enforce");

    // And the next restart trusts what this one wrote.
    drop(dp);
    let mut dp = pins.load();
    let report = apply(&mut dp, &rules);
    assert_eq!((report.tables_written, report.stale_entries_swept), (0, 0));
}

#[test]
fn a_list_changed_while_down_gets_a_new_table_and_the_old_is_swept() {
    kernel_test!();
    let pins = PinDir::new("adopt-changed");
    let (ingress, egress, _) = {
        let mut dp = pins.load();
        apply(&mut dp, &accept_udp());
        ids(&dp)
    };
    let mut dp = pins.load();
    let report = apply(
        &mut dp,
        &policy(r#"{"action":"accept","protocol":"udp","port":"9001"}"#),
    );
    assert_eq!(report.tables_written, 1, "only ingress changed: {report:?}");
    let (new_ingress, new_egress, _) = ids(&dp);
    assert_eq!(new_egress, egress, "the unchanged egress table is adopted");
    assert_ne!(new_ingress, ingress);
    assert!(
        dump(&dp, ingress).is_empty(),
        "the old ingress table is swept"
    );
    assert!(!dump(&dp, egress).is_empty());
    let outcome = run_frame(&dp, Ingress, &udp_in().frame());
    assert_eq!(
        reason(&outcome),
        Reason::DropDefault,
        "port 9000 is closed now"
    );
}

#[test]
fn a_rule_known_by_its_id_whose_remote_changed_while_down_gets_a_new_table() {
    kernel_test!();
    let pins = PinDir::new("adopt-remote");
    // Same id, so the same origin and uid: only the resolved remote
    // differs, which the digest must see.
    let from = |remote: &str| {
        policy(&format!(
            r#"{{"id":"r-udp","action":"accept","protocol":"udp","port":"9000","remote":"{remote}"}}"#
        ))
    };
    let (ingress, egress, _) = {
        let mut dp = pins.load();
        apply(&mut dp, &from(CLIENT));
        expect_udp_accepted(&dp, "from the client");
        ids(&dp)
    };
    let mut dp = pins.load();
    let report = apply(&mut dp, &from("198.51.100.99"));
    assert_eq!(report.tables_written, 1, "{report:?}");
    assert_ne!(ids(&dp).0, ingress, "a new ingress table");
    assert_eq!(ids(&dp).1, egress);
    // The flow accepted before is tracked with the old table's id: the
    // new table refuses it, so it is cut.
    let outcome = run_frame(&dp, Ingress, &udp_in().frame());
    assert_eq!(
        reason(&outcome),
        Reason::DropRevoked,
        "the client is refused now"
    );
}

#[test]
fn after_an_unfinished_apply_every_key_is_read_and_strays_are_swept() {
    kernel_test!();
    let pins = PinDir::new("adopt-dirty");
    let (ingress, _, _) = {
        let mut dp = pins.load();
        apply(&mut dp, &accept_udp());
        ids(&dp)
    };
    // What an owner that died while writing leaves: entries of a table no
    // interface names, under an id past the counter, and a marker that
    // says the pins are not clean.
    let stray = ingress + 1000;
    pins.rules()
        .insert(
            RuleKey {
                table: stray,
                pos: 0,
            },
            RuleMeta {
                rule_uid: 7,
                action: 1,
                flags: 0,
                pad: [0; 2],
            },
            0,
        )
        .unwrap_or_else(|e| panic!("writing a stray entry: {e}"));
    pins.edit_record(0, |bits| bits.words[2] = 0);

    let mut dp = pins.load();
    let report = apply(
        &mut dp,
        &policy(r#"{"action":"accept","protocol":"udp","port":"9001"}"#),
    );
    assert_eq!(report.tables_written, 1, "{report:?}");
    assert!(report.stale_entries_swept >= 1, "{report:?}");
    assert!(dump(&dp, stray).is_empty(), "the stray entry is swept");
    assert!(
        ids(&dp).0 > stray,
        "the new table's id is past the stray one: {:?}",
        ids(&dp)
    );
}
