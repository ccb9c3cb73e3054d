//! Ports: `"all"`, a number, or a comma list of ports and ranges.

use super::{Case, decimal};
use crate::location::quote;
use crate::model::{PortRange, Ports};
use crate::raw::Scalar;

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
