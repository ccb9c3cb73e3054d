//! A real etcd (`/usr/bin/etcd`, Debian's `etcd-server`) for the tests
//! and benchmarks that need the fleet's store: one member, a temporary
//! data directory, client and peer ports that were free when it started,
//! listening on one address only (127.0.0.1 by default, or an address
//! inside a test's namespace, where the hosts' daemons reach it).
//!
//! [`Etcd::stop`] and [`Etcd::start`] take it down and bring it back on
//! the same data directory and ports, as an outage would; it is stopped
//! and its directory removed on drop. Keys are written and read with
//! `etcdctl` (API v3), so the test bed needs no gRPC client of its own.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::cmd::{describe, die_with_parent, try_output, try_run};
use crate::error::{Error, or_panic};
use crate::files::Scratch;
use crate::netns::{NetNs, command_in, run_in};
use crate::wait::poll;

/// How long etcd may take to answer its health check after a start.
pub const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a start is retried on fresh ports when etcd exits
/// right away (another process took a port between the probe and the
/// bind).
const PORT_ATTEMPTS: usize = 3;

/// How to start etcd: where it listens and any extra flags.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    netns: Option<(String, PathBuf)>,
    ip: String,
    args: Vec<String>,
}

impl EtcdOptions {
    /// Listens on `ip` inside `ns` (network namespace only, as the
    /// daemons are entered) instead of 127.0.0.1 of this one.
    pub fn netns(mut self, ns: &NetNs, ip: &str) -> Self {
        self.netns = Some((ns.name.clone(), ns.path()));
        self.ip = ip.to_owned();
        self
    }

    /// One more flag (`--max-txn-ops=...`), after those of the fixture.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    pub fn start(self) -> Etcd {
        or_panic(self.try_start())
    }

    pub fn try_start(self) -> Result<Etcd, Error> {
        let dir = Scratch::try_at(std::env::temp_dir().join(crate::names::unique("etcd")))?;
        let mut etcd = Etcd {
            options: self,
            client_port: 0,
            peer_port: 0,
            child: Mutex::new(None),
            dir,
        };
        let mut attempts = 0;
        loop {
            (etcd.client_port, etcd.peer_port) = etcd.options.free_ports()?;
            match etcd.try_launch() {
                Ok(()) => return Ok(etcd),
                Err(e) if attempts + 1 >= PORT_ATTEMPTS => return Err(e),
                Err(_) => {
                    attempts += 1;
                    etcd.reap();
                    let _ = std::fs::remove_dir_all(etcd.dir.join("data"));
                }
            }
        }
    }

    /// Two ports nobody listens on now at `ip` in the target namespace:
    /// both bound at once (so they differ), then released for etcd.
    fn free_ports(&self) -> Result<(u16, u16), Error> {
        let ip = self.ip.clone();
        let bind = move || -> std::io::Result<(u16, u16)> {
            let a = TcpListener::bind((ip.as_str(), 0))?;
            let b = TcpListener::bind((ip.as_str(), 0))?;
            Ok((a.local_addr()?.port(), b.local_addr()?.port()))
        };
        let io = |source| Error::Io {
            what: "finding free ports on",
            path: PathBuf::from(&self.ip),
            source,
        };
        match &self.netns {
            Some((name, path)) => run_in(name, path, bind)?.map_err(io),
            None => bind().map_err(io),
        }
    }
}

/// A running (or stopped) etcd member.
#[derive(Debug)]
pub struct Etcd {
    options: EtcdOptions,
    client_port: u16,
    peer_port: u16,
    /// Behind a lock so that a test can take etcd down and back through
    /// a shared reference while its VMs borrow the fleet.
    child: Mutex<Option<Child>>,
    // Last: removed after the process is gone.
    dir: Scratch,
}

impl Etcd {
    /// On 127.0.0.1 of the caller's namespace, started and healthy.
    pub fn new() -> Etcd {
        Etcd::options().start()
    }

    /// Options to change before [`EtcdOptions::start`].
    pub fn options() -> EtcdOptions {
        EtcdOptions {
            netns: None,
            ip: "127.0.0.1".into(),
            args: Vec::new(),
        }
    }

    /// `http://IP:PORT`, what `--etcd-endpoints` takes.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.options.ip, self.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child().is_some()
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Its log (stderr), for failures.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL after 5 s) and waits for the exit;
    /// the data stay for [`Etcd::start`].
    pub fn stop(&self) {
        let mut guard = self.child();
        if let Some(child) = guard.as_mut() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let exited = poll(Duration::from_secs(5), || child.try_wait().ok().flatten());
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            *guard = None;
        }
    }

    /// Starts it again on the same data directory and ports, and waits
    /// until it is healthy.
    pub fn start(&self) {
        assert!(!self.is_running(), "etcd is running already");
        or_panic(self.try_launch());
    }

    fn try_launch(&self) -> Result<(), Error> {
        let data = self.dir.join("data");
        let peer = format!("http://{}:{}", self.options.ip, self.peer_port);
        let client = self.endpoint();
        let log_path = self.log_path();
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { what, path, source }
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening", &log_path))?;
        let log_err = log.try_clone().map_err(io("duplicating", &log_path))?;
        let mut command = self.command("etcd")?;
        command
            .arg("--name=sgtb")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=sgtb={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            // A publish is one transaction over a whole rules directory:
            // etcd's defaults (128 operations, 1.5 MiB) would cap it.
            .arg("--max-txn-ops=100000")
            .arg("--max-request-bytes=33554432")
            .args(&self.options.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|source| Error::Spawn {
            command: describe(&command),
            source,
        })?;
        // A dead run's etcd is killed by the sweep: its command line
        // names this directory.
        let _ = std::fs::write(self.dir.join("etcd.pid"), child.id().to_string());
        *self.child() = Some(child);
        let healthy = poll(ETCD_READY_TIMEOUT, || {
            if let Some(child) = self.child().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Some(Err(status));
            }
            self.healthy().then_some(Ok(()))
        });
        match healthy {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => {
                *self.child() = None;
                Err(Error::Failed {
                    command: "etcd".into(),
                    status,
                    stderr: self.log_text(),
                })
            }
            None => Err(Error::Timeout {
                what: format!(
                    "etcd at {} to be healthy; log:\n{}",
                    client,
                    self.log_text()
                ),
                after: ETCD_READY_TIMEOUT,
            }),
        }
    }

    /// Whether `etcdctl endpoint health` says so.
    pub fn healthy(&self) -> bool {
        self.etcdctl(&["--command-timeout=1s", "endpoint", "health"], None)
            .is_ok()
    }

    /// `etcdctl --endpoints ENDPOINT args...` (API v3) in etcd's
    /// namespace, with `input` on its stdin; its stdout, or an error
    /// with its stderr.
    pub fn etcdctl(&self, args: &[&str], input: Option<&str>) -> Result<String, Error> {
        let mut command = self.command("etcdctl")?;
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--dial-timeout=1s")
            .args(args);
        let output = try_run(&mut command, input)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Puts `value` at `key`; the revision it made.
    pub fn put(&self, key: &str, value: &str) -> i64 {
        or_panic(self.etcdctl(&["put", key], Some(value)));
        self.revision()
    }

    /// Deletes `key`; whether it existed.
    pub fn delete(&self, key: &str) -> bool {
        let deleted = or_panic(self.etcdctl(&["del", key], None));
        deleted.trim() != "0"
    }

    /// Deletes every key under `prefix`; how many there were.
    pub fn delete_prefix(&self, prefix: &str) -> u64 {
        let deleted = or_panic(self.etcdctl(&["del", "--prefix", prefix], None));
        deleted.trim().parse().unwrap_or(0)
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let text = or_panic(self.etcdctl(&["get", "--print-value-only", key], None));
        let value = text.strip_suffix('\n').unwrap_or(&text);
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// The keys under `prefix`, sorted (as etcd returns them).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let text = or_panic(self.etcdctl(&["get", "--prefix", "--keys-only", prefix], None));
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        let text = or_panic(self.etcdctl(&["endpoint", "status", "-w", "json"], None));
        revision_of(&text)
            .unwrap_or_else(|| panic!("no revision in etcdctl endpoint status: {text}"))
    }

    /// A command for `program` in etcd's namespace.
    fn command(&self, program: &str) -> Result<Command, Error> {
        match &self.options.netns {
            Some((name, path)) => command_in(name, path, program),
            None => Ok(Command::new(program)),
        }
    }

    fn reap(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Default for Etcd {
    fn default() -> Etcd {
        Etcd::new()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::thread::panicking() && self.is_running() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("---- etcd log (last lines, {}) ----", self.endpoint());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        self.stop();
    }
}

/// `header.revision` of `etcdctl endpoint status -w json`'s first entry.
fn revision_of(json: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value
        .get(0)?
        .get("Status")?
        .get("header")?
        .get("revision")?
        .as_i64()
}

/// Whether `etcd` and `etcdctl` can be run here (Debian's `etcd-server`
/// and `etcd-client`).
pub fn etcd_installed() -> bool {
    [("etcd", "--version"), ("etcdctl", "version")]
        .iter()
        .all(|(program, version)| {
            try_output(Command::new(program).arg(version), None).is_ok_and(|o| o.status.success())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_is_read_from_endpoint_status() {
        let json = r#"[{"Endpoint":"http://127.0.0.1:2379","Status":{"header":{"cluster_id":1,"member_id":2,"revision":17,"raft_term":2},"version":"3.4.23"}}]"#;
        assert_eq!(revision_of(json), Some(17));
        assert_eq!(revision_of("[]"), None);
    }
}
