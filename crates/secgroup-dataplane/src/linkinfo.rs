//! What the kernel says is attached to an interface: the XDP mode, asked
//! over rtnetlink (RTM_GETLINK, IFLA_XDP). A bpf_link's own info names
//! only the interface, not whether the program runs in the driver or in
//! the stack, so this is the one place that knows.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkInfo, LinkMessage, LinkXdp, XdpAttached,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::dataplane::XdpAttachMode;

/// The mode of the XDP program attached to `ifindex` in the calling
/// thread's network namespace; `None` when none is attached.
pub(crate) fn xdp_mode(ifindex: u32) -> io::Result<Option<XdpAttachMode>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = 1;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(link)),
    );
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut reply: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        reply.clear();
        socket.recv(&mut reply, 0)?;
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
                if link.header.index == ifindex =>
            {
                return Ok(mode_of(&link));
            }
            NetlinkPayload::Error(e) => {
                return Err(e.code.map_or_else(
                    || io::Error::other("netlink error"),
                    |c| io::Error::from_raw_os_error(-c.get()),
                ));
            }
            _ => continue,
        }
    }
}

fn mode_of(link: &LinkMessage) -> Option<XdpAttachMode> {
    let xdp = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(xdp) => Some(xdp),
        _ => None,
    })?;
    let attached = xdp.iter().find_map(|x| match x {
        LinkXdp::Attached(a) => Some(a),
        _ => None,
    })?;
    match attached {
        XdpAttached::Driver => Some(XdpAttachMode::Driver),
        XdpAttached::SocketBuffer => Some(XdpAttachMode::Generic),
        // Several programs at once: ours is the driver one if any.
        XdpAttached::Multiple => Some(
            if xdp
                .iter()
                .any(|x| matches!(x, LinkXdp::DrvProgId(id) if *id != 0))
            {
                XdpAttachMode::Driver
            } else {
                XdpAttachMode::Generic
            },
        ),
        _ => None,
    }
}

/// One interface of a network namespace, as rtnetlink lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// The link kind (`tun`, `veth`, `bridge`, ...); `None` for physical
    /// devices and loopback.
    pub kind: Option<String>,
}

/// Every interface of the calling thread's network namespace (an
/// RTM_GETLINK dump).
pub fn list_links() -> io::Result<Vec<Link>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut links = Vec::new();
    let mut reply: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        reply.clear();
        socket.recv(&mut reply, 0)?;
        let mut datagram = reply.as_slice();
        while datagram.len() >= 16 {
            let len =
                u32::from_ne_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]) as usize;
            if len < 16 || len > datagram.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated netlink message",
                ));
            }
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[..len])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(links),
                NetlinkPayload::Error(e) => {
                    return Err(e.code.map_or_else(
                        || io::Error::other("netlink error"),
                        |c| io::Error::from_raw_os_error(-c.get()),
                    ));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(link) = describe_link(&link) {
                        links.push(link);
                    }
                }
                _ => {}
            }
            datagram = datagram.get((len + 3) & !3..).unwrap_or_default();
        }
    }
}

/// A link message (a dump's entry or a notification) as a [`Link`]; `None`
/// without a name.
pub fn describe_link(link: &LinkMessage) -> Option<Link> {
    let name = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })?;
    let kind = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(match kind {
                InfoKind::Tun => "tun".to_owned(),
                InfoKind::Veth => "veth".to_owned(),
                InfoKind::Bridge => "bridge".to_owned(),
                InfoKind::MacVtap => "macvtap".to_owned(),
                other => format!("{other:?}").to_lowercase(),
            }),
            _ => None,
        }),
        _ => None,
    });
    Some(Link {
        ifindex: link.header.index,
        name,
        kind,
    })
}
