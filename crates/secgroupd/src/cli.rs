//! Command line and environment. Every flag has an environment variable
//! (`SECGROUP_<FLAG>`), which is how a systemd drop-in usually sets them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use secgroup_dataplane::CtTimeouts;

#[derive(Debug, Parser)]
#[command(
    name = "secgroupd",
    version,
    about = "The secgroup daemon: enforces the security groups of a rules directory, or of a fleet's etcd, on this host's VM interfaces"
)]
pub struct Args {
    /// Directory of JSON rule files, watched for changes [default:
    /// /etc/secgroup/rules.d; with --etcd-endpoints: none, and a
    /// directory given is read beside etcd for host-local objects].
    #[arg(long, env = "SECGROUP_RULES_DIR", value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,

    /// This hypervisor's name: the instances whose "host" names it are
    /// bound here, those of other hosts only lend their addresses
    /// [default: the system's host name].
    #[arg(long, env = "SECGROUP_HOST_NAME", value_parser = crate::source::parse_host_name, value_name = "NAME")]
    pub host_name: Option<String>,

    #[command(flatten)]
    pub etcd: secgroup_etcd::EtcdArgs,

    /// Unix socket of the local API.
    #[arg(long, env = "SECGROUP_SOCKET", default_value = secgroup_api::DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// bpffs directory where maps and hooks are pinned so that they outlive
    /// the daemon.
    #[arg(long, env = "SECGROUP_BPFFS", default_value = "/sys/fs/bpf/secgroup")]
    pub bpffs: PathBuf,

    /// Log lines as text, or one JSON object per line.
    #[arg(long, env = "SECGROUP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Rule changes spare flows already tracked (the default cuts those the
    /// new rules refuse).
    #[arg(long, env = "SECGROUP_KEEP_ESTABLISHED")]
    pub keep_established: bool,

    /// Detach every hook, remove the pins (the --bpffs directory) and exit.
    #[arg(long)]
    pub uninstall: bool,

    /// Where the daemon keeps what must survive it besides the pins: the
    /// rules last applied, so that a restart can say what changed while it
    /// was down.
    #[arg(long, env = "SECGROUP_STATE_DIR", default_value = "/var/lib/secgroup")]
    pub state_dir: PathBuf,

    /// Run even when the pin directory is on a bpffs private to this mount
    /// namespace (under `ip netns exec`, say): every hook then detaches when
    /// the daemon exits. For experiments only; logged loudly and reported
    /// as degraded.
    #[arg(long, env = "SECGROUP_ALLOW_PRIVATE_BPFFS")]
    pub allow_private_bpffs: bool,

    /// Guard every interface whose name matches (shell glob: `tap*`,
    /// `vnet*`; repeatable, or comma-separated in the environment): hooked
    /// the moment it appears, before any rule file names it, dropping all
    /// IP traffic until an instance binds it.
    #[arg(long = "interface-pattern", env = "SECGROUP_INTERFACE_PATTERN", value_delimiter = ',', value_parser = crate::patterns::Pattern::parse)]
    pub interface_patterns: Vec<crate::patterns::Pattern>,

    /// How often the pins are compared with what this daemon wrote, to
    /// notice writes by anyone else (also done on every reload).
    #[arg(long, env = "SECGROUP_PIN_CHECK_INTERVAL", value_parser = crate::duration::parse, default_value = "5s")]
    pub pin_check_interval: Duration,

    /// Also serve `GET /metrics` (Prometheus) over TCP on this address
    /// (`127.0.0.1:9610`, `[::1]:9610`): read-only and without
    /// authentication, so bind it to loopback or a management network.
    /// The API socket serves `/metrics` either way.
    #[arg(long, env = "SECGROUP_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Verdict events each interface may report per second (its token
    /// bucket's refill rate); what it cannot report is counted as
    /// suppressed. 1 to 1000000.
    #[arg(long, env = "SECGROUP_LOG_RATE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub log_rate: u32,

    /// Verdict events each interface may report at once, after a quiet
    /// time (its token bucket's size). 1 to 1000000.
    #[arg(long, env = "SECGROUP_LOG_BURST", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub log_burst: u32,

    /// While many interfaces are hooked at once (a start on a host of
    /// hundreds of VMs), turn the kernel's expedited RCU grace periods on
    /// (/sys/kernel/rcu_expedited), and back as they were right after:
    /// each TCX hook waits for a grace period under RTNL, 1,000 of them
    /// 15 s, expedited 0.1 s, and until its hook is attached a VM
    /// receives unfiltered traffic. Host-wide while on (every CPU is
    /// interrupted per grace period, for a second or two): `false` keeps
    /// the normal pace. Needs a writable /sys/kernel (systemd:
    /// ProtectKernelTunables=no); without one the attach runs at the
    /// normal pace, logged.
    #[arg(
        long,
        env = "SECGROUP_EXPEDITE_GRACE_PERIODS",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub expedite_grace_periods: bool,

    #[command(flatten)]
    pub timeouts: TimeoutArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Conntrack timeouts: `5d`, `2h30m`, `90s`, `500ms` or seconds.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Conntrack timeouts (e.g. 5d, 2h30m, 90s, 500ms, or seconds)")]
pub struct TimeoutArgs {
    /// TCP while opening [default: 60s]
    #[arg(long, env = "SECGROUP_CT_TCP_SYN", value_parser = crate::duration::parse)]
    pub ct_tcp_syn: Option<Duration>,
    /// TCP once established [default: 5d]
    #[arg(long, env = "SECGROUP_CT_TCP_ESTABLISHED", value_parser = crate::duration::parse)]
    pub ct_tcp_established: Option<Duration>,
    /// TCP after a FIN [default: 120s]
    #[arg(long, env = "SECGROUP_CT_TCP_CLOSING", value_parser = crate::duration::parse)]
    pub ct_tcp_closing: Option<Duration>,
    /// TCP after a RST or both FINs [default: 10s]
    #[arg(long, env = "SECGROUP_CT_TCP_CLOSED", value_parser = crate::duration::parse)]
    pub ct_tcp_closed: Option<Duration>,
    /// UDP seen one way [default: 30s]
    #[arg(long, env = "SECGROUP_CT_UDP", value_parser = crate::duration::parse)]
    pub ct_udp: Option<Duration>,
    /// UDP once replied [default: 180s]
    #[arg(long, env = "SECGROUP_CT_UDP_STREAM", value_parser = crate::duration::parse)]
    pub ct_udp_stream: Option<Duration>,
    /// ICMP echo [default: 30s]
    #[arg(long, env = "SECGROUP_CT_ICMP", value_parser = crate::duration::parse)]
    pub ct_icmp: Option<Duration>,
    /// Other protocols [default: 600s]
    #[arg(long, env = "SECGROUP_CT_OTHER", value_parser = crate::duration::parse)]
    pub ct_other: Option<Duration>,
    /// Later fragments of an accepted datagram [default: 30s]
    #[arg(long, env = "SECGROUP_CT_FRAGMENT", value_parser = crate::duration::parse)]
    pub ct_fragment: Option<Duration>,
}

impl Args {
    /// The rules directory to read: the one given, else the default
    /// unless the rules come from etcd.
    pub fn rules_dir(&self) -> Option<PathBuf> {
        match (&self.rules_dir, self.etcd.enabled()) {
            (Some(dir), _) => Some(dir.clone()),
            (None, false) => Some(PathBuf::from(secgroup_rulesdir::DEFAULT_RULES_DIR)),
            (None, true) => None,
        }
    }

    pub fn host_name(&self) -> String {
        self.host_name
            .clone()
            .unwrap_or_else(crate::source::system_host_name)
    }
}

impl TimeoutArgs {
    /// The data plane's defaults with what was given on top.
    pub fn resolve(&self) -> CtTimeouts {
        let d = CtTimeouts::default();
        CtTimeouts {
            tcp_syn: self.ct_tcp_syn.unwrap_or(d.tcp_syn),
            tcp_established: self.ct_tcp_established.unwrap_or(d.tcp_established),
            tcp_closing: self.ct_tcp_closing.unwrap_or(d.tcp_closing),
            tcp_closed: self.ct_tcp_closed.unwrap_or(d.tcp_closed),
            udp: self.ct_udp.unwrap_or(d.udp),
            udp_stream: self.ct_udp_stream.unwrap_or(d.udp_stream),
            icmp: self.ct_icmp.unwrap_or(d.icmp),
            other: self.ct_other.unwrap_or(d.other),
            fragment: self.ct_fragment.unwrap_or(d.fragment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("secgroupd").chain(args.iter().copied()))
            .map_err(|e| e.kind().to_string())
    }

    #[test]
    fn defaults_and_flags() {
        let args = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            args.rules_dir(),
            Some(PathBuf::from("/etc/secgroup/rules.d"))
        );
        assert!(!args.etcd.enabled());
        assert_eq!(args.socket, PathBuf::from("/run/secgroup/secgroupd.sock"));
        assert_eq!(args.bpffs, PathBuf::from("/sys/fs/bpf/secgroup"));
        assert_eq!(args.log_format, LogFormat::Text);
        assert!(!args.keep_established);
        assert_eq!(args.timeouts.resolve(), CtTimeouts::default());
        assert!(args.expedite_grace_periods, "expedited by default");
        for (flags, expedite) in [
            (&["--expedite-grace-periods"][..], true),
            (&["--expedite-grace-periods=false"][..], false),
            (&["--expedite-grace-periods", "false"][..], false),
            (&["--expedite-grace-periods=true"][..], true),
        ] {
            let args = parse(flags).unwrap_or_else(|e| panic!("{flags:?}: {e}"));
            assert_eq!(args.expedite_grace_periods, expedite, "{flags:?}");
        }
        assert!(parse(&["--expedite-grace-periods=maybe"]).is_err());

        let args = parse(&[
            "--ct-tcp-established",
            "2h",
            "--ct-udp",
            "45",
            "--log-format",
            "json",
            "--keep-established",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let timeouts = args.timeouts.resolve();
        assert_eq!(timeouts.tcp_established, Duration::from_secs(7200));
        assert_eq!(timeouts.udp, Duration::from_secs(45));
        assert_eq!(timeouts.icmp, CtTimeouts::default().icmp);
        assert_eq!(args.log_format, LogFormat::Json);
        assert!(args.keep_established);

        assert_eq!(args.metrics_listen, None);
        let args = parse(&["--metrics-listen", "127.0.0.1:9610"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.metrics_listen, "127.0.0.1:9610".parse().ok());
        assert!(parse(&["--metrics-listen", "localhost"]).is_err());

        assert_eq!((args.log_rate, args.log_burst), (100, 200));
        let args =
            parse(&["--log-rate", "5", "--log-burst", "1"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((args.log_rate, args.log_burst), (5, 1));
        assert!(parse(&["--log-rate", "0"]).is_err());
        assert!(parse(&["--log-burst", "1000001"]).is_err());
        assert!(parse(&["--log-rate", "-1"]).is_err());

        let args = parse(&[
            "--etcd-endpoints",
            "http://127.0.0.1:2379,http://127.0.0.1:2380",
            "--host-name",
            "hv-1",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.rules_dir(), None);
        assert_eq!(args.host_name(), "hv-1");
        assert_eq!(args.etcd.endpoints.len(), 2);
        assert_eq!(args.etcd.prefix, "/secgroup/");
        let args = parse(&["--etcd-endpoints", "http://e:2379", "--rules-dir", "/l"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.rules_dir(), Some(PathBuf::from("/l")));
        assert!(parse(&["--host-name", "a b"]).is_err());

        assert!(parse(&["--ct-udp", "0"]).is_err());
        assert!(parse(&["--log-format", "xml"]).is_err());
    }
}
