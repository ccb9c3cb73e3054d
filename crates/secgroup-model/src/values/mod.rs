//! Parsers for the strings inside rule files: protocols, ports, addresses,
//! MACs, interface names. Each returns the model value or the message of a
//! diagnostic (which names the offending value and what was expected);
//! `validate` adds the location.

use crate::location::quote;
use crate::model::{Action, Enforcement, LogMode};

mod addresses;
mod interfaces;
mod ports;
mod protocols;
#[cfg(test)]
mod tests;

pub(crate) use addresses::{address_block, ip};
pub(crate) use interfaces::{host_name, interface_name, mac};
pub(crate) use ports::ports;
pub(crate) use protocols::{protocol, service};

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

/// An instance's `"log"`: `none`, `drops` or `all`.
pub(crate) fn log_mode(s: &str) -> Result<LogMode, String> {
    LogMode::parse(s).ok_or_else(|| {
        let hint = match s.to_ascii_lowercase().as_str() {
            "drop" | "denied" | "deny" => " (did you mean \"drops\"?)",
            "off" | "false" | "no" => " (did you mean \"none\"?)",
            "on" | "true" | "yes" | "accept" => " (did you mean \"all\"?)",
            other if LogMode::parse(other).is_some() => " (names are lower case)",
            _ => "",
        };
        format!(
            "unknown log mode {}; expected \"none\", \"drops\" or \"all\"{hint}",
            quote(s)
        )
    })
}

/// An instance's `"enforcement"`: `enforce` or `audit`.
pub(crate) fn enforcement(s: &str) -> Result<Enforcement, String> {
    Enforcement::parse(s).ok_or_else(|| {
        let hint = match s.to_ascii_lowercase().as_str() {
            "enforced" | "enforcing" | "on" => " (did you mean \"enforce\"?)",
            "audited" | "auditing" | "dry-run" | "dryrun" | "monitor" | "off" => {
                " (did you mean \"audit\"?)"
            }
            other if Enforcement::parse(other).is_some() => " (names are lower case)",
            _ => "",
        };
        format!(
            "unknown enforcement {}; expected \"enforce\" or \"audit\"{hint}",
            quote(s)
        )
    })
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
