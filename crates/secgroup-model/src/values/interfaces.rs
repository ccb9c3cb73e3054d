//! An interface's identity: its name and MAC address.

use crate::location::quote;
use crate::model::MacAddr;

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

/// A host name as `--host-name` takes it: 1-253 bytes of letters,
/// digits, `-`, `_` and `.` (a DNS name or a short hostname).
pub(crate) fn host_name(s: &str) -> Result<(), String> {
    let valid = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{} is not a host name; expected 1-253 letters, digits, '-', '_' or '.' (the host's --host-name)",
            quote(s)
        ))
    }
}
