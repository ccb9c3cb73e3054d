//! Network namespaces, owned by a guard that deletes them (and every
//! interface in them) on drop, and running things inside them.
//!
//! Commands enter a namespace with `setns(CLONE_NEWNET)` only, as
//! `nsenter --net` does, never through `ip netns exec`: that one also
//! gives the command a private /sys without the host's bpffs, so a
//! daemon started that way would pin into a bpffs that dies with it.
//! Closures enter on a dedicated short-lived thread, since `setns`
//! changes the calling thread only.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cmd::{output, quietly, try_run};
use crate::error::{Error, or_panic};
use crate::names::unique;

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// A namespace with a fresh name from `tag` ([`unique`]), loopback up.
    pub fn new(tag: &str) -> NetNs {
        or_panic(NetNs::try_create(&unique(tag)))
    }

    /// The namespace `name`, created with loopback up; an error if it
    /// exists already.
    pub fn try_create(name: &str) -> Result<NetNs, Error> {
        try_run(Command::new("ip").args(["netns", "add", name]), None)?;
        // The guard exists as soon as the namespace does.
        let ns = NetNs {
            name: name.to_owned(),
        };
        ns.try_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Deletes namespace `name` if it exists (a leftover).
    pub fn remove(name: &str) {
        quietly(Command::new("ip").args(["netns", "del", name]));
    }

    /// Where `ip netns add` put it.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NAME args...`, panicking with its stderr if it fails.
    pub fn ip(&self, args: &[&str]) {
        or_panic(self.try_ip(args));
    }

    pub fn try_ip(&self, args: &[&str]) -> Result<Output, Error> {
        try_run(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            None,
        )
    }

    /// `ip -n NAME -batch -`: one `ip` for many commands, one a line.
    pub fn try_ip_batch(&self, lines: &str) -> Result<Output, Error> {
        try_run(
            Command::new("ip").args(["-n", &self.name, "-batch", "-"]),
            Some(lines),
        )
    }

    /// Writes a sysctl of this namespace (e.g. `net/ipv6/conf/all/...`).
    pub fn sysctl(&self, key: &str, value: &str) {
        or_panic(self.try_sysctl(key, value));
    }

    pub fn try_sysctl(&self, key: &str, value: &str) -> Result<(), Error> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        self.try_run(|| std::fs::write(&path, value))?
            .map_err(|source| Error::Io {
                what: "writing",
                path,
                source,
            })
    }

    /// Runs `work` on a thread inside the namespace; a panic in `work`
    /// goes on in the caller. Sockets made there stay in the namespace
    /// when handed back to other threads.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        or_panic(self.try_run(work))
    }

    pub fn try_run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> Result<T, Error> {
        run_in(&self.name, &self.path(), work)
    }

    /// The ifindex of `ifname` in this namespace, if it exists.
    pub fn ifindex(&self, ifname: &str) -> Option<u32> {
        let name = std::ffi::CString::new(ifname).ok()?;
        // SAFETY: name is NUL-terminated.
        let index = self.run(|| unsafe { libc::if_nametoindex(name.as_ptr()) });
        (index != 0).then_some(index)
    }

    /// A command that will run inside the namespace (network only).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        or_panic(self.try_command(program))
    }

    pub fn try_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command, Error> {
        command_in(&self.name, &self.path(), program)
    }

    /// Runs `args` in the namespace and returns its output, whatever the
    /// exit status.
    pub fn output(&self, args: &[&str]) -> Output {
        output(self.command(args[0]).args(&args[1..]))
    }

    /// Runs `args` in the namespace: whether it succeeded.
    pub fn succeeds(&self, args: &[&str]) -> bool {
        self.output(args).status.success()
    }

    /// Runs `args` in the namespace with `input` on its stdin; an error
    /// with its stderr unless it succeeds.
    pub fn try_exec(&self, args: &[&str], input: Option<&str>) -> Result<Output, Error> {
        try_run(self.try_command(args[0])?.args(&args[1..]), input)
    }
}

fn open(name: &str, path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::Netns {
        name: name.to_owned(),
        source,
    })
}

/// Runs `work` on a thread inside namespace `name` at `path`: for
/// holders of a namespace's name that do not own it.
pub(crate) fn run_in<T: Send>(
    name: &str,
    path: &Path,
    work: impl FnOnce() -> T + Send,
) -> Result<T, Error> {
    let netns = open(name, path)?;
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            // SAFETY: a valid fd; CLONE_NEWNET changes this thread only.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(Error::Netns {
                    name: name.to_owned(),
                    source: std::io::Error::last_os_error(),
                });
            }
            Ok(work())
        });
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A command that will run `program` inside namespace `name` at `path`
/// (network only): for builders that outlive the [`NetNs`] borrow.
pub(crate) fn command_in(
    name: &str,
    path: &Path,
    program: impl AsRef<std::ffi::OsStr>,
) -> Result<Command, Error> {
    let netns = open(name, path)?;
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
    Ok(command)
}

impl Drop for NetNs {
    fn drop(&mut self) {
        NetNs::remove(&self.name);
    }
}
