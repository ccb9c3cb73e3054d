//! The real secgroupd binary, running inside the test bed's host
//! namespace; killed on drop, its log printed when the test failed.

use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::bed::TestBed;
use crate::names::unique;

/// The secgroupd binary: `$SECGROUPD` if set, else the one Cargo builds
/// next to this test binary.
pub fn secgroupd_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("secgroupd", "SECGROUPD"))
        .clone()
}

/// The secgroupctl binary: `$SECGROUPCTL` if set, else Cargo's.
pub fn secgroupctl_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("secgroupctl", "SECGROUPCTL"))
        .clone()
}

/// `$override_var`, or the workspace binary `package` (re)built once per
/// test process next to this test binary, so `cargo test -p
/// secgroup-e2e` never runs a stale daemon or CLI.
fn workspace_binary(package: &str, override_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(override_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("finding the test binary: {e}"));
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("{} is not in target/<profile>/deps", exe.display()));
    let binary = profile_dir.join(package);
    // `cargo test --workspace` has just built it, with the features the
    // whole workspace unifies; a `cargo build -p` would resolve them
    // differently and rebuild half the workspace for nothing.
    if is_newer_than_sources(&binary) {
        return binary;
    }
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    build.args(["build", "--quiet", "-p", package, "--bin", package]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running cargo build -p {package}: {e}"));
    assert!(status.success(), "cargo build -p {package} failed");
    binary
}

/// Whether `binary` was written after every source it could be built
/// from (the workspace manifests, the crates' sources, the eBPF C).
fn is_newer_than_sources(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut pending = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("crates"),
        root.join("ebpf"),
    ];
    while let Some(path) = pending.pop() {
        let Ok(meta) = path.metadata() else {
            continue;
        };
        if meta.is_dir() {
            // Nested `target/` dirs and tests are no inputs of a binary.
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "tests")
            {
                continue;
            }
            let entries = std::fs::read_dir(&path).into_iter().flatten().flatten();
            pending.extend(entries.map(|e| e.path()));
        } else if meta.modified().is_ok_and(|m| m > built) {
            return false;
        }
    }
    true
}

/// secgroupd in the bed's host namespace, on the bed's rules dir, socket
/// and pin dir.
pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts secgroupd and waits for READY=1 (sd_notify on a socket of
    /// ours, as systemd would get it): the rules are applied and the
    /// interfaces that exist are attached.
    pub fn start(bed: &TestBed, extra: &[&str]) -> Daemon {
        let binary = secgroupd_binary();
        let notify_path = bed.dir.join(unique("notify"));
        let notify = UnixDatagram::bind(&notify_path)
            .unwrap_or_else(|e| panic!("binding the notify socket: {e}"));
        let log = bed.dir.join(format!("{}.log", unique("secgroupd")));
        let log_file =
            File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("duplicating the log fd: {e}"));
        let mut command = bed.host.command(&binary);
        command
            .arg("--rules-dir")
            .arg(&bed.rules)
            .arg("--socket")
            .arg(bed.socket())
            .arg("--bpffs")
            .arg(&bed.pin_dir)
            .args(extra)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("SECGROUP_LOG", "info,secgroupd=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                // Die with the test thread that started it, whatever
                // happens to the test.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut daemon = Daemon {
            child: Some(child),
            socket: bed.socket(),
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
            assert!(
                !left.is_zero(),
                "secgroupd sent no READY=1 within 30 s:\n{}",
                self.log_text()
            );
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would, and wait for the process to be gone.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
