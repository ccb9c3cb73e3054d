//! Talking to secgroupd: the API client, with its failures turned into
//! the one-line errors and exit codes an operator gets.

use std::io;
use std::path::Path;

use secgroup_api::{Client, ClientError, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::outcome::{Error, Result};

const START_HINT: &str = "is the daemon running? systemctl start secgroupd, or pass --socket";
const PERMISSION_HINT: &str = "run as root or as a member of group secgroup, or pass --socket";
const BUSY_HINT: &str = "secgroupd may be stuck; see journalctl -u secgroupd";

/// How many known ids an "unknown id" error lists before "…".
const KNOWN_SHOWN: usize = 8;

pub struct Daemon {
    client: Client,
}

impl Daemon {
    pub fn new(socket: &Path) -> Daemon {
        Daemon {
            client: Client::new(socket),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.client.get(path).map_err(|e| self.error(e))
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        self.client.post(path, body).map_err(|e| self.error(e))
    }

    fn error(&self, e: ClientError) -> Error {
        let socket = self.client.socket().to_owned();
        match e {
            ClientError::Connect { source, .. } => {
                let (reason, hint) = connect_failure(&source);
                Error::Unreachable {
                    socket,
                    reason,
                    hint,
                }
            }
            ClientError::Io(source) => Error::Unreachable {
                socket,
                reason: match source.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        "no answer within 30 s".to_owned()
                    }
                    _ => format!("the connection failed: {source}"),
                },
                hint: BUSY_HINT,
            },
            ClientError::Api { status, body } if status < 500 => Error::Refused(refusal(&body)),
            ClientError::Api { status, body } => {
                Error::Daemon(format!("{} ({status})", body.error))
            }
            ClientError::Malformed(what) => Error::Daemon(format!(
                "its answer is not HTTP ({what}); is {} secgroupd's socket?",
                socket.display()
            )),
            ClientError::Json(e) => Error::Daemon(format!(
                "its answer is not what this secgroupctl expects ({e}); are secgroupctl and secgroupd the same version?"
            )),
        }
    }
}

/// The reason and the hint for a failed connect.
fn connect_failure(e: &io::Error) -> (String, &'static str) {
    match e.kind() {
        io::ErrorKind::NotFound => ("no such file".to_owned(), START_HINT),
        io::ErrorKind::ConnectionRefused => (
            "connection refused (a socket file is left but nobody listens)".to_owned(),
            START_HINT,
        ),
        io::ErrorKind::PermissionDenied => ("permission denied".to_owned(), PERMISSION_HINT),
        _ => (lowercase_first(&e.to_string()), START_HINT),
    }
}

/// The daemon's message, with the ids it knows when it says an id is
/// unknown: `no security group "sg-x" (known: sg-a, sg-b)`.
pub fn refusal(body: &ErrorBody) -> String {
    match &body.known {
        None => body.error.clone(),
        Some(known) if known.is_empty() => format!("{} (none are defined)", body.error),
        Some(known) => {
            let mut shown: Vec<&str> = known.iter().take(KNOWN_SHOWN).map(String::as_str).collect();
            if known.len() > KNOWN_SHOWN {
                shown.push("…");
            }
            format!("{} (known: {})", body.error, shown.join(", "))
        }
    }
}

/// io::Error texts start with a capital ("No such file or directory");
/// our messages are lowercase after the `secgroupctl:` prefix.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let check = |error: &str, known: Option<&[&str]>, expected: &str| {
            let body = ErrorBody {
                error: error.to_owned(),
                known: known.map(|k| k.iter().map(|s| (*s).to_owned()).collect()),
            };
            assert_eq!(refusal(&body), expected);
        };
        check("bad port", None, "bad port");
        check(
            "no security group \"sg-x\"",
            Some(&["sg-a", "sg-b"]),
            "no security group \"sg-x\" (known: sg-a, sg-b)",
        );
        check(
            "no instance \"i\"",
            Some(&[]),
            "no instance \"i\" (none are defined)",
        );
        let many: Vec<String> = (0..10).map(|i| format!("sg-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check(
            "no security group \"sg-x\"",
            Some(&many),
            "no security group \"sg-x\" (known: sg-0, sg-1, sg-2, sg-3, sg-4, sg-5, sg-6, sg-7, …)",
        );
    }

    #[test]
    fn connect_failures() {
        let cases = [
            (io::ErrorKind::NotFound, "no such file", START_HINT),
            (
                io::ErrorKind::PermissionDenied,
                "permission denied",
                PERMISSION_HINT,
            ),
            (
                io::ErrorKind::ConnectionRefused,
                "connection refused (a socket file is left but nobody listens)",
                START_HINT,
            ),
        ];
        for (kind, reason, hint) in cases {
            assert_eq!(
                connect_failure(&io::Error::from(kind)),
                (reason.to_owned(), hint),
                "{kind:?}"
            );
        }
        let other = io::Error::other("Not a directory");
        assert_eq!(connect_failure(&other).0, "not a directory");
    }
}
