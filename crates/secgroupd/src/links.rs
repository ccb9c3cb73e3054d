//! Follows interfaces coming and going: a NETLINK_ROUTE socket subscribed
//! to RTMGRP_LINK, read on a dedicated thread (a blocking recv, no async
//! plumbing), each RTM_NEWLINK / RTM_DELLINK turned into an [`Event`].
//!
//! The main loop treats these events as hints and looks the interfaces up
//! itself, so a lost or reordered message cannot leave it wrong for long:
//! an overrun socket (ENOBUFS) or an unreadable message asks for a full
//! resync instead.

use std::io;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::event::Event;

/// `RTMGRP_LINK` from linux/rtnetlink.h.
const RTMGRP_LINK: u32 = 1;

/// Subscribes to link notifications in the calling thread's network
/// namespace and forwards them from a background thread. Subscribe before
/// looking at the interfaces so nothing falls between the two.
pub fn spawn(events: mpsc::Sender<Event>) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    // Room for a burst (a host starting many VMs at once).
    let _ = socket.set_rx_buf_sz(4 * 1024 * 1024);
    std::thread::Builder::new()
        .name("secgroupd-links".into())
        .spawn(move || run(socket, events))?;
    Ok(())
}

fn run(socket: Socket, events: mpsc::Sender<Event>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let batch = match socket.recv(&mut buf, 0) {
            Ok(_) => parse(&buf),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                warn!("link notifications overran; re-reading every interface");
                vec![Event::LinksResync]
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                error!(error = %e, "reading link notifications failed; retrying in a second");
                std::thread::sleep(std::time::Duration::from_secs(1));
                vec![Event::LinksResync]
            }
        };
        for event in batch {
            if events.blocking_send(event).is_err() {
                return; // the main loop is gone: the daemon is exiting
            }
        }
    }
}

/// The events in one datagram, which may hold several messages.
pub fn parse(mut datagram: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while datagram.len() >= 16 {
        let len = u32::from_ne_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]) as usize;
        if len < 16 || len > datagram.len() {
            events.push(Event::LinksResync);
            break;
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[..len]) {
            Ok(message) => events.extend(link_event(message)),
            Err(e) => {
                warn!(error = %e, "unreadable link notification; re-reading every interface");
                events.push(Event::LinksResync);
            }
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        datagram = datagram.get(next..).unwrap_or_default();
    }
    events
}

fn link_event(message: NetlinkMessage<RouteNetlinkMessage>) -> Option<Event> {
    let NetlinkPayload::InnerMessage(inner) = message.payload else {
        return None;
    };
    match inner {
        RouteNetlinkMessage::NewLink(link) => {
            secgroup_dataplane::describe_link(&link).map(|link| Event::LinkAppeared {
                name: link.name,
                ifindex: link.ifindex,
                kind: link.kind,
            })
        }
        RouteNetlinkMessage::DelLink(link) => Some(Event::LinkVanished {
            ifindex: link.header.index,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};

    fn message(inner: RouteNetlinkMessage) -> Vec<u8> {
        let mut message = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(inner),
        );
        message.finalize();
        let mut buf = vec![0u8; message.buffer_len()];
        message.serialize(&mut buf);
        buf
    }

    fn link(index: u32, name: Option<&str>) -> LinkMessage {
        let mut link = LinkMessage::default();
        link.header.index = index;
        if let Some(name) = name {
            link.attributes.push(LinkAttribute::IfName(name.to_owned()));
        }
        link
    }

    fn summary(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::LinkAppeared {
                    name,
                    ifindex,
                    kind,
                } => format!("appeared {name} {ifindex} {kind:?}"),
                Event::LinkVanished { ifindex } => format!("vanished {ifindex}"),
                Event::LinksResync => "resync".to_owned(),
                other => format!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn datagrams() {
        let new = message(RouteNetlinkMessage::NewLink(link(7, Some("tap-web1"))));
        let del = message(RouteNetlinkMessage::DelLink(link(7, Some("tap-web1"))));
        let nameless = message(RouteNetlinkMessage::NewLink(link(8, None)));
        let mut veth = link(9, Some("vm-9"));
        veth.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Veth,
            )]));
        let veth = message(RouteNetlinkMessage::NewLink(veth));
        let both: Vec<u8> = new.iter().chain(del.iter()).copied().collect();
        let cases: [(&[u8], &[&str]); 7] = [
            (&veth, &["appeared vm-9 9 Some(\"veth\")"]),
            (&new, &["appeared tap-web1 7 None"]),
            (&del, &["vanished 7"]),
            (&both, &["appeared tap-web1 7 None", "vanished 7"]),
            (&nameless, &[]),
            (&new[..new.len() - 4], &["resync"]),
            (&[], &[]),
        ];
        for (datagram, expected) in cases {
            assert_eq!(summary(&parse(datagram)), expected, "{datagram:?}");
        }
    }
}
