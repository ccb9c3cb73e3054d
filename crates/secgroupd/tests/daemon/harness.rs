//! Fixtures: network namespaces with a veth "tap" and a guest, the real
//! secgroupd binary running inside the host namespace, real traffic from
//! the guest. Everything a test creates is removed on drop (daemon
//! process, namespaces, pins, temp files), and every name is unique, so
//! tests run side by side.
//!
//! Why not `ip netns exec`: it gives the command a private mount namespace
//! with a fresh /sys, hiding the host's bpffs; the daemon would mount its
//! own, and every pin would die with the process (no restart test could
//! pass). The daemon is started with `setns(CLONE_NEWNET)` only, as
//! `nsenter --net` does.

#![allow(dead_code)] // each test uses its own part of the harness

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use secgroup_api::{AttachState, Client, Status};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test run) uses: `sgd-TAG-PID-N`. No dots:
/// bpffs refuses names with dots.
pub fn unique(tag: &str) -> String {
    format!(
        "sgd-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// True when the kernel tests can run: as root. Without root they are
/// skipped loudly, except under CI=true where skipping would hide a
/// broken daemon.
pub fn kernel_tests_enabled(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: CI=true but not running as root: the daemon tests must run in CI");
    }
    // Straight to the stderr file descriptor: the test harness captures
    // eprintln! of passing tests, and a skip must not go unnoticed.
    let _ = writeln!(
        io::stderr(),
        "\n*** SKIPPED {test}: needs root (network namespaces, BPF) ***\n"
    );
    false
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` every 5 ms until it yields a value or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---- Namespaces -----------------------------------------------------------

/// A network namespace, deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        let name = unique(tag);
        sh(&["ip", "netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> PathBuf {
        secgroup_dataplane::netns::named(&self.name)
    }

    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// Runs `args` in the namespace; whether it succeeded.
    pub fn exec_ok(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running {args:?} in {}: {e}", self.name))
            .success()
    }

    pub fn output(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {args:?} in {}: {e}", self.name));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `work` on a thread inside the namespace. Sockets made there
    /// stay in the namespace when handed back.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        secgroup_dataplane::netns::run_in(&self.path(), work)
            .unwrap_or_else(|e| panic!("entering namespace {}: {e}", self.name))
    }

    pub fn ifindex(&self, ifname: &str) -> Option<u32> {
        self.run(|| secgroup_dataplane::netns::ifindex(ifname).ok())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

// ---- The lab --------------------------------------------------------------

pub const HOST_IP: &str = "198.51.100.1";
pub const GUEST_IP: &str = "198.51.100.2";
pub const TAP: &str = "tap-vm";

/// A hypervisor host namespace with a "tap" (the host end of a veth pair)
/// whose other end is the guest's eth0 in a guest namespace; a temp dir
/// with the rules directory, the socket and the logs; a unique pin dir.
pub struct Lab {
    // Field order is drop order: namespaces go before the files.
    pub host: NetNs,
    pub guest: NetNs,
    pub dir: PathBuf,
    pub rules: PathBuf,
    pub pin_dir: PathBuf,
}

impl Lab {
    /// With the VM's link in place.
    pub fn new(tag: &str) -> Lab {
        let lab = Lab::without_link(tag);
        lab.add_link();
        lab
    }

    /// The VM's interface does not exist yet.
    pub fn without_link(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(unique(tag));
        let rules = dir.join("rules");
        std::fs::create_dir_all(&rules)
            .unwrap_or_else(|e| panic!("creating {}: {e}", rules.display()));
        Lab {
            host: NetNs::new(&format!("{tag}-h")),
            guest: NetNs::new(&format!("{tag}-g")),
            pin_dir: PathBuf::from("/sys/fs/bpf").join(unique(tag)),
            dir,
            rules,
        }
    }

    /// Creates the veth pair: `tap-vm` (198.51.100.1) on the host, `eth0`
    /// (198.51.100.2) in the guest.
    pub fn add_link(&self) {
        self.host.ip(&[
            "link",
            "add",
            TAP,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &self.guest.name,
        ]);
        self.host
            .ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", TAP]);
        self.host.ip(&["link", "set", TAP, "up"]);
        self.guest
            .ip(&["addr", "add", &format!("{GUEST_IP}/24"), "dev", "eth0"]);
        self.guest.ip(&["link", "set", "eth0", "up"]);
    }

    pub fn del_link(&self) {
        self.host.ip(&["link", "del", TAP]);
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    pub fn write_rules(&self, name: &str, json: &str) {
        std::fs::write(self.rules.join(name), json)
            .unwrap_or_else(|e| panic!("writing {name}: {e}"));
    }

    /// The way editors and controllers save: a temp file renamed over the
    /// old one.
    pub fn replace_rules(&self, name: &str, json: &str) {
        let tmp = self.rules.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, json).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        std::fs::rename(&tmp, self.rules.join(name))
            .unwrap_or_else(|e| panic!("renaming onto {name}: {e}"));
    }

    pub fn remove_rules(&self, name: &str) {
        std::fs::remove_file(self.rules.join(name))
            .unwrap_or_else(|e| panic!("removing {name}: {e}"));
    }

    /// Pinned link files left in the pin directory.
    pub fn pinned_links(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.pin_dir.join("links"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// What is attached to the tap, as the kernel reports it.
    pub fn hooks_on_tap(&self) -> Hooks {
        let link = self.host.output(&["ip", "link", "show", "dev", TAP]);
        let xdp = link
            .split_whitespace()
            .skip_while(|w| *w != "prog/xdp")
            .skip_while(|w| *w != "name")
            .nth(1)
            .map(str::to_owned);
        let tcx_egress = self.host.run(|| tcx_egress_programs(TAP));
        Hooks { xdp, tcx_egress }
    }

    // -- Traffic ------------------------------------------------------------

    /// One ping from the guest to the host.
    pub fn guest_pings_host(&self) -> bool {
        self.guest
            .exec_ok(&["ping", "-c", "1", "-W", "0.5", "-q", HOST_IP])
    }

    pub fn host_pings_guest(&self) -> bool {
        self.host
            .exec_ok(&["ping", "-c", "1", "-W", "0.5", "-q", GUEST_IP])
    }

    /// A TCP connection from the guest to the host's `port`.
    pub fn guest_connects(&self, port: u16) -> io::Result<TcpStream> {
        let addr: SocketAddr = format!("{HOST_IP}:{port}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        self.guest
            .run(|| TcpStream::connect_timeout(&addr, Duration::from_millis(400)))
    }

    /// Echo servers on the host on `ports`.
    pub fn echo_servers(&self, ports: &[u16]) -> Vec<EchoServer> {
        ports
            .iter()
            .map(|port| EchoServer::start(&self.host, *port))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Unpinning the links detaches them; the maps go with the files.
        let _ = secgroup_dataplane::uninstall(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

/// BPF_PROG_QUERY for TCX egress of `ifname` in the calling thread's
/// namespace (bpftool in this image predates TCX).
fn tcx_egress_programs(ifname: &str) -> u32 {
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_TCX_EGRESS: u32 = 47;
    let Ok(ifindex) = secgroup_dataplane::netns::ifindex(ifname) else {
        return 0;
    };
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
        "BPF_PROG_QUERY on {ifname}: {}",
        io::Error::last_os_error()
    );
    u32::from_ne_bytes([attr[24], attr[25], attr[26], attr[27]])
}

/// A TCP echo server in a namespace, on every address; stopped on drop.
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    pub fn start(ns: &NetNs, port: u16) -> EchoServer {
        let listener = ns
            .run(|| TcpListener::bind(("0.0.0.0", port)))
            .unwrap_or_else(|e| panic!("binding port {port} in {}: {e}", ns.name));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking listener: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let stopping = stopping.clone();
                        std::thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                            let mut buf = [0u8; 1024];
                            while !stopping.load(Ordering::Relaxed) {
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
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `message` and expects it back within a second.
pub fn echoes(stream: &mut TcpStream, message: &str) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(message.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; message.len()];
    stream.read_exact(&mut buf).is_ok() && buf == message.as_bytes()
}

// ---- Rules ----------------------------------------------------------------

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

// ---- The daemon -----------------------------------------------------------

/// secgroupd running in the lab's host namespace; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts secgroupd and waits for READY=1 (sd_notify over a socket of
    /// ours, as systemd would get it).
    pub fn start(lab: &Lab) -> Daemon {
        Daemon::start_with(lab, &[])
    }

    pub fn start_with(lab: &Lab, extra: &[&str]) -> Daemon {
        let notify_path = lab.dir.join(unique("notify"));
        let notify = UnixDatagram::bind(&notify_path)
            .unwrap_or_else(|e| panic!("binding the notify socket: {e}"));
        let log = lab.dir.join(format!("{}.log", unique("daemon")));
        let log_file =
            File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let netns = File::open(lab.host.path())
            .unwrap_or_else(|e| panic!("opening the host namespace: {e}"));
        let netns_fd = netns.as_raw_fd();
        let mut command = Command::new(env!("CARGO_BIN_EXE_secgroupd"));
        command
            .arg("--rules-dir")
            .arg(&lab.rules)
            .arg("--socket")
            .arg(lab.socket())
            .arg("--bpffs")
            .arg(&lab.pin_dir)
            .args(extra)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("SECGROUP_LOG", "info,secgroupd=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log_file);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Die with us, whatever happens to us.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setns(netns_fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting secgroupd: {e}"));
        drop(netns);
        let mut daemon = Daemon {
            child: Some(child),
            socket: lab.socket(),
            log,
        };
        daemon.wait_ready(&notify);
        let _ = std::fs::remove_file(&notify_path);
        daemon
    }

    fn wait_ready(&mut self, notify: &UnixDatagram) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 512];
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "secgroupd exited before READY=1 ({status}):\n{}",
                    self.log_text()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "secgroupd sent no READY=1 within 30 s:\n{}",
                    self.log_text()
                );
            }
            let _ = notify.set_read_timeout(Some(left.min(Duration::from_millis(100))));
            if let Ok(n) = notify.recv(&mut buf)
                && String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
            {
                return;
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Duration::from_secs(10))
    }

    pub fn status(&self) -> Status {
        self.client()
            .get(secgroup_api::paths::STATUS)
            .unwrap_or_else(|e| panic!("GET /v1/status: {e}\n{}", self.log_text()))
    }

    /// The attach state of the only instance.
    pub fn vm_state(&self) -> Option<AttachState> {
        self.status()
            .instances
            .into_iter()
            .find(|i| i.id == "ins-vm")
            .map(|i| i.attach)
    }

    /// Waits until the instance is attached; returns its ifindex.
    pub fn wait_attached(&self, timeout: Duration) -> u32 {
        wait_for("ins-vm to be attached", timeout, || match self.vm_state() {
            Some(AttachState::Attached { ifindex, .. }) => Some(ifindex),
            _ => None,
        })
    }

    /// Waits until a reload after `reloads` has finished; returns the
    /// status then.
    pub fn wait_reload_after(&self, reloads: u64, timeout: Duration) -> Status {
        wait_for("a reload", timeout, || {
            let status = self.status();
            (status.reloads > reloads).then_some(status)
        })
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().unwrap_or_else(|| panic!("no child"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "secgroupd did not stop within 10 s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!(
                    "---- secgroupd log ({}) ----\n{}",
                    self.log.display(),
                    self.log_text()
                );
            }
        }
    }
}

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
