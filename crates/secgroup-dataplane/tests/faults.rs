//! The data plane under faults: one owner per pin directory, pins of
//! another layout refused, table ids never reused (so a revoked flow stays
//! revoked across restarts), applies that fail half-way undone, writes by
//! someone else noticed and taken back, a generation that only grows.

#[macro_use]
mod common;

use std::path::PathBuf;

use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData};
use common::*;
use secgroup_dataplane::abi::{ABI_VERSION, Iface, Meta, Reason};
use secgroup_dataplane::packet::Packet;
use secgroup_dataplane::{Dataplane, DataplaneError, InterfaceBinding, LoadOptions, Tampering};
use secgroup_model::Direction::Ingress;
use secgroup_policy::{Enforcement, LogMode, Policy};

const VM: &str = "198.51.100.10";
const CLIENT: &str = "203.0.113.1";

/// A bpffs pin directory of this test, uninstalled on drop (after every
/// `Dataplane` using it is gone: uninstall needs the lock).
struct PinDir(PathBuf);

impl PinDir {
    fn new(tag: &str) -> PinDir {
        let dir = PathBuf::from(format!("/sys/fs/bpf/sgt-{tag}-{}", std::process::id()));
        let _ = secgroup_dataplane::uninstall(&dir);
        PinDir(dir)
    }

    fn options(&self) -> LoadOptions {
        LoadOptions {
            pin_dir: Some(self.0.clone()),
            owner_socket: Some(PathBuf::from(format!(
                "/run/sgt-{}.sock",
                std::process::id()
            ))),
            ..LoadOptions::default()
        }
    }

    fn load(&self) -> Dataplane {
        let (dp, _) = Dataplane::load(&self.options()).unwrap_or_else(|e| {
            panic!(
                "loading with pins in {}: {}",
                self.0.display(),
                error_chain(&e)
            )
        });
        dp
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
  "security_groups": [ {{ "id": "sg-test", "ingress": [{ingress}] }} ],
  "instances": [ {{ "id": "ins-vm", "interface": "tap-vm", "ips": ["{VM}"], "security_groups": ["sg-test"] }} ]
}}"#
    ))
}

fn bindings(policy: &Policy, ifindexes: impl Iterator<Item = u32>) -> Vec<InterfaceBinding<'_>> {
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("the policy has no instance"));
    ifindexes
        .map(|ifindex| InterfaceBinding {
            ifindex,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        })
        .collect()
}

fn apply(dp: &mut Dataplane, policy: &Policy) {
    dp.apply(&bindings(policy, [TEST_IFINDEX].into_iter()))
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
}

fn udp_in() -> Packet {
    Packet::udp(ip(CLIENT), 5353, ip(VM), 9000)
}

/// The pinned map `name` under `dir`, opened the way another process would.
fn pinned(dir: &PinDir, name: &str) -> Map {
    let data = MapData::from_pin(dir.0.join(name))
        .unwrap_or_else(|e| panic!("opening pinned {name}: {e}"));
    Map::from_map_data(data).unwrap_or_else(|e| panic!("typing pinned {name}: {e}"))
}

#[test]
fn a_second_owner_of_a_pin_directory_is_refused_and_told_who_owns_it() {
    kernel_test!();
    let pins = PinDir::new("lock");
    let first = pins.load();
    let refused = Dataplane::load(&LoadOptions {
        owner_socket: Some(PathBuf::from("/run/other.sock")),
        ..pins.options()
    });
    match refused {
        Err(e @ DataplaneError::PinDirLocked { .. }) => {
            let message = e.to_string();
            let pid = std::process::id().to_string();
            assert!(message.contains(&pid), "names the holder's pid: {message}");
            assert!(
                message.contains(&format!("/run/sgt-{pid}.sock")),
                "names the holder's socket: {message}"
            );
        }
        Err(e) => panic!("refused for the wrong reason: {}", error_chain(&e)),
        Ok(_) => panic!("a second owner of one pin directory was accepted"),
    }
    match secgroup_dataplane::uninstall(&pins.0) {
        Err(DataplaneError::PinDirLocked { .. }) => {}
        other => panic!("uninstall under a live owner was not refused: {other:?}"),
    }
    drop(first);
    let again = pins.load();
    drop(again);
}

#[test]
fn a_revoked_flow_stays_revoked_after_unbind_restart_and_rebind() {
    kernel_test!();
    let pins = PinDir::new("reuse");
    let open_udp = policy(r#"{"action":"accept","protocol":"udp","port":"9000"}"#);
    let no_udp = policy(r#"{"action":"accept","protocol":"tcp","port":"22"}"#);
    {
        let mut dp = pins.load();
        apply(&mut dp, &open_udp);
        expect(
            &run_frame(&dp, Ingress, &udp_in().frame()),
            Reason::AcceptRule,
            Some(0),
            "the flow is accepted while its rule stands",
        );
        // Unbound: its tables are freed, its conntrack entry stays.
        dp.apply(&[])
            .unwrap_or_else(|e| panic!("unbinding: {}", error_chain(&e)));
    }
    // A restart, then the interface is bound again to rules without UDP.
    let mut dp = pins.load();
    apply(&mut dp, &no_udp);
    let outcome = run_frame(&dp, Ingress, &udp_in().frame());
    assert!(
        !outcome.passed,
        "the old flow passed again after restart and rebind: {:?}",
        outcome.decision
    );
    assert_eq!(
        reason(&outcome),
        Reason::DropRevoked,
        "{:?}",
        outcome.decision
    );
}

#[test]
fn an_apply_that_fails_half_way_restores_every_interface() {
    kernel_test!();
    let mut dp = load_dataplane();
    let accept = policy(r#"{"action":"accept","protocol":"udp","port":"9000"}"#);
    let deny = policy(r#"{"action":"drop","protocol":"udp","port":"9000"}"#);
    // sg_ifaces holds 65536 entries: fill it, loopback first.
    const CAPACITY: u32 = 65536;
    dp.apply(&bindings(&accept, 1..=CAPACITY))
        .unwrap_or_else(|e| panic!("filling sg_ifaces: {}", error_chain(&e)));
    let origins = dp.rule_origins();
    // Every interface switches to `deny`, and one more does not fit: the
    // apply fails on its last entry, after switching all the others.
    match dp.apply(&bindings(&deny, 1..=CAPACITY + 1)) {
        Err(e) => eprintln!("the apply failed as it should: {}", error_chain(&e)),
        Ok(report) => panic!("an apply over capacity succeeded: {report:?}"),
    }
    assert_eq!(
        dp.check_pins()
            .unwrap_or_else(|e| panic!("reading the pins: {}", error_chain(&e))),
        Vec::<Tampering>::new(),
        "the kernel's sg_ifaces and the data plane's view agree after the failure"
    );
    expect(
        &run_frame(&dp, Ingress, &udp_in().frame()),
        Reason::AcceptRule,
        Some(0),
        "the interface enforces its old rules",
    );
    assert!(
        dp.interface(CAPACITY + 1).is_none(),
        "the extra interface is not bound"
    );
    let old_table = dp
        .interface(TEST_IFINDEX)
        .map(|i| i.table)
        .unwrap_or_else(|| panic!("the test interface lost its binding"));
    assert!(
        dp.table_rules(old_table[0]).is_some(),
        "the table in force is still known"
    );
    assert_eq!(dp.table_count(), 2, "the half-written new tables are gone");
    assert_eq!(
        dp.rule_origins(),
        origins,
        "counters are still read at the places of the rules in force, not the failed apply's"
    );
}

#[test]
fn pins_without_a_layout_stamp_or_of_another_layout_are_refused() {
    kernel_test!();
    let pins = PinDir::new("abi");
    drop(pins.load());
    {
        let mut meta: Array<MapData, Meta> = pinned(&pins, "sg_meta")
            .try_into()
            .unwrap_or_else(|e| panic!("sg_meta: {e}"));
        let mut value = meta
            .get(&0, 0)
            .unwrap_or_else(|e| panic!("reading sg_meta: {e}"));
        assert_eq!(
            value.abi_version, ABI_VERSION,
            "the pins carry this build's stamp"
        );
        value.abi_version = ABI_VERSION + 1;
        meta.set(0, value, 0)
            .unwrap_or_else(|e| panic!("writing sg_meta: {e}"));
    }
    match Dataplane::load(&pins.options()) {
        Err(e @ DataplaneError::IncompatiblePins { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("layout version {}", ABI_VERSION + 1)),
                "{message}"
            );
            assert!(
                message.contains("--uninstall"),
                "says what to do: {message}"
            );
        }
        Err(e) => panic!("refused for the wrong reason: {}", error_chain(&e)),
        Ok(_) => panic!("pins of another layout were adopted"),
    }
    // Pins from before the stamp existed: no sg_meta at all.
    std::fs::remove_file(pins.0.join("sg_meta"))
        .unwrap_or_else(|e| panic!("unpinning sg_meta: {e}"));
    match Dataplane::load(&pins.options()) {
        Err(DataplaneError::IncompatiblePins { found, .. }) => {
            assert!(found.contains("without a layout stamp"), "{found}")
        }
        Err(e) => panic!("refused for the wrong reason: {}", error_chain(&e)),
        Ok(_) => panic!("unstamped pins were adopted"),
    }
}

#[test]
fn writes_by_someone_else_are_noticed_and_taken_back() {
    kernel_test!();
    let pins = PinDir::new("tamper");
    let accept = policy(r#"{"action":"accept","protocol":"udp","port":"9000"}"#);
    let mut dp = pins.load();
    apply(&mut dp, &accept);
    assert_eq!(
        dp.check_pins().unwrap_or_default(),
        Vec::new(),
        "nothing to report yet"
    );
    {
        // Another process points the interface at "no table" (drop all)
        // and claims the pins.
        let mut ifaces: BpfHashMap<MapData, u32, Iface> = pinned(&pins, "sg_ifaces")
            .try_into()
            .unwrap_or_else(|e| panic!("sg_ifaces: {e}"));
        let mut iface = ifaces
            .get(&TEST_IFINDEX, 0)
            .unwrap_or_else(|e| panic!("reading sg_ifaces: {e}"));
        iface.table = [0, 0];
        ifaces
            .insert(TEST_IFINDEX, iface, 0)
            .unwrap_or_else(|e| panic!("writing sg_ifaces: {e}"));
        let mut meta: Array<MapData, Meta> = pinned(&pins, "sg_meta")
            .try_into()
            .unwrap_or_else(|e| panic!("sg_meta: {e}"));
        let mut value = meta
            .get(&0, 0)
            .unwrap_or_else(|e| panic!("reading sg_meta: {e}"));
        value.owner_token ^= 1;
        value.owner_pid = 4242;
        meta.set(0, value, 0)
            .unwrap_or_else(|e| panic!("writing sg_meta: {e}"));
    }
    let found = dp
        .check_pins()
        .unwrap_or_else(|e| panic!("checking the pins: {}", error_chain(&e)));
    assert!(
        found.contains(&Tampering::InterfaceChanged {
            ifindex: TEST_IFINDEX
        }),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|t| matches!(t, Tampering::OwnerChanged { pid: 4242, .. })),
        "{found:?}"
    );
    dp.reclaim()
        .unwrap_or_else(|e| panic!("reclaiming: {}", error_chain(&e)));
    let report = dp
        .apply(&bindings(&accept, [TEST_IFINDEX].into_iter()))
        .unwrap_or_else(|e| panic!("re-applying: {}", error_chain(&e)));
    assert_eq!(report.interfaces_changed, 1, "{report:?}");
    assert_eq!(
        dp.check_pins().unwrap_or_default(),
        Vec::new(),
        "taken back"
    );
    expect(
        &run_frame(&dp, Ingress, &udp_in().frame()),
        Reason::AcceptRule,
        Some(0),
        "the policy is enforced again",
    );
}

#[test]
fn the_generation_survives_restarts_and_never_goes_back() {
    kernel_test!();
    let pins = PinDir::new("gen");
    {
        let mut dp = pins.load();
        assert_eq!(dp.generation(), 0, "fresh pins start at 0");
        dp.set_generation(4)
            .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    }
    let (mut dp, adopted) = Dataplane::load(&pins.options())
        .unwrap_or_else(|e| panic!("reloading: {}", error_chain(&e)));
    assert_eq!(adopted.generation, 4, "{adopted:?}");
    assert_eq!(dp.generation(), 4);
    dp.set_generation(2)
        .unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    assert_eq!(dp.generation(), 4, "a generation never goes back");
    assert_eq!(
        adopted.previous_owner.map(|o| o.pid),
        Some(u64::from(std::process::id())),
        "the pins named their previous owner"
    );
}
