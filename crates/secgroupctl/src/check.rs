//! What clap cannot check about a command line: the form of ids, and
//! arguments that contradict each other (a tcp trace without `--port`).
//! Checked before any file is read or the daemon is asked, so a usage
//! error is always exit 2 and never depends on what the daemon or the
//! rules directory would have said.

use secgroup_model::{InstanceId, SgId, proto};

use crate::cli::{
    CloneArgs, Command, ConntrackCommand, DirectionArg, InstanceCommand, SgCommand,
    TemplateCommand, TraceArgs,
};
use crate::outcome::{Error, Result};

/// `Err(Error::Usage)` if `command` cannot be run as given.
pub fn arguments(command: &Command) -> Result<()> {
    match command {
        Command::Sg(SgCommand::Show(args)) => sg_id(&args.id).map(drop),
        Command::Sg(SgCommand::Clone(CloneArgs { id, new_id, .. })) => {
            sg_id(id)?;
            sg_id(new_id).map(drop)
        }
        Command::Export(args) => {
            if args.etcd.enabled() && args.rules.rules_dir.is_some() {
                return Err(usage(
                    "--rules-dir and --etcd-endpoints contradict each other: export reads one \
                     or the other",
                ));
            }
            sg_id(&args.id).map(drop)
        }
        Command::Template(TemplateCommand::Show(args)) => match &args.id {
            Some(id) => sg_id(id).map(drop),
            None => Ok(()),
        },
        Command::Instance(InstanceCommand::Show(args)) => instance_id(&args.id),
        Command::Conntrack(ConntrackCommand::List(args)) => {
            args.instance.as_deref().map_or(Ok(()), instance_id)
        }
        Command::Conntrack(ConntrackCommand::Flush(args)) => {
            args.instance.as_deref().map_or(Ok(()), instance_id)
        }
        Command::Trace(args) => trace(args),
        Command::Monitor(args) => {
            args.instance.as_deref().map_or(Ok(()), instance_id)?;
            args.group.as_deref().map_or(Ok(()), |g| sg_id(g).map(drop))
        }
        Command::Status
        | Command::Reload
        | Command::Sg(SgCommand::List)
        | Command::Instance(InstanceCommand::List)
        | Command::Import(_)
        | Command::Publish(_)
        | Command::Validate(_)
        | Command::Template(TemplateCommand::List)
        | Command::Completions(_)
        | Command::Man(_) => Ok(()),
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// A security group id given as an argument.
pub fn sg_id(text: &str) -> Result<SgId> {
    SgId::new(text).ok_or_else(|| {
        usage(format!(
            "{text:?} is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-' (at most 64 bytes)"
        ))
    })
}

fn instance_id(text: &str) -> Result<()> {
    match InstanceId::new(text) {
        Some(_) => Ok(()),
        None => Err(usage(format!(
            "{text:?} is not an instance id; expected 1 to 64 letters, digits, '_', '.' or '-'"
        ))),
    }
}

/// The checks secgroupd makes of a trace request (see
/// `secgroupd::trace`) that need nothing but the request itself, in the
/// same order, with the command line's names for the fields.
fn trace(args: &TraceArgs) -> Result<()> {
    instance_id(&args.instance)?;
    let ipv6 = args.remote.is_ipv6();
    let protocol = protocol(&args.protocol)?;
    match (protocol, ipv6) {
        (proto::ICMP, true) => {
            return Err(usage(format!(
                "ICMP over IPv6 is icmpv6: use --protocol icmpv6 with --remote {}",
                args.remote
            )));
        }
        (proto::ICMPV6, false) => {
            return Err(usage(format!(
                "icmpv6 needs an IPv6 --remote, not {}",
                args.remote
            )));
        }
        _ => {}
    }
    if let Some(local) = args.local
        && local.is_ipv6() != ipv6
    {
        return Err(usage(format!(
            "--local {local} and --remote {} are of different families",
            args.remote
        )));
    }
    let ports = matches!(protocol, proto::TCP | proto::UDP);
    match args.port {
        None if ports => {
            return Err(usage(format!(
                "a {} trace needs --port (the destination port)",
                protocol_name(protocol, &args.protocol)
            )));
        }
        Some(port) if !ports => {
            return Err(usage(format!(
                "--port {port} applies to tcp and udp only, not {}",
                protocol_name(protocol, &args.protocol)
            )));
        }
        _ => {}
    }
    let name = || protocol_name(protocol, &args.protocol);
    if let Some(port) = args.source_port
        && !ports
    {
        return Err(usage(format!(
            "--source-port {port} applies to tcp and udp only, not {}",
            name()
        )));
    }
    if args.tcp_flags.is_some() && protocol != proto::TCP {
        return Err(usage(format!(
            "--tcp-flags applies to tcp only, not {}",
            name()
        )));
    }
    let icmp = matches!(protocol, proto::ICMP | proto::ICMPV6);
    let icmp_args = [
        ("--icmp-type", args.icmp_type.is_some()),
        ("--icmp-code", args.icmp_code.is_some()),
        ("--icmp-id", args.icmp_id.is_some()),
    ];
    if let Some((flag, _)) = icmp_args.iter().find(|(_, given)| *given && !icmp) {
        return Err(usage(format!(
            "{flag} applies to icmp and icmpv6 only, not {}",
            name()
        )));
    }
    if let Some(mac) = &args.source_mac {
        if args.direction == DirectionArg::Ingress {
            return Err(usage(
                "--source-mac applies to egress traces (what the VM sends)",
            ));
        }
        if !is_mac(mac) {
            return Err(usage(format!(
                "--source-mac {mac:?} is not a MAC address; expected six hex bytes like 52:54:00:12:34:56"
            )));
        }
    }
    Ok(())
}

/// The protocol number of `--protocol`, as secgroupd reads it: tcp, udp,
/// icmp, icmpv6, gre (any case) or a number.
fn protocol(text: &str) -> Result<u8> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(proto::TCP),
        "udp" => Ok(proto::UDP),
        "icmp" => Ok(proto::ICMP),
        "icmpv6" => Ok(proto::ICMPV6),
        "gre" => Ok(proto::GRE),
        "all" => Err(usage(
            "a traced packet has one protocol, not \"all\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number",
        )),
        other => other.parse::<u8>().map_err(|_| {
            usage(format!(
                "unknown protocol {text:?}; use --protocol tcp, udp, icmp, icmpv6, gre or a number from 0 to 255"
            ))
        }),
    }
}

/// `tcp` for `tcp`, `TCP` and `6`; other numbers as given.
fn protocol_name(number: u8, text: &str) -> String {
    match number {
        proto::TCP => "tcp".to_owned(),
        proto::UDP => "udp".to_owned(),
        proto::ICMP => "icmp".to_owned(),
        proto::ICMPV6 => "icmpv6".to_owned(),
        proto::GRE => "gre".to_owned(),
        _ => format!("protocol {text}"),
    }
}

/// `52:54:00:12:34:56` or `52-54-00-12-34-56`, as secgroupd accepts.
fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    /// (arguments after `secgroupctl`, None if they can be run, else the
    /// usage error's message)
    #[test]
    fn usage_errors() {
        let check = |args: &[&str], expected: Option<&str>| {
            let cli =
                Cli::try_parse_from(std::iter::once("secgroupctl").chain(args.iter().copied()))
                    .unwrap_or_else(|e| panic!("{args:?}: clap refuses: {e}"));
            let got = arguments(&cli.command);
            match (got, expected) {
                (Ok(()), None) => {}
                (Err(Error::Usage(message)), Some(expected)) => {
                    assert_eq!(message, expected, "{args:?}")
                }
                (got, expected) => panic!("{args:?}: got {got:?}, expected {expected:?}"),
            }
        };
        let trace = |rest: &[&str], expected: Option<&str>| {
            let mut args = vec!["trace", "--instance", "ins-1", "--direction"];
            args.extend_from_slice(rest);
            check(&args, expected);
        };
        // Packets beyond a first SYN: each option only where it applies.
        let r = ["--remote", "203.0.113.9"];
        trace(
            &[
                &["ingress", "--protocol", "tcp", "--port", "22"][..],
                &r,
                &["--source-port", "40000", "--tcp-flags", "ack,fin"],
            ]
            .concat(),
            None,
        );
        trace(
            &[
                &["ingress", "--protocol", "icmp"][..],
                &r,
                &["--icmp-type", "0", "--icmp-id", "7"],
            ]
            .concat(),
            None,
        );
        trace(
            &[
                &["ingress", "--protocol", "gre"][..],
                &r,
                &["--source-port", "40000"],
            ]
            .concat(),
            Some("--source-port 40000 applies to tcp and udp only, not gre"),
        );
        trace(
            &[
                &["ingress", "--protocol", "udp", "--port", "53"][..],
                &r,
                &["--tcp-flags", "syn"],
            ]
            .concat(),
            Some("--tcp-flags applies to tcp only, not udp"),
        );
        trace(
            &[
                &["ingress", "--protocol", "tcp", "--port", "22"][..],
                &r,
                &["--icmp-code", "1"],
            ]
            .concat(),
            Some("--icmp-code applies to icmp and icmpv6 only, not tcp"),
        );
        trace(
            &[
                "ingress",
                "--protocol",
                "tcp",
                "--remote",
                "203.0.113.9",
                "--port",
                "22",
            ],
            None,
        );
        trace(
            &[
                "egress",
                "--protocol",
                "6",
                "--remote",
                "203.0.113.9",
                "--port",
                "22",
            ],
            None,
        );
        trace(
            &["ingress", "--protocol", "ICMP", "--remote", "203.0.113.9"],
            None,
        );
        trace(
            &["ingress", "--protocol", "132", "--remote", "203.0.113.9"],
            None,
        );
        trace(
            &[
                "egress",
                "--protocol",
                "gre",
                "--remote",
                "2001:db8::9",
                "--local",
                "2001:db8::2",
            ],
            None,
        );
        trace(
            &[
                "egress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--source-mac",
                "52-54-00-aa-bb-cc",
            ],
            None,
        );
        trace(
            &["ingress", "--protocol", "tcp", "--remote", "203.0.113.9"],
            Some("a tcp trace needs --port (the destination port)"),
        );
        trace(
            &["ingress", "--protocol", "17", "--remote", "203.0.113.9"],
            Some("a udp trace needs --port (the destination port)"),
        );
        trace(
            &[
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--port",
                "7",
            ],
            Some("--port 7 applies to tcp and udp only, not icmp"),
        );
        trace(
            &[
                "ingress",
                "--protocol",
                "132",
                "--remote",
                "203.0.113.9",
                "--port",
                "7",
            ],
            Some("--port 7 applies to tcp and udp only, not protocol 132"),
        );
        trace(
            &[
                "ingress",
                "--protocol",
                "sctp",
                "--remote",
                "203.0.113.9",
                "--port",
                "7",
            ],
            Some(
                "unknown protocol \"sctp\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number from 0 to 255",
            ),
        );
        trace(
            &["ingress", "--protocol", "256", "--remote", "203.0.113.9"],
            Some(
                "unknown protocol \"256\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number from 0 to 255",
            ),
        );
        trace(
            &["ingress", "--protocol", "all", "--remote", "203.0.113.9"],
            Some(
                "a traced packet has one protocol, not \"all\"; use --protocol tcp, udp, icmp, icmpv6, gre or a number",
            ),
        );
        trace(
            &["ingress", "--protocol", "icmp", "--remote", "2001:db8::9"],
            Some("ICMP over IPv6 is icmpv6: use --protocol icmpv6 with --remote 2001:db8::9"),
        );
        trace(
            &["ingress", "--protocol", "icmpv6", "--remote", "203.0.113.9"],
            Some("icmpv6 needs an IPv6 --remote, not 203.0.113.9"),
        );
        trace(
            &[
                "egress",
                "--protocol",
                "udp",
                "--remote",
                "203.0.113.9",
                "--port",
                "53",
                "--local",
                "2001:db8::2",
            ],
            Some("--local 2001:db8::2 and --remote 203.0.113.9 are of different families"),
        );
        trace(
            &[
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--source-mac",
                "52:54:00:aa:bb:cc",
            ],
            Some("--source-mac applies to egress traces (what the VM sends)"),
        );
        trace(
            &[
                "egress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
                "--source-mac",
                "52:54:00:aa:bb",
            ],
            Some(
                "--source-mac \"52:54:00:aa:bb\" is not a MAC address; expected six hex bytes like 52:54:00:12:34:56",
            ),
        );
        check(
            &[
                "trace",
                "--instance",
                "ins 1",
                "--direction",
                "ingress",
                "--protocol",
                "icmp",
                "--remote",
                "203.0.113.9",
            ],
            Some(
                "\"ins 1\" is not an instance id; expected 1 to 64 letters, digits, '_', '.' or '-'",
            ),
        );

        let not_sg = "\"web\" is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-' (at most 64 bytes)";
        check(&["sg", "show", "sg-web"], None);
        check(&["sg", "show", "web"], Some(not_sg));
        check(&["sg", "clone", "web", "sg-b"], Some(not_sg));
        check(&["sg", "clone", "sg-a", "web"], Some(not_sg));
        check(&["export", "web"], Some(not_sg));
        check(
            &["template", "show", "open-all", "--id", "web"],
            Some(not_sg),
        );
        check(&["template", "show", "no-such-template"], None);
        let not_instance =
            "\"\" is not an instance id; expected 1 to 64 letters, digits, '_', '.' or '-'";
        check(&["instance", "show", ""], Some(not_instance));
        check(&["conntrack", "list", "--instance", ""], Some(not_instance));
        check(
            &["conntrack", "flush", "--instance", ""],
            Some(not_instance),
        );
        check(&["conntrack", "flush", "--all"], None);
    }
}
