//! What the daemon's tests add to the test bed (`secgroup_testbed`,
//! whose `Lab` is the host with one veth VM they run against): the
//! secgroupd Cargo built for this package, questions about the one VM,
//! the hooks on its tap as the kernel reports them, raw API requests,
//! connecting as another user, and rules for the one VM.

#![allow(dead_code)] // each test uses its own part of the harness

use std::io;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use secgroup_api::{AttachState, Client, Status};
use secgroup_testbed::{Control, Endpoint};
pub use secgroup_testbed::{Daemon, GUEST_IP, HOST_IP, Lab, TAP, TcpEcho, root_or_skip, wait_for};

/// The lab's secgroupd, started and ready.
pub fn start(lab: &Lab) -> Daemon {
    start_with(lab, &[])
}

/// The same with extra flags.
pub fn start_with(lab: &Lab, extra: &[&str]) -> Daemon {
    lab.host
        .secgroupd(env!("CARGO_BIN_EXE_secgroupd"))
        .args(extra)
        .start()
}

/// Questions about the lab's one instance, `ins-vm`.
pub trait VmDaemon {
    fn client(&self) -> Client;
    fn status(&self) -> Status;
    /// The attach state of `ins-vm`.
    fn vm_state(&self) -> Option<AttachState>;
    /// Waits until `ins-vm` is attached; returns its ifindex.
    fn wait_attached(&self, timeout: Duration) -> u32;
    /// Waits until a reload after `reloads` has finished; returns the
    /// status then.
    fn wait_reload_after(&self, reloads: u64, timeout: Duration) -> Status;
}

impl VmDaemon for Daemon {
    fn client(&self) -> Client {
        Client::new(self.socket()).with_timeout(Duration::from_secs(10))
    }

    fn status(&self) -> Status {
        Control::of(self).status()
    }

    fn vm_state(&self) -> Option<AttachState> {
        Control::of(self).attach_state("ins-vm")
    }

    fn wait_attached(&self, timeout: Duration) -> u32 {
        Control::of(self).wait_attached("ins-vm", timeout)
    }

    fn wait_reload_after(&self, reloads: u64, timeout: Duration) -> Status {
        Control::of(self).wait_reload(reloads, timeout)
    }
}

/// TCP echo servers on the host's address, on `ports`.
pub fn echo_servers(lab: &Lab, ports: &[u16]) -> Vec<TcpEcho> {
    let host = Endpoint::new(&lab.host.ns, HOST_IP);
    ports
        .iter()
        .map(|port| TcpEcho::start(host, *port))
        .collect()
}

/// Sends `message` and expects it back within a second.
pub fn echoes(stream: &mut TcpStream, message: &str) -> bool {
    secgroup_testbed::echoes(stream, message, Duration::from_secs(1))
}

/// What is attached to the tap, as the kernel reports it.
pub fn hooks_on_tap(lab: &Lab) -> Hooks {
    let link = lab.host.ns.output(&["ip", "link", "show", "dev", TAP]);
    let xdp = String::from_utf8_lossy(&link.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "prog/xdp")
        .skip_while(|w| *w != "name")
        .nth(1)
        .map(str::to_owned);
    let tcx_egress = match lab.host.ns.ifindex(TAP) {
        // The query resolves the ifindex in the caller's namespace.
        Some(ifindex) => lab.host.ns.run(|| tcx_egress_programs(ifindex)),
        None => 0,
    };
    Hooks { xdp, tcx_egress }
}

/// The hooks on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// The name of the XDP program, if one is attached.
    pub xdp: Option<String>,
    /// How many programs are attached at TCX egress.
    pub tcx_egress: u32,
}

impl Hooks {
    /// secgroup's two hooks, once each.
    pub fn are_secgroups(&self) -> bool {
        self.xdp.as_deref() == Some("sg_xdp_egress") && self.tcx_egress == 1
    }

    pub fn none(&self) -> bool {
        self.xdp.is_none() && self.tcx_egress == 0
    }
}

/// BPF_PROG_QUERY for TCX egress of `ifindex` in the calling thread's
/// namespace (bpftool in this image predates TCX).
fn tcx_egress_programs(ifindex: u32) -> u32 {
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_TCX_EGRESS: u32 = 47;
    // union bpf_attr's `query`: target_ifindex, attach_type, query_flags,
    // attach_flags, prog_ids, prog_cnt, ...; zero ids ask for the count.
    let mut attr = [0u8; 72];
    attr[0..4].copy_from_slice(&ifindex.to_ne_bytes());
    attr[4..8].copy_from_slice(&BPF_TCX_EGRESS.to_ne_bytes());
    // SAFETY: attr is a valid, large enough buffer for the kernel to read
    // and write.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            attr.as_mut_ptr(),
            attr.len() as u32,
        )
    };
    assert!(
        rc == 0,
        "BPF_PROG_QUERY on ifindex {ifindex}: {}",
        io::Error::last_os_error()
    );
    u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]])
}

/// One instance `ins-vm` on `tap-vm` (198.51.100.2) bound to `sg-vm` with
/// these rule lists (JSON array bodies).
pub fn vm_rules(ingress: &str, egress: &str) -> String {
    format!(
        r#"{{
  "security_groups": [
    {{ "id": "sg-vm", "name": "vm", "ingress": [{ingress}], "egress": [{egress}] }}
  ],
  "instances": [
    {{ "id": "ins-vm", "interface": "{TAP}", "ips": ["{GUEST_IP}"], "security_groups": ["sg-vm"] }}
  ]
}}
"#
    )
}

pub const ACCEPT_ICMP: &str = r#"{ "action": "accept", "protocol": "icmp" }"#;
pub const ACCEPT_TCP_8080: &str =
    r#"{ "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.1" }"#;

/// A raw request, for status codes and headers.
pub fn raw(
    daemon: &Daemon,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> secgroup_api::RawResponse {
    daemon
        .client()
        .request(method, path, body.map(str::as_bytes))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Connects to `socket` from a thread running as `uid:gid` with no
/// supplementary groups. Credentials are per thread in the kernel; the raw
/// syscalls change only this one (libc's wrappers would change every
/// thread of the test process), and the thread ends right after.
pub fn connect_as(uid: u32, gid: u32, socket: &Path) -> io::Result<UnixStream> {
    let socket = socket.to_owned();
    std::thread::spawn(move || {
        // SAFETY: plain syscalls on this thread's credentials.
        unsafe {
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        UnixStream::connect(&socket)
    })
    .join()
    .unwrap_or_else(|_| panic!("the connecting thread panicked"))
}
