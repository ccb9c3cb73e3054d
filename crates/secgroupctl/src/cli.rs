//! The command line, as clap types.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success (the answer is \"yes\")
  1  the answer is \"no\" (a traced packet is dropped, the daemon is unhealthy, a reload is
     rejected) or the input is wrong (invalid rule files, an unknown id, a refused request)
  2  usage error: an unknown command, a missing, malformed or contradictory argument (such as
     a tcp trace without --port), or a trace request secgroupd finds malformed
  3  secgroupd cannot be reached (socket missing, connection refused, permission denied, timeout)
  4  secgroupd failed, or the kernel and the reference evaluator disagree (a bug: report it)";

#[derive(Debug, Parser)]
#[command(
    name = "secgroupctl",
    version,
    about = "The operator's CLI of secgroup: ask secgroupd what it enforces, manage rule files",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text (see docs/cli.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Never cut a table cell or line short. Default: fit the terminal ($COLUMNS or its width);
    /// output to a pipe or a file is never cut.
    #[arg(long, global = true)]
    pub wide: bool,
    /// secgroupd's API socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "SECGROUP_SOCKET",
        default_value = secgroup_api::DEFAULT_SOCKET
    )]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon's health: version, policy generation, last reload, attachments.
    Status,
    /// Security groups: their rules with hit counters; clone one into a new file.
    #[command(subcommand)]
    Sg(SgCommand),
    /// Instances: attach state and the effective rule lists with counters.
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Tracked connections.
    #[command(subcommand)]
    Conntrack(ConntrackCommand),
    /// Which rule decides a packet: asked of the kernel program and of the reference evaluator.
    Trace(TraceArgs),
    /// Verdict events as they happen (logged rules, "log" modes, audit): one line each, until
    /// interrupted.
    Monitor(MonitorArgs),
    /// Make secgroupd reload the rules directory now, and print the outcome.
    Reload,
    /// Print one security group as a rule file (read from the rules directory, offline, or
    /// from etcd with --etcd-endpoints).
    Export(ExportArgs),
    /// Validate a rules directory and write it into etcd in one transaction: the prefix then
    /// holds exactly its objects, one per key. Refused, writing nothing, if it is invalid.
    Publish(PublishArgs),
    /// Write a security group's rule file into the rules directory, replacing the group.
    Import(ImportArgs),
    /// Check rule files: print every problem, or a summary of what they define.
    Validate(ValidateArgs),
    /// List or print the built-in security group templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Write the man pages (secgroupctl.1 and one per subcommand) into a directory. Hidden: it
    /// is how `cargo xtask man` and the Debian package make them.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum SgCommand {
    /// Every security group, with rule counts, bound instances and referrers.
    List,
    /// One group's rules in order, with hit counts and last-hit times.
    Show(SgShowArgs),
    /// Copy a group into a new rule file under a new id (offline).
    Clone(CloneArgs),
}

#[derive(Debug, Args)]
pub struct SgShowArgs {
    /// Security group id (sg-…).
    #[arg(value_name = "SG_ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The group to copy.
    #[arg(value_name = "SG_ID")]
    pub id: String,
    /// The new group's id; the copy is written to NEW_ID.json.
    #[arg(value_name = "NEW_ID")]
    pub new_id: String,
    /// The new group's name. Default: the original's.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub rules: RulesDirArg,
}

#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Every instance, with interface, attach state and groups.
    List,
    /// One instance: attach state, groups, effective rules per direction with counters.
    Show(InstanceShowArgs),
}

#[derive(Debug, Args)]
pub struct InstanceShowArgs {
    /// Instance id.
    #[arg(value_name = "INSTANCE_ID")]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum ConntrackCommand {
    /// Tracked flows, oldest first per interface.
    List(ConntrackListArgs),
    /// Forget tracked flows: replies to them then need a rule of their own.
    Flush(ConntrackFlushArgs),
}

#[derive(Debug, Args)]
pub struct ConntrackListArgs {
    /// Only this instance's flows.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// At most this many flows [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["instance", "all"])))]
pub struct ConntrackFlushArgs {
    /// Flush this instance's flows.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// Flush every interface's flows.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// To the instance (the remote is the source).
    Ingress,
    /// From the instance (the remote is the destination).
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    Accept,
    Drop,
    /// Audit mode: dropped by the rules, but passed.
    WouldDrop,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Only this instance's events.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: Option<String>,
    /// Only this direction, seen from the instance.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Only this verdict.
    #[arg(long, value_enum)]
    pub verdict: Option<VerdictArg>,
    /// Only events decided by a rule of this security group.
    #[arg(long, value_name = "SG_ID")]
    pub group: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The instance whose rules decide.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: String,
    /// Which way the packet goes, seen from the instance.
    #[arg(long, value_enum)]
    pub direction: DirectionArg,
    /// tcp, udp, icmp, icmpv6, gre or a protocol number.
    #[arg(long, value_name = "PROTOCOL")]
    pub protocol: String,
    /// The other end: the source of an ingress packet, the destination of an egress one.
    #[arg(long, value_name = "IP")]
    pub remote: IpAddr,
    /// Destination port (tcp and udp only, where it is required).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The instance's address. Default: its first address of the remote's family. Another
    /// address traces a spoofed source (egress; port security drops it).
    #[arg(long, value_name = "IP")]
    pub local: Option<IpAddr>,
    /// Egress only: the frame's source MAC. Default: the instance's `mac`. Another one traces a
    /// spoofed MAC.
    #[arg(long, value_name = "MAC")]
    pub source_mac: Option<String>,
    /// Source port (tcp and udp only). Default: a fresh one, so the packet starts a new flow;
    /// with a given one it may belong to a tracked flow, whose entry the trace shows.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub source_port: Option<u16>,
    /// tcp only: the flags, comma-separated: syn, ack, fin, rst, psh, urg. Default: syn.
    #[arg(long, value_name = "FLAGS")]
    pub tcp_flags: Option<String>,
    /// icmp and icmpv6 only: the message type. Default: echo request (8, or 128 for icmpv6).
    /// Error messages are refused (they belong to the flow they quote).
    #[arg(long, value_name = "TYPE")]
    pub icmp_type: Option<u8>,
    /// icmp and icmpv6 only: the message code. Default: 0.
    #[arg(long, value_name = "CODE")]
    pub icmp_code: Option<u8>,
    /// icmp and icmpv6 echo only: the echo id, as --source-port is for tcp and udp.
    #[arg(long, value_name = "ID")]
    pub icmp_id: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// secgroup's own rule-file format.
    Native,
    /// Tencent Cloud's security group policy JSON.
    Tencent,
}

#[derive(Debug, Args)]
pub struct RulesDirArg {
    /// The rules directory. Default: the running secgroupd's (asked over --socket), else
    /// /etc/secgroup/rules.d.
    #[arg(long, value_name = "DIR", env = "SECGROUP_RULES_DIR")]
    pub rules_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Security group id (sg-…).
    #[arg(value_name = "SG_ID")]
    pub id: String,
    #[arg(long, value_enum, default_value_t = Format::Native)]
    pub format: Format,
    #[command(flatten)]
    pub rules: RulesDirArg,
    /// With --etcd-endpoints: read the group from etcd (the fleet's store) instead.
    #[command(flatten)]
    pub etcd: secgroup_etcd::EtcdArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The rules directory (its *.json files) or rule files, validated together as
    /// `validate` does.
    #[arg(value_name = "DIR", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub etcd: secgroup_etcd::EtcdArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A rule file defining exactly one security group (native or Tencent).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Insist on this format. Default: recognised from the file's keys.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub rules: RulesDirArg,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Rule directories (their *.json files) or single files.
    /// Default: /etc/secgroup/rules.d.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A rules directory, in addition to any PATH.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Vec<PathBuf>,
    /// Treat warnings as errors: exit 1 when there is any (for a
    /// controller's CI).
    #[arg(long)]
    pub deny_warnings: bool,
}

impl ValidateArgs {
    /// The paths to read: those given, else the default rules directory.
    pub fn sources(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.rules_dir.iter().chain(&self.paths).cloned().collect();
        if paths.is_empty() {
            paths.push(PathBuf::from(secgroup_rulesdir::DEFAULT_RULES_DIR));
        }
        paths
    }
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the templates with what they allow.
    List,
    /// Print a template as a rule file, ready for the rules directory.
    Show(TemplateShowArgs),
}

#[derive(Debug, Args)]
pub struct TemplateShowArgs {
    /// Template name, as `template list` shows it.
    pub name: String,
    /// Id of the security group to define. Default: sg-NAME.
    #[arg(long, value_name = "SG_ID")]
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// (arguments, Ok(debug fragment) or Err(clap error kind))
    #[test]
    fn parsing() {
        let check = |args: &[&str], expected: Result<&str, clap::error::ErrorKind>| {
            let got =
                Cli::try_parse_from(std::iter::once("secgroupctl").chain(args.iter().copied()));
            match (got, expected) {
                (Ok(cli), Ok(fragment)) => {
                    let debug = format!("{cli:?}");
                    assert!(
                        debug.contains(fragment),
                        "{args:?}: {debug} lacks {fragment}"
                    );
                }
                (Err(e), Err(kind)) => assert_eq!(e.kind(), kind, "{args:?}: {e}"),
                (got, expected) => panic!("{args:?}: got {got:?}, expected {expected:?}"),
            }
        };
        use clap::error::ErrorKind::*;
        check(&["status"], Ok("Status"));
        check(&["--json", "sg", "list"], Ok("json: true"));
        check(&["conntrack", "list", "--wide"], Ok("wide: true"));
        check(&["export", "sg-web"], Ok("rules_dir: None"));
        check(
            &["sg", "show", "sg-web", "--socket", "/tmp/s"],
            Ok("socket: \"/tmp/s\""),
        );
        check(&["conntrack", "list", "--limit", "5"], Ok("limit: Some(5)"));
        check(&["conntrack", "list", "--limit", "0"], Err(ValueValidation));
        check(&["conntrack", "flush"], Err(MissingRequiredArgument));
        check(
            &["conntrack", "flush", "--all", "--instance", "ins-1"],
            Err(ArgumentConflict),
        );
        check(
            &[
                "trace",
                "--instance",
                "ins-1",
                "--direction",
                "ingress",
                "--protocol",
                "tcp",
                "--remote",
                "203.0.113.9",
                "--port",
                "22",
            ],
            Ok("port: Some(22)"),
        );
        check(
            &[
                "trace",
                "--instance",
                "ins-1",
                "--direction",
                "inwards",
                "--protocol",
                "tcp",
                "--remote",
                "203.0.113.9",
            ],
            Err(InvalidValue),
        );
        check(
            &[
                "trace",
                "--instance",
                "ins-1",
                "--direction",
                "egress",
                "--protocol",
                "tcp",
                "--remote",
                "203.0.113",
            ],
            Err(ValueValidation),
        );
        check(&["export", "sg-web", "--format", "tencent"], Ok("Tencent"));
        check(
            &[
                "publish",
                "--etcd-endpoints",
                "http://a:1,http://b:2",
                "rules",
            ],
            Ok("endpoints: [\"http://a:1\", \"http://b:2\"]"),
        );
        check(
            &["publish", "--etcd-endpoints", "http://a:1"],
            Err(MissingRequiredArgument),
        );
        check(
            &[
                "export",
                "sg-web",
                "--etcd-endpoints",
                "http://a:1",
                "--etcd-prefix",
                "/p/",
            ],
            Ok("prefix: \"/p/\""),
        );
        check(&["export", "sg-web", "--format", "aws"], Err(InvalidValue));
        check(&["import"], Err(MissingRequiredArgument));
        check(
            &["sg", "clone", "sg-a", "sg-b", "--name", "b"],
            Ok("Some(\"b\")"),
        );
        check(&["completions", "zsh"], Ok("Zsh"));
        check(&["frobnicate"], Err(InvalidSubcommand));
    }
}
