//! The verdict-event part of `abi.h`: `struct sg_event` (one record of the
//! `sg_events` ring buffer), `struct sg_log_bucket` (`sg_log_state`, an
//! interface's rate limit and counts) and their codes.

use std::fmt;
use std::net::IpAddr;

use super::{AF_INET, AF_INET6, bytes_addr};

named_codes!(
    /// `enum sg_event_verdict`: what happened to a logged packet.
    EventVerdict {
        Accept = 0 => "accept",
        Drop = 1 => "drop",
        WouldDrop = 2 => "would-drop",
    } max = 3
);

/// `SG_EVENT_RATE_DEFAULT`: events per second per interface when
/// `sg_config.event_rate` is 0.
pub const EVENT_RATE_DEFAULT: u32 = 100;
/// `SG_EVENT_BURST_DEFAULT`: events at once per interface when
/// `sg_config.event_burst` is 0.
pub const EVENT_BURST_DEFAULT: u32 = 200;

/// `struct sg_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_BOOTTIME, nanoseconds (no test offset).
    pub time_ns: u64,
    pub ifindex: u32,
    pub instance_uid: u32,
    pub table: u32,
    pub rule_pos: u32,
    /// 0: no rule decided.
    pub rule_uid: u32,
    pub suppressed: u32,
    pub dir: u8,
    pub verdict: u8,
    pub reason: u8,
    /// [`AF_INET`], [`AF_INET6`], or 0 when the packet was not parsed
    /// that far.
    pub family: u8,
    pub proto: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub pad: u8,
    /// Network byte order.
    pub sport: u16,
    /// Network byte order.
    pub dport: u16,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub pad2: u32,
}

impl Event {
    pub const SIZE: usize = size_of::<Event>();

    /// Reads an event from a ring-buffer record; `None` when it is too
    /// short.
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        if bytes.len() < Event::SIZE {
            return None;
        }
        // SAFETY: Event is plain old data (integers only, explicit
        // padding) and the source holds at least SIZE bytes; the read is
        // unaligned-safe.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
    }

    /// Source and destination, when the packet was parsed as IP.
    pub fn addresses(&self) -> Option<(IpAddr, IpAddr)> {
        matches!(self.family, AF_INET | AF_INET6).then(|| {
            (
                bytes_addr(self.family, self.src),
                bytes_addr(self.family, self.dst),
            )
        })
    }
}

/// `struct sg_log_bucket`: one interface's event rate limit and counts.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogBucket {
    pub tat_ns: u64,
    pub emitted: u64,
    pub suppressed: u64,
    pub lost: u64,
    pub pending: u64,
}

pod!(Event, LogBucket);
