//! The real secgroupd as a child process: started with the flags and
//! environment a test gives, inside a network namespace, and waited for
//! until it reports READY=1 over `NOTIFY_SOCKET` (as systemd would get
//! it: the rules are applied and the interfaces that exist attached).
//! Stopped explicitly ([`Daemon::terminate`], [`Daemon::kill`]) or killed
//! on drop; its log is printed when a test fails.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{die_with_parent, quietly};
use crate::error::{Error, or_panic};
use crate::names::unique;
use crate::netns::{NetNs, command_in};

/// How long a daemon may take to report READY=1, unless told otherwise.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Daemon::terminate`] waits for a clean exit.
pub const TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start secgroupd: a builder over its command line.
#[derive(Debug, Clone)]
pub struct Secgroupd {
    binary: PathBuf,
    dir: PathBuf,
    netns: Option<(String, PathBuf)>,
    rules_dir: Option<PathBuf>,
    socket: Option<PathBuf>,
    bpffs: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log: Option<PathBuf>,
    ready_timeout: Duration,
}

impl Secgroupd {
    /// `binary`, with its notify socket and log in `dir`, logging
    /// `info,secgroupd=debug` without colours.
    pub fn new(binary: impl Into<PathBuf>, dir: &Path) -> Secgroupd {
        Secgroupd {
            binary: binary.into(),
            dir: dir.to_owned(),
            netns: None,
            rules_dir: None,
            socket: None,
            bpffs: None,
            args: Vec::new(),
            env: vec![
                ("SECGROUP_LOG".into(), "info,secgroupd=debug".into()),
                ("NO_COLOR".into(), "1".into()),
            ],
            log: None,
            ready_timeout: READY_TIMEOUT,
        }
    }

    /// Runs it in `ns` (network namespace only, see [`crate::netns`]).
    pub fn netns(mut self, ns: &NetNs) -> Self {
        self.netns = Some((ns.name.clone(), ns.path()));
        self
    }

    /// `--rules-dir DIR` (replacing an earlier one; so do `socket` and
    /// `bpffs`). These three come first on the command line.
    pub fn rules_dir(mut self, dir: &Path) -> Self {
        self.rules_dir = Some(dir.to_owned());
        self
    }

    /// `--socket PATH`, which [`Daemon::socket`] then returns.
    pub fn socket(mut self, path: &Path) -> Self {
        self.socket = Some(path.to_owned());
        self
    }

    /// `--bpffs DIR`: the pin directory.
    pub fn bpffs(mut self, dir: &Path) -> Self {
        self.bpffs = Some(dir.to_owned());
        self
    }

    /// One more command-line argument, after those given so far.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable (overriding an earlier one).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where stdout and stderr go (default: a fresh file in the dir).
    pub fn log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_owned());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts it and waits for READY=1, panicking with the log if it
    /// exits or stays silent.
    pub fn start(self) -> Daemon {
        or_panic(self.try_start())
    }

    pub fn try_start(self) -> Result<Daemon, Error> {
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { what, path, source }
        };
        let notify_path = self.dir.join(unique("notify"));
        let notify = UnixDatagram::bind(&notify_path).map_err(io("binding", &notify_path))?;
        let log = self
            .log
            .clone()
            .unwrap_or_else(|| self.dir.join(format!("{}.log", unique("secgroupd"))));
        let log_file = File::create(&log).map_err(io("creating", &log))?;
        let log_err = log_file.try_clone().map_err(io("duplicating", &log))?;
        let mut command = match &self.netns {
            Some((name, path)) => command_in(name, path, &self.binary)?,
            None => Command::new(&self.binary),
        };
        let flags = [
            ("--rules-dir", &self.rules_dir),
            ("--socket", &self.socket),
            ("--bpffs", &self.bpffs),
        ];
        for (flag, value) in flags {
            if let Some(value) = value {
                command.arg(flag).arg(value);
            }
        }
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: self.binary.display().to_string(),
            source,
        })?;
        let mut daemon = Daemon {
            pid: child.id() as i32,
            child: Some(child),
            socket: self.socket.clone(),
            log,
            ready: String::new(),
        };
        let ready = daemon.wait_ready(&notify, self.ready_timeout);
        let _ = std::fs::remove_file(&notify_path);
        daemon.ready = ready?;
        Ok(daemon)
    }
}

/// A running secgroupd; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    pid: i32,
    socket: Option<PathBuf>,
    pub log: PathBuf,
    ready: String,
}

impl Daemon {
    /// The first notification that said READY=1, one field a line.
    fn wait_ready(&mut self, notify: &UnixDatagram, timeout: Duration) -> Result<String, Error> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Error::ExitedEarly {
                    status,
                    path: self.log.clone(),
                    log: self.log_text(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    what: format!("READY=1 from secgroupd; log:\n{}", self.log_text()),
                    after: timeout,
                });
            }
            let _ = notify.set_read_timeout(Some(left.min(Duration::from_millis(100))));
            if let Ok(n) = notify.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message.lines().any(|l| l == "READY=1") {
                    return Ok(message);
                }
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The API socket given with [`Secgroupd::socket`].
    pub fn socket(&self) -> &Path {
        self.socket
            .as_deref()
            .unwrap_or_else(|| panic!("secgroupd was started without --socket"))
    }

    /// The READY=1 notification, as sent (`READY=1\nSTATUS=...`).
    pub fn ready_message(&self) -> &str {
        &self.ready
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (SIGHUP, ...), panicking if it cannot be sent.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({}, {signal}): {}",
            self.pid,
            std::io::Error::last_os_error()
        );
    }

    /// SIGKILL, as a crash would, and waits for the process to be gone.
    pub fn kill(mut self) {
        self.reap();
    }

    /// SIGTERM and waits for the exit, panicking with the log if it
    /// takes longer than [`TERMINATE_TIMEOUT`].
    pub fn terminate(self) -> ExitStatus {
        or_panic(self.try_terminate(TERMINATE_TIMEOUT))
    }

    /// SIGTERM and waits up to `timeout` for the exit; after that,
    /// SIGKILL and an error.
    pub fn try_terminate(mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        let Some(mut child) = self.child.take() else {
            unreachable!("a Daemon owns its child until dropped");
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let exited = crate::wait::poll(timeout, || child.try_wait().ok().flatten());
        exited.ok_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            Error::Timeout {
                what: format!("secgroupd to exit after SIGTERM; log:\n{}", self.log_text()),
                after: timeout,
            }
        })
    }

    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.reap();
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

/// `BINARY --uninstall --bpffs DIR --socket SOCKET` in `ns`: detaches the
/// hooks pinned in `pin_dir` and frees its maps, as an operator would;
/// whether it succeeded.
pub fn uninstall(binary: &Path, ns: &NetNs, pin_dir: &Path, socket: &Path) -> bool {
    let Ok(mut command) = ns.try_command(binary) else {
        return false;
    };
    quietly(
        command
            .arg("--uninstall")
            .arg("--bpffs")
            .arg(pin_dir)
            .arg("--socket")
            .arg(socket)
            .env("NO_COLOR", "1"),
    )
}
