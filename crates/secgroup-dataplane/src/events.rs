//! Verdict events: what the programs write to the `sg_events` ring buffer
//! for packets that are to be logged (see `ebpf/lib/events.h` for which),
//! read back as [`VerdictEvent`]s, and the per-interface rate limit
//! ([`EventLimits`]) the programs apply before writing.
//!
//! The ring buffer is pinned like the other maps, so a restarted daemon
//! reads on where the previous one stopped. It has one read position,
//! shared by every reader: exactly one [`EventStream`] should be read.
//!
//! An event names its rule by `rule_uid`, the stable id of the rule's
//! (group, direction, key): [`Dataplane::rule_origins`] maps it back to
//! the group, direction and index in the group (it is what the daemon
//! publishes for the counters already).
//!
//! [`Dataplane::rule_origins`]: crate::Dataplane::rule_origins

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime};

use aya::maps::{Map, MapData, RingBuf};
use secgroup_model::Direction;

use crate::abi::{
    DIR_EGRESS, DIR_INGRESS, EVENT_BURST_DEFAULT, EVENT_RATE_DEFAULT, Event, EventVerdict, NO_RULE,
    Reason,
};
use crate::error::{DataplaneError, map_err};
use crate::maps::names;

/// Each interface's event rate limit: a token bucket of `burst` events
/// refilled at `rate` per second. A flooding VM empties its own bucket
/// only; what it cannot log is counted as suppressed and reported with its
/// next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    rate: u32,
    burst: u32,
}

impl EventLimits {
    /// At most a million per second: the bucket counts in whole
    /// nanoseconds per event.
    pub const MAX_RATE: u32 = 1_000_000;
    pub const MAX_BURST: u32 = 1_000_000;

    /// `rate` events per second, `burst` at once, each 1 or more.
    pub fn new(rate: u32, burst: u32) -> Result<EventLimits, DataplaneError> {
        let check = |what, value, max| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(DataplaneError::EventLimit { what, value, max })
            }
        };
        Ok(EventLimits {
            rate: check("rate", rate, Self::MAX_RATE)?,
            burst: check("burst", burst, Self::MAX_BURST)?,
        })
    }

    pub fn rate(self) -> u32 {
        self.rate
    }

    pub fn burst(self) -> u32 {
        self.burst
    }
}

impl Default for EventLimits {
    /// 100 events per second, 200 at once, per interface.
    fn default() -> Self {
        EventLimits {
            rate: EVENT_RATE_DEFAULT,
            burst: EVENT_BURST_DEFAULT,
        }
    }
}

/// The packet of an event, as the VM's interface saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventFlow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// TCP/UDP: the source port; ICMP echo: the id; other ICMP: the type.
    pub src_port: u16,
    /// TCP/UDP: the destination port; ICMP echo: the id; other ICMP: the
    /// code.
    pub dst_port: u16,
    /// ICMP/ICMPv6: type and code.
    pub icmp: Option<(u8, u8)>,
}

/// One logged verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictEvent {
    /// When the program decided, on the wall clock.
    pub time: SystemTime,
    /// The same, as CLOCK_BOOTTIME nanoseconds.
    pub boot_ns: u64,
    pub ifindex: u32,
    /// The binding's [`instance_uid`](crate::InterfaceBinding::instance_uid).
    pub instance_uid: u32,
    pub direction: Direction,
    pub verdict: EventVerdict,
    /// As counted: a would-drop's reason is a `would-drop-*`
    /// ([`Reason::enforced`] names the drop it stands for).
    pub reason: Reason,
    /// The table consulted, or the flow's (see the decision report).
    pub table: u32,
    /// The deciding rule's position in `table`.
    pub rule_position: Option<u32>,
    /// The deciding rule's stable id (see the module doc).
    pub rule_uid: Option<u32>,
    /// `None` for frames that were not parsed as IP (port security's
    /// non-IP drops, malformed headers).
    pub flow: Option<EventFlow>,
    /// Events this interface lost (rate limit, or the ring buffer full)
    /// since its previous delivered event.
    pub suppressed: u32,
}

impl VerdictEvent {
    /// Decodes a record; `None` for codes this build does not know.
    /// `clock` converts boot time to wall time.
    fn decode(raw: &Event, clock: &Clock) -> Option<VerdictEvent> {
        let direction = match raw.dir {
            DIR_INGRESS => Direction::Ingress,
            DIR_EGRESS => Direction::Egress,
            _ => return None,
        };
        let flow = raw.addresses().map(|(src, dst)| {
            let icmp = matches!((raw.proto, src), (1, IpAddr::V4(_)) | (58, IpAddr::V6(_)));
            let echo_or_ports = (u16::from_be(raw.sport), u16::from_be(raw.dport));
            let is_echo = icmp && matches!(raw.icmp_type, 0 | 8 | 128 | 129);
            let (src_port, dst_port) = if icmp && !is_echo {
                (u16::from(raw.icmp_type), u16::from(raw.icmp_code))
            } else {
                echo_or_ports
            };
            EventFlow {
                src,
                dst,
                protocol: raw.proto,
                src_port,
                dst_port,
                icmp: icmp.then_some((raw.icmp_type, raw.icmp_code)),
            }
        });
        Some(VerdictEvent {
            time: clock.wall(raw.time_ns),
            boot_ns: raw.time_ns,
            ifindex: raw.ifindex,
            instance_uid: raw.instance_uid,
            direction,
            verdict: EventVerdict::from_u8(raw.verdict)?,
            reason: Reason::from_u8(raw.reason)?,
            table: raw.table,
            rule_position: (raw.rule_pos != NO_RULE).then_some(raw.rule_pos),
            rule_uid: (raw.rule_uid != 0).then_some(raw.rule_uid),
            flow,
            suppressed: raw.suppressed,
        })
    }
}

/// Boot time to wall time, both read once per drain: events are at most
/// a drain old, and a clock step between drains moves only later events.
struct Clock {
    wall: SystemTime,
    boot_ns: u64,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            wall: SystemTime::now(),
            boot_ns: crate::observer::boot_ns(),
        }
    }

    fn wall(&self, boot_ns: u64) -> SystemTime {
        if boot_ns <= self.boot_ns {
            self.wall - Duration::from_nanos(self.boot_ns - boot_ns)
        } else {
            self.wall + Duration::from_nanos(boot_ns - self.boot_ns)
        }
    }
}

/// The reading end of the `sg_events` ring buffer (a duplicated fd of the
/// pinned map). Readable (poll/epoll, e.g. tokio's `AsyncFd`) when events
/// are waiting; [`drain`](Self::drain) never blocks.
pub struct EventStream {
    ring: RingBuf<MapData>,
    /// Records too short or with unknown codes (never, with the object
    /// this crate embeds).
    undecodable: u64,
}

impl EventStream {
    pub(crate) fn open(fd: OwnedFd) -> Result<EventStream, DataplaneError> {
        let data = MapData::from_fd(fd).map_err(map_err(names::EVENTS))?;
        let map = Map::from_map_data(data).map_err(map_err(names::EVENTS))?;
        let ring = RingBuf::try_from(map).map_err(map_err(names::EVENTS))?;
        Ok(EventStream {
            ring,
            undecodable: 0,
        })
    }

    /// Hands every waiting event to `each`, oldest first, and returns how
    /// many there were. Never blocks.
    pub fn drain(&mut self, mut each: impl FnMut(VerdictEvent)) -> usize {
        let clock = Clock::now();
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            match Event::from_bytes(&item).and_then(|raw| VerdictEvent::decode(&raw, &clock)) {
                Some(event) => {
                    n += 1;
                    each(event);
                }
                None => self.undecodable += 1,
            }
        }
        n
    }

    /// Records that could not be decoded so far.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }
}

impl AsFd for EventStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

impl AsRawFd for EventStream {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}
