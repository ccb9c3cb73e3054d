//! Real traffic between real network stacks: TCP connects, UDP
//! datagrams answered by an echo, pings. Every probe is bounded by a
//! timeout: "blocked" means no answer within it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::netns::NetNs;

/// How long an allowed flow may take: generous, it returns as soon as it
/// completes.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long to wait before calling a flow blocked. A dropped packet
/// never answers; an accepted one answers in well under a millisecond.
pub const BLOCK_TIMEOUT: Duration = Duration::from_millis(600);

/// An address inside a namespace: where a flow starts or ends.
#[derive(Clone, Copy)]
pub struct Endpoint<'a> {
    pub ns: &'a NetNs,
    pub ip: IpAddr,
}

impl<'a> Endpoint<'a> {
    pub fn new(ns: &'a NetNs, ip: &str) -> Endpoint<'a> {
        Endpoint {
            ns,
            ip: ip.parse().unwrap_or_else(|e| panic!("address {ip}: {e}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    /// Echo request and reply (ICMP or ICMPv6 by the addresses' family).
    Ping,
}

/// One new flow: a TCP connection, a UDP datagram to an echo, or a ping.
#[derive(Clone, Copy)]
pub struct Flow<'a> {
    pub proto: Proto,
    pub from: Endpoint<'a>,
    pub to: Endpoint<'a>,
    /// Destination port; 0 for pings.
    pub port: u16,
}

pub fn tcp<'a>(from: Endpoint<'a>, to: Endpoint<'a>, port: u16) -> Flow<'a> {
    Flow {
        proto: Proto::Tcp,
        from,
        to,
        port,
    }
}

pub fn udp<'a>(from: Endpoint<'a>, to: Endpoint<'a>, port: u16) -> Flow<'a> {
    Flow {
        proto: Proto::Udp,
        from,
        to,
        port,
    }
}

pub fn ping<'a>(from: Endpoint<'a>, to: Endpoint<'a>) -> Flow<'a> {
    Flow {
        proto: Proto::Ping,
        from,
        to,
        port: 0,
    }
}

impl fmt::Display for Flow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to = SocketAddr::new(self.to.ip, self.port);
        match self.proto {
            Proto::Tcp => write!(f, "tcp {} -> {to}", self.from.ip),
            Proto::Udp => write!(f, "udp {} -> {to}", self.from.ip),
            Proto::Ping => write!(f, "ping {} -> {}", self.from.ip, self.to.ip),
        }
    }
}

impl Flow<'_> {
    /// The protocol as the API's trace names it.
    pub fn protocol_name(&self) -> &'static str {
        match (self.proto, self.to.ip.is_ipv6()) {
            (Proto::Tcp, _) => "tcp",
            (Proto::Udp, _) => "udp",
            (Proto::Ping, false) => "icmp",
            (Proto::Ping, true) => "icmpv6",
        }
    }

    /// Whether the flow completes within `timeout`: the TCP handshake
    /// finishes, the datagram comes back from the echo, the ping is
    /// answered. A listener (or echo) is set up on the destination for
    /// the duration of the probe.
    pub fn completes(&self, timeout: Duration) -> bool {
        match self.proto {
            Proto::Tcp => {
                // Unless a server (a `TcpEcho`) already listens there.
                let _listener = self
                    .to
                    .ns
                    .run(|| TcpListener::bind(SocketAddr::new(self.to.ip, self.port)));
                match connect(self.from, self.to, self.port, timeout) {
                    Ok(_) => true,
                    // A reset came back: the SYN reached the other stack.
                    Err(e) => e.kind() == io::ErrorKind::ConnectionRefused,
                }
            }
            Proto::Udp => {
                // One echo per probe: scenarios keep no UDP servers.
                let echo = UdpEcho::start(self.to, self.port);
                let answered = udp_exchange(self.from, self.to, self.port, timeout);
                drop(echo);
                answered
            }
            Proto::Ping => pings(self.from, self.to.ip, timeout),
        }
    }
}

/// A TCP listener on `to` (port reused across probes; the kernel
/// completes handshakes in the backlog without an accept).
///
/// A listener a probe just closed may still be open for a moment: a test
/// running beside this one that spawns a process (`ip`, a daemon) holds a
/// copy of every descriptor of the test process between its fork and its
/// exec, close-on-exec or not. So the port being in use is retried for a
/// while before it counts as an error.
pub fn listen(to: Endpoint<'_>, port: u16) -> TcpListener {
    let addr = SocketAddr::new(to.ip, port);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match to.ns.run(|| TcpListener::bind(addr)) {
            Ok(listener) => return listener,
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("listening on {addr} in {}: {e}", to.ns.name),
        }
    }
}

/// A TCP connection from `from` (bound to its address) to `to:port`.
pub fn connect(
    from: Endpoint<'_>,
    to: Endpoint<'_>,
    port: u16,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let dst = SocketAddr::new(to.ip, port);
    from.ns.run(|| {
        let socket = Socket::new(Domain::for_address(dst), Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(from.ip, 0).into())?;
        socket.connect_timeout(&dst.into(), timeout)?;
        Ok(socket.into())
    })
}

fn udp_exchange(from: Endpoint<'_>, to: Endpoint<'_>, port: u16, timeout: Duration) -> bool {
    let dst = SocketAddr::new(to.ip, port);
    let socket = from
        .ns
        .run(|| UdpSocket::bind(SocketAddr::new(from.ip, 0)))
        .unwrap_or_else(|e| {
            panic!(
                "binding a UDP socket on {} in {}: {e}",
                from.ip, from.ns.name
            )
        });
    let message = b"secgroup e2e";
    socket
        .send_to(message, dst)
        .unwrap_or_else(|e| panic!("sending to {dst}: {e}"));
    let _ = socket.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 64];
    matches!(socket.recv_from(&mut buf), Ok((n, peer)) if peer == dst && &buf[..n] == message)
}

fn pings(from: Endpoint<'_>, to: IpAddr, timeout: Duration) -> bool {
    let wait = format!("{:.1}", timeout.as_secs_f64().max(0.1));
    from.ns
        .output(&[
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            &wait,
            "-I",
            &from.ip.to_string(),
            &to.to_string(),
        ])
        .status
        .success()
}

/// A UDP echo on `to:port` in a thread; stopped on drop.
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start(to: Endpoint<'_>, port: u16) -> UdpEcho {
        let addr = SocketAddr::new(to.ip, port);
        let socket = to
            .ns
            .run(|| UdpSocket::bind(addr))
            .unwrap_or_else(|e| panic!("binding UDP {addr} in {}: {e}", to.ns.name));
        let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], peer);
                }
            }
        });
        UdpEcho {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP echo server on `to:port`, for connections that must stay up
/// across rule changes and restarts; stopped on drop.
pub struct TcpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpEcho {
    pub fn start(to: Endpoint<'_>, port: u16) -> TcpEcho {
        let listener = listen(to, port);
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking listener: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stopping = stopping.clone();
                        workers.push(std::thread::spawn(move || echo(stream, &stopping)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for worker in workers {
                let _ = worker.join();
            }
        });
        TcpEcho {
            stop,
            thread: Some(thread),
        }
    }
}

fn echo(mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `message` on an open connection and whether it comes back
/// within `timeout`.
pub fn echoes(stream: &mut TcpStream, message: &str, timeout: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(message.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; message.len()];
    stream.read_exact(&mut buf).is_ok() && buf == message.as_bytes()
}
