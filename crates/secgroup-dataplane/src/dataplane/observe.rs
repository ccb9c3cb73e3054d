//! Reading what the programs counted and tracked: rule hits, verdicts by
//! reason, conntrack; and forgetting an interface's share of it.

use secgroup_model::Direction;

use super::{Dataplane, RuleHits};
use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::names;

impl Dataplane {
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
}
