//! IP protocols, and service-set entries (a protocol and maybe its ports).

use super::ports::port_list;
use super::{Case, case_hint, decimal};
use crate::location::quote;
use crate::model::{Ports, Protocol, Service, proto};
use crate::raw::Scalar;

fn protocol_name(s: &str) -> Option<Protocol> {
    Some(match s {
        "tcp" => Protocol::Number(proto::TCP),
        "udp" => Protocol::Number(proto::UDP),
        "icmp" => Protocol::Number(proto::ICMP),
        "icmpv6" => Protocol::Number(proto::ICMPV6),
        "gre" => Protocol::Number(proto::GRE),
        "all" => Protocol::All,
        _ => return None,
    })
}

const PROTOCOLS_EXPECTED: &str =
    "expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255";

/// A protocol name or number (`"tcp"`, `"6"`, `6`).
pub(crate) fn protocol(value: &Scalar, case: Case) -> Result<Protocol, String> {
    let text = match value {
        Scalar::String(s) => s,
        Scalar::Number(n) => n,
    };
    if let Some(p) = protocol_name(&case.fold(text))
        && matches!(value, Scalar::String(_))
    {
        return Ok(p);
    }
    if let Some(n) = decimal(text) {
        return u8::try_from(n)
            .map(Protocol::Number)
            .map_err(|_| format!("protocol number {n} is out of range 0-255"));
    }
    let looks_numeric =
        text.starts_with(['-', '+']) || text.starts_with(|c: char| c.is_ascii_digit());
    if looks_numeric {
        let hint = if text == "-1" {
            " (for every protocol write \"all\")"
        } else {
            ""
        };
        return Err(format!(
            "{} is not a protocol number; expected a whole number 0-255{hint}",
            value.display()
        ));
    }
    let hint = case_hint(text, |l| protocol_name(l).is_some());
    Err(format!(
        "unknown protocol {}; {PROTOCOLS_EXPECTED}{hint}",
        value.display()
    ))
}

/// A service-set entry: `"tcp:80"`, `"udp:53"`, `"tcp:8000-8010"`,
/// `"tcp:80,443"`, `"icmp"`, `"all"`, `"47"`.
pub(crate) fn service(s: &str) -> Result<Service, String> {
    let (proto_text, ports_text) = match s.split_once(':') {
        Some((p, ports)) => (p, Some(ports)),
        None => (s, None),
    };
    let protocol = protocol(&Scalar::String(proto_text.to_owned()), Case::Exact)
        .map_err(|e| format!("in service {}: {e}", quote(s)))?;
    let ports = match ports_text {
        None => Ports::All,
        Some(text) => {
            let ports = port_list(text, Case::Exact)
                .map_err(|e| format!("in service {}: {e}", quote(s)))?;
            if ports != Ports::All && !protocol.has_ports() {
                return Err(format!(
                    "service {} gives ports for {protocol}; only tcp and udp have ports (write {})",
                    quote(s),
                    quote(proto_text)
                ));
            }
            ports
        }
    };
    Ok(Service { protocol, ports })
}
