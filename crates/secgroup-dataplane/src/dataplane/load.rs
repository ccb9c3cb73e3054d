//! Loading the programs and maps, adopting what a previous owner pinned,
//! and taking ownership of the pin directory.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use aya::maps::{Array, MapData};
use aya::{Ebpf, EbpfLoader};

use super::{AdoptReport, Dataplane, LoadOptions, adopt};
use crate::abi::*;
use crate::bpffs;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, PINNED, TABLE_MAPS, names};
use crate::object::{BYTES, PROG_TC_INGRESS, PROG_XDP_EGRESS};
use crate::observer::Observer;
use crate::pins::{self, PinLock};
use crate::portsec::PsecStore;
use crate::tables::{self, TableStore};
use crate::testrun::TestRunner;
use crate::uids::RuleUids;

pub(crate) fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> DataplaneError {
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
    ///
    /// With a pin directory, in this order: the bpffs is checked to outlive
    /// this process (see [`LoadOptions::allow_private_bpffs`]), the
    /// directory's lock is taken (a second owner is refused, named), the
    /// pinned layout is checked against this build (refused rather than
    /// misread), and only then is anything opened for writing. The pins
    /// then name this process as their owner.
    pub fn load(options: &LoadOptions) -> Result<(Dataplane, AdoptReport), DataplaneError> {
        let mut loader = EbpfLoader::new();
        let mut lock = None;
        let mut private_bpffs = false;
        let pin_paths: Vec<(&str, PathBuf)> = match &options.pin_dir {
            Some(dir) => {
                private_bpffs = bpffs::ensure_pin_dir(dir, options.allow_private_bpffs)?;
                lock = Some(PinLock::acquire(dir)?);
                pins::check_compatible(dir, BYTES)?;
                std::fs::create_dir_all(dir.join("links"))
                    .map_err(io_err("creating", &dir.join("links")))?;
                PINNED.iter().map(|name| (*name, dir.join(name))).collect()
            }
            None => Vec::new(),
        };
        if let Some(capacity) = options.table_capacity {
            if options.pin_dir.is_some() {
                return Err(DataplaneError::InvalidOptions {
                    what: "a table capacity of its own is for private maps only, not with a pin directory",
                });
            }
            for name in TABLE_MAPS {
                loader.map_max_entries(name, capacity);
            }
        }
        // An existing pin is reused (adoption after a restart); a missing
        // one is created and pinned.
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(BYTES).map_err(DataplaneError::Load)?;
        load_programs(&mut ebpf)?;
        let observer = observer_for(&ebpf)?;
        let maps = Maps::take_all(&mut ebpf)?;
        let barrier_inner =
            Array::<MapData, u32>::create(1, 0).map_err(map_err(names::RCU_BARRIER))?;

        let mut ifaces = HashMap::new();
        for entry in maps.ifaces.iter() {
            let (ifindex, iface) = entry.map_err(map_err(names::IFACES))?;
            ifaces.insert(ifindex, iface);
        }
        let previous = maps.meta.get(&0, 0).map_err(map_err(names::META))?;
        let found = find_ids(&maps, &ifaces, &previous)?;
        let adopted = AdoptReport {
            interfaces: ifaces.len(),
            tables: found.tables,
            conntrack_entries: found.conntrack_entries,
            generation: previous.generation,
            previous_owner: pins::owner_of(&previous),
            private_bpffs,
        };
        let refs = tables::refs_of(ifaces.values());
        let candidates = adopt::candidates(&maps, ifaces.values());

        // Never hand out an id that a table, a port-security set, an
        // interface or a conntrack entry may still carry, nor one a
        // previous owner handed out.
        let next_id = found
            .max_id
            .map_or(1, |max| u64::from(max) + 1)
            .max(previous.next_table_id)
            .max(1);
        let mut meta = previous;
        meta.abi_version = ABI_VERSION;
        meta.next_table_id = next_id;
        meta.owner_token = pins::random_token();
        meta.owner_pid = u64::from(std::process::id());
        meta.owner_started_ms = pins::unix_ms();
        meta.set_socket(
            &options
                .owner_socket
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );

        let mut dataplane = Dataplane {
            ebpf,
            maps,
            pin_dir: options.pin_dir.clone(),
            lock,
            meta,
            store: TableStore::with_next_id(u32::try_from(next_id).unwrap_or(u32::MAX)),
            psec: PsecStore::default(),
            uids: RuleUids::default(),
            ifaces,
            refs,
            adopted: crate::dataplane::adopt::AdoptedTables::default(),
            candidates,
            origins_adopted: false,
            clean: !found.sweep,
            sweep_pending: found.sweep,
            defer_frees: false,
            free_pending: false,
            reaping: Default::default(),
            owned_links: HashMap::new(),
            expedite: None,
            expedite_failure: None,
            barrier_inner,
            config: Config::default(),
            observer,
        };
        dataplane.write_meta(meta)?;
        // After the token: a crash between the two leaves a marker naming
        // another owner, which the next load does not trust.
        adopt::write_marker(&mut dataplane.maps, meta.owner_token, dataplane.clean)?;
        dataplane.config.event_rate = EVENT_RATE_DEFAULT;
        dataplane.config.event_burst = EVENT_BURST_DEFAULT;
        dataplane.set_timeouts(options.timeouts)?;
        Ok((dataplane, adopted))
    }
}

/// What the kernel holds besides the interfaces, as far as ids go.
struct FoundIds {
    /// Distinct table ids in the kernel (or, from a clean marker, that
    /// interfaces name).
    tables: usize,
    conntrack_entries: usize,
    /// The highest id anything in the kernel may carry.
    max_id: Option<u32>,
    /// Entries nobody knows may be there: the first apply sweeps.
    sweep: bool,
}

/// The ids in use. With a clean marker of the last owner (see `adopt.rs`)
/// every table and set is one an interface names and `next_table_id` is
/// past all of them: the interfaces and conntrack tell everything, in
/// O(interfaces + flows). Otherwise every key of every table map is read,
/// and the first apply sweeps what it does not know.
fn find_ids(
    maps: &Maps,
    ifaces: &HashMap<u32, Iface>,
    previous: &Meta,
) -> Result<FoundIds, DataplaneError> {
    let trusted =
        previous.owner_token != 0 && adopt::read_marker(maps) == Some((previous.owner_token, true));
    if trusted {
        let (ct_max, conntrack_entries) = crate::tables::conntrack_ids(maps);
        let ids: HashSet<u32> = ifaces.values().flat_map(tables::ids_of).collect();
        let tables = ifaces
            .values()
            .flat_map(|i| i.table)
            .filter(|t| *t != NO_TABLE)
            .collect::<HashSet<u32>>()
            .len();
        return Ok(FoundIds {
            tables,
            conntrack_entries,
            max_id: ids.iter().copied().chain(ct_max).max(),
            sweep: false,
        });
    }
    let mut ids = tables::ids_in_kernel(maps)?;
    // The marker sits under table id 0, which is no table.
    ids.tables.remove(&NO_TABLE);
    let psec_ids = crate::portsec::ids_in_kernel(maps)?;
    Ok(FoundIds {
        tables: ids.tables.len(),
        conntrack_entries: ids.conntrack_entries,
        max_id: ids.max().max(psec_ids.iter().copied().max()),
        sweep: !ids.tables.is_empty() || !psec_ids.is_empty(),
    })
}

fn load_programs(ebpf: &mut Ebpf) -> Result<(), DataplaneError> {
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
    Ok(())
}

/// Duplicates the fds of the counter, conntrack, config and event maps and
/// of the programs into an [`Observer`].
fn observer_for(ebpf: &Ebpf) -> Result<Observer, DataplaneError> {
    let map = |name: &'static str| {
        ebpf.map(name)
            .ok_or(DataplaneError::MissingMap { name })
            .and_then(|m| crate::observer::dup_fd(m, name))
    };
    Ok(Observer::new(
        [
            map(names::RULE_HITS)?,
            map(names::IF_STATS)?,
            map(names::CT)?,
            map(names::CONFIG)?,
            map(names::EVENTS)?,
            map(names::LOG_STATE)?,
            map(names::IFACES)?,
            map(names::SLOT_STATS)?,
            map(names::CT4)?,
        ],
        test_runner_for(ebpf)?,
    ))
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
