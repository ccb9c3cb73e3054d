//! Network namespaces the test bed owns, and running things inside them.
//!
//! Commands enter a namespace with `setns(CLONE_NEWNET)` only, as
//! `nsenter --net` does, never through `ip netns exec`: that one also
//! gives the command a private /sys without the host's bpffs, so a
//! daemon started that way would pin into a bpffs that dies with it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::names::unique;

/// Runs `args` (a program and its arguments) and panics with its stderr
/// if it fails.
pub fn sh(args: &[&str]) {
    let out = run(Command::new(args[0]).args(&args[1..]), args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn run(command: &mut Command, what: &[&str]) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {what:?}: {e}"))
}

/// A network namespace, deleted on drop (with every interface in it).
#[derive(Debug)]
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

    /// `ip -n NAME args...`.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    /// Writes a sysctl of this namespace (e.g. `net/ipv6/conf/all/...`).
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = PathBuf::from("/proc/sys").join(key);
        self.run(|| std::fs::write(&path, value))
            .unwrap_or_else(|e| panic!("sysctl {key}={value} in {}: {e}", self.name));
    }

    /// Runs `work` on a thread inside the namespace. Sockets made there
    /// stay in the namespace when handed back to other threads.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        secgroup_dataplane::netns::run_in(&self.path(), work)
            .unwrap_or_else(|e| panic!("entering namespace {}: {e}", self.name))
    }

    /// A command that will run inside the namespace (network only).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let netns = File::open(self.path())
            .unwrap_or_else(|e| panic!("opening namespace {}: {e}", self.name));
        let mut command = Command::new(program);
        // SAFETY: only async-signal-safe calls between fork and exec; the
        // closure owns the file, so the fd stays open until exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// Runs `args` in the namespace and returns its output, whatever the
    /// exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        run(self.command(args[0]).args(&args[1..]), args)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
