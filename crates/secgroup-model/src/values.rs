//! Parsers for the strings inside rule files: protocols, ports, addresses,
//! MACs, interface names. Each returns the model value or the message of a
//! diagnostic (which names the offending value and what was expected);
//! `validate` adds the location.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::location::quote;
use crate::model::{
    Action, AddressBlock, AddressRange, MacAddr, PortRange, Ports, Protocol, Service, proto,
};
use crate::raw::Scalar;

/// Whether names may be written in any case (`TCP`, `ACCEPT`, `ALL`), as in
/// Tencent's exports. Native files use lower case only, so a file is
/// spelled one way throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Exact,
    Insensitive,
}

impl Case {
    fn fold(self, s: &str) -> String {
        match self {
            Case::Exact => s.to_owned(),
            Case::Insensitive => s.to_ascii_lowercase(),
        }
    }
}

/// A hint for a name that is only wrong in its case.
fn case_hint(written: &str, valid: impl Fn(&str) -> bool) -> String {
    let lower = written.to_ascii_lowercase();
    if lower != written && valid(&lower) {
        format!(" (did you mean {}?)", quote(&lower))
    } else {
        String::new()
    }
}

/// A whole decimal number without sign; `None` for anything else.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn action(s: &str, case: Case) -> Result<Action, String> {
    match case.fold(s).as_str() {
        "accept" => Ok(Action::Accept),
        "drop" => Ok(Action::Drop),
        _ => {
            let lower = s.to_ascii_lowercase();
            let hint = match lower.as_str() {
                "accept" => " (did you mean \"accept\"?)",
                "drop" => " (did you mean \"drop\"?)",
                "allow" | "permit" | "pass" => " (did you mean \"accept\"?)",
                "deny" | "reject" | "block" => " (did you mean \"drop\"?)",
                _ => "",
            };
            Err(format!(
                "unknown action {}; expected \"accept\" or \"drop\"{hint}",
                quote(s)
            ))
        }
    }
}

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

const PORTS_EXPECTED: &str = "expected \"all\" or ports like \"22\", \"80,443\", \"8000-9000\"";

/// A rule's `port`: `"all"`, a number, or a comma list of ports and ranges.
pub(crate) fn ports(value: &Scalar, case: Case) -> Result<Ports, String> {
    match value {
        Scalar::Number(n) => match decimal(n) {
            Some(p) => port_number(p, n).map(|r| Ports::List(vec![r])),
            None => Err(format!(
                "{n} is not a port; expected a whole number 1-65535"
            )),
        },
        Scalar::String(s) => port_list(s, case),
    }
}

/// `"all"` or `"22,80-90"`.
pub(crate) fn port_list(s: &str, case: Case) -> Result<Ports, String> {
    if case.fold(s) == "all" {
        return Ok(Ports::All);
    }
    if s.eq_ignore_ascii_case("all") {
        return Err(format!(
            "{} is not a port (did you mean \"all\"?)",
            quote(s)
        ));
    }
    if s.trim().is_empty() {
        return Err(format!("empty port; {PORTS_EXPECTED}"));
    }
    let mut ranges = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("{} has an empty entry; {PORTS_EXPECTED}", quote(s)));
        }
        if item.eq_ignore_ascii_case("all") {
            return Err(format!(
                "{} mixes \"all\" with other ports; write \"all\" alone",
                quote(s)
            ));
        }
        ranges.push(port_range(item)?);
    }
    Ok(Ports::List(ranges))
}

fn port_range(item: &str) -> Result<PortRange, String> {
    match item.split_once('-') {
        None => match decimal(item) {
            Some(p) => port_number(p, &quote(item)),
            None => Err(not_a_port(item)),
        },
        Some((lo, hi)) => {
            let (Some(lo_n), Some(hi_n)) = (decimal(lo.trim()), decimal(hi.trim())) else {
                return Err(format!(
                    "{} is not a port range; expected two ports like \"8000-9000\"",
                    quote(item)
                ));
            };
            let lo = port_number(lo_n, &quote(lo.trim()))?;
            let hi = port_number(hi_n, &quote(hi.trim()))?;
            PortRange::new(lo.lo(), hi.hi())
                .ok_or_else(|| format!("{} is not a port range (start > end)", quote(item)))
        }
    }
}

fn not_a_port(item: &str) -> String {
    let hint = if item.eq_ignore_ascii_case("any") || item == "*" {
        " (for every port write \"all\")"
    } else {
        ""
    };
    format!(
        "{} is not a port; expected a number 1-65535 or a range like \"8000-9000\"{hint}",
        quote(item)
    )
}

/// `shown` is how the port was written, for the message.
fn port_number(n: u64, shown: &str) -> Result<PortRange, String> {
    u16::try_from(n)
        .ok()
        .and_then(PortRange::single)
        .ok_or_else(|| format!("{shown} is not a port (out of range 1-65535)"))
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

const BLOCK_EXPECTED: &str = "expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"";

/// An address, CIDR or `first-last` range.
pub(crate) fn address_block(s: &str) -> Result<AddressBlock, String> {
    // A CIDR never holds '-' outside a (bad) prefix length, a range never '/'.
    if let Some((addr, len)) = s.split_once('/') {
        let Ok(addr) = addr.parse::<IpAddr>() else {
            return Err(format!("{} is not a CIDR; {BLOCK_EXPECTED}", quote(s)));
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let Some(len) = decimal(len) else {
            return Err(format!(
                "{} is not a CIDR: {} is not a prefix length 0-{max}",
                quote(s),
                quote(len)
            ));
        };
        let net = u8::try_from(len)
            .ok()
            .and_then(|l| IpNet::new(addr, l).ok())
            .ok_or_else(|| {
                format!(
                    "{} is not a CIDR: prefix length {len} is longer than {max} bits",
                    quote(s)
                )
            })?;
        if net.network() != addr {
            return Err(format!(
                "{} has host bits set; did you mean {}?",
                quote(s),
                quote(&net.trunc().to_string())
            ));
        }
        return Ok(AddressBlock::Net(net));
    }
    if let Some((first, last)) = s.split_once('-') {
        let (Ok(a), Ok(b)) = (first.parse::<IpAddr>(), last.parse::<IpAddr>()) else {
            return Err(format!(
                "{} is not an address range; {BLOCK_EXPECTED}",
                quote(s)
            ));
        };
        if a.is_ipv4() != b.is_ipv4() {
            return Err(format!(
                "{} is not an address range: it mixes IPv4 and IPv6",
                quote(s)
            ));
        }
        return AddressRange::new(a, b)
            .map(AddressBlock::Range)
            .ok_or_else(|| format!("{} is not an address range (start > end)", quote(s)));
    }
    match s.parse::<IpAddr>() {
        Ok(addr) => Ok(AddressBlock::Net(IpNet::from(addr))),
        Err(_) => Err(format!("{} is not an address; {BLOCK_EXPECTED}", quote(s))),
    }
}

/// An instance's own address.
pub(crate) fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        if s.contains('/') {
            format!(
                "{} is not an IP address; an instance's ips are single addresses (no prefix length)",
                quote(s)
            )
        } else {
            format!("{} is not an IPv4 or IPv6 address", quote(s))
        }
    })
}

pub(crate) fn mac(s: &str) -> Result<MacAddr, String> {
    let mut bytes = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    let well_formed = parts.len() == 6
        && parts.iter().zip(bytes.iter_mut()).all(|(part, byte)| {
            part.len() == 2
                && part.bytes().all(|b| b.is_ascii_hexdigit())
                && u8::from_str_radix(part, 16).map(|v| *byte = v).is_ok()
        });
    if !well_formed {
        return Err(format!(
            "{} is not a MAC address; expected six hex pairs like \"52:54:00:12:34:56\"",
            quote(s)
        ));
    }
    if bytes[0] & 1 == 1 {
        return Err(format!(
            "{} is a multicast MAC address; an interface has a unicast one (lowest bit of the first byte clear)",
            quote(s)
        ));
    }
    Ok(MacAddr(bytes))
}

/// Linux accepts 1-15 bytes (IFNAMSIZ - 1) without '/', ':' or whitespace.
pub(crate) fn interface_name(s: &str) -> Result<(), String> {
    let problem = if s.is_empty() {
        Some("it is empty".to_owned())
    } else if s.len() > 15 {
        Some(format!("{} bytes, Linux allows at most 15", s.len()))
    } else if s == "." || s == ".." {
        Some("it is reserved".to_owned())
    } else {
        s.chars()
            .find(|&c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
            .map(|c| format!("{} is not allowed", quote(&c.to_string())))
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!("{} is not a network interface name: {p}", quote(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Scalar {
        Scalar::String(text.to_owned())
    }

    fn n(text: &str) -> Scalar {
        Scalar::Number(text.to_owned())
    }

    fn range(lo: u16, hi: u16) -> PortRange {
        PortRange::new(lo, hi).unwrap_or_else(|| panic!("bad test range {lo}-{hi}"))
    }

    #[test]
    fn protocols() {
        let cases: &[(Scalar, Case, Result<Protocol, &str>)] = &[
            (s("tcp"), Case::Exact, Ok(Protocol::Number(6))),
            (s("icmpv6"), Case::Exact, Ok(Protocol::Number(58))),
            (s("all"), Case::Exact, Ok(Protocol::All)),
            (s("ICMPv6"), Case::Insensitive, Ok(Protocol::Number(58))),
            (s("17"), Case::Exact, Ok(Protocol::Number(17))),
            (n("0"), Case::Exact, Ok(Protocol::Number(0))),
            (n("255"), Case::Exact, Ok(Protocol::Number(255))),
            (
                n("256"),
                Case::Exact,
                Err("protocol number 256 is out of range 0-255"),
            ),
            (
                n("6.5"),
                Case::Exact,
                Err("6.5 is not a protocol number; expected a whole number 0-255"),
            ),
            (
                n("-1"),
                Case::Exact,
                Err(
                    "-1 is not a protocol number; expected a whole number 0-255 (for every protocol write \"all\")",
                ),
            ),
            (
                s("TCP"),
                Case::Exact,
                Err(
                    "unknown protocol \"TCP\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255 (did you mean \"tcp\"?)",
                ),
            ),
            (
                s("sctp"),
                Case::Exact,
                Err(
                    "unknown protocol \"sctp\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255",
                ),
            ),
        ];
        for (input, case, expected) in cases {
            let got = protocol(input, *case);
            assert_eq!(got, (*expected).map_err(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn port_specs() {
        let cases: &[(Scalar, Result<Ports, &str>)] = &[
            (s("all"), Ok(Ports::All)),
            (s("22"), Ok(Ports::List(vec![range(22, 22)]))),
            (n("22"), Ok(Ports::List(vec![range(22, 22)]))),
            (
                s("80,443"),
                Ok(Ports::List(vec![range(80, 80), range(443, 443)])),
            ),
            (
                s("22, 8000-9000"),
                Ok(Ports::List(vec![range(22, 22), range(8000, 9000)])),
            ),
            (s("1-65535"), Ok(Ports::List(vec![range(1, 65535)]))),
            (
                s("80-70"),
                Err("\"80-70\" is not a port range (start > end)"),
            ),
            (s("0"), Err("\"0\" is not a port (out of range 1-65535)")),
            (
                s("22,70000"),
                Err("\"70000\" is not a port (out of range 1-65535)"),
            ),
            (s("0-80"), Err("\"0\" is not a port (out of range 1-65535)")),
            (n("0"), Err("0 is not a port (out of range 1-65535)")),
            (
                n("22.5"),
                Err("22.5 is not a port; expected a whole number 1-65535"),
            ),
            (
                s("http"),
                Err(
                    "\"http\" is not a port; expected a number 1-65535 or a range like \"8000-9000\"",
                ),
            ),
            (
                s("any"),
                Err(
                    "\"any\" is not a port; expected a number 1-65535 or a range like \"8000-9000\" (for every port write \"all\")",
                ),
            ),
            (
                s("+80"),
                Err(
                    "\"+80\" is not a port; expected a number 1-65535 or a range like \"8000-9000\"",
                ),
            ),
            (
                s("80,,443"),
                Err(
                    "\"80,,443\" has an empty entry; expected \"all\" or ports like \"22\", \"80,443\", \"8000-9000\"",
                ),
            ),
            (
                s(""),
                Err("empty port; expected \"all\" or ports like \"22\", \"80,443\", \"8000-9000\""),
            ),
            (
                s("22,all"),
                Err("\"22,all\" mixes \"all\" with other ports; write \"all\" alone"),
            ),
            (
                s("80-"),
                Err("\"80-\" is not a port range; expected two ports like \"8000-9000\""),
            ),
            (
                s("ALL"),
                Err("\"ALL\" is not a port (did you mean \"all\"?)"),
            ),
        ];
        for (input, expected) in cases {
            let got = ports(input, Case::Exact);
            assert_eq!(
                got,
                expected.clone().map_err(str::to_owned),
                "input {input:?}"
            );
        }
        assert_eq!(ports(&s("ALL"), Case::Insensitive), Ok(Ports::All));
    }

    #[test]
    fn blocks() {
        let net = |t: &str| -> AddressBlock {
            AddressBlock::Net(
                t.parse()
                    .unwrap_or_else(|e| panic!("bad test net {t}: {e}")),
            )
        };
        let cases: &[(&str, Result<AddressBlock, &str>)] = &[
            ("203.0.113.0/24", Ok(net("203.0.113.0/24"))),
            ("198.51.100.7", Ok(net("198.51.100.7/32"))),
            ("2001:db8::5", Ok(net("2001:db8::5/128"))),
            ("2001:db8::/32", Ok(net("2001:db8::/32"))),
            ("0.0.0.0/0", Ok(net("0.0.0.0/0"))),
            (
                "198.51.100.5/24",
                Err("\"198.51.100.5/24\" has host bits set; did you mean \"198.51.100.0/24\"?"),
            ),
            (
                "2001:db8::1/32",
                Err("\"2001:db8::1/32\" has host bits set; did you mean \"2001:db8::/32\"?"),
            ),
            (
                "198.51.100.0/33",
                Err("\"198.51.100.0/33\" is not a CIDR: prefix length 33 is longer than 32 bits"),
            ),
            (
                "2001:db8::/129",
                Err("\"2001:db8::/129\" is not a CIDR: prefix length 129 is longer than 128 bits"),
            ),
            (
                "198.51.100.0/x",
                Err("\"198.51.100.0/x\" is not a CIDR: \"x\" is not a prefix length 0-32"),
            ),
            (
                "198.51.100.0/-1",
                Err("\"198.51.100.0/-1\" is not a CIDR: \"-1\" is not a prefix length 0-32"),
            ),
            (
                "198.51.100.0/+8",
                Err("\"198.51.100.0/+8\" is not a CIDR: \"+8\" is not a prefix length 0-32"),
            ),
            (
                "198.51.100.300",
                Err(
                    "\"198.51.100.300\" is not an address; expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"",
                ),
            ),
            (
                "198.51.100.20-198.51.100.10",
                Err("\"198.51.100.20-198.51.100.10\" is not an address range (start > end)"),
            ),
            (
                "198.51.100.1-2001:db8::1",
                Err("\"198.51.100.1-2001:db8::1\" is not an address range: it mixes IPv4 and IPv6"),
            ),
        ];
        for (input, expected) in cases {
            let got = address_block(input);
            assert_eq!(got, expected.map_err(str::to_owned), "input {input:?}");
        }
        let range = address_block("198.51.100.10-198.51.100.20");
        assert!(matches!(range, Ok(AddressBlock::Range(_))), "{range:?}");
    }

    #[test]
    fn services() {
        let cases: &[(&str, Result<Service, &str>)] = &[
            (
                "udp:53",
                Ok(Service {
                    protocol: Protocol::Number(17),
                    ports: Ports::List(vec![range(53, 53)]),
                }),
            ),
            (
                "tcp:8000-8010",
                Ok(Service {
                    protocol: Protocol::Number(6),
                    ports: Ports::List(vec![range(8000, 8010)]),
                }),
            ),
            (
                "icmp",
                Ok(Service {
                    protocol: Protocol::Number(1),
                    ports: Ports::All,
                }),
            ),
            (
                "tcp",
                Ok(Service {
                    protocol: Protocol::Number(6),
                    ports: Ports::All,
                }),
            ),
            (
                "47",
                Ok(Service {
                    protocol: Protocol::Number(47),
                    ports: Ports::All,
                }),
            ),
            (
                "icmp:8",
                Err(
                    "service \"icmp:8\" gives ports for icmp; only tcp and udp have ports (write \"icmp\")",
                ),
            ),
            (
                "tcp:",
                Err(
                    "in service \"tcp:\": empty port; expected \"all\" or ports like \"22\", \"80,443\", \"8000-9000\"",
                ),
            ),
            (
                "http:80",
                Err(
                    "in service \"http:80\": unknown protocol \"http\"; expected tcp, udp, icmp, icmpv6, gre, all or an IP protocol number 0-255",
                ),
            ),
        ];
        for (input, expected) in cases {
            let got = service(input);
            assert_eq!(
                got,
                expected.clone().map_err(str::to_owned),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn macs_and_interfaces() {
        assert_eq!(
            mac("52:54:00:12:34:5f"),
            Ok(MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x5f]))
        );
        assert_eq!(
            mac("52:54:00:12:34"),
            Err("\"52:54:00:12:34\" is not a MAC address; expected six hex pairs like \"52:54:00:12:34:56\"".to_owned())
        );
        assert_eq!(
            mac("01:00:5e:00:00:01"),
            Err("\"01:00:5e:00:00:01\" is a multicast MAC address; an interface has a unicast one (lowest bit of the first byte clear)".to_owned())
        );
        assert_eq!(interface_name("tap-web1"), Ok(()));
        assert_eq!(
            interface_name("a-very-long-interface"),
            Err("\"a-very-long-interface\" is not a network interface name: 21 bytes, Linux allows at most 15".to_owned())
        );
        assert_eq!(
            interface_name("tap 1"),
            Err("\"tap 1\" is not a network interface name: \" \" is not allowed".to_owned())
        );
    }
}
