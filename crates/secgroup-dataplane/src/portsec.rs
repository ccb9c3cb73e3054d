//! Port-security sets in the kernel: one instance's compiled spec
//! ([`PortSecurity`]) as entries of `sg_psec_v4`, `sg_psec_v6` and
//! `sg_psec_macs` under a set id, and the `sg_ifaces` fields that switch
//! it on (`ebpf/lib/portsec.h` reads them).
//!
//! A set has the life cycle of a classifier table, and its id comes from
//! the same counter (one id space, so a set id is never a table id): it is
//! complete in the maps before an interface names it, an interface moves
//! to another set in the one update of its `sg_ifaces` value that also
//! carries the MAC and flags, and a set nobody names is deleted only after
//! an RCU grace period. A packet therefore reads one set id and is judged
//! wholly by the spec in force before the update or wholly by the one
//! after: never a source neither allows, and an address both allow is
//! never refused in between.

use std::collections::{HashMap, HashSet};

use aya::maps::lpm_trie::Key;
use ipnet::IpNet;
use secgroup_policy::PortSecurity;

use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::{Maps, names};

/// The sets this process has written, by content: instances with equal
/// specs (rare: a spec names addresses) share one.
#[derive(Default)]
pub(crate) struct PsecStore {
    by_spec: HashMap<PortSecurity, u32>,
    sets: HashMap<u32, PortSecurity>,
}

impl PsecStore {
    pub fn id_of(&self, spec: &PortSecurity) -> Option<u32> {
        self.by_spec.get(spec).copied()
    }

    pub fn get(&self, id: u32) -> Option<&PortSecurity> {
        self.sets.get(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.sets.keys().copied()
    }

    pub fn insert(&mut self, id: u32, spec: PortSecurity) {
        self.by_spec.insert(spec.clone(), id);
        self.sets.insert(id, spec);
    }

    pub fn remove(&mut self, id: u32) -> Option<PortSecurity> {
        let spec = self.sets.remove(&id)?;
        self.by_spec.remove(&spec);
        Some(spec)
    }

    /// Forgets every set (their entries stay in the kernel, to be swept).
    pub fn forget_all(&mut self) {
        self.by_spec.clear();
        self.sets.clear();
    }
}

/// Sets the `sg_ifaces` flags, MAC and own addresses of an interface
/// enforcing `spec` (which is enabled); the set id goes with them.
///
/// The own addresses are a fast path, not a second spec: the first single
/// address (/32, /128) the set allows from the instance's MAC (from any
/// MAC, for an instance without one), which the program compares instead
/// of looking it up. A frame from that MAC and address is exactly one the
/// lookup would allow.
pub(crate) fn set_iface_fields(iface: &mut Iface, spec: &PortSecurity) {
    iface.flags |= IFACE_F_PORT_SECURITY;
    if spec.mac.is_some() {
        iface.flags |= IFACE_F_HAS_MAC;
    }
    if spec.allowed.iter().any(|source| source.mac.is_none()) {
        iface.flags |= IFACE_F_PSEC_ANY_MAC;
    }
    iface.mac = spec.mac.unwrap_or_default();
    let own =
        |source: &&secgroup_policy::AllowedSource| source.mac.is_none() || source.mac == spec.mac;
    for source in spec.allowed.iter().filter(own) {
        match source.net {
            IpNet::V4(net) if net.prefix_len() == 32 && iface.flags & IFACE_F_OWN_V4 == 0 => {
                iface.flags |= IFACE_F_OWN_V4;
                iface.own_v4 = net.addr().octets();
            }
            IpNet::V6(net) if net.prefix_len() == 128 && iface.flags & IFACE_F_OWN_V6 == 0 => {
                iface.flags |= IFACE_F_OWN_V6;
                iface.own_v6 = net.addr().octets();
            }
            _ => {}
        }
    }
}

/// One LPM key per allowed source: the MAC is part of the key (abi.h
/// explains why), `None` becomes the any-MAC kind.
enum SourceKey {
    V4(Key<PsecV4KeyData>),
    V6(Key<PsecV6KeyData>),
}

fn source_keys(set: u32, spec: &PortSecurity) -> impl Iterator<Item = SourceKey> + '_ {
    spec.allowed.iter().map(move |source| {
        let (any, mac) = match source.mac {
            Some(mac) => (PSEC_BOUND, mac),
            None => (PSEC_ANY_MAC, [0; 6]),
        };
        let bits = PSEC_KEY_BITS + u32::from(source.net.prefix_len());
        match source.net {
            IpNet::V4(net) => SourceKey::V4(Key::new(
                bits,
                PsecV4KeyData {
                    set,
                    any,
                    pad: 0,
                    mac,
                    addr: net.network().octets(),
                },
            )),
            IpNet::V6(net) => SourceKey::V6(Key::new(
                bits,
                PsecV6KeyData {
                    set,
                    any,
                    pad: 0,
                    mac,
                    addr: net.network().octets(),
                },
            )),
        }
    })
}

/// The MACs besides the instance's that frames may come from: its pairs'.
/// Only looked up for an instance with a MAC (without one, any MAC goes).
fn mac_keys(set: u32, spec: &PortSecurity) -> Vec<PsecMacKey> {
    let Some(own) = spec.mac else {
        return Vec::new();
    };
    let mut macs: Vec<[u8; 6]> = spec
        .allowed
        .iter()
        .filter_map(|source| source.mac)
        .filter(|mac| *mac != own)
        .collect();
    macs.sort_unstable();
    macs.dedup();
    macs.into_iter()
        .map(|mac| PsecMacKey {
            set,
            mac,
            pad: [0; 2],
        })
        .collect()
}

/// Writes every entry of `spec` under `set`. On error the caller removes
/// what was written with [`delete`].
pub(crate) fn write(maps: &mut Maps, set: u32, spec: &PortSecurity) -> Result<(), DataplaneError> {
    for key in source_keys(set, spec) {
        match key {
            SourceKey::V4(key) => maps
                .psec_v4
                .insert(&key, 1, 0)
                .map_err(map_err(names::PSEC_V4))?,
            SourceKey::V6(key) => maps
                .psec_v6
                .insert(&key, 1, 0)
                .map_err(map_err(names::PSEC_V6))?,
        }
    }
    for key in mac_keys(set, spec) {
        maps.psec_macs
            .insert(key, 1, 0)
            .map_err(map_err(names::PSEC_MACS))?;
    }
    Ok(())
}

/// Removes every entry of `spec` stored under `set`. Missing entries are
/// fine (a half-written set is deleted this way too).
pub(crate) fn delete(maps: &mut Maps, set: u32, spec: &PortSecurity) {
    // Errors here can only be ENOENT for entries a failed write never made
    // (or a repeated source).
    for key in source_keys(set, spec) {
        let _ = match key {
            SourceKey::V4(key) => maps.psec_v4.remove(&key),
            SourceKey::V6(key) => maps.psec_v6.remove(&key),
        };
    }
    for key in mac_keys(set, spec) {
        let _ = maps.psec_macs.remove(&key);
    }
}

/// The set ids in the port-security maps and in `sg_ifaces`.
pub(crate) fn ids_in_kernel(maps: &Maps) -> Result<HashSet<u32>, DataplaneError> {
    let mut ids = HashSet::new();
    for iface in maps.ifaces.iter() {
        let (_, iface) = iface.map_err(map_err(names::IFACES))?;
        if iface.psec_set != NO_PSEC_SET {
            ids.insert(iface.psec_set);
        }
    }
    for key in maps.psec_v4.keys() {
        ids.insert(key.map_err(map_err(names::PSEC_V4))?.data().set);
    }
    for key in maps.psec_v6.keys() {
        ids.insert(key.map_err(map_err(names::PSEC_V6))?.data().set);
    }
    for key in maps.psec_macs.keys() {
        ids.insert(key.map_err(map_err(names::PSEC_MACS))?.set);
    }
    Ok(ids)
}

/// Deletes every port-security entry whose set is not in `keep`; returns
/// how many went. Used once after adopting pinned maps.
pub(crate) fn sweep(maps: &mut Maps, keep: &HashSet<u32>) -> Result<usize, DataplaneError> {
    let mut removed = 0;
    macro_rules! sweep_map {
        ($map:expr, $name:expr, |$key:ident| $set:expr) => {{
            let doomed: Vec<_> = $map
                .keys()
                .filter_map(Result::ok)
                .filter(|$key| !keep.contains(&$set))
                .collect();
            for key in &doomed {
                $map.remove(key).map_err(map_err($name))?;
            }
            removed += doomed.len();
        }};
    }
    sweep_map!(maps.psec_v4, names::PSEC_V4, |k| k.data().set);
    sweep_map!(maps.psec_v6, names::PSEC_V6, |k| k.data().set);
    sweep_map!(maps.psec_macs, names::PSEC_MACS, |k| k.set);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_policy::AllowedSource;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const VRRP: [u8; 6] = [0, 0, 0x5e, 0, 1, 0x0a];

    fn source(net: &str, mac: Option<[u8; 6]>) -> AllowedSource {
        AllowedSource {
            net: net.parse().unwrap_or_else(|e| panic!("{net}: {e}")),
            mac,
        }
    }

    #[test]
    fn keys_carry_the_mac_or_the_any_kind() {
        let spec = PortSecurity {
            enabled: true,
            mac: Some(MAC),
            allowed: vec![
                source("198.51.100.5/32", Some(MAC)),
                source("198.51.100.64/28", Some(VRRP)),
                source("2001:db8:1::/64", None),
            ],
        };
        let keys: Vec<String> = source_keys(7, &spec)
            .map(|k| match k {
                SourceKey::V4(k) => {
                    format!("v4/{} {} {:?}", k.prefix_len(), k.data().any, k.data().mac)
                }
                SourceKey::V6(k) => {
                    format!("v6/{} {} {:?}", k.prefix_len(), k.data().any, k.data().mac)
                }
            })
            .collect();
        assert_eq!(
            keys,
            [
                format!("v4/128 {PSEC_BOUND} {MAC:?}"),
                format!("v4/124 {PSEC_BOUND} {VRRP:?}"),
                format!("v6/160 {PSEC_ANY_MAC} {:?}", [0u8; 6]),
            ]
        );
        let macs: Vec<[u8; 6]> = mac_keys(7, &spec).iter().map(|k| k.mac).collect();
        assert_eq!(macs, [VRRP], "only MACs besides the instance's");
        let mut iface = Iface::default();
        set_iface_fields(&mut iface, &spec);
        assert_eq!(
            (iface.flags, iface.mac, iface.own_v4),
            (
                IFACE_F_PORT_SECURITY | IFACE_F_HAS_MAC | IFACE_F_PSEC_ANY_MAC | IFACE_F_OWN_V4,
                MAC,
                [198, 51, 100, 5]
            )
        );
    }

    #[test]
    fn own_addresses_are_single_addresses_allowed_from_the_own_mac() {
        // A pair's /32 with its own MAC is no own address; the any-MAC /128
        // is one even for an instance with a MAC (allowed from it too).
        let spec = PortSecurity {
            enabled: true,
            mac: Some(MAC),
            allowed: vec![
                source("198.51.100.64/28", Some(MAC)),
                source("198.51.100.70/32", Some(VRRP)),
                source("2001:db8:1::5/128", None),
                source("198.51.100.9/32", Some(MAC)),
            ],
        };
        let mut iface = Iface::default();
        set_iface_fields(&mut iface, &spec);
        assert_eq!(
            iface.flags & (IFACE_F_OWN_V4 | IFACE_F_OWN_V6),
            IFACE_F_OWN_V4 | IFACE_F_OWN_V6
        );
        assert_eq!(iface.own_v4, [198, 51, 100, 9]);
        assert_eq!(iface.own_v6[..2], [0x20, 0x01]);
        assert_eq!(iface.own_v6[15], 5);
        // Without a MAC only sources from any MAC qualify.
        let spec = PortSecurity {
            enabled: true,
            mac: None,
            allowed: vec![source("198.51.100.70/32", Some(VRRP))],
        };
        let mut iface = Iface::default();
        set_iface_fields(&mut iface, &spec);
        assert_eq!(iface.flags & (IFACE_F_OWN_V4 | IFACE_F_OWN_V6), 0);
    }
}
