//! Real virtual machines: QEMU guests on taps QEMU opens itself, as a
//! hypervisor runs them. Each guest boots the host's kernel with the
//! test bed's initramfs ([`image`]), has a virtio-net NIC on a tap of the
//! host namespace (created by QEMU from `ifname=`, so it appears when the
//! VM starts and vanishes when it stops, as libvirt's `vnetN` do), which
//! the test bed puts on the bridge and brings up, and answers commands
//! over its second serial port ([`console`]).
//!
//! QEMU runs with TCG (nested KVM hangs early in boot on the machines
//! this was built on): KVM is used only when a one-off probe boot with it
//! succeeds (cached per boot of the machine), or when `SGTB_GUEST_ACCEL`
//! says `kvm` or `tcg`. QEMU dies with the thread that started it
//! (`PR_SET_PDEATHSIG`), is killed on drop, panics included, and its pid
//! file in the guest's scratch dir lets the sweep kill what a SIGKILLed
//! run left.

mod accel;
mod console;
mod image;
mod probes;

use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use accel::accel;
pub use console::GuestOutput;
pub use image::{Image, image};

use crate::bed::{TestBed, mac_text};
use crate::error::{Error, or_panic};
use crate::files::Scratch;
use crate::netns::{NetNs, command_in};
use crate::wait::poll;

/// How long a guest may take to boot on a loaded machine (TCG, several
/// guests at once on two cores: 9-35 s measured).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an allowed exchange from a guest may take (TCG guests
/// answer in milliseconds, but share two cores with everything else).
pub const GUEST_ACCEPT: Duration = Duration::from_secs(5);
/// How long an exchange from a guest waits before calling it blocked.
pub const GUEST_BLOCK: Duration = Duration::from_millis(1500);
/// The pid file the sweep looks for in a dead run's scratch dirs.
pub const PID_FILE: &str = "qemu.pid";

/// How to start a guest: a builder over its QEMU command line and its
/// network configuration.
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    name: String,
    tap: String,
    mac: [u8; 6],
    bridge: Option<String>,
    ip4: Option<String>,
    ip6: Option<String>,
    routes: Vec<String>,
    memory_mib: u32,
    queues: u8,
}

impl GuestBuilder {
    /// A guest `name` on tap `tap` with NIC address `mac`, no addresses,
    /// 160 MiB, one vCPU, one queue.
    pub fn new(name: &str, tap: &str, mac: [u8; 6]) -> GuestBuilder {
        assert!(tap.len() < libc::IFNAMSIZ, "tap name {tap:?} too long");
        GuestBuilder {
            name: name.to_owned(),
            tap: tap.to_owned(),
            mac,
            bridge: None,
            ip4: None,
            ip6: None,
            routes: Vec::new(),
            memory_mib: 160,
            queues: 1,
        }
    }

    /// Puts the tap on `bridge` once QEMU has created it.
    pub fn bridge(mut self, bridge: &str) -> Self {
        self.bridge = Some(bridge.to_owned());
        self
    }

    /// A static IPv4 address (`ADDR/LEN`) on the guest's eth0.
    pub fn ip4(mut self, cidr: &str) -> Self {
        self.ip4 = Some(cidr.to_owned());
        self
    }

    /// A static IPv6 address (`ADDR/LEN`), usable at once (the guest
    /// does no duplicate address detection).
    pub fn ip6(mut self, cidr: &str) -> Self {
        self.ip6 = Some(cidr.to_owned());
        self
    }

    /// An on-link route (`PREFIX/LEN`) on eth0.
    pub fn route(mut self, prefix: &str) -> Self {
        self.routes.push(prefix.to_owned());
        self
    }

    /// No static IPv4 address: the guest asks DHCP (see [`Guest::dhcp`]).
    pub fn without_ip4(mut self) -> Self {
        self.ip4 = None;
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// A multiqueue NIC with `queues` queue pairs.
    pub fn queues(mut self, queues: u8) -> Self {
        self.queues = queues.max(1);
        self
    }

    /// Starts QEMU in `ns` and returns while the guest boots: start
    /// several, then [`Guest::wait_booted`] each, and they boot in
    /// parallel. The tap exists (and is on the bridge, up) on return.
    pub fn start(self, ns: &NetNs) -> Guest {
        or_panic(self.try_start(ns))
    }

    pub fn try_start(self, ns: &NetNs) -> Result<Guest, Error> {
        let image = image()?;
        let accel = accel();
        let booting = BootSlot::take();
        let dir = Scratch::new(&format!("guest-{}", self.name));
        let console_log = dir.join("console.log");
        let mut command = command_in(&ns.name, &ns.path(), "qemu-system-x86_64")?;
        let mut netdev = format!("tap,id=net0,ifname={},script=no,downscript=no", self.tap);
        let mut device = format!("virtio-net-pci,netdev=net0,mac={}", mac_text(self.mac));
        if self.queues > 1 {
            netdev.push_str(&format!(",queues={}", self.queues));
            device.push_str(&format!(
                ",mq=on,vectors={}",
                2 * u32::from(self.queues) + 2
            ));
        }
        command
            .args(["-name", &format!("sgtb-{}", self.name)])
            .args(["-accel", accel, "-smp", "1"])
            .args(["-m", &self.memory_mib.to_string()])
            .args(["-nodefaults", "-no-user-config", "-no-reboot"])
            .args(["-display", "none", "-monitor", "none"])
            .arg("-kernel")
            .arg(&image.kernel)
            .arg("-initrd")
            .arg(&image.initramfs)
            .args([
                "-append",
                "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console_log.display()))
            .args(["-serial", "stdio"])
            .args(["-netdev", &netdev, "-device", &device])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(dir.join("qemu.err")).map_err(|source| Error::Io {
                    what: "creating",
                    path: dir.join("qemu.err"),
                    source,
                })?,
            );
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| Error::Spawn {
            command: "qemu-system-x86_64".into(),
            source,
        })?;
        let _ = std::fs::write(dir.join(PID_FILE), child.id().to_string());
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("stdin and stdout are piped");
        };
        let mut guest = Guest {
            name: self.name.clone(),
            tap: self.tap.clone(),
            mac: self.mac,
            ip4: self.ip4.as_deref().map(address),
            ip6: self.ip6.as_deref().map(address),
            accel,
            boot_time: None,
            console: Mutex::new(console::Console::new(stdin, stdout, booting)),
            started: Instant::now(),
            child: Some(child),
            ns: ns.name.clone(),
            ns_path: ns.path(),
            builder: self,
            dir,
        };
        guest.attach_tap(ns)?;
        Ok(guest)
    }
}

/// `198.51.100.2` from `198.51.100.2/24`.
fn address(cidr: &str) -> String {
    cidr.split('/').next().unwrap_or(cidr).to_owned()
}

/// A running QEMU guest; killed on drop.
pub struct Guest {
    pub name: String,
    /// The host-side interface: what the rules call its interface.
    pub tap: String,
    pub mac: [u8; 6],
    pub ip4: Option<String>,
    pub ip6: Option<String>,
    /// `tcg` or `kvm`.
    pub accel: &'static str,
    /// From QEMU's start to the agent's first words.
    pub boot_time: Option<Duration>,
    console: Mutex<console::Console>,
    started: Instant,
    child: Option<Child>,
    ns: String,
    ns_path: PathBuf,
    builder: GuestBuilder,
    dir: Scratch,
}

impl Guest {
    /// Waits for QEMU's tap, then bridges it and brings it up.
    fn attach_tap(&mut self, ns: &NetNs) -> Result<(), Error> {
        let appeared = poll(Duration::from_secs(30), || {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return Some(false);
            }
            ns.ifindex(&self.tap).map(|_| true)
        });
        if appeared != Some(true) {
            return Err(self.failure("QEMU created no tap"));
        }
        let mut lines = String::new();
        if let Some(bridge) = &self.builder.bridge {
            lines.push_str(&format!("link set {} master {bridge}\n", self.tap));
        }
        lines.push_str(&format!("link set {} up\n", self.tap));
        ns.try_ip_batch(&lines).map(drop)
    }

    fn failure(&self, what: &str) -> Error {
        Error::Guest {
            name: self.name.clone(),
            what: format!("{what}\n{}", self.logs()),
        }
    }

    /// The tails of QEMU's stderr and the guest's kernel console.
    pub fn logs(&self) -> String {
        let tail = |file: &str| {
            let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "---- {} qemu.err ----\n{}\n---- {} console ----\n{}",
            self.name,
            tail("qemu.err"),
            self.name,
            tail("console.log")
        )
    }

    /// Waits until the agent answers, then configures the addresses and
    /// routes; returns the boot time.
    pub fn wait_booted(&mut self) -> Duration {
        or_panic(self.try_wait_booted())
    }

    pub fn try_wait_booted(&mut self) -> Result<Duration, Error> {
        if let Some(took) = self.boot_time {
            return Ok(took);
        }
        let ready = self.console().wait_ready(BOOT_TIMEOUT);
        ready.map_err(|e| self.failure(&format!("booting: {e}")))?;
        let took = self.started.elapsed();
        self.boot_time = Some(took);
        // Any failing line fails the whole configuration.
        let mut script = String::from("set -e\n");
        if let Some(cidr) = &self.builder.ip4 {
            script.push_str(&format!("ip addr add {cidr} dev eth0\n"));
        }
        if let Some(cidr) = &self.builder.ip6 {
            // DAD is off in the guest (init): usable at once.
            script.push_str(&format!("ip -6 addr add {cidr} dev eth0\n"));
        }
        for prefix in &self.builder.routes {
            script.push_str(&format!("ip route add {prefix} dev eth0\n"));
        }
        self.try_sh(&script)?;
        let _ = writeln!(
            std::io::stderr(),
            "guest {}: booted in {:.1}s ({})",
            self.name,
            took.as_secs_f64(),
            self.accel
        );
        Ok(took)
    }

    fn console(&self) -> MutexGuard<'_, console::Console> {
        self.console.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `script` with the guest's `sh` (killed after `timeout`): its
    /// status and output, whatever the status.
    pub fn run_for(&self, script: &str, timeout: Duration) -> GuestOutput {
        or_panic(self.try_run_for(script, timeout))
    }

    pub fn try_run_for(&self, script: &str, timeout: Duration) -> Result<GuestOutput, Error> {
        let result = self.console().run(script, timeout);
        result.map_err(|e| self.failure(&format!("running {script:?}: {e}")))
    }

    /// [`Guest::run_for`] with a 30 s limit.
    pub fn run(&self, script: &str) -> GuestOutput {
        self.run_for(script, Duration::from_secs(30))
    }

    /// Runs `script`, panicking with its output unless it exits with 0;
    /// its output.
    pub fn sh(&self, script: &str) -> String {
        or_panic(self.try_sh(script))
    }

    pub fn try_sh(&self, script: &str) -> Result<String, Error> {
        let out = self.try_run_for(script, Duration::from_secs(30))?;
        if !out.success() {
            return Err(Error::Guest {
                name: self.name.clone(),
                what: format!(
                    "`{}` exited with {}: {}",
                    script.trim(),
                    out.status,
                    out.output.trim()
                ),
            });
        }
        Ok(out.output)
    }

    pub fn ip(&self, v6: bool) -> IpAddr {
        let text = if v6 { &self.ip6 } else { &self.ip4 };
        let text = text
            .as_deref()
            .unwrap_or_else(|| panic!("guest {} has no static address", self.name));
        text.parse()
            .unwrap_or_else(|e| panic!("guest address {text}: {e}"))
    }

    /// Its instance id in rule files.
    pub fn instance(&self) -> String {
        format!("ins-{}", self.name)
    }

    pub fn mac_text(&self) -> String {
        mac_text(self.mac)
    }

    /// The IPv6 link-local address its kernel derives from its MAC.
    pub fn link_local(&self) -> std::net::Ipv6Addr {
        crate::bed::link_local(self.mac)
    }

    /// The tap's ifindex now, if it exists.
    pub fn ifindex(&self) -> Option<u32> {
        let name = std::ffi::CString::new(self.tap.as_str()).ok()?;
        let netns = std::fs::File::open(&self.ns_path).ok()?;
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: a valid fd; this thread only.
                if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return None;
                }
                // SAFETY: NUL-terminated.
                let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
                (index != 0).then_some(index)
            })
            .join()
            .ok()
            .flatten()
        })
    }

    /// How to start this guest again (same name, tap, MAC, addresses).
    pub fn builder(&self) -> GuestBuilder {
        self.builder.clone()
    }

    /// Powers the VM off (QEMU killed) and waits until its tap is gone.
    pub fn stop(mut self) {
        self.kill();
        let gone = poll(Duration::from_secs(10), || {
            self.ifindex().is_none().then_some(())
        });
        assert!(gone.is_some(), "tap {} outlived QEMU", self.tap);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The namespace QEMU runs in.
    pub fn netns(&self) -> &str {
        &self.ns
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            let _ = writeln!(std::io::stderr(), "{}", self.logs());
        }
        self.kill();
    }
}

/// One of the few guests of this process allowed to boot at once: a
/// booting TCG guest keeps a core busy, and more boots than cores only
/// make each slower (to the point of RCU stalls in the guests). Taken
/// before QEMU starts, given back when the agent speaks (or QEMU ends).
/// As many as cores, or `SGTB_GUEST_BOOTS`.
struct BootSlot;

static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl BootSlot {
    fn limit() -> usize {
        std::env::var("SGTB_GUEST_BOOTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    fn take() -> BootSlot {
        let (busy, freed) = &SLOTS;
        let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= BootSlot::limit() {
            busy = freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        BootSlot
    }
}

impl Drop for BootSlot {
    fn drop(&mut self) {
        let (busy, freed) = &SLOTS;
        let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        freed.notify_one();
    }
}

/// Starts every builder in `ns`, then waits for all: they boot in
/// parallel, as many at once as there are cores ([`BootSlot`]). Panics
/// with the logs of the first that fails.
pub fn boot_all(ns: &NetNs, builders: Vec<GuestBuilder>) -> Vec<Guest> {
    let mut guests: Vec<Guest> = builders.into_iter().map(|b| b.start(ns)).collect();
    for guest in &mut guests {
        guest.wait_booted();
    }
    guests
}

impl TestBed {
    /// A guest `name` on `tap-NAME` (name at most 10 bytes) on the bed's
    /// bridge, with 198.51.100.`n`/24, 2001:db8:1::`n`/64, routes to the
    /// world and the MAC 02:00:00:00:03:`n`.
    pub fn guest(&self, name: &str, n: u8) -> GuestBuilder {
        assert!(name.len() <= 10, "guest name {name:?} too long for a tap");
        self.guest_on(name, &format!("tap-{name}"), n)
    }

    /// [`TestBed::guest`] on tap `tap` (a `vnetN`, as libvirt names them).
    pub fn guest_on(&self, name: &str, tap: &str, n: u8) -> GuestBuilder {
        assert!((2..100).contains(&n), "guest number {n} outside 2..100");
        GuestBuilder::new(name, tap, [0x02, 0x00, 0x00, 0x00, 0x03, n])
            .bridge("br0")
            .ip4(&format!("198.51.100.{n}/24"))
            .ip6(&format!("2001:db8:1::{n:x}/64"))
            .route("203.0.113.0/24")
            .route("2001:db8:2::/64")
    }
}

/// True when a test with guests can run: root ([`crate::root_or_skip`])
/// and a boot image (the packages `cargo xtask deps` installs). Without
/// the packages it prints a loud SKIPPED line and returns false; under
/// `CI=true` it panics instead, as a skipped test in CI would hide a
/// broken product.
pub fn guests_or_skip(test: &str) -> bool {
    if !crate::skip::root_or_skip(test) {
        return false;
    }
    let Err(e) = image() else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: CI=true but no guest image ({e}): run `cargo xtask deps`"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: no guest image ({e}); `cargo xtask deps` installs what it needs ***\n"
    );
    false
}
