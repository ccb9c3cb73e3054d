//! [`Observer`]: read access to what the programs count and track, from any
//! thread, without the [`Dataplane`](crate::Dataplane). API reads go
//! through one so that they never wait for whoever holds the `Dataplane`
//! (a reload may take seconds); they see the kernel's maps as they are.
//!
//! It holds duplicated file descriptors of the counter, conntrack, config
//! and event maps, and the programs for test runs. Its only writes are for
//! traces, which must leave conntrack as they found it:
//! [`Observer::remove_conntrack`] for the one entry a trace created,
//! [`Observer::restore_conntrack`] for a tracked flow a trace's packet
//! belonged to; and reading events, which consumes them (see
//! [`Observer::events`]).

use std::os::fd::{AsFd, OwnedFd};

use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuHashMap};
use secgroup_model::Direction;

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::events::EventStream;
use crate::maps::names;
use crate::testrun::TestRunner;

pub struct Observer {
    rule_hits: OwnedFd,
    if_stats: OwnedFd,
    /// IPv6 flows (`sg_ct`); IPv4 flows are in `ct4` (`sg_ct4`).
    ct: OwnedFd,
    ct4: OwnedFd,
    config: OwnedFd,
    events: OwnedFd,
    log_state: OwnedFd,
    /// `sg_ifaces`, read only for an interface's counter slot.
    ifaces: OwnedFd,
    slot_stats: OwnedFd,
    runner: TestRunner,
}

/// What the event rate limit of one interface let through and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub ifindex: u32,
    /// Events written to the ring buffer.
    pub emitted: u64,
    /// Events the interface's rate limit refused.
    pub suppressed: u64,
    /// Events the rate limit admitted but the ring buffer had no room
    /// for (the reader fell behind).
    pub lost: u64,
}

/// A raw counter of one rule on one interface, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleCount {
    pub ifindex: u32,
    pub rule_uid: u32,
    pub packets: u64,
    pub bytes: u64,
    /// On the data plane's clock; 0 if never.
    pub last_hit_ns: u64,
}

/// How full the conntrack table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackUsage {
    /// Entries `sg_ct` holds, expired ones included: they keep their slot
    /// until the LRU reuses it.
    pub entries: u64,
    /// `sg_ct`'s `max_entries`.
    pub capacity: u32,
}

fn dup_err(name: &'static str) -> impl FnOnce(std::io::Error) -> DataplaneError {
    move |source| DataplaneError::Io {
        action: "duplicating the fd of map",
        path: std::path::PathBuf::from(name),
        source,
    }
}

/// The fd behind one of the object's maps, duplicated.
pub(crate) fn dup_fd(map: &Map, name: &'static str) -> Result<OwnedFd, DataplaneError> {
    let data = match map {
        Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::PerCpuHashMap(d)
        | Map::Array(d)
        | Map::PerCpuArray(d)
        | Map::RingBuf(d) => d,
        _ => return Err(DataplaneError::MissingMap { name }),
    };
    data.fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(dup_err(name))
}

fn open<T>(fd: &OwnedFd, name: &'static str) -> Result<T, DataplaneError>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let fd = fd.try_clone().map_err(dup_err(name))?;
    let data = MapData::from_fd(fd).map_err(map_err(name))?;
    Map::from_map_data(data)
        .map_err(map_err(name))?
        .try_into()
        .map_err(map_err(name))
}

impl Observer {
    pub(crate) fn new(
        [
            rule_hits,
            if_stats,
            ct,
            config,
            events,
            log_state,
            ifaces,
            slot_stats,
            ct4,
        ]: [OwnedFd; 9],
        runner: TestRunner,
    ) -> Observer {
        Observer {
            rule_hits,
            if_stats,
            ct,
            ct4,
            config,
            events,
            log_state,
            ifaces,
            slot_stats,
            runner,
        }
    }

    /// The verdict events, read from the pinned ring buffer. Reading
    /// consumes them: there is one read position per ring buffer, shared by
    /// every reader, so exactly one [`EventStream`] should be read (the
    /// daemon's events task).
    pub fn events(&self) -> Result<EventStream, DataplaneError> {
        let fd = self.events.try_clone().map_err(dup_err(names::EVENTS))?;
        EventStream::open(fd)
    }

    /// Every interface's event counts (interfaces that never had an event
    /// to log have none), by ifindex.
    pub fn event_counts(&self) -> Result<Vec<EventCounts>, DataplaneError> {
        let map: HashMap<MapData, u32, LogBucket> = open(&self.log_state, names::LOG_STATE)?;
        let mut counts: Vec<EventCounts> = map
            .iter()
            .filter_map(Result::ok)
            .map(|(ifindex, b)| EventCounts {
                ifindex,
                emitted: b.emitted,
                suppressed: b.suppressed,
                lost: b.lost,
            })
            .collect();
        counts.sort_by_key(|c| c.ifindex);
        Ok(counts)
    }

    /// Another handle on the same maps.
    pub fn try_clone(&self) -> Result<Observer, DataplaneError> {
        let dup = |fd: &OwnedFd, name| fd.try_clone().map_err(dup_err(name));
        Ok(Observer {
            rule_hits: dup(&self.rule_hits, names::RULE_HITS)?,
            if_stats: dup(&self.if_stats, names::IF_STATS)?,
            ct: dup(&self.ct, names::CT)?,
            ct4: dup(&self.ct4, names::CT4)?,
            config: dup(&self.config, names::CONFIG)?,
            events: dup(&self.events, names::EVENTS)?,
            log_state: dup(&self.log_state, names::LOG_STATE)?,
            ifaces: dup(&self.ifaces, names::IFACES)?,
            slot_stats: dup(&self.slot_stats, names::SLOT_STATS)?,
            runner: self.runner.clone(),
        })
    }

    /// Runs frames through the live programs (BPF_PROG_TEST_RUN).
    pub fn test_runner(&self) -> &TestRunner {
        &self.runner
    }

    /// The data plane's clock: CLOCK_BOOTTIME plus the test offset in
    /// `sg_config`, the clock of conntrack expiry and last-hit times.
    pub fn now_ns(&self) -> Result<u64, DataplaneError> {
        let config: Array<MapData, Config> = open(&self.config, names::CONFIG)?;
        let offset = config
            .get(&0, 0)
            .map_err(map_err(names::CONFIG))?
            .clock_offset_ns;
        Ok(boot_ns().saturating_add(offset))
    }

    /// Per-rule hit counters, summed over CPUs, by (ifindex, rule uid).
    pub fn rule_counts(&self) -> Result<Vec<RuleCount>, DataplaneError> {
        let map: PerCpuHashMap<MapData, RuleCounterKey, RuleCounter> =
            open(&self.rule_hits, names::RULE_HITS)?;
        let mut counts = Vec::new();
        for entry in map.iter() {
            let (key, per_cpu) = entry.map_err(map_err(names::RULE_HITS))?;
            let mut total = RuleCount {
                ifindex: key.ifindex,
                rule_uid: key.rule_uid,
                packets: 0,
                bytes: 0,
                last_hit_ns: 0,
            };
            for c in per_cpu.iter() {
                total.packets += c.packets;
                total.bytes += c.bytes;
                total.last_hit_ns = total.last_hit_ns.max(c.last_hit_ns);
            }
            counts.push(total);
        }
        counts.sort_by_key(|h| (h.ifindex, h.rule_uid));
        Ok(counts)
    }

    /// Per-reason packet and byte counts of one interface and direction,
    /// summed over CPUs: its counter slot's while it has an `sg_ifaces`
    /// entry, plus what counted under its ifindex (packets without an
    /// entry, and the totals of slots it held before).
    pub fn interface_stats(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> Result<IfaceStats, DataplaneError> {
        let dir = u32::from(match direction {
            Direction::Ingress => DIR_INGRESS,
            Direction::Egress => DIR_EGRESS,
        });
        let by_ifindex: PerCpuHashMap<MapData, IfaceStatsKey, IfaceStats> =
            open(&self.if_stats, names::IF_STATS)?;
        let unbound = match by_ifindex.get(&IfaceStatsKey { ifindex, dir }, 0) {
            Ok(per_cpu) => Some(per_cpu),
            Err(aya::maps::MapError::KeyNotFound) => None,
            Err(e) => return Err(map_err(names::IF_STATS)(e)),
        };
        let ifaces: HashMap<MapData, u32, Iface> = open(&self.ifaces, names::IFACES)?;
        let slot = match ifaces.get(&ifindex, 0) {
            Ok(iface) => Some(iface.slot).filter(|s| *s < MAX_IFACE_SLOTS),
            Err(aya::maps::MapError::KeyNotFound) => None,
            Err(e) => return Err(map_err(names::IFACES)(e)),
        };
        let bound = match slot {
            Some(slot) => {
                let slots: PerCpuArray<MapData, IfaceStats> =
                    open(&self.slot_stats, names::SLOT_STATS)?;
                Some(
                    slots
                        .get(&(slot * DIR_MAX as u32 + dir), 0)
                        .map_err(map_err(names::SLOT_STATS))?,
                )
            }
            None => None,
        };
        Ok(crate::slots::sum(
            unbound
                .iter()
                .chain(bound.iter())
                .flat_map(|per_cpu| per_cpu.iter()),
        ))
    }

    /// Every live conntrack entry (expired ones are left out), IPv4 and
    /// IPv6.
    pub fn conntrack(&self) -> Result<Vec<(CtKey, CtEntry)>, DataplaneError> {
        let now = self.now_ns()?;
        let v6: HashMap<MapData, CtKey, CtEntry> = open(&self.ct, names::CT)?;
        let v4: HashMap<MapData, Ct4Key, CtEntry> = open(&self.ct4, names::CT4)?;
        // An entry evicted between the key walk and its lookup is skipped.
        let v4 = v4.iter().filter_map(Result::ok).map(|(k, e)| (k.into(), e));
        Ok(v6
            .iter()
            .filter_map(Result::ok)
            .chain(v4)
            .filter(|(_, e)| e.expires_ns > now)
            .collect())
    }

    /// How many entries `sg_ct` and `sg_ct4` hold and can hold. Walks the
    /// keys only (no values): cheaper than [`Observer::conntrack`].
    pub fn conntrack_usage(&self) -> Result<ConntrackUsage, DataplaneError> {
        let (v6_entries, v6_capacity) = usage::<CtKey>(&self.ct, names::CT)?;
        let (v4_entries, v4_capacity) = usage::<Ct4Key>(&self.ct4, names::CT4)?;
        Ok(ConntrackUsage {
            entries: v6_entries + v4_entries,
            capacity: v6_capacity + v4_capacity,
        })
    }

    /// The conntrack entry of one flow, expired or not.
    pub fn conntrack_entry(&self, key: &CtKey) -> Result<Option<CtEntry>, DataplaneError> {
        let got = match key.to_v4() {
            Some(k4) => open::<HashMap<MapData, Ct4Key, CtEntry>>(&self.ct4, names::CT4)?
                .get(&k4, 0)
                .map_err(|e| (e, names::CT4)),
            None => open::<HashMap<MapData, CtKey, CtEntry>>(&self.ct, names::CT)?
                .get(key, 0)
                .map_err(|e| (e, names::CT)),
        };
        match got {
            Ok(entry) => Ok(Some(entry)),
            Err((aya::maps::MapError::KeyNotFound, _)) => Ok(None),
            Err((e, name)) => Err(map_err(name)(e)),
        }
    }

    /// Deletes one flow's entry (the one a trace made); `false` when there
    /// was none.
    pub fn remove_conntrack(&self, key: &CtKey) -> Result<bool, DataplaneError> {
        let removed = match key.to_v4() {
            Some(k4) => open::<HashMap<MapData, Ct4Key, CtEntry>>(&self.ct4, names::CT4)?
                .remove(&k4)
                .map_err(|e| (e, names::CT4)),
            None => open::<HashMap<MapData, CtKey, CtEntry>>(&self.ct, names::CT)?
                .remove(key)
                .map_err(|e| (e, names::CT)),
        };
        match removed {
            Ok(()) => Ok(true),
            Err((aya::maps::MapError::KeyNotFound, _)) => Ok(false),
            Err((aya::maps::MapError::SyscallError(e), _))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(false)
            }
            Err((e, name)) => Err(map_err(name)(e)),
        }
    }
}

impl Observer {
    /// Writes back one flow's entry as it was before a trace ran a packet
    /// of it (counters, timeout and state, or the entry itself if the
    /// packet revoked it), so that the question changes nothing. A real
    /// packet of the flow handled between the read and this write is
    /// forgotten by the entry (its counts and refresh; a close or
    /// revocation it made then happens at the flow's next packet or the
    /// entry's timeout): a window of one map lookup and one update.
    pub fn restore_conntrack(&self, key: &CtKey, entry: &CtEntry) -> Result<(), DataplaneError> {
        match key.to_v4() {
            Some(k4) => open::<HashMap<MapData, Ct4Key, CtEntry>>(&self.ct4, names::CT4)?
                .insert(k4, entry, 0)
                .map_err(map_err(names::CT4)),
            None => open::<HashMap<MapData, CtKey, CtEntry>>(&self.ct, names::CT)?
                .insert(key, entry, 0)
                .map_err(map_err(names::CT)),
        }
    }
}

/// Entries (keys walked) and capacity of one conntrack map.
fn usage<K: aya::Pod>(fd: &OwnedFd, name: &'static str) -> Result<(u64, u32), DataplaneError> {
    let fd = fd.try_clone().map_err(dup_err(name))?;
    let data = MapData::from_fd(fd).map_err(map_err(name))?;
    let capacity = data.info().map_err(map_err(name))?.max_entries();
    let map: HashMap<MapData, K, CtEntry> = Map::from_map_data(data)
        .map_err(map_err(name))?
        .try_into()
        .map_err(map_err(name))?;
    // A key evicted during the walk is skipped.
    Ok((map.keys().filter(Result::is_ok).count() as u64, capacity))
}

/// CLOCK_BOOTTIME in nanoseconds.
pub(crate) fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
