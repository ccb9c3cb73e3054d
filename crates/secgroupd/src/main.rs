//! secgroupd: enforces the security groups of a rules directory on the VM
//! interfaces of this host, and answers questions on a local socket.
//!
//! Start-up order matters: the socket first (refuse to run twice), then
//! the data plane (adopting what a previous daemon pinned), then the link
//! and file watchers (so that nothing that happens during the first
//! reload is missed), then the first reload and attach, and only then
//! READY=1.

mod auth;
mod cli;
mod daemon;
mod duration;
mod event;
mod iface;
mod links;
mod logging;
mod routes;
mod rules;
mod sdnotify;
mod server;
mod socket;
mod trace;
mod uninstall;
mod views;
mod watch;

use std::path::Path;

use anyhow::Context;
use clap::Parser;
use secgroup_dataplane::{Dataplane, LoadOptions};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::cli::Args;
use crate::daemon::{Daemon, Settings, error_chain};
use crate::event::{Event, Signal};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    logging::init(args.log_format);
    let result = if args.uninstall {
        uninstall::run(&args.bpffs, &args.socket)
    } else {
        run(args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let admin_gid = auth::admin_gid();
    if admin_gid.is_none() {
        warn!(
            group = auth::ADMIN_GROUP,
            "group does not exist: only root can use the API socket"
        );
    }
    let listener = socket::bind(&args.socket, admin_gid)?;
    let result = serve_on(args.settings(), listener, admin_gid, &args).await;
    socket::remove(&args.socket);
    result
}

async fn serve_on(
    settings: Settings,
    listener: tokio::net::UnixListener,
    admin_gid: Option<u32>,
    args: &Args,
) -> anyhow::Result<()> {
    warn_if_pins_would_die(&args.bpffs);
    let (dp, adopted) = Dataplane::load(&LoadOptions {
        pin_dir: Some(args.bpffs.clone()),
        timeouts: args.timeouts.resolve(),
    })
    .map_err(|e| anyhow::anyhow!("loading the data plane: {}", error_chain(&e)))?;
    if adopted.interfaces > 0 || adopted.tables > 0 {
        info!(
            interfaces = adopted.interfaces,
            tables = adopted.tables,
            conntrack_entries = adopted.conntrack_entries,
            pin_dir = %args.bpffs.display(),
            "adopted the maps a previous secgroupd pinned"
        );
    }

    let (events, rx) = mpsc::channel(256);
    links::spawn(events.clone()).context("subscribing to link notifications")?;
    watch::spawn(settings.rules_dir.clone(), events.clone());
    spawn_signals(events.clone())?;
    tokio::spawn(server::serve(listener, events.clone(), admin_gid));

    info!(
        rules_dir = %settings.rules_dir.display(),
        socket = %args.socket.display(),
        pin_dir = %settings.pin_dir.display(),
        keep_established = settings.keep_established,
        "secgroupd {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let mut daemon = Daemon::new(dp, settings, adopted.interfaces);
    daemon.start();
    let ready = format!("READY=1\nSTATUS={}", daemon.status_line());
    if let Err(e) = sdnotify::notify(&ready) {
        warn!(error = %e, "telling systemd we are ready failed");
    }
    daemon.run(rx).await;
    let _ = sdnotify::notify("STOPPING=1");
    Ok(())
}

impl Args {
    fn settings(&self) -> Settings {
        Settings {
            rules_dir: self.rules_dir.clone(),
            pin_dir: self.bpffs.clone(),
            keep_established: self.keep_established,
        }
    }
}

fn spawn_signals(events: mpsc::Sender<Event>) -> anyhow::Result<()> {
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = hup.recv() => Signal::Hup,
                _ = term.recv() => Signal::Term,
                _ = int.recv() => Signal::Int,
            };
            if events.send(Event::Signal(signal)).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Pins outlive the daemon only if the bpffs they are on does. When
/// /sys/fs/bpf is not mounted, the data plane mounts it; in a private
/// mount namespace (`ip netns exec`, some container setups) that mount,
/// and every pin on it, dies with the process: the hooks would detach the
/// moment the daemon stops. Say so loudly.
fn warn_if_pins_would_die(pin_dir: &Path) {
    let root = Path::new("/sys/fs/bpf");
    if !pin_dir.starts_with(root) || crate::uninstall::is_bpffs(root) {
        return;
    }
    let own = std::fs::read_link("/proc/self/ns/mnt").ok();
    let init = std::fs::read_link("/proc/1/ns/mnt").ok();
    if own.is_some() && own != init {
        warn!(
            "/sys/fs/bpf is not mounted in this mount namespace, which is not the host's: the bpffs mounted \
             now dies with this process, and with it every pinned hook (it would not survive a restart). \
             Mount bpffs on the host, or run secgroupd in the host's mount namespace (nsenter --net, not \
             `ip netns exec`)"
        );
    } else {
        info!("mounting bpffs at /sys/fs/bpf");
    }
}
