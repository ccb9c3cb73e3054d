//! `cargo xtask demo [--keep]`: secgroupd on a pretend hypervisor, with
//! real traffic.
//!
//! Network namespaces stand in for the machines: `sgdemo-host` is the
//! hypervisor, with a bridge whose ports are the VMs' "taps" (host ends of
//! veth pairs); `sgdemo-web` and `sgdemo-db` are VMs; `sgdemo-ext` is a
//! client outside the host, not protected by secgroup. secgroupd runs in
//! the host namespace on rules written for the demo, TCP servers run in the
//! VMs, and connections and pings show what is accepted and dropped, also
//! across a live rule change. Only documentation addresses are used and no
//! packet leaves the namespaces. Everything is removed on exit, Ctrl-C
//! included; `--keep` waits for Ctrl-C before cleaning up, to explore.
//!
//! The servers and clients are this program run again inside a namespace
//! (`demo --serve PORTS`, `demo --connect ADDR`), so the demo needs no
//! netcat.
//!
//! `--vms` makes web and db real virtual machines: QEMU guests booted
//! from the host's kernel with the test bed's initramfs
//! (`secgroup_testbed::Guest`), on taps QEMU opens (`tap-web`, `tap-db`),
//! running the test bed's echo servers and clients; it needs the
//! packages `cargo xtask deps` installs (qemu-system-x86,
//! linux-image-amd64, busybox-static, gcc).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use secgroup_testbed::{
    Bridge, Daemon, Guest, NetNs, Scratch, Secgroupd, Veth, poll, quietly, uninstall,
};

const HOST: &str = "sgdemo-host";
const WEB: &str = "sgdemo-web";
const DB: &str = "sgdemo-db";
const EXT: &str = "sgdemo-ext";
const PIN_DIR: &str = "/sys/fs/bpf/sgdemo";

const WEB_IP: &str = "198.51.100.10";
const DB_IP: &str = "198.51.100.20";
const EXT_IP: &str = "203.0.113.7";

/// `println!` that ignores a closed stdout (`cargo xtask demo | head`):
/// a panic there would skip the cleanup.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod vms;

/// Set by SIGINT/SIGTERM: every wait checks it and the demo unwinds,
/// cleaning up on the way.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("--serve") => return serve(args.get(1).context("--serve needs ports")?),
        Some("--connect") => return connect(args.get(1).context("--connect needs an address")?),
        _ => {}
    }
    let (mut keep, mut vms) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--keep" => keep = true,
            "--vms" => vms = true,
            other => bail!("unknown argument {other:?}\nusage: cargo xtask demo [--keep] [--vms]"),
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo creates network namespaces and loads eBPF programs: run it as root");
    }
    crate::run_cmd("cargo", &["build", "-p", "secgroupd", "-p", "secgroupctl"])?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let mut demo = Demo::new(vms)?;
    let result = demo.run(keep);
    drop(demo); // cleans up, also after an error or Ctrl-C
    result
}

struct Demo {
    // Dropped after `Drop::drop` has stopped the servers and the daemon,
    // in this order: the namespaces, then the files.
    daemon: Option<Daemon>,
    servers: Vec<Child>,
    /// With `--vms`: web and db, and where their boot image was built.
    guests: Vec<Guest>,
    image_dir: Option<PathBuf>,
    vms: bool,
    namespaces: Vec<NetNs>,
    dir: Scratch,
}

impl Demo {
    fn new(vms: bool) -> Result<Demo> {
        // Leftovers of a demo that was killed hard.
        for ns in [HOST, WEB, DB, EXT] {
            NetNs::remove(ns);
        }
        let _ = std::fs::remove_dir_all(PIN_DIR);
        let dir = Scratch::try_at(
            std::env::temp_dir().join(format!("secgroup-demo-{}", std::process::id())),
        )?;
        std::fs::create_dir_all(dir.join("rules")).context("creating the demo directory")?;
        Ok(Demo {
            daemon: None,
            servers: Vec::new(),
            guests: Vec::new(),
            image_dir: None,
            vms,
            namespaces: Vec::new(),
            dir,
        })
    }

    /// The namespace called `name`.
    fn ns(&self, name: &str) -> Result<&NetNs> {
        self.namespaces
            .iter()
            .find(|ns| ns.name == name)
            .with_context(|| format!("no namespace {name}"))
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("secgroupd.sock")
    }

    fn run(&mut self, keep: bool) -> Result<()> {
        self.network()?;
        self.write_rules(false)?;
        self.start_daemon()?;
        for (ns, ports) in [(WEB, "80,22"), (DB, "5432,22"), (EXT, "80")] {
            if let Some(guest) = self.guest(ns) {
                let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
                guest.serve(&ports);
                continue;
            }
            let server = serve_in(self.ns(ns)?, ports)?;
            self.servers.push(server);
        }
        std::thread::sleep(Duration::from_millis(200));

        title("The rules (a temp file, as an operator would drop it into /etc/secgroup/rules.d)");
        out!("{}", rules(false));
        title("Traffic");
        let checks = [
            (
                "ext → web  tcp/80   (HTTP from anywhere)",
                EXT,
                WEB_IP,
                Probe::Tcp(80),
                true,
            ),
            (
                "ext → web  tcp/22   (no rule: default drop)",
                EXT,
                WEB_IP,
                Probe::Tcp(22),
                false,
            ),
            (
                "ext → web  ping     (icmp only from 198.51.100.0/24)",
                EXT,
                WEB_IP,
                Probe::Ping,
                false,
            ),
            (
                "db  → web  ping     (from the VM subnet)",
                DB,
                WEB_IP,
                Probe::Ping,
                true,
            ),
            (
                "web → db   tcp/5432 (remote sg-web)",
                WEB,
                DB_IP,
                Probe::Tcp(5432),
                true,
            ),
            (
                "ext → db   tcp/5432 (not in sg-web)",
                EXT,
                DB_IP,
                Probe::Tcp(5432),
                false,
            ),
            (
                "web → db   tcp/22   (explicit drop all)",
                WEB,
                DB_IP,
                Probe::Tcp(22),
                false,
            ),
            (
                "db  → ext  tcp/80   (db egress: VM subnet only)",
                DB,
                EXT_IP,
                Probe::Tcp(80),
                false,
            ),
        ];
        let mut failures = self.check_all(&checks)?;

        title("GET /v1/status");
        out!("{}", self.api("GET", "/v1/status", None)?);
        title("GET /v1/security-groups/sg-db (rules with their hit counters)");
        out!("{}", self.api("GET", "/v1/security-groups/sg-db", None)?);
        title(
            "POST /v1/trace: ext → db tcp/5432, asked of the kernel program and of the reference evaluator",
        );
        let trace = format!(
            r#"{{"instance":"ins-db","direction":"ingress","protocol":"tcp","remote":"{EXT_IP}","port":5432}}"#
        );
        out!("{}", self.api("POST", "/v1/trace", Some(&trace))?);

        title(
            "A live change: sg-db now lets 203.0.113.0/24 in on tcp/22 (admin access), first rule",
        );
        self.write_rules(true)?;
        let started = Instant::now();
        let applied = poll(Duration::from_secs(5), || {
            match interrupted().and_then(|()| self.api("GET", "/v1/status", None)) {
                Ok(status) => status.contains("\"generation\": 2").then_some(Ok(())),
                Err(e) => Some(Err(e)),
            }
        });
        applied
            .unwrap_or_else(|| Err(anyhow!("timed out after 5 s")))
            .context("the change was not applied")?;
        out!("applied within {:?} of the write", started.elapsed());
        failures += self.check_all(&[
            (
                "ext → db   tcp/22   (new rule)",
                EXT,
                DB_IP,
                Probe::Tcp(22),
                true,
            ),
            (
                "web → db   tcp/22   (still dropped)",
                WEB,
                DB_IP,
                Probe::Tcp(22),
                false,
            ),
            (
                "web → db   tcp/5432 (unchanged)",
                WEB,
                DB_IP,
                Probe::Tcp(5432),
                true,
            ),
        ])?;

        title("What secgroupd logged");
        let log = std::fs::read_to_string(self.dir.join("secgroupd.log")).unwrap_or_default();
        for line in log.lines().filter(|l| !l.contains("DEBUG")) {
            out!("  {line}");
        }
        if keep {
            title("Kept running: try it yourself, Ctrl-C cleans up");
            out!(
                "  curl --unix-socket {} http://localhost/v1/instances/ins-web\n  \
                 ip netns exec {EXT} ping {WEB_IP}\n  \
                 rules: {}",
                self.socket().display(),
                self.dir.join("rules").display()
            );
            while !INTERRUPTED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if failures > 0 {
            bail!("{failures} check(s) did not go as expected");
        }
        out!("\nAll checks went as expected.");
        Ok(())
    }

    /// The host namespace with bridge br0 (198.51.100.1/24 for the VMs,
    /// 203.0.113.1/24 for the outside), and one veth per machine.
    fn network(&mut self) -> Result<()> {
        let names: &[&str] = if self.vms {
            &[HOST, EXT]
        } else {
            &[HOST, WEB, DB, EXT]
        };
        for name in names {
            interrupted()?;
            self.namespaces.push(NetNs::try_create(name)?);
        }
        let host = self.ns(HOST)?;
        Bridge::new(host, "br0")
            .addr("198.51.100.1/24")
            .addr("203.0.113.1/24")
            .try_create()?;
        host.try_sysctl("net.ipv4.ip_forward", "1")?;
        let machines = [
            (WEB, "tap-web", "198.51.100.10/24", "198.51.100.1"),
            (DB, "tap-db", "198.51.100.20/24", "198.51.100.1"),
            (EXT, "uplink", "203.0.113.7/24", "203.0.113.1"),
        ];
        if self.vms {
            return self.boot_vms(&machines[..2], &machines[2..]);
        }
        let mut links = Vec::new();
        for (ns, tap, addr, _) in machines {
            links.push(
                Veth::new(host, tap, self.ns(ns)?, "eth0")
                    .master("br0")
                    .peer_addr(addr),
            );
        }
        interrupted()?;
        Veth::try_create_all(&links)?;
        for (ns, _, _, gateway) in machines {
            self.ns(ns)?
                .try_ip(&["route", "add", "default", "via", gateway])?;
        }
        Ok(())
    }

    fn write_rules(&self, admin_ssh: bool) -> Result<()> {
        let path = self.dir.join("rules/demo.json");
        let tmp = self.dir.join("rules/.demo.json.tmp");
        std::fs::write(&tmp, rules(admin_ssh)).context("writing the rules")?;
        std::fs::rename(&tmp, &path).context("renaming the rules into place")
    }

    fn start_daemon(&mut self) -> Result<()> {
        let bin = crate::install::target_dir().join("debug/secgroupd");
        title("Starting secgroupd in the host namespace");
        let daemon = Secgroupd::new(&bin, &self.dir.path)
            .netns(self.ns(HOST)?)
            .rules_dir(&self.dir.join("rules"))
            .socket(&self.socket())
            .bpffs(PIN_DIR.as_ref())
            .log(&self.dir.join("secgroupd.log"))
            .env("SECGROUP_LOG", "info")
            .try_start()
            .with_context(|| format!("starting {}", bin.display()))?;
        out!(
            "secgroupd is ready: {}",
            daemon.ready_message().replace('\n', "; ")
        );
        self.daemon = Some(daemon);
        Ok(())
    }

    fn check_all(&self, checks: &[(&str, &str, &str, Probe, bool)]) -> Result<usize> {
        let mut failures = 0;
        for (what, from, to, probe, expected) in checks {
            interrupted()?;
            let passed = match self.guest(from) {
                Some(guest) => probe.run_in_guest(guest, to)?,
                None => probe.run(self.ns(from)?, to)?,
            };
            let word = |ok: bool| if ok { "ACCEPTED" } else { "DROPPED " };
            let mark = if passed == *expected { "ok  " } else { "FAIL" };
            out!("  {mark} {what:<56} {}", word(passed));
            if passed != *expected {
                failures += 1;
            }
        }
        Ok(failures)
    }

    /// One API call; the body as text.
    fn api(&self, method: &str, path: &str, body: Option<&str>) -> Result<String> {
        let mut stream = UnixStream::connect(self.socket()).context("connecting to secgroupd")?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").context("malformed answer")?;
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 200 ") {
            bail!("{method} {path}: {status}: {body}");
        }
        Ok(body.trim_end().to_owned())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        title("Cleaning up");
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        // QEMU goes first: its taps with it.
        self.guests.clear();
        if let Some(dir) = self.image_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(daemon) = self.daemon.take() {
            let _ = daemon.try_terminate(Duration::from_secs(5));
        }
        // Detach the pinned hooks and free the maps.
        let bin = crate::install::target_dir().join("debug/secgroupd");
        let uninstalled = self
            .ns(HOST)
            .is_ok_and(|host| uninstall(&bin, host, PIN_DIR.as_ref(), &self.socket()));
        if !uninstalled {
            let _ = std::fs::remove_dir_all(PIN_DIR);
        }
        self.namespaces.clear();
        out!(
            "removed the namespaces, the pins ({PIN_DIR}) and {}",
            self.dir.path.display()
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Probe {
    Tcp(u16),
    Ping,
}

impl Probe {
    /// Whether the traffic got through, from namespace `from` to `to`.
    fn run(self, from: &NetNs, to: &str) -> Result<bool> {
        let exe = std::env::current_exe().context("finding the xtask binary")?;
        Ok(match self {
            Probe::Tcp(port) => quietly(from.try_command(&exe)?.args([
                "demo",
                "--connect",
                &format!("{to}:{port}"),
            ])),
            Probe::Ping => from.succeeds(&["ping", "-c", "1", "-W", "1", "-q", to]),
        })
    }
}

/// Starts `demo --serve PORTS` in namespace `ns`.
fn serve_in(ns: &NetNs, ports: &str) -> Result<Child> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    ns.try_command(exe)?
        .args(["demo", "--serve", ports])
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting the servers in {}", ns.name))
}

/// `demo --serve 80,22`: on each port, echoes what every connection
/// sends (as the guests' servers do, so any client works with any server).
fn serve(ports: &str) -> Result<()> {
    let mut threads = Vec::new();
    for port in ports.split(',') {
        let port: u16 = port.parse().with_context(|| format!("bad port {port:?}"))?;
        let listener =
            TcpListener::bind(("0.0.0.0", port)).with_context(|| format!("binding port {port}"))?;
        threads.push(std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 512];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        }));
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// `demo --connect ADDR`: succeeds if a line comes back within a second.
fn connect(addr: &str) -> Result<()> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad address {addr:?}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"hello\n")?;
    let mut echo = [0u8; 6];
    stream.read_exact(&mut echo)?;
    if &echo != b"hello\n" {
        bail!("{addr} answered {echo:?}, not the echo");
    }
    Ok(())
}

fn rules(admin_ssh: bool) -> String {
    let admin = if admin_ssh {
        r#"
        { "action": "accept", "protocol": "tcp", "port": "22", "remote": "203.0.113.0/24", "description": "admin SSH" },"#
    } else {
        ""
    };
    format!(
        r#"{{
  "security_groups": [
    {{ "id": "sg-web", "name": "web",
      "ingress": [
        {{ "action": "accept", "protocol": "tcp", "port": "80", "description": "HTTP from anywhere" }},
        {{ "action": "accept", "protocol": "icmp", "remote": "198.51.100.0/24", "description": "ping from the VM subnet" }}
      ],
      "egress": [ {{ "action": "accept", "protocol": "all" }} ] }},
    {{ "id": "sg-db", "name": "db",
      "ingress": [{admin}
        {{ "action": "accept", "protocol": "tcp", "port": "5432", "remote": "sg-web", "description": "PostgreSQL from the web tier" }},
        {{ "action": "drop", "protocol": "all", "description": "nothing else" }}
      ],
      "egress": [ {{ "action": "accept", "protocol": "all", "remote": "198.51.100.0/24" }} ] }}
  ],
  "instances": [
    {{ "id": "ins-web", "interface": "tap-web", "ips": ["{WEB_IP}"], "security_groups": ["sg-web"] }},
    {{ "id": "ins-db", "interface": "tap-db", "ips": ["{DB_IP}"], "security_groups": ["sg-db"] }}
  ]
}}"#
    )
}

fn title(text: &str) {
    out!("\n== {text}");
}
