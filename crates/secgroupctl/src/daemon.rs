//! Talking to secgroupd: the API client, with its failures turned into
//! the one-line errors and exit codes an operator gets.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use secgroup_api::{Client, ClientError, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::outcome::{Error, Result};

const START_HINT: &str = "is the daemon running? systemctl start secgroupd, or pass --socket";
const PERMISSION_HINT: &str = "run as root or as a member of group secgroup, or pass --socket";
const BUSY_HINT: &str = "secgroupd may be stuck; see journalctl -u secgroupd";
const PATH_HINT: &str =
    "pass --socket with the path secgroupd listens on, by default /run/secgroup/secgroupd.sock";

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

    /// The event stream; its lines come as the daemon sends them.
    pub fn events(&self, filter: &secgroup_api::EventFilter) -> Result<secgroup_api::EventLines> {
        self.client.events(filter).map_err(|e| self.error(e))
    }

    pub fn error(&self, e: ClientError) -> Error {
        let socket = self.client.socket().to_owned();
        match e {
            ClientError::Connect { source, .. } => {
                let (reason, hint) = connect_failure(&source, &socket);
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
                hint: BUSY_HINT.to_owned(),
            },
            ClientError::Api { status, body } if status < 500 => Error::Refused {
                status,
                message: refusal(&body),
            },
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

/// The reason and the hint for a failed connect to `socket`: what is
/// there instead of a listening socket, and what to do about it.
fn connect_failure(e: &io::Error, socket: &Path) -> (String, String) {
    let (reason, hint) = match e.kind() {
        io::ErrorKind::NotFound => match fs::symlink_metadata(socket) {
            Ok(_) => (
                match fs::read_link(socket) {
                    Ok(target) => format!(
                        "it is a symbolic link to {}, which does not exist",
                        target.display()
                    ),
                    Err(_) => "it is a symbolic link to nothing".to_owned(),
                },
                START_HINT,
            ),
            Err(_) => match socket.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) if !dir.exists() => (
                    format!(
                        "nothing is there, not even its directory {} (no such file)",
                        dir.display()
                    ),
                    START_HINT,
                ),
                _ => ("nothing is there (no such file)".to_owned(), START_HINT),
            },
        },
        io::ErrorKind::ConnectionRefused => match fs::metadata(socket) {
            Ok(meta) if meta.file_type().is_socket() => (
                "a socket is there but nobody listens on it (connection refused)".to_owned(),
                START_HINT,
            ),
            Ok(meta) if meta.is_dir() => {
                let inside = socket.join("secgroupd.sock");
                return (
                    "it is a directory, not a socket".to_owned(),
                    format!(
                        "pass --socket with the socket in it, such as {}, not the directory",
                        inside.display()
                    ),
                );
            }
            Ok(meta) => (
                format!("it is {}, not a socket", file_kind(&meta)),
                PATH_HINT,
            ),
            Err(_) => ("connection refused".to_owned(), START_HINT),
        },
        io::ErrorKind::PermissionDenied => match fs::metadata(socket) {
            Ok(meta) => (
                format!(
                    "permission denied (the socket's mode is {:04o}, owner uid {}, group gid {})",
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid()
                ),
                PERMISSION_HINT,
            ),
            Err(_) => (
                "permission denied (a directory on the way may not be searched)".to_owned(),
                PERMISSION_HINT,
            ),
        },
        io::ErrorKind::NotADirectory => {
            let blocker = socket
                .ancestors()
                .skip(1)
                .find(|a| fs::metadata(a).is_ok_and(|m| !m.is_dir()));
            let reason = match blocker.and_then(|b| Some((b, fs::metadata(b).ok()?))) {
                Some((b, meta)) => {
                    format!("{} is {}, not a directory", b.display(), file_kind(&meta))
                }
                None => "a part of the path is not a directory".to_owned(),
            };
            (reason, PATH_HINT)
        }
        _ => (lowercase_first(&e.to_string()), START_HINT),
    };
    (reason, hint.to_owned())
}

/// "a regular file", "a directory", ...: what a path is.
fn file_kind(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a socket"
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
        // The path matters only where the error leaves a doubt; the CLI
        // tests create each kind of path.
        let nowhere = Path::new("/nonexistent-secgroup-test/secgroupd.sock");
        let check = |kind: io::ErrorKind, reason: &str, hint: &str| {
            assert_eq!(
                connect_failure(&io::Error::from(kind), nowhere),
                (reason.to_owned(), hint.to_owned()),
                "{kind:?}"
            );
        };
        check(
            io::ErrorKind::NotFound,
            "nothing is there, not even its directory /nonexistent-secgroup-test (no such file)",
            START_HINT,
        );
        check(
            io::ErrorKind::PermissionDenied,
            "permission denied (a directory on the way may not be searched)",
            PERMISSION_HINT,
        );
        check(
            io::ErrorKind::ConnectionRefused,
            "connection refused",
            START_HINT,
        );
        let other = io::Error::other("Too many open files");
        assert_eq!(connect_failure(&other, nowhere).0, "too many open files");
    }
}
