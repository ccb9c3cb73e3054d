//! The host: its namespace and veth pairs, one daemon's files, and the
//! secgroupd process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use secgroup_api::{AttachState, Client, Status};
use secgroup_testbed::{NetNs, PinDir, Scratch, Secgroupd, Veth, poll, uninstall, unique_with};

use super::rule_dir::interface;
use super::{Layout, PEER_PREFIX, READY_TIMEOUT, Settings, status};
use crate::throughput::topology::{PREFIX, namespace};

/// The host namespace with its veth pairs, and a temp dir; both removed
/// on drop.
pub(super) struct Host {
    ns: NetNs,
    dir: Scratch,
}

impl Host {
    pub(super) fn new(vms: usize) -> Result<Host> {
        let dir = Scratch::try_at(std::env::temp_dir().join(unique_with(PREFIX, "daemon")))?;
        let host = Host {
            ns: namespace("daemon")?,
            dir,
        };
        let peers: Vec<(String, String)> = (0..vms)
            .map(|vm| (interface(vm), format!("{PEER_PREFIX}{vm:03}")))
            .collect();
        let pairs: Vec<Veth<'_>> = peers
            .iter()
            .map(|(tap, peer)| Veth::new(&host.ns, tap, &host.ns, peer))
            .collect();
        Veth::try_create_all(&pairs)?;
        Ok(host)
    }

    /// Creates VM `vm`'s veth pair (one `ip link add`).
    pub(super) fn add_pair(&self, vm: usize) -> Result<()> {
        let peer = format!("{PEER_PREFIX}{vm:03}");
        Veth::new(&self.ns, &interface(vm), &self.ns, &peer).try_create()?;
        Ok(())
    }

    /// Deletes VM `vm`'s veth pair.
    pub(super) fn delete_pair(&self, vm: usize) -> Result<()> {
        self.ns.try_ip(&["link", "del", &interface(vm)])?;
        Ok(())
    }
}

/// One daemon's files: rules directory, socket, log, pin directory.
pub(super) struct Run {
    dir: PathBuf,
    pub(super) rules_dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    pin_dir: PathBuf,
}

impl Run {
    pub(super) fn new(host: &Host, layout: Layout) -> Result<Run> {
        Run::named(host, layout.variant())
    }

    pub(super) fn named(host: &Host, name: &str) -> Result<Run> {
        let dir = host.dir.join(name);
        let rules_dir = dir.join("rules");
        std::fs::create_dir_all(&rules_dir)
            .with_context(|| format!("creating {}", rules_dir.display()))?;
        Ok(Run {
            rules_dir,
            socket: dir.join("sock"),
            log: dir.join("secgroupd.log"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/sgbench-{}", std::process::id())),
            dir,
        })
    }
}

/// secgroupd in the host namespace. On drop: killed, then its hooks and
/// pins removed with `secgroupd --uninstall`, then the pin directory.
pub(super) struct Daemon<'h> {
    // Field order is drop order: the process goes first.
    process: Option<secgroup_testbed::Daemon>,
    host: &'h Host,
    binary: PathBuf,
    socket: PathBuf,
    pins: PinDir,
    pub(super) log: PathBuf,
}

impl<'h> Daemon<'h> {
    pub(super) fn start(settings: &Settings, host: &'h Host, run: &Run) -> Result<Daemon<'h>> {
        Daemon::start_with(settings, host, run, &[])
    }

    /// [`start`](Self::start) with more environment (`SECGROUP_...`
    /// settings).
    pub(super) fn start_with(
        settings: &Settings,
        host: &'h Host,
        run: &Run,
        env: &[(&str, &str)],
    ) -> Result<Daemon<'h>> {
        // The guard holds the pin directory before the daemon creates it.
        let mut daemon = Daemon {
            process: None,
            host,
            binary: settings.secgroupd.clone(),
            socket: run.socket.clone(),
            pins: PinDir::at(run.pin_dir.clone()),
            log: run.log.clone(),
        };
        daemon.process = Some(spawn(settings, host, run, env)?);
        Ok(daemon)
    }

    /// Kills the daemon (SIGKILL: its pins stay, as after a crash) and
    /// starts another on the same files and pins.
    pub(super) fn restart(&mut self, settings: &Settings, host: &Host, run: &Run) -> Result<()> {
        if let Some(process) = self.process.take() {
            process.kill();
        }
        self.process = Some(spawn(settings, host, run, &[])?);
        Ok(())
    }

    fn pid(&self) -> Result<i32> {
        Ok(self
            .process
            .as_ref()
            .context("secgroupd is not running")?
            .pid())
    }

    /// The daemon's resident set size (bytes), from /proc.
    pub(super) fn rss(&self) -> Result<f64> {
        super::rss_bytes(self.pid()?)
    }

    /// The kernel memory charged to the maps the daemon holds open (the
    /// `memlock` of each map fd's fdinfo, each map once).
    pub(super) fn map_memlock(&self) -> Result<f64> {
        let dir = format!("/proc/{}/fdinfo", self.pid()?);
        let mut seen = std::collections::HashSet::new();
        let mut total = 0.0;
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let Ok(text) = std::fs::read_to_string(entry?.path()) else {
                continue; // closed meanwhile
            };
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            if let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:"))
                && seen.insert(id)
            {
                total += memlock.parse::<f64>().unwrap_or(0.0);
            }
        }
        Ok(total)
    }

    pub(super) fn client(&self) -> Client {
        Client::new(&self.socket).with_timeout(Duration::from_secs(30))
    }

    /// Waits until all `vms` instances are attached (READY=1 comes after
    /// the first attach, but a link event may still be on its way).
    pub(super) fn wait_attached(&self, vms: usize) -> Result<()> {
        let client = self.client();
        let attached = |status: &Status| {
            status
                .instances
                .iter()
                .filter(|i| matches!(i.attach, AttachState::Attached { .. }))
                .count()
        };
        let mut last = status(&client)?;
        let done = poll(Duration::from_secs(60), || match status(&client) {
            Ok(now) => {
                let all = attached(&now) == vms;
                last = now;
                all.then_some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        });
        if let Some(result) = done {
            return result;
        }
        let failed: Vec<String> = last
            .instances
            .iter()
            .filter_map(|i| match &i.attach {
                AttachState::Attached { .. } => None,
                other => Some(format!("{}: {other:?}", i.id)),
            })
            .take(5)
            .collect();
        bail!(
            "{} of {vms} instances attached after 60 s: {}",
            attached(&last),
            failed.join("; ")
        )
    }
}

fn spawn(
    settings: &Settings,
    host: &Host,
    run: &Run,
    env: &[(&str, &str)],
) -> Result<secgroup_testbed::Daemon> {
    let mut daemon = Secgroupd::new(&settings.secgroupd, &run.dir);
    for (name, value) in env {
        daemon = daemon.env(name, value);
    }
    daemon
        .netns(&host.ns)
        .rules_dir(&run.rules_dir)
        .socket(&run.socket)
        .bpffs(&run.pin_dir)
        .log(&run.log)
        .env("SECGROUP_LOG", "info")
        .ready_timeout(READY_TIMEOUT)
        .try_start()
        .context("starting secgroupd")
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
        // Unpinning detaches every hook and frees the maps; dropping
        // `pins` removes whatever is left by hand.
        if !uninstall(&self.binary, &self.host.ns, &self.pins.path, &self.socket) {
            eprintln!(
                "secgroup-bench: `secgroupd --uninstall --bpffs {}` failed; removing the pins by hand",
                self.pins.path.display()
            );
        }
    }
}
