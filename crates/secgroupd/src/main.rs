//! secgroupd: enforces the security groups of a rules directory on the VM
//! interfaces of this host, and answers questions on a local socket.
//!
//! Start-up order matters: the socket first (refuse to run twice), then
//! the data plane (adopting what a previous daemon pinned), then the link
//! and file watchers (so that nothing that happens during the first
//! reload is missed), then the first reload and attach, and only then
//! READY=1.

mod auth;
mod bound_index;
mod cli;
mod duration;
mod engine;
mod event;
mod health;
mod iface;
mod links;
mod logging;
mod metrics;
mod patterns;
mod routes;
mod rules;
mod sdnotify;
mod server;
mod socket;
mod source;
mod state;
mod stream;
mod trace;
mod uninstall;
mod verdicts;
mod views;
mod watch;
mod wire;

use anyhow::Context;
use clap::Parser;
use secgroup_dataplane::{Dataplane, EventLimits, LoadOptions};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::cli::Args;
use secgroup_dataplane::error_chain;

use crate::engine::{Engine, Settings};
use crate::event::{Event, Signal};

/// mimalloc rather than glibc's allocator: every reload of a big host
/// allocates and frees a whole policy (a thousand VMs: tens of megabytes of
/// rule lists, tables and lint results) across several threads, and
/// glibc kept most of what was freed, fragmented over its per-thread
/// arenas (`malloc_trim` could not give it back): the RSS grew by half
/// over a hundred reloads while the live memory did not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let result = match args.settings() {
        Ok(settings) => serve_on(settings, listener, admin_gid, &args).await,
        Err(e) => Err(e),
    };
    socket::remove(&args.socket);
    result
}

async fn serve_on(
    settings: Settings,
    listener: tokio::net::UnixListener,
    admin_gid: Option<u32>,
    args: &Args,
) -> anyhow::Result<()> {
    // Before the data plane, like the socket: a port in use stops the start.
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for metrics on {addr}"))?,
        ),
        None => None,
    };
    // A predecessor killed while it expedited grace periods left them on.
    let expedite = secgroup_dataplane::Expedite {
        switch: secgroup_dataplane::RCU_EXPEDITED.into(),
        record: args.state_dir.join("rcu-expedited.restore"),
    };
    match expedite.restore_leftover() {
        Ok(Some(value)) => warn!(
            switch = %expedite.switch.display(),
            %value,
            "a previous secgroupd was stopped while it expedited RCU grace periods: put back as they were"
        ),
        Ok(None) => {}
        Err(e) => error!(
            switch = %expedite.switch.display(),
            record = %expedite.record.display(),
            error = %e,
            "putting back the RCU grace periods a previous secgroupd expedited failed"
        ),
    }
    let (mut dp, adopted) = Dataplane::load(&LoadOptions {
        pin_dir: Some(args.bpffs.clone()),
        timeouts: args.timeouts.resolve(),
        owner_socket: Some(args.socket.clone()),
        allow_private_bpffs: args.allow_private_bpffs,
        table_capacity: None,
    })
    .map_err(|e| anyhow::anyhow!("loading the data plane: {}", error_chain(&e)))?;
    if adopted.private_bpffs {
        error!(
            pin_dir = %args.bpffs.display(),
            "THE PINS ARE ON A BPFFS PRIVATE TO THIS PROCESS (--allow-private-bpffs): every hook detaches \
             when secgroupd exits, and a restart cannot adopt anything. Run it in the host's mount namespace \
             (nsenter --net=..., not `ip netns exec`) for real use"
        );
    }
    if adopted.interfaces > 0 || adopted.tables > 0 {
        info!(
            interfaces = adopted.interfaces,
            tables = adopted.tables,
            conntrack_entries = adopted.conntrack_entries,
            generation = adopted.generation,
            previous_pid = adopted.previous_owner.as_ref().map(|o| o.pid),
            pin_dir = %args.bpffs.display(),
            "adopted the maps a previous secgroupd pinned"
        );
    }

    if args.expedite_grace_periods {
        info!(
            switch = %expedite.switch.display(),
            "RCU grace periods are expedited host-wide while many interfaces are hooked at once, and put \
             back right after (--expedite-grace-periods=false: at the normal pace)"
        );
        dp.set_expedite_grace_periods(Some(expedite));
    }
    let limits = EventLimits::new(args.log_rate, args.log_burst)
        .map_err(|e| anyhow::anyhow!("--log-rate/--log-burst: {}", error_chain(&e)))?;
    dp.set_event_limits(limits)
        .map_err(|e| anyhow::anyhow!("setting the event rate limit: {}", error_chain(&e)))?;
    let verdict_events = dp
        .events()
        .map_err(|e| anyhow::anyhow!("opening the verdict events: {}", error_chain(&e)))?;

    let (events, rx) = mpsc::channel(256);
    links::spawn(events.clone()).context("subscribing to link notifications")?;
    if let Some(dir) = settings.source.rules_dir() {
        watch::spawn(dir.to_owned(), events.clone());
    }
    settings.source.spawn(events.clone());
    spawn_signals(events.clone())?;
    spawn_pin_checks(events.clone(), args.pin_check_interval);
    let observer = dp
        .observer()
        .map_err(|e| anyhow::anyhow!("opening the counters for reading: {}", error_chain(&e)))?;

    info!(
        source = %settings.source.describe(),
        host = settings.source.host(),
        socket = %args.socket.display(),
        pin_dir = %settings.pin_dir.display(),
        keep_established = settings.keep_established,
        log_rate = args.log_rate,
        log_burst = args.log_burst,
        metrics_listen = args.metrics_listen.map(|a| a.to_string()),
        "secgroupd {} starting",
        env!("CARGO_PKG_VERSION")
    );
    // The first reload should see etcd's first snapshot; etcd down, it
    // fails and what is pinned stays in force.
    let first_sync = args.etcd.timeout + std::time::Duration::from_secs(1);
    if tokio::time::timeout(first_sync, settings.source.first_sync())
        .await
        .is_err()
    {
        warn!("no answer from etcd yet; starting with what is pinned");
    }
    let (engine, snapshots) = Engine::new(
        dp,
        settings,
        &adopted,
        events.clone(),
        tokio::runtime::Handle::current(),
    );
    let verdicts = verdicts::channel();
    tokio::spawn(verdicts::run(
        verdict_events,
        snapshots.clone(),
        verdicts.clone(),
    ));
    let reads = std::sync::Arc::new(server::Reads {
        snapshots,
        observer,
        ports: trace::TracePorts::default(),
        verdicts,
    });
    if let Some(metrics_listener) = metrics_listener {
        tokio::spawn(server::serve_metrics(metrics_listener, reads.clone()));
    }
    tokio::spawn(server::serve(listener, events.clone(), admin_gid, reads));
    // Kernel work blocks: the engine gets a thread of its own, never one of
    // the runtime's workers.
    let engine = std::thread::Builder::new()
        .name("secgroupd-engine".into())
        .spawn(move || engine.run(rx))
        .context("starting the engine thread")?;
    tokio::task::spawn_blocking(move || engine.join())
        .await
        .context("waiting for the engine")?
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    let _ = sdnotify::notify("STOPPING=1");
    Ok(())
}

impl Args {
    fn settings(&self) -> anyhow::Result<Settings> {
        let host = self.host_name();
        let source = if self.etcd.enabled() {
            let options = self
                .etcd
                .options()
                .map_err(|e| anyhow::anyhow!("etcd: {e}"))?;
            source::Source::etcd(options, self.rules_dir(), &host)
        } else {
            let dir = self
                .rules_dir()
                .unwrap_or_else(|| secgroup_rulesdir::DEFAULT_RULES_DIR.into());
            source::Source::dir(dir, &host)
        };
        Ok(Settings {
            rules_dir: source.describe().into(),
            source,
            pin_dir: self.bpffs.clone(),
            keep_established: self.keep_established,
            state_dir: self.state_dir.clone(),
            private_bpffs: self.allow_private_bpffs,
            interface_patterns: self.interface_patterns.clone(),
            reload_delay: std::env::var("SECGROUPD_TEST_RELOAD_DELAY_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis),
        })
    }
}

/// Asks the main loop to compare the pins with what it wrote, every
/// `interval`.
fn spawn_pin_checks(events: mpsc::Sender<Event>, interval: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(std::time::Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate
        loop {
            ticks.tick().await;
            if events.send(Event::CheckPins).await.is_err() {
                return;
            }
        }
    });
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
