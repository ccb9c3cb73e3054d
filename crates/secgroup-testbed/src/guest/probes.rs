//! Traffic from inside a guest, through `sgtb-tool` and busybox: each
//! probe is one agent request and says whether the exchange completed
//! within its timeout ("blocked" means it did not). The guest's own
//! stack does the work, so what crosses the tap is what a VM sends:
//! virtio-net frames with its offloads.

use std::net::IpAddr;
use std::time::Duration;

use super::Guest;

/// An address as the tool takes it: link-local IPv6 with `%eth0`.
fn target(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => format!("{v6}%eth0"),
        _ => ip.to_string(),
    }
}

fn millis(timeout: Duration) -> u128 {
    timeout.as_millis().max(1)
}

/// Room for the agent beyond a probe's own timeout.
const SLACK: Duration = Duration::from_secs(10);

impl Guest {
    /// TCP and UDP echo servers on every address, on `ports`.
    pub fn serve(&self, ports: &[u16]) {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        self.sh(&format!("sgtb-tool serve {}", list.join(" ")));
    }

    fn probe(&self, command: String, timeout: Duration) -> bool {
        let out = self.run_for(&command, timeout + SLACK);
        match out.status {
            0 => true,
            1 => false,
            other => panic!(
                "guest {}: `{command}` could not run (status {other}): {}",
                self.name,
                out.output.trim()
            ),
        }
    }

    /// A TCP connection to `to:port` whose first line is echoed back
    /// (the peer runs [`Guest::serve`] or another echo).
    pub fn tcp(&self, to: IpAddr, port: u16, timeout: Duration) -> bool {
        self.probe(
            format!("sgtb-tool tcp {} {port} {}", target(to), millis(timeout)),
            timeout,
        )
    }

    /// A UDP datagram to `to:port`, echoed back.
    pub fn udp(&self, to: IpAddr, port: u16, timeout: Duration) -> bool {
        self.udp_text(to, port, "sgtb-udp", timeout)
    }

    /// A UDP datagram carrying `text` (no spaces), echoed back; the
    /// receiving guest logs it ([`Guest::udp_log`]).
    pub fn udp_text(&self, to: IpAddr, port: u16, text: &str, timeout: Duration) -> bool {
        self.probe(
            format!(
                "sgtb-tool udp {} {port} {} {text}",
                target(to),
                millis(timeout)
            ),
            timeout,
        )
    }

    /// Whether `to` answers an echo request within `timeout`: one request
    /// a second until one is answered, so a first request lost while the
    /// neighbour is resolved (or a bridge port comes up) is tried again.
    pub fn ping(&self, to: IpAddr, timeout: Duration) -> bool {
        let secs = timeout.as_secs().max(1);
        let ping = match to {
            IpAddr::V4(_) => format!("ping -c 1 -W 1 {to}"),
            IpAddr::V6(_) => format!("ping6 -c 1 -W 1 {}", target(to)),
        };
        let command = format!(
            "end=$(($(date +%s) + {secs})); until {ping} >/dev/null; do \
             [ $(date +%s) -lt $end ] || exit 1; done"
        );
        self.run_for(&command, timeout + SLACK).success()
    }

    /// Opens a TCP connection `name` to `to:port` and keeps it open in
    /// the guest, for [`Guest::held_echoes`]; panics unless it opens.
    pub fn hold(&self, name: &str, to: IpAddr, port: u16) {
        self.sh(&format!("sgtb-tool hold {name} {} {port}", target(to)));
    }

    /// Whether a line sent on held connection `name` comes back within
    /// `timeout`.
    pub fn held_echoes(&self, name: &str, timeout: Duration) -> bool {
        self.probe(format!("sgtb-tool say {name} {}", millis(timeout)), timeout)
    }

    /// Sends `bytes` to the echo at `to:port` in 64 KiB writes (TSO-size
    /// segments when the NIC offloads) and whether every byte came back
    /// in order within `timeout`.
    pub fn bulk(&self, to: IpAddr, port: u16, bytes: u64, timeout: Duration) -> bool {
        self.probe(
            format!(
                "sgtb-tool bulk {} {port} {bytes} {}",
                target(to),
                millis(timeout)
            ),
            timeout,
        )
    }

    /// Writes `frames` as they are onto eth0, bypassing the guest's
    /// stack: what a compromised guest can send.
    pub fn send_raw(&self, frames: &[Vec<u8>]) {
        let hex: Vec<String> = frames
            .iter()
            .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        self.sh(&format!("sgtb-tool raw eth0 {}", hex.join(" ")));
    }

    /// Every UDP datagram the guest's echo servers received:
    /// `PORT SOURCE TEXT` lines.
    pub fn udp_log(&self) -> String {
        self.run("cat /tmp/udp.log 2>/dev/null").output
    }

    /// Asks DHCP for an IPv4 address (busybox udhcpc); the address it
    /// got, if any.
    pub fn dhcp(&self, timeout: Duration) -> Option<String> {
        let tries = timeout.as_secs().max(3);
        let out = self.run_for(
            &format!("udhcpc -i eth0 -s /usr/share/udhcpc/default.script -n -q -f -t {tries} -T 1 -A 1 >/tmp/udhcpc.log 2>&1; ip -4 -o addr show dev eth0"),
            timeout + SLACK,
        );
        out.output
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .map(super::address)
    }

    /// The guest's neighbour entry for `ip`: its MAC, if it has one.
    pub fn neighbour(&self, ip: IpAddr) -> Option<String> {
        let table = self.run("ip neigh show dev eth0").output;
        let wanted = ip.to_string();
        table
            .lines()
            .find(|line| line.split_whitespace().next() == Some(wanted.as_str()))?
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_targets_name_the_nic() {
        let ll: IpAddr = "fe80::1".parse().unwrap_or_else(|e| panic!("{e}"));
        let global: IpAddr = "2001:db8::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target(ll), "fe80::1%eth0");
        assert_eq!(target(global), "2001:db8::1");
    }
}
