//! [`Dataplane`]: the loaded programs and maps, and every operation the
//! daemon performs on them, split by concern:
//! - `load`: load the object, adopt (or refuse) what is pinned, own the
//!   pin directory;
//! - `swap`: make a set of interface bindings the enforced policy, all or
//!   nothing; notice writes by others;
//! - `attach`: hooks on interfaces, as a pinned pair or not at all;
//!   `attach_many`: the same for many interfaces at once;
//! - `observe`: counters and conntrack;
//! - `dump`: a table read back from the kernel maps;
//! - `deferred`: freeing replaced tables after the owner has reported the
//!   new policy;
//! - `adopt`: the headers and marker that let a restart trust what a
//!   previous owner wrote without reading it all back.

mod adopt;
mod attach;
mod attach_many;
mod deferred;
mod dump;
mod expedite;
pub(crate) mod load;
mod observe;
mod reap;
mod swap;
mod types;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{Array, MapData};
use aya::programs::{SchedClassifier, Xdp};
use secgroup_model::Direction;
use secgroup_policy::{PortSecurity, RuleList, RuleOrigin};

pub(crate) use attach::remove_pins;
pub use dump::TableDump;
pub use expedite::{Expedite, RCU_EXPEDITED};
pub use reap::{GraceBarrier, GraceToken};
pub use types::{
    AbiStamp, AdoptReport, ApplyReport, AttachInfo, CtTimeouts, InterfaceBinding, LoadOptions,
    Owner, RuleHits, Tampering, XdpAttachMode,
};

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::events::EventLimits;
use crate::maps::{Maps, names};
use crate::object::{PROG_TC_INGRESS, PROG_XDP_EGRESS};
use crate::observer::Observer;
use crate::pins::PinLock;
use crate::portsec::PsecStore;
use crate::tables::TableStore;
use crate::testrun::{Hook, TestRunOutcome, TestRunner};
use crate::uids::RuleUids;

/// Attachments held by this process when nothing is pinned.
struct OwnedLinks {
    xdp: aya::programs::xdp::XdpLinkId,
    tc: aya::programs::tc::SchedClassifierLinkId,
}

pub struct Dataplane {
    ebpf: Ebpf,
    maps: Maps,
    pin_dir: Option<PathBuf>,
    /// Held for the life of this value when there is a pin directory.
    lock: Option<PinLock>,
    /// What this process last wrote to `sg_meta`.
    meta: Meta,
    store: TableStore,
    /// Port-security sets, numbered from the same counter as tables.
    psec: PsecStore,
    uids: RuleUids,
    /// What sg_ifaces holds, as this process last wrote or read it.
    ifaces: HashMap<u32, Iface>,
    /// Reference counts of the table and port-security set ids in `ifaces`
    /// (one id space).
    refs: HashMap<u32, usize>,
    /// Tables adopted from a previous owner, verified by their headers.
    adopted: adopt::AdoptedTables,
    /// What the load found that may be adopted, until the first apply
    /// that succeeds.
    candidates: adopt::Candidates,
    /// Tables were adopted since the owner last asked: the rules' uids
    /// (`rule_origins`) changed although no table was written.
    origins_adopted: bool,
    /// What the pins' marker says now: nothing in the kernel but what
    /// interfaces use (`adopt.rs`).
    clean: bool,
    /// Set when the kernel may hold entries this process does not know
    /// (after an untrusted adoption, or finding the maps tampered with):
    /// the next apply sweeps every table entry it does not know of.
    sweep_pending: bool,
    /// Leave step 3 of an apply to `free_unused_now` (`deferred.rs`).
    defer_frees: bool,
    /// An apply left its step 3 to `free_unused_now`.
    free_pending: bool,
    /// Unused tables and sets waiting for a grace period, then deletion
    /// (`reap.rs`).
    reaping: reap::Reaping,
    owned_links: HashMap<u32, OwnedLinks>,
    /// Expedite grace periods during bulk attaches (`expedite.rs`).
    expedite: Option<Expedite>,
    /// Why expediting last failed, until the owner asks.
    expedite_failure: Option<String>,
    /// The map put into sg_rcu_barrier's slot to force a grace period.
    barrier_inner: Array<MapData, u32>,
    config: Config,
    /// Read handles on counters and conntrack, and the programs for test
    /// runs.
    observer: Observer,
}

impl Dataplane {
    fn write_config(&mut self) -> Result<(), DataplaneError> {
        self.maps
            .config
            .set(0, self.config, 0)
            .map_err(map_err(names::CONFIG))
    }

    pub fn set_timeouts(&mut self, timeouts: CtTimeouts) -> Result<(), DataplaneError> {
        self.config.ct_timeout_ns = timeouts.to_abi();
        self.write_config()
    }

    /// Every interface's event rate limit from now on (the programs read
    /// it per event). Until set: [`EventLimits::default`].
    pub fn set_event_limits(&mut self, limits: EventLimits) -> Result<(), DataplaneError> {
        self.config.event_rate = limits.rate();
        self.config.event_burst = limits.burst();
        self.write_config()
    }

    /// The verdict events (see [`Observer::events`]: one reader only).
    pub fn events(&self) -> Result<crate::EventStream, DataplaneError> {
        self.observer.events()
    }

    /// Moves the data plane's clock forward by `offset` (tests of timeouts).
    pub fn set_clock_offset(&mut self, offset: Duration) -> Result<(), DataplaneError> {
        self.config.clock_offset_ns = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX);
        self.write_config()
    }

    /// The data plane's clock: CLOCK_BOOTTIME plus the test offset, the
    /// clock of conntrack expiry and last-hit times.
    pub fn now_ns(&self) -> u64 {
        crate::observer::boot_ns().saturating_add(self.config.clock_offset_ns)
    }

    /// Whether [`attach_many`](Self::attach_many) of many interfaces
    /// turns the kernel's expedited grace periods on for its duration (see
    /// `expedite.rs`; off by default).
    pub fn set_expedite_grace_periods(&mut self, expedite: Option<Expedite>) {
        self.expedite = expedite;
    }

    /// Whether tables were adopted (see `adopt.rs`) since the last call:
    /// [`rule_origins`](Self::rule_origins) then names rules that no
    /// [`ApplyReport::tables_written`] announced.
    pub fn take_origins_adopted(&mut self) -> bool {
        std::mem::take(&mut self.origins_adopted)
    }

    /// Why a bulk attach could not expedite grace periods, once.
    pub fn take_expedite_failure(&mut self) -> Option<String> {
        self.expedite_failure.take()
    }

    /// The pin directory this process owns (and holds the lock of).
    pub fn pin_dir(&self) -> Option<&std::path::Path> {
        self.lock.as_ref().map(PinLock::path)
    }

    /// The owner recorded in the pins: this process once loaded.
    pub fn owner(&self) -> Option<Owner> {
        crate::pins::owner_of(&self.meta)
    }

    /// The pin layout version this build reads and writes.
    pub fn abi() -> AbiStamp {
        AbiStamp {
            version: ABI_VERSION,
        }
    }

    /// The policy generation recorded in the pins: it survives restarts
    /// and only grows.
    pub fn generation(&self) -> u64 {
        self.meta.generation
    }

    /// Records a new policy generation in the pins. Refuses to go back.
    pub fn set_generation(&mut self, generation: u64) -> Result<(), DataplaneError> {
        let mut meta = self.meta;
        meta.generation = meta.generation.max(generation);
        self.write_meta(meta)
    }

    fn write_meta(&mut self, meta: Meta) -> Result<(), DataplaneError> {
        self.maps
            .meta
            .set(0, meta, 0)
            .map_err(map_err(names::META))?;
        self.meta = meta;
        Ok(())
    }

    /// The `sg_ifaces` entry of an interface.
    pub fn interface(&self, ifindex: u32) -> Option<Iface> {
        self.ifaces.get(&ifindex).copied()
    }

    /// Every interface with an `sg_ifaces` entry, as this process last
    /// wrote or read them.
    pub fn interfaces(&self) -> impl Iterator<Item = (u32, Iface)> + '_ {
        self.ifaces.iter().map(|(i, v)| (*i, *v))
    }

    /// The rule list behind a table id this process wrote.
    pub fn table_rules(&self, table: u32) -> Option<&RuleList> {
        self.store
            .get(table)
            .map(|t| &t.list)
            .or_else(|| self.adopted.get(table))
    }

    /// The port-security spec behind a set id this process wrote (an
    /// interface's [`Iface::psec_set`]).
    pub fn port_security_set(&self, set: u32) -> Option<&PortSecurity> {
        self.psec.get(set)
    }

    /// Number of port-security sets in the kernel written by this process.
    pub fn psec_set_count(&self) -> usize {
        self.psec.ids().count()
    }

    /// Number of distinct tables in the kernel written or adopted by this
    /// process.
    pub fn table_count(&self) -> usize {
        self.store.ids().count() + self.adopted.ids().count()
    }

    /// The table id that holds `list`, written or adopted by this process.
    fn table_id_of(&self, list: &RuleList) -> Option<u32> {
        self.store.id_of(list).or_else(|| self.adopted.id_of(list))
    }

    /// Whether `id` is a table or port-security set this process knows.
    fn knows(&self, id: u32) -> bool {
        self.store.get(id).is_some()
            || self.adopted.get(id).is_some()
            || self.psec.get(id).is_some()
    }

    pub fn rule_uid(&self, origin: &RuleOrigin) -> Option<u32> {
        self.uids.get(origin)
    }

    /// Runs one frame through the live program of `hook`
    /// (BPF_PROG_TEST_RUN) and returns its verdict and decision. `ifindex`:
    /// the interface the frame pretends to use (must exist in the caller's
    /// namespace); `None` means loopback, whose `sg_ifaces` entry tests set
    /// up.
    pub fn test_run(
        &self,
        hook: Hook,
        frame: &[u8],
        ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<TestRunOutcome, DataplaneError> {
        self.observer
            .test_runner()
            .run(hook, frame, ifindex, repeat)
    }

    /// A handle that runs frames through the programs from any thread,
    /// independently of this `Dataplane`'s borrows.
    pub fn test_runner(&self) -> TestRunner {
        self.observer.test_runner().clone()
    }

    /// The hook that enforces `direction` (seen from the VM).
    pub fn hook_for(direction: Direction) -> Hook {
        match direction {
            Direction::Ingress => Hook::Tc,
            Direction::Egress => Hook::Xdp,
        }
    }

    fn xdp_mut(&mut self) -> Result<&mut Xdp, DataplaneError> {
        self.ebpf
            .program_mut(PROG_XDP_EGRESS)
            .and_then(|p| p.try_into().ok())
            .ok_or(DataplaneError::MissingProgram {
                name: PROG_XDP_EGRESS,
            })
    }

    fn tc_mut(&mut self) -> Result<&mut SchedClassifier, DataplaneError> {
        self.ebpf
            .program_mut(PROG_TC_INGRESS)
            .and_then(|p| p.try_into().ok())
            .ok_or(DataplaneError::MissingProgram {
                name: PROG_TC_INGRESS,
            })
    }
}
