//! Reading what the programs counted and tracked: rule hits, verdicts by
//! reason, conntrack; and forgetting an interface's share of it.

use secgroup_model::Direction;

use secgroup_policy::RuleOrigin;

use super::{Dataplane, RuleHits};
use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::names;
use crate::observer::Observer;

impl Dataplane {
    /// A read handle on the counters and conntrack for other threads.
    pub fn observer(&self) -> Result<Observer, DataplaneError> {
        self.observer.try_clone()
    }

    /// Per-rule hit counters, summed over CPUs, with the origin of every
    /// rule this process registered.
    pub fn rule_hits(&self) -> Result<Vec<RuleHits>, DataplaneError> {
        Ok(self
            .observer
            .rule_counts()?
            .into_iter()
            .map(|c| RuleHits {
                ifindex: c.ifindex,
                rule_uid: c.rule_uid,
                origin: self.uids.origin(c.rule_uid).cloned(),
                packets: c.packets,
                bytes: c.bytes,
                last_hit_ns: c.last_hit_ns,
            })
            .collect())
    }

    /// Rule uid → origin, for every rule this process registered: what an
    /// [`Observer`]'s raw counts are matched against.
    pub fn rule_origins(&self) -> std::collections::HashMap<u32, RuleOrigin> {
        self.uids.all()
    }

    /// Changes whenever [`rule_origins`](Self::rule_origins) may have: a
    /// copy taken at one version is current while it stays.
    pub fn rule_origins_version(&self) -> u64 {
        self.uids.version()
    }

    /// Per-reason packet and byte counts of one interface and direction,
    /// summed over CPUs.
    pub fn interface_stats(
        &self,
        ifindex: u32,
        direction: Direction,
    ) -> Result<IfaceStats, DataplaneError> {
        self.observer.interface_stats(ifindex, direction)
    }

    /// Every live conntrack entry (expired ones are left out).
    pub fn conntrack(&self) -> Result<Vec<(CtKey, CtEntry)>, DataplaneError> {
        self.observer.conntrack()
    }

    /// The conntrack entry of one flow, expired or not.
    pub fn conntrack_entry(&self, key: &CtKey) -> Result<Option<CtEntry>, DataplaneError> {
        self.observer.conntrack_entry(key)
    }

    /// Deletes one flow's entry; `false` when there was none (never made,
    /// or evicted from the LRU meanwhile).
    pub fn remove_conntrack(&mut self, key: &CtKey) -> Result<bool, DataplaneError> {
        self.observer.remove_conntrack(key)
    }

    /// Deletes the conntrack entries of one interface, or all of them;
    /// returns how many went.
    pub fn flush_conntrack(&mut self, ifindex: Option<u32>) -> Result<usize, DataplaneError> {
        let zone = |i: u32| ifindex.is_none_or(|want| i == want);
        let v6 = flush(&mut self.maps.ct, names::CT, |k| zone(k.ifindex))?;
        let v4 = flush(&mut self.maps.ct4, names::CT4, |k| zone(k.ifindex))?;
        Ok(v6 + v4)
    }

    /// Forgets everything about an interface that went away: conntrack,
    /// counters, its event bucket, fragments. Its `sg_ifaces` entry goes with the next apply.
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
        // Its slot too, so that the removal of its entry by the next apply
        // moves nothing back under its ifindex.
        if let Some(iface) = self.ifaces.get(&ifindex)
            && iface.slot < MAX_IFACE_SLOTS
        {
            let _ = crate::slots::zero(&mut self.maps, &[iface.slot]);
        }
        for dir in [DIR_INGRESS, DIR_EGRESS] {
            let _ = self.maps.if_stats.remove(&IfaceStatsKey {
                ifindex,
                dir: u32::from(dir),
            });
        }
        let _ = self.maps.log_state.remove(&ifindex);
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

/// Deletes the entries of one conntrack map whose key `doomed` picks.
fn flush<K: aya::Pod>(
    map: &mut aya::maps::HashMap<aya::maps::MapData, K, CtEntry>,
    name: &'static str,
    doomed: impl Fn(&K) -> bool,
) -> Result<usize, DataplaneError> {
    let keys: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| doomed(k))
        .collect();
    for key in &keys {
        match map.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(name)(e)),
        }
    }
    Ok(keys.len())
}
