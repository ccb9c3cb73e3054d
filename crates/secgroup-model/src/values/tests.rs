use super::*;
use crate::model::{AddressBlock, MacAddr, PortRange, Ports, Protocol, Service};
use crate::raw::Scalar;

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
            Err("\"http\" is not a port; expected a number 1-65535 or a range like \"8000-9000\""),
        ),
        (
            s("any"),
            Err(
                "\"any\" is not a port; expected a number 1-65535 or a range like \"8000-9000\" (for every port write \"all\")",
            ),
        ),
        (
            s("+80"),
            Err("\"+80\" is not a port; expected a number 1-65535 or a range like \"8000-9000\""),
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
