//! [`Dataplane`]: the loaded programs and maps, and every operation the
//! daemon performs on them.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aya::maps::{Array, MapData};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::{SchedClassifierLink, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use secgroup_model::Direction;
use secgroup_policy::{RuleList, RuleOrigin};

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, names};
use crate::object::{BYTES, PROG_TC_INGRESS, PROG_XDP_EGRESS};
use crate::tables::{self, TableStore};
use crate::testrun::{Hook, TestRunOutcome, TestRunner};
use crate::uids::RuleUids;
use crate::{bpffs, netns};

/// Conntrack timeouts. Defaults follow Linux and the large clouds: TCP
/// established 5 days, SYN 60 s, closing 120 s, UDP 30 s one way and 180 s
/// once replied, ICMP 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtTimeouts {
    pub tcp_syn: Duration,
    pub tcp_established: Duration,
    pub tcp_closing: Duration,
    pub tcp_closed: Duration,
    pub udp: Duration,
    pub udp_stream: Duration,
    pub icmp: Duration,
    pub other: Duration,
    pub fragment: Duration,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        CtTimeouts {
            tcp_syn: Duration::from_secs(60),
            tcp_established: Duration::from_secs(5 * 24 * 3600),
            tcp_closing: Duration::from_secs(120),
            tcp_closed: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(180),
            icmp: Duration::from_secs(30),
            other: Duration::from_secs(600),
            fragment: Duration::from_secs(30),
        }
    }
}

impl CtTimeouts {
    fn to_abi(self) -> [u64; CtTimeout::COUNT] {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut out = [0u64; CtTimeout::COUNT];
        out[CtTimeout::TcpSyn as usize] = ns(self.tcp_syn);
        out[CtTimeout::TcpEstablished as usize] = ns(self.tcp_established);
        out[CtTimeout::TcpClosing as usize] = ns(self.tcp_closing);
        out[CtTimeout::TcpClosed as usize] = ns(self.tcp_closed);
        out[CtTimeout::Udp as usize] = ns(self.udp);
        out[CtTimeout::UdpStream as usize] = ns(self.udp_stream);
        out[CtTimeout::Icmp as usize] = ns(self.icmp);
        out[CtTimeout::Other as usize] = ns(self.other);
        out[CtTimeout::Fragment as usize] = ns(self.fragment);
        out
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// bpffs directory for maps and links that must outlive this process
    /// (the daemon's `/sys/fs/bpf/secgroup`). `None` keeps everything
    /// private to this process: tests run side by side that way.
    pub pin_dir: Option<PathBuf>,
    pub timeouts: CtTimeouts,
}

/// What one interface should enforce.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceBinding<'a> {
    pub ifindex: u32,
    pub ingress: &'a RuleList,
    pub egress: &'a RuleList,
    /// Rule changes spare already tracked flows (the AWS behaviour) instead
    /// of re-checking them (the default, seed 001: changes apply at once).
    pub keep_established: bool,
    /// Opaque to the kernel; lets userspace map an interface back to its
    /// instance after a restart.
    pub instance_uid: u32,
}

/// What [`Dataplane::apply`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub tables_written: usize,
    pub tables_freed: usize,
    pub interfaces_changed: usize,
    pub interfaces_removed: usize,
    /// RCU grace periods waited for: 0 or 1 per apply, never one per
    /// interface.
    pub rcu_barriers: usize,
    /// Table entries of a previous process swept after adoption.
    pub stale_entries_swept: usize,
    pub duration: Duration,
}

/// What [`Dataplane::load`] found pinned by a previous process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    pub interfaces: usize,
    pub tables: usize,
    pub conntrack_entries: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver, before an skb exists.
    Driver,
    /// In the stack, for drivers without native XDP.
    Generic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInfo {
    pub ifindex: u32,
    pub xdp_mode: XdpAttachMode,
    /// Existing pinned links were pointed at the newly loaded programs
    /// instead of creating new ones.
    pub adopted: bool,
}

/// Hits of one rule on one interface, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHits {
    pub ifindex: u32,
    pub rule_uid: u32,
    /// `None` for counters of rules this process has not seen (left by a
    /// previous policy).
    pub origin: Option<RuleOrigin>,
    pub packets: u64,
    pub bytes: u64,
    /// On the data plane's clock (see [`Dataplane::now_ns`]); 0 if never.
    pub last_hit_ns: u64,
}

/// Links just created, before they are pinned or kept.
struct FreshLinks {
    ifindex: u32,
    xdp: aya::programs::xdp::XdpLinkId,
    tc: aya::programs::tc::SchedClassifierLinkId,
    xdp_mode: XdpAttachMode,
}

/// Attachments held by this process when nothing is pinned.
struct OwnedLinks {
    xdp: aya::programs::xdp::XdpLinkId,
    tc: aya::programs::tc::SchedClassifierLinkId,
}

pub struct Dataplane {
    ebpf: Ebpf,
    maps: Maps,
    pin_dir: Option<PathBuf>,
    store: TableStore,
    uids: RuleUids,
    /// What sg_ifaces holds, as this process last wrote or read it.
    ifaces: HashMap<u32, Iface>,
    /// Reference counts of table ids in `ifaces`.
    table_refs: HashMap<u32, usize>,
    /// Set after adopting pinned maps: the first apply sweeps every table
    /// entry this process did not write.
    sweep_pending: bool,
    owned_links: HashMap<u32, OwnedLinks>,
    /// The map put into sg_rcu_barrier's slot to force a grace period.
    barrier_inner: Array<MapData, u32>,
    config: Config,
    runner: TestRunner,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DataplaneError {
    let path = path.to_owned();
    move |source| DataplaneError::Io {
        action,
        path,
        source,
    }
}

impl Dataplane {
    /// Loads the programs and creates (or, with a pin directory, adopts) the
    /// maps. Attaches nothing.
    pub fn load(options: &LoadOptions) -> Result<(Dataplane, AdoptReport), DataplaneError> {
        let mut loader = EbpfLoader::new();
        let pin_paths: Vec<(&str, PathBuf)> = match &options.pin_dir {
            Some(dir) => {
                bpffs::ensure_pin_dir(dir)?;
                std::fs::create_dir_all(dir.join("links"))
                    .map_err(io_err("creating", &dir.join("links")))?;
                crate::maps::PINNED
                    .iter()
                    .map(|name| (*name, dir.join(name)))
                    .collect()
            }
            None => Vec::new(),
        };
        // An existing pin is reused (adoption after a restart); a missing
        // one is created and pinned.
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(BYTES).map_err(DataplaneError::Load)?;
        for name in [PROG_XDP_EGRESS, PROG_TC_INGRESS] {
            let program = ebpf
                .program_mut(name)
                .ok_or(DataplaneError::MissingProgram { name })?;
            let load_err = |source| DataplaneError::Program {
                name,
                action: "load",
                source,
            };
            match program {
                aya::programs::Program::Xdp(p) => p.load().map_err(load_err)?,
                aya::programs::Program::SchedClassifier(p) => p.load().map_err(load_err)?,
                _ => return Err(DataplaneError::MissingProgram { name }),
            }
        }
        let maps = Maps::take_all(&mut ebpf)?;
        let runner = test_runner_for(&ebpf)?;
        let barrier_inner =
            Array::<MapData, u32>::create(1, 0).map_err(map_err(names::RCU_BARRIER))?;

        let mut ifaces = HashMap::new();
        for entry in maps.ifaces.iter() {
            let (ifindex, iface) = entry.map_err(map_err(names::IFACES))?;
            ifaces.insert(ifindex, iface);
        }
        let ids = tables::ids_in_kernel(&maps)?;
        let next_id = ids.iter().max().map_or(1, |max| max.saturating_add(1));
        let adopted = AdoptReport {
            interfaces: ifaces.len(),
            tables: ids.len(),
            conntrack_entries: maps.ct.keys().count(),
        };
        let mut table_refs = HashMap::new();
        for iface in ifaces.values() {
            for table in iface.table.iter().filter(|t| **t != NO_TABLE) {
                *table_refs.entry(*table).or_default() += 1;
            }
        }

        let mut dataplane = Dataplane {
            ebpf,
            maps,
            pin_dir: options.pin_dir.clone(),
            store: TableStore::with_next_id(next_id),
            uids: RuleUids::default(),
            ifaces,
            table_refs,
            sweep_pending: !ids.is_empty(),
            owned_links: HashMap::new(),
            barrier_inner,
            config: Config::default(),
            runner,
        };
        dataplane.set_timeouts(options.timeouts)?;
        Ok((dataplane, adopted))
    }

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

    /// Moves the data plane's clock forward by `offset` (tests of timeouts).
    pub fn set_clock_offset(&mut self, offset: Duration) -> Result<(), DataplaneError> {
        self.config.clock_offset_ns = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX);
        self.write_config()
    }

    /// The data plane's clock: CLOCK_BOOTTIME plus the test offset, the
    /// clock of conntrack expiry and last-hit times.
    pub fn now_ns(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        (ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
            .saturating_add(self.config.clock_offset_ns)
    }

    /// Makes exactly `bindings` the enforced policy, atomically per
    /// interface: every packet sees either its old tables or its new ones.
    ///
    /// 1. Tables for rule lists not yet in the kernel are built and written
    ///    under fresh ids (nobody reads them yet). Any failure here undoes
    ///    those writes and leaves everything as it was.
    /// 2. Each interface whose tables changed gets its `sg_ifaces` entry
    ///    replaced in one update; interfaces not in `bindings` lose theirs
    ///    (their hooks then drop IP traffic: fail closed).
    /// 3. If some tables lost their last user: one RCU barrier, after which
    ///    no program can still hold their ids, then their entries go.
    pub fn apply(
        &mut self,
        bindings: &[InterfaceBinding<'_>],
    ) -> Result<ApplyReport, DataplaneError> {
        let started = Instant::now();
        let mut report = ApplyReport::default();

        // 1. New tables.
        let mut written: Vec<u32> = Vec::new();
        let mut wanted: HashMap<u32, Iface> = HashMap::with_capacity(bindings.len());
        for binding in bindings {
            let mut iface = Iface {
                table: [NO_TABLE; DIR_MAX],
                flags: if binding.keep_established {
                    IFACE_F_KEEP_ESTABLISHED
                } else {
                    0
                },
                instance_uid: binding.instance_uid,
            };
            for (dir, list) in [(DIR_INGRESS, binding.ingress), (DIR_EGRESS, binding.egress)] {
                let id = match self.store.id_of(list) {
                    Some(id) => id,
                    None => match self.write_new_table(list, binding.ifindex) {
                        Ok(id) => {
                            written.push(id);
                            id
                        }
                        Err(e) => {
                            for id in written {
                                self.forget_table(id);
                            }
                            return Err(e);
                        }
                    },
                };
                iface.table[dir as usize] = id;
            }
            wanted.insert(binding.ifindex, iface);
        }
        report.tables_written = written.len();

        // 2. Switch interfaces.
        for (ifindex, iface) in &wanted {
            if self.ifaces.get(ifindex) == Some(iface) {
                continue;
            }
            self.maps
                .ifaces
                .insert(*ifindex, *iface, 0)
                .map_err(map_err(names::IFACES))?;
            if let Some(old) = self.ifaces.insert(*ifindex, *iface) {
                self.unref(&old);
            }
            self.add_ref(iface);
            report.interfaces_changed += 1;
        }
        let gone: Vec<u32> = self
            .ifaces
            .keys()
            .filter(|i| !wanted.contains_key(i))
            .copied()
            .collect();
        for ifindex in gone {
            self.maps
                .ifaces
                .remove(&ifindex)
                .map_err(map_err(names::IFACES))?;
            if let Some(old) = self.ifaces.remove(&ifindex) {
                self.unref(&old);
            }
            report.interfaces_removed += 1;
        }

        // 3. Free what nobody uses, after one grace period.
        let unused: Vec<u32> = self
            .store
            .ids()
            .filter(|id| self.table_refs.get(id).copied().unwrap_or(0) == 0)
            .collect();
        if !unused.is_empty() || self.sweep_pending {
            self.rcu_barrier()?;
            report.rcu_barriers = 1;
        }
        for id in unused {
            self.forget_table(id);
            report.tables_freed += 1;
        }
        if self.sweep_pending {
            let live: HashSet<u32> = self.store.ids().collect();
            report.stale_entries_swept = tables::sweep(&mut self.maps, &live)?;
            self.table_refs.retain(|id, _| live.contains(id));
            self.sweep_pending = false;
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    fn write_new_table(&mut self, list: &RuleList, ifindex: u32) -> Result<u32, DataplaneError> {
        let table =
            secgroup_classifier::build(list).map_err(|source| DataplaneError::Classifier {
                what: format!("interface {ifindex}"),
                source,
            })?;
        let id = self.store.allocate()?;
        if let Err(e) = tables::write(&mut self.maps, &mut self.uids, id, &table) {
            tables::delete(&mut self.maps, id, &table);
            return Err(e);
        }
        self.store.insert(id, list.clone(), table);
        Ok(id)
    }

    fn forget_table(&mut self, id: u32) {
        if let Some(stored) = self.store.remove(id) {
            tables::delete(&mut self.maps, id, &stored.table);
        }
        self.table_refs.remove(&id);
    }

    fn add_ref(&mut self, iface: &Iface) {
        for id in iface.table.iter().filter(|t| **t != NO_TABLE) {
            *self.table_refs.entry(*id).or_default() += 1;
        }
    }

    fn unref(&mut self, iface: &Iface) {
        for id in iface.table.iter().filter(|t| **t != NO_TABLE) {
            if let Some(refs) = self.table_refs.get_mut(id) {
                *refs = refs.saturating_sub(1);
            }
        }
    }

    /// Waits until no BPF program can still be using a value it read
    /// before this call. The kernel waits for an RCU grace period after
    /// every map-in-map update made through the syscall, so updating the
    /// one slot of sg_rcu_barrier is exactly that wait (~ms); nothing reads
    /// the slot.
    pub fn rcu_barrier(&mut self) -> Result<(), DataplaneError> {
        self.maps
            .rcu_barrier
            .set(0, &self.barrier_inner, 0)
            .map_err(map_err(names::RCU_BARRIER))
    }

    /// The `sg_ifaces` entry of an interface.
    pub fn interface(&self, ifindex: u32) -> Option<Iface> {
        self.ifaces.get(&ifindex).copied()
    }

    /// The rule list behind a table id this process wrote.
    pub fn table_rules(&self, table: u32) -> Option<&RuleList> {
        self.store.get(table).map(|t| &t.list)
    }

    /// The classifier table behind a table id this process wrote.
    pub fn table(&self, table: u32) -> Option<&secgroup_classifier::Table> {
        self.store.get(table).map(|t| &t.table)
    }

    /// Number of distinct tables in the kernel written by this process.
    pub fn table_count(&self) -> usize {
        self.store.ids().count()
    }

    pub fn rule_uid(&self, origin: &RuleOrigin) -> Option<u32> {
        self.uids.get(origin)
    }

    // ---- Attaching ------------------------------------------------------

    /// Where an interface's links are pinned. No dots: bpffs reserves
    /// names containing one (EPERM).
    fn link_paths(&self, ifindex: u32) -> Option<(PathBuf, PathBuf)> {
        let dir = self.pin_dir.as_ref()?.join("links");
        Some((
            dir.join(format!("{ifindex}_xdp")),
            dir.join(format!("{ifindex}_tcx")),
        ))
    }

    /// Attaches both hooks to `ifname` in the calling thread's network
    /// namespace. With a pin directory the links are pinned (they keep
    /// filtering when this process exits) and existing pins for the
    /// interface are re-pointed at this process's programs.
    pub fn attach(&mut self, ifname: &str) -> Result<AttachInfo, DataplaneError> {
        let ifindex = netns::ifindex(ifname)?;
        if let Some(info) = self.adopt_links(ifindex)? {
            return Ok(info);
        }
        let fresh = self.create_links(ifname, ifindex)?;
        self.keep_links(fresh)
    }

    /// Attaches to the interface with index `ifindex` in the calling
    /// thread's network namespace.
    pub fn attach_index(&mut self, ifindex: u32) -> Result<AttachInfo, DataplaneError> {
        let name = netns::ifname(ifindex)?;
        self.attach(&name)
    }

    /// Attaches inside the network namespace at `netns`. Only the link
    /// creation runs on the namespace's thread (interface names and
    /// ifindexes resolve there); adoption and pinning happen here.
    pub fn attach_in(&mut self, netns: &Path, ifname: &str) -> Result<AttachInfo, DataplaneError> {
        let ifindex = netns::run_in(netns, || netns::ifindex(ifname))??;
        if let Some(info) = self.adopt_links(ifindex)? {
            return Ok(info);
        }
        let fresh = netns::run_in(netns, || self.create_links(ifname, ifindex))??;
        self.keep_links(fresh)
    }

    /// Creates both links, driver-mode XDP first, generic if the driver
    /// has no XDP. Never leaves one hook attached without the other.
    fn create_links(&mut self, ifname: &str, ifindex: u32) -> Result<FreshLinks, DataplaneError> {
        let xdp_prog = self.xdp_mut()?;
        let (xdp, xdp_mode) = match xdp_prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => (link, XdpAttachMode::Driver),
            Err(_) => {
                let link =
                    xdp_prog
                        .attach_to_if_index(ifindex, XdpMode::Skb)
                        .map_err(|source| DataplaneError::Program {
                            name: PROG_XDP_EGRESS,
                            action: "attach",
                            source,
                        })?;
                (link, XdpAttachMode::Generic)
            }
        };
        let tc = match self.tc_mut()?.attach_with_options(
            ifname,
            TcAttachType::Egress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        ) {
            Ok(link) => link,
            Err(source) => {
                let _ = self.xdp_mut()?.detach(xdp);
                return Err(DataplaneError::Program {
                    name: PROG_TC_INGRESS,
                    action: "attach",
                    source,
                });
            }
        };
        Ok(FreshLinks {
            ifindex,
            xdp,
            tc,
            xdp_mode,
        })
    }

    /// Pins fresh links (with a pin directory) or keeps them owned.
    fn keep_links(&mut self, fresh: FreshLinks) -> Result<AttachInfo, DataplaneError> {
        let FreshLinks {
            ifindex,
            xdp,
            tc,
            xdp_mode,
        } = fresh;
        let info = AttachInfo {
            ifindex,
            xdp_mode,
            adopted: false,
        };
        let Some((xdp_path, tc_path)) = self.link_paths(ifindex) else {
            self.owned_links.insert(ifindex, OwnedLinks { xdp, tc });
            return Ok(info);
        };
        let take_err = |name, source| DataplaneError::Program {
            name,
            action: "take link",
            source,
        };
        let xdp_fd: FdLink = self
            .xdp_mut()?
            .take_link(xdp)
            .map_err(|e| take_err(PROG_XDP_EGRESS, e))?
            .try_into()
            .map_err(|source| DataplaneError::Link {
                path: xdp_path.clone(),
                source,
            })?;
        let tc_fd: FdLink = self
            .tc_mut()?
            .take_link(tc)
            .map_err(|e| take_err(PROG_TC_INGRESS, e))?
            .try_into()
            .map_err(|source| DataplaneError::Link {
                path: tc_path.clone(),
                source,
            })?;
        xdp_fd
            .pin(&xdp_path)
            .map_err(|source| DataplaneError::Pin {
                path: xdp_path,
                source,
            })?;
        tc_fd.pin(&tc_path).map_err(|source| DataplaneError::Pin {
            path: tc_path,
            source,
        })?;
        Ok(info)
    }

    /// Points pinned links of a previous process at our programs. `None`
    /// when there is nothing usable pinned for `ifindex` (stale pins of a
    /// vanished interface are removed).
    fn adopt_links(&mut self, ifindex: u32) -> Result<Option<AttachInfo>, DataplaneError> {
        let Some((xdp_path, tc_path)) = self.link_paths(ifindex) else {
            return Ok(None);
        };
        if !xdp_path.exists() || !tc_path.exists() {
            remove_pins(&[&xdp_path, &tc_path]);
            return Ok(None);
        }
        let open = |path: &Path| {
            PinnedLink::from_pin(path).map_err(|source| DataplaneError::Link {
                path: path.to_owned(),
                source,
            })
        };
        let xdp_link: aya::programs::xdp::XdpLink = FdLink::from(open(&xdp_path)?)
            .try_into()
            .map_err(|source| DataplaneError::Link {
                path: xdp_path.clone(),
                source,
            })?;
        let tc_link: SchedClassifierLink =
            FdLink::from(open(&tc_path)?)
                .try_into()
                .map_err(|source| DataplaneError::Link {
                    path: tc_path.clone(),
                    source,
                })?;
        // A link whose interface is gone refuses the update: start afresh.
        let xdp_ok = self.xdp_mut()?.attach_to_link(xdp_link).is_ok();
        let tc_ok = self.tc_mut()?.attach_to_link(tc_link).is_ok();
        if !(xdp_ok && tc_ok) {
            remove_pins(&[&xdp_path, &tc_path]);
            return Ok(None);
        }
        Ok(Some(AttachInfo {
            ifindex,
            xdp_mode: XdpAttachMode::Driver,
            adopted: true,
        }))
    }

    /// Detaches both hooks from `ifindex` and removes its pins. Its
    /// `sg_ifaces` entry stays until the next [`apply`](Self::apply)
    /// without it.
    pub fn detach(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        if let Some(links) = self.owned_links.remove(&ifindex) {
            let detach_err = |name| {
                move |source| DataplaneError::Program {
                    name,
                    action: "detach",
                    source,
                }
            };
            self.xdp_mut()?
                .detach(links.xdp)
                .map_err(detach_err(PROG_XDP_EGRESS))?;
            self.tc_mut()?
                .detach(links.tc)
                .map_err(detach_err(PROG_TC_INGRESS))?;
        }
        if let Some((xdp_path, tc_path)) = self.link_paths(ifindex) {
            remove_pins(&[&xdp_path, &tc_path]);
        }
        Ok(())
    }

    /// Ifindexes with pinned links in the pin directory.
    pub fn pinned_interfaces(&self) -> Vec<u32> {
        let Some(dir) = self.pin_dir.as_ref().map(|d| d.join("links")) else {
            return Vec::new();
        };
        let mut found: Vec<u32> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix("_xdp")?.parse().ok())
            .collect();
        found.sort_unstable();
        found
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

    // ---- Observing ------------------------------------------------------

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
        self.runner.run(hook, frame, ifindex, repeat)
    }

    /// A handle that runs frames through the programs from any thread,
    /// independently of this `Dataplane`'s borrows.
    pub fn test_runner(&self) -> TestRunner {
        self.runner.clone()
    }

    /// The hook that enforces `direction` (seen from the VM).
    pub fn hook_for(direction: Direction) -> Hook {
        match direction {
            Direction::Ingress => Hook::Tc,
            Direction::Egress => Hook::Xdp,
        }
    }

    /// Per-rule hit counters, summed over CPUs.
    pub fn rule_hits(&self) -> Result<Vec<RuleHits>, DataplaneError> {
        let mut hits = Vec::new();
        for entry in self.maps.rule_hits.iter() {
            let (key, per_cpu) = entry.map_err(map_err(names::RULE_HITS))?;
            let mut total = RuleHits {
                ifindex: key.ifindex,
                rule_uid: key.rule_uid,
                origin: self.uids.origin(key.rule_uid).cloned(),
                packets: 0,
                bytes: 0,
                last_hit_ns: 0,
            };
            for c in per_cpu.iter() {
                total.packets += c.packets;
                total.bytes += c.bytes;
                total.last_hit_ns = total.last_hit_ns.max(c.last_hit_ns);
            }
            hits.push(total);
        }
        hits.sort_by_key(|h| (h.ifindex, h.rule_uid));
        Ok(hits)
    }

    /// Per-reason packet and byte counts of one interface and direction,
    /// summed over CPUs.
    pub fn interface_stats(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> Result<IfaceStats, DataplaneError> {
        let dir = match direction {
            Direction::Ingress => DIR_INGRESS,
            Direction::Egress => DIR_EGRESS,
        };
        let key = IfaceStatsKey {
            ifindex,
            dir: u32::from(dir),
        };
        let mut total = IfaceStats::default();
        match self.maps.if_stats.get(&key, 0) {
            Ok(per_cpu) => {
                for s in per_cpu.iter() {
                    for r in 0..Reason::COUNT {
                        total.packets[r] += s.packets[r];
                        total.bytes[r] += s.bytes[r];
                    }
                }
            }
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(names::IF_STATS)(e)),
        }
        Ok(total)
    }

    /// Every live conntrack entry (expired ones are left out).
    pub fn conntrack(&self) -> Result<Vec<(CtKey, CtEntry)>, DataplaneError> {
        let now = self.now_ns();
        let mut entries = Vec::new();
        for entry in self.maps.ct.iter() {
            let (key, value) = entry.map_err(map_err(names::CT))?;
            if value.expires_ns > now {
                entries.push((key, value));
            }
        }
        Ok(entries)
    }

    /// The conntrack entry of one flow, expired or not.
    pub fn conntrack_entry(&self, key: &CtKey) -> Result<Option<CtEntry>, DataplaneError> {
        match self.maps.ct.get(key, 0) {
            Ok(entry) => Ok(Some(entry)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(names::CT)(e)),
        }
    }

    /// Deletes one flow's entry; `false` when there was none (never made,
    /// or evicted from the LRU meanwhile).
    pub fn remove_conntrack(&mut self, key: &CtKey) -> Result<bool, DataplaneError> {
        match self.maps.ct.remove(key) {
            Ok(()) => Ok(true),
            Err(aya::maps::MapError::KeyNotFound) => Ok(false),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(false)
            }
            Err(e) => Err(map_err(names::CT)(e)),
        }
    }

    /// Deletes the conntrack entries of one interface, or all of them;
    /// returns how many went.
    pub fn flush_conntrack(&mut self, ifindex: Option<u32>) -> Result<usize, DataplaneError> {
        let doomed: Vec<CtKey> = self
            .maps
            .ct
            .keys()
            .filter_map(Result::ok)
            .filter(|k| ifindex.is_none_or(|i| k.ifindex == i))
            .collect();
        for key in &doomed {
            match self.maps.ct.remove(key) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(names::CT)(e)),
            }
        }
        Ok(doomed.len())
    }

    /// Forgets everything about an interface that went away: conntrack,
    /// counters, fragments. Its `sg_ifaces` entry goes with the next apply.
    pub fn forget_interface(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        self.flush_conntrack(Some(ifindex))?;
        let hits: Vec<RuleCounterKey> = self
            .maps
            .rule_hits
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.ifindex == ifindex)
            .collect();
        for key in &hits {
            let _ = self.maps.rule_hits.remove(key);
        }
        for dir in [DIR_INGRESS, DIR_EGRESS] {
            let _ = self.maps.if_stats.remove(&IfaceStatsKey {
                ifindex,
                dir: u32::from(dir),
            });
        }
        let frags: Vec<FragKey> = self
            .maps
            .frags
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.ifindex == ifindex)
            .collect();
        for key in &frags {
            let _ = self.maps.frags.remove(key);
        }
        Ok(())
    }

    /// Writes a conntrack entry directly (tests and restart recovery).
    pub fn insert_conntrack(&mut self, key: CtKey, entry: CtEntry) -> Result<(), DataplaneError> {
        self.maps
            .ct
            .insert(key, entry, 0)
            .map_err(map_err(names::CT))
    }
}

/// Detaches everything secgroup pinned under `pin_dir` and removes the
/// pins: links first (each unpin detaches its hooks), then the maps (freed
/// once no program holds them). For `secgroupd --uninstall` and test
/// cleanup. Missing pins are fine.
pub fn uninstall(pin_dir: &Path) -> Result<(), DataplaneError> {
    let links = pin_dir.join("links");
    if let Ok(entries) = std::fs::read_dir(&links) {
        for entry in entries.flatten() {
            std::fs::remove_file(entry.path()).map_err(io_err("removing", &entry.path()))?;
        }
    }
    match std::fs::remove_dir(&links) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing", &links)(e)),
    }
    for name in crate::maps::PINNED {
        let path = pin_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &path)(e)),
        }
    }
    match std::fs::remove_dir(pin_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", pin_dir)(e)),
    }
}

/// Duplicates the program fds into a [`TestRunner`].
fn test_runner_for(ebpf: &Ebpf) -> Result<TestRunner, DataplaneError> {
    let dup = |name: &'static str| -> Result<std::os::fd::OwnedFd, DataplaneError> {
        let program = ebpf
            .program(name)
            .ok_or(DataplaneError::MissingProgram { name })?;
        let fd = program.fd().map_err(|source| DataplaneError::Program {
            name,
            action: "get fd",
            source,
        })?;
        fd.as_fd()
            .try_clone_to_owned()
            .map_err(|source| DataplaneError::Io {
                action: "duplicating the fd of program",
                path: PathBuf::from(name),
                source,
            })
    };
    Ok(TestRunner::new(
        dup(PROG_XDP_EGRESS)?,
        dup(PROG_TC_INGRESS)?,
    ))
}

fn remove_pins(paths: &[&Path]) {
    for path in paths {
        // Unpinning drops the kernel's last reference: the link detaches.
        let _ = std::fs::remove_file(path);
    }
}
