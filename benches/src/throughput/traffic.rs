//! UDP from VM A to VM B: sockets are created inside VM A's namespace
//! (a socket belongs to the namespace it was made in, so the sending
//! threads themselves can run anywhere), one set per sending thread, all
//! non-blocking. Every loop is bounded by a deadline.

use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use secgroup_dataplane::netns;

use super::topology::{VM_A, VM_B};

/// VM B's port for the established flow; outside the new-flow ports.
pub const ESTABLISHED_PORT: u16 = 20000;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    pub packets: u64,
    pub elapsed: Duration,
    /// The port window ran out and flows started repeating.
    pub wrapped: bool,
}

pub struct Sender {
    /// One set of sockets (source ports) per thread.
    per_thread: Vec<Vec<UdpSocket>>,
    /// The single socket of the established flow, shared by all threads.
    established: UdpSocket,
}

fn bound_socket(addr: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

impl Sender {
    pub fn new(vm_a: &Path, threads: usize, sockets_per_thread: usize) -> Result<Sender> {
        netns::run_in(vm_a, || -> Result<Sender> {
            let any_port = SocketAddrV4::new(VM_A, 0);
            let per_thread = (0..threads)
                .map(|_| {
                    (0..sockets_per_thread)
                        .map(|_| bound_socket(any_port))
                        .collect()
                })
                .collect::<std::io::Result<Vec<Vec<UdpSocket>>>>()
                .context("binding the sender's sockets in VM A")?;
            Ok(Sender {
                per_thread,
                established: bound_socket(any_port)
                    .context("binding the established flow's socket")?,
            })
        })?
    }

    pub fn flows_per_port(&self) -> usize {
        self.per_thread.iter().map(Vec::len).sum()
    }

    /// Sends `payload`-byte datagrams for `duration` from every thread,
    /// each to every port of `ports` from each of its sockets in turn: a
    /// new (source port, destination port) flow per datagram until the
    /// window runs out.
    pub fn new_flows(
        &self,
        payload: usize,
        ports: RangeInclusive<u16>,
        duration: Duration,
    ) -> Result<Sent> {
        self.send(
            duration,
            |sockets, deadline, data| {
                let mut sent = Sent::default();
                loop {
                    for port in ports.clone() {
                        let to = SocketAddr::V4(SocketAddrV4::new(VM_B, port));
                        for socket in sockets {
                            sent.packets += u64::from(socket.send_to(data, to).is_ok());
                        }
                        if Instant::now() >= deadline {
                            return sent;
                        }
                    }
                    sent.wrapped = true;
                }
            },
            payload,
        )
    }

    /// Sends on the established flow from every thread for `duration`.
    pub fn established(&self, payload: usize, duration: Duration) -> Result<Sent> {
        let to = SocketAddr::V4(SocketAddrV4::new(VM_B, ESTABLISHED_PORT));
        let socket = &self.established;
        self.send(
            duration,
            |_, deadline, data| {
                let mut sent = Sent::default();
                while Instant::now() < deadline {
                    for _ in 0..64 {
                        sent.packets += u64::from(socket.send_to(data, to).is_ok());
                    }
                }
                sent
            },
            payload,
        )
    }

    fn send(
        &self,
        duration: Duration,
        work: impl Fn(&[UdpSocket], Instant, &[u8]) -> Sent + Sync,
        payload: usize,
    ) -> Result<Sent> {
        let data = vec![0x5a_u8; payload];
        let started = Instant::now();
        let deadline = started + duration;
        let per_thread: Vec<Sent> = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .per_thread
                .iter()
                .map(|sockets| scope.spawn(|| work(sockets, deadline, &data)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join())
                .collect::<Result<Vec<Sent>, _>>()
        })
        .map_err(|_| anyhow::anyhow!("a sending thread panicked"))?;
        Ok(Sent {
            packets: per_thread.iter().map(|s| s.packets).sum(),
            elapsed: started.elapsed(),
            wrapped: per_thread.iter().any(|s| s.wrapped),
        })
    }

    /// Sends one datagram on each of `count` flows to `port` (a few per
    /// millisecond, far below any loss), for the filter checks.
    pub fn trickle(&self, port: u16, count: usize) -> usize {
        let to = SocketAddr::V4(SocketAddrV4::new(VM_B, port));
        let sockets = self.per_thread.iter().flatten().cycle().take(count);
        let mut sent = 0;
        for (i, socket) in sockets.enumerate() {
            sent += usize::from(socket.send_to(b"check", to).is_ok());
            if i % 16 == 15 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    }

    /// Makes the established flow established in every conntrack: one
    /// datagram to VM B, VM B answers, VM A receives the answer. Fails if
    /// the filter under test does not let that through.
    pub fn handshake(&self, receiver: &Receiver) -> Result<()> {
        receiver.drain();
        let to = SocketAddr::V4(SocketAddrV4::new(VM_B, ESTABLISHED_PORT));
        self.established
            .send_to(b"hello", to)
            .context("sending the first datagram")?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 2048];
        let from = poll(deadline, || {
            receiver.socket.recv_from(&mut buf).map(|(_, from)| from)
        })
        .context("VM B never got the established flow's first datagram")?;
        receiver
            .socket
            .send_to(b"reply", from)
            .context("sending the reply")?;
        poll(deadline, || self.established.recv_from(&mut buf))
            .context("VM A never got the reply of the established flow")?;
        Ok(())
    }
}

/// Retries a non-blocking call until it succeeds or `deadline` passes.
fn poll<T>(deadline: Instant, mut call: impl FnMut() -> std::io::Result<T>) -> Result<T> {
    loop {
        match call() {
            Ok(value) => return Ok(value),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    bail!("timed out");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// VM B's socket of the established flow. Nobody reads it during a trial:
/// the count is taken at the interface, and a full socket buffer costs the
/// same in every variant.
pub struct Receiver {
    socket: UdpSocket,
}

impl Receiver {
    pub fn new(vm_b: &Path) -> Result<Receiver> {
        let socket = netns::run_in(vm_b, || {
            bound_socket(SocketAddrV4::new(VM_B, ESTABLISHED_PORT))
        })?
        .context("binding VM B's socket")?;
        Ok(Receiver { socket })
    }

    /// Empties the socket buffer, at most a bounded number of datagrams.
    fn drain(&self) {
        let mut buf = [0u8; 2048];
        for _ in 0..1_000_000 {
            if self.socket.recv_from(&mut buf).is_err() {
                break;
            }
        }
    }
}
