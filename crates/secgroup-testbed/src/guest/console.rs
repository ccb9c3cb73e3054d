//! The test's side of the guest agent (`guest/agent`), spoken over the
//! guest's second serial port, which QEMU connects to its stdin and
//! stdout. A request is one line `ID SECONDS BASE64-SCRIPT`; the answer
//! is `@@SGTB-BEGIN ID`, the script's output in base64, `@@SGTB-END ID
//! STATUS`. The kernel logs to the first port, so nothing else ever
//! writes here; base64 keeps whatever a command prints apart from the
//! markers, and the ids tie each answer to its request even after a
//! request timed out on this side.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const READY: &str = "@@SGTB-READY";
const BEGIN: &str = "@@SGTB-BEGIN ";
const END: &str = "@@SGTB-END ";

/// What a command run in the guest did: its exit status (the shell's:
/// 137 when the agent's timeout killed it) and its stdout and stderr,
/// merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOutput {
    pub status: i32,
    pub output: String,
}

impl GuestOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

pub(crate) struct Console {
    input: ChildStdin,
    lines: Receiver<String>,
    next: u64,
}

impl Console {
    /// Reads QEMU's stdout on a thread of its own, line by line, until
    /// QEMU exits; `booting` is held until the agent's first words (or
    /// QEMU's end), whether or not anyone waits for them yet.
    pub(crate) fn new<T: Send + 'static>(
        input: ChildStdin,
        output: ChildStdout,
        booting: T,
    ) -> Console {
        let (send, lines) = channel();
        std::thread::spawn(move || {
            let mut booting = Some(booting);
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { return };
                if line.trim() == READY {
                    booting = None;
                }
                if send.send(line).is_err() {
                    return;
                }
            }
            drop(booting);
        });
        Console {
            input,
            lines,
            next: 0,
        }
    }

    fn line(&self, deadline: Instant) -> Result<String, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err("no answer in time".into()),
            Err(RecvTimeoutError::Disconnected) => Err("QEMU exited".into()),
        }
    }

    /// Waits for the agent's first words.
    pub(crate) fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.line(deadline)?.trim() != READY {}
        Ok(())
    }

    /// Runs `script` with `sh` in the guest, killed after `timeout`.
    pub(crate) fn run(&mut self, script: &str, timeout: Duration) -> Result<GuestOutput, String> {
        self.next += 1;
        let id = self.next;
        let secs = timeout.as_secs().max(1);
        let request = format!("{id} {secs} {}\n", base64::encode(script.as_bytes()));
        self.input
            .write_all(request.as_bytes())
            .and_then(|()| self.input.flush())
            .map_err(|e| format!("writing to the agent: {e}"))?;
        // The guest kills the script after `secs`; allow for a slow reply.
        let deadline = Instant::now() + Duration::from_secs(secs + 10);
        let begin = format!("{BEGIN}{id}");
        while self.line(deadline)?.trim() != begin {}
        let mut encoded = String::new();
        loop {
            let line = self.line(deadline)?;
            let line = line.trim();
            if let Some(rest) = line.strip_prefix(END) {
                let (got, status) = rest.split_once(' ').unwrap_or((rest, ""));
                if got != id.to_string() {
                    return Err(format!("answer {got} to request {id}"));
                }
                let status = status
                    .parse()
                    .map_err(|_| format!("bad status {status:?}"))?;
                let bytes = base64::decode(&encoded)?;
                return Ok(GuestOutput {
                    status,
                    output: String::from_utf8_lossy(&bytes).into_owned(),
                });
            }
            encoded.push_str(line);
        }
    }
}

/// Standard base64 (RFC 4648, padded), as busybox's `base64` speaks it:
/// twenty lines do not justify a dependency.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        let (mut acc, mut bits) = (0u32, 0);
        for c in text
            .bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        {
            let value = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| format!("not base64: {:?}", char::from(c)))?;
            acc = acc << 6 | value as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_and_matches_rfc4648() {
            for (plain, coded) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foobar", "Zm9vYmFy"),
            ] {
                assert_eq!(encode(plain.as_bytes()), coded);
                assert_eq!(decode(coded).as_deref(), Ok(plain.as_bytes()));
            }
            assert_eq!(decode("Zm9v\nYmFy\n").as_deref(), Ok(&b"foobar"[..]));
            assert!(decode("Zm9v!").is_err());
        }
    }
}
