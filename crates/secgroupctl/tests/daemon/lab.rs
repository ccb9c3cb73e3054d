//! A pretend hypervisor for the CLI: a host network namespace running the
//! real secgroupd, a veth pair whose host end is the VM's "tap" and whose
//! other end is the guest's eth0 in a guest namespace, a rules directory,
//! and the built `secgroupctl` to ask questions with. Everything is
//! removed on drop, panics included: the daemon, its pins, both
//! namespaces, the files.
//!
//! The daemon enters only the host's network namespace (`nsenter --net`),
//! not a private mount namespace as `ip netns exec` would make: there,
//! /sys/fs/bpf would be a fresh mount that hides the pins from the
//! cleanup.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use secgroup_api::{AttachState, Status};

pub const HOST_IP: &str = "198.51.100.1";
pub const GUEST_IP: &str = "198.51.100.2";
pub const TAP: &str = "tap-vm";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `sgt-ctl-PID-N`: unique per test and run, no dots (bpffs refuses them).
fn unique() -> String {
    format!(
        "sgt-ctl-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the daemon tests can run here: as root, with secgroupd built
/// next to secgroupctl. Otherwise they skip loudly, except under
/// `CI=true`, where a skip would hide a broken CLI.
pub fn enabled(test: &str) -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let skip = |why: &str| {
        if ci {
            panic!("{test}: CI=true but {why}: the secgroupctl daemon tests must run in CI");
        }
        // Straight to the file descriptor: the test harness captures
        // eprintln! of passing tests, which would make the skip silent.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("\n*** SKIPPED {test}: {why} ***\n\n").as_bytes(),
        );
        false
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not running as root (network namespaces, BPF)");
    }
    if !secgroupd().is_file() {
        return skip(&format!(
            "{} is missing (cargo test --workspace builds it; or cargo build -p secgroupd)",
            secgroupd().display()
        ));
    }
    true
}

/// The daemon binary: `cargo test` puts every binary of the workspace in
/// one directory, ours included.
pub fn secgroupd() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_secgroupctl")).with_file_name("secgroupd")
}

fn sh(args: &[&str]) {
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

/// Polls `check` until it yields or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What one secgroupctl run gave.
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(args: &[&str], output: Output) -> Run {
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code; returns self for more checks.
    pub fn exits(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "secgroupctl {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Human output must be readable at 100 columns.
    pub fn fits(self) -> Run {
        for line in self.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "secgroupctl {:?}: line wider than 100 columns:\n{line}",
                self.args
            );
        }
        self
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "secgroupctl {:?}: stdout is not the JSON expected ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    pub fn has(self, fragment: &str) -> Run {
        assert!(
            self.stdout.contains(fragment),
            "secgroupctl {:?}: stdout lacks {fragment:?}:\n{}",
            self.args,
            self.stdout
        );
        self
    }
}

/// Runs the built secgroupctl with `args` and `SECGROUP_SOCKET` unset.
pub fn secgroupctl(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_secgroupctl"))
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR")
        .output()
        .unwrap_or_else(|e| panic!("running secgroupctl: {e}"));
    Run::from(args, output)
}

pub struct Lab {
    pub dir: PathBuf,
    pub rules: PathBuf,
    pub socket: PathBuf,
    pin_dir: PathBuf,
    host: String,
    guest: String,
    daemon: Option<Child>,
    log: PathBuf,
}

impl Lab {
    /// The namespaces, the link, the rules (`rules.json` holding `rules`)
    /// and a running daemon with the instance attached.
    pub fn start(rules: &str) -> Lab {
        let name = unique();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("secgroupctl")
            .join(&name);
        let mut lab = Lab {
            rules: dir.join("rules"),
            socket: dir.join("sock"),
            log: dir.join("secgroupd.log"),
            pin_dir: PathBuf::from("/sys/fs/bpf").join(&name),
            host: format!("{name}-h"),
            guest: format!("{name}-g"),
            daemon: None,
            dir,
        };
        std::fs::create_dir_all(&lab.rules)
            .unwrap_or_else(|e| panic!("creating {}: {e}", lab.rules.display()));
        lab.write_rules("rules.json", rules);
        for ns in [&lab.host, &lab.guest] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let (host, guest) = (lab.host.clone(), lab.guest.clone());
        sh(&[
            "ip", "-n", &host, "link", "add", TAP, "type", "veth", "peer", "name", "eth0", "netns",
            &guest,
        ]);
        sh(&[
            "ip",
            "-n",
            &host,
            "addr",
            "add",
            &format!("{HOST_IP}/24"),
            "dev",
            TAP,
        ]);
        sh(&["ip", "-n", &host, "link", "set", TAP, "up"]);
        sh(&[
            "ip",
            "-n",
            &guest,
            "addr",
            "add",
            &format!("{GUEST_IP}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &guest, "link", "set", "eth0", "up"]);
        lab.start_daemon();
        lab
    }

    fn start_daemon(&mut self) {
        let log = File::create(&self.log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", self.log.display()));
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.host))
            .arg(secgroupd())
            .arg("--rules-dir")
            .arg(&self.rules)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--bpffs")
            .arg(&self.pin_dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. The daemon dies with the
        // test thread even if the test process is killed outright.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.daemon = Some(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("starting secgroupd: {e}")),
        );
        wait_for(
            "secgroupd to attach ins-vm",
            Duration::from_secs(30),
            || {
                if let Some(Ok(Some(status))) = self.daemon.as_mut().map(Child::try_wait) {
                    panic!("secgroupd exited ({status}):\n{}", self.log_text());
                }
                let status: Status = secgroup_api::Client::new(&self.socket)
                    .get(secgroup_api::paths::STATUS)
                    .ok()?;
                status
                    .instances
                    .iter()
                    .any(|i| matches!(i.attach, AttachState::Attached { .. }))
                    .then_some(())
            },
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn write_rules(&self, name: &str, json: &str) {
        std::fs::write(self.rules.join(name), json)
            .unwrap_or_else(|e| panic!("writing {name}: {e}"));
    }

    /// secgroupctl talking to this lab's daemon.
    pub fn ctl(&self, args: &[&str]) -> Run {
        let socket = self.socket.display().to_string();
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        secgroupctl(&full)
    }

    pub fn rules_dir(&self) -> String {
        self.rules.display().to_string()
    }

    /// One ping from the guest to the host (the VM's egress).
    pub fn guest_pings_host(&self) -> bool {
        self.ping(&self.guest, HOST_IP)
    }

    /// One ping from the host to the guest (the VM's ingress).
    pub fn host_pings_guest(&self) -> bool {
        self.ping(&self.host, GUEST_IP)
    }

    fn ping(&self, ns: &str, target: &str) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-q", target,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running ping: {e}"))
            .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- secgroupd log ({}) ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        // Detaches what the daemon attached and removes its pins.
        let _ = Command::new(secgroupd())
            .arg("--uninstall")
            .arg("--bpffs")
            .arg(&self.pin_dir)
            .arg("--socket")
            .arg(&self.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        for ns in [&self.host, &self.guest] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
