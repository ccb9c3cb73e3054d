//! Typed, owned handles on every map of the object, taken once at load.

use std::os::fd::{AsFd, OwnedFd};

use aya::Ebpf;
use aya::maps::{Array, ArrayOfMaps, HashMap, LpmTrie, Map, MapData, PerCpuArray, PerCpuHashMap};

use crate::abi::*;
use crate::error::{DataplaneError, map_err};

pub(crate) mod names {
    pub const IFACES: &str = "sg_ifaces";
    pub const V4: &str = "sg_v4";
    pub const V6: &str = "sg_v6";
    pub const V4_HOSTS: &str = "sg_v4_hosts";
    pub const V6_HOSTS: &str = "sg_v6_hosts";
    pub const L4: &str = "sg_l4";
    pub const CLASSES: &str = "sg_classes";
    pub const RULES: &str = "sg_rules";
    pub const PSEC_V4: &str = "sg_psec_v4";
    pub const PSEC_V6: &str = "sg_psec_v6";
    pub const PSEC_MACS: &str = "sg_psec_macs";
    pub const CT: &str = "sg_ct";
    pub const CT4: &str = "sg_ct4";
    pub const FRAGS: &str = "sg_frags";
    pub const RULE_HITS: &str = "sg_rule_hits";
    pub const IF_STATS: &str = "sg_if_stats";
    pub const SLOT_STATS: &str = "sg_slot_stats";
    pub const EVENTS: &str = "sg_events";
    pub const LOG_STATE: &str = "sg_log_state";
    pub const CONFIG: &str = "sg_config";
    pub const META: &str = "sg_meta";
    pub const RCU_BARRIER: &str = "sg_rcu_barrier";
}

/// The maps a rule table's entries go into (sized together by
/// `LoadOptions::table_capacity`).
pub(crate) const TABLE_MAPS: [&str; 7] = [
    names::V4,
    names::V6,
    names::V4_HOSTS,
    names::V6_HOSTS,
    names::L4,
    names::CLASSES,
    names::RULES,
];

/// The maps that outlive the process when a pin directory is given: all
/// but the barrier, which holds nothing. The C definitions carry no
/// `pinning` attribute on purpose: aya would pin those in /sys/fs/bpf even
/// for a private (test) instance, so pinning is decided here.
pub(crate) const PINNED: &[&str] = &[
    names::IFACES,
    names::V4,
    names::V6,
    names::V4_HOSTS,
    names::V6_HOSTS,
    names::L4,
    names::CLASSES,
    names::RULES,
    names::PSEC_V4,
    names::PSEC_V6,
    names::PSEC_MACS,
    names::CT,
    names::CT4,
    names::FRAGS,
    names::RULE_HITS,
    names::IF_STATS,
    names::SLOT_STATS,
    names::EVENTS,
    names::LOG_STATE,
    names::CONFIG,
    names::META,
];

pub(crate) struct Maps {
    pub ifaces: HashMap<MapData, u32, Iface>,
    pub v4: LpmTrie<MapData, V4KeyData, ClassRef>,
    pub v6: LpmTrie<MapData, V6KeyData, ClassRef>,
    /// The full-length (host) entries of v4 and v6, keyed by the same data
    /// without a prefix length.
    pub v4_hosts: HashMap<MapData, V4KeyData, ClassRef>,
    pub v6_hosts: HashMap<MapData, V6KeyData, ClassRef>,
    pub l4: LpmTrie<MapData, L4KeyData, ClassRef>,
    pub classes: HashMap<MapData, ClassKey, RuleSetBits>,
    pub rules: HashMap<MapData, RuleKey, RuleMeta>,
    pub psec_v4: LpmTrie<MapData, PsecV4KeyData, u32>,
    pub psec_v6: LpmTrie<MapData, PsecV6KeyData, u32>,
    pub psec_macs: HashMap<MapData, PsecMacKey, u32>,
    /// IPv6 flows.
    pub ct: HashMap<MapData, CtKey, CtEntry>,
    /// IPv4 flows.
    pub ct4: HashMap<MapData, Ct4Key, CtEntry>,
    pub frags: HashMap<MapData, FragKey, FragEntry>,
    pub rule_hits: PerCpuHashMap<MapData, RuleCounterKey, RuleCounter>,
    pub if_stats: PerCpuHashMap<MapData, IfaceStatsKey, IfaceStats>,
    pub slot_stats: PerCpuArray<MapData, IfaceStats>,
    pub log_state: HashMap<MapData, u32, LogBucket>,
    pub config: Array<MapData, Config>,
    pub meta: Array<MapData, Meta>,
    pub rcu_barrier: ArrayOfMaps<MapData, Array<MapData, u32>>,
    /// A duplicate of `rcu_barrier`'s descriptor, for waiting a grace
    /// period on another thread (`dataplane/reap.rs`).
    pub rcu_barrier_fd: OwnedFd,
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, DataplaneError> {
    ebpf.take_map(name)
        .ok_or(DataplaneError::MissingMap { name })
}

macro_rules! typed {
    ($ebpf:expr, $name:expr) => {
        take($ebpf, $name)?.try_into().map_err(map_err($name))?
    };
}

impl Maps {
    pub fn take_all(ebpf: &mut Ebpf) -> Result<Maps, DataplaneError> {
        use names::*;
        let barrier = take(ebpf, RCU_BARRIER)?;
        let barrier_fd = match &barrier {
            Map::ArrayOfMaps(data) => {
                data.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| DataplaneError::Map {
                        name: RCU_BARRIER,
                        source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                            call: "dup",
                            io_error: e,
                        }),
                    })?
            }
            _ => return Err(DataplaneError::MissingMap { name: RCU_BARRIER }),
        };
        Ok(Maps {
            ifaces: typed!(ebpf, IFACES),
            v4: typed!(ebpf, V4),
            v6: typed!(ebpf, V6),
            v4_hosts: typed!(ebpf, V4_HOSTS),
            v6_hosts: typed!(ebpf, V6_HOSTS),
            l4: typed!(ebpf, L4),
            classes: typed!(ebpf, CLASSES),
            rules: typed!(ebpf, RULES),
            psec_v4: typed!(ebpf, PSEC_V4),
            psec_v6: typed!(ebpf, PSEC_V6),
            psec_macs: typed!(ebpf, PSEC_MACS),
            ct: typed!(ebpf, CT),
            ct4: typed!(ebpf, CT4),
            frags: typed!(ebpf, FRAGS),
            rule_hits: typed!(ebpf, RULE_HITS),
            if_stats: typed!(ebpf, IF_STATS),
            slot_stats: typed!(ebpf, SLOT_STATS),
            log_state: typed!(ebpf, LOG_STATE),
            config: typed!(ebpf, CONFIG),
            meta: typed!(ebpf, META),
            rcu_barrier_fd: barrier_fd,
            rcu_barrier: barrier.try_into().map_err(map_err(RCU_BARRIER))?,
        })
    }
}
