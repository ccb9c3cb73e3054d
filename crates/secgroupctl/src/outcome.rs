//! What a command hands back (its text and exit code) and how it fails.
//! Commands build their whole output before anything is printed, so a
//! failure halfway never leaves half a table behind, and tests can look at
//! the text without a process.

use std::path::PathBuf;
use std::process::ExitCode;

/// The exit codes, documented in `--help` and docs/cli.md. Scripts depend
/// on them: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success = 0,
    /// The answer is "no" (a traced packet is dropped, the daemon is
    /// unhealthy), or the input is wrong.
    No = 1,
    /// A command line clap refuses.
    Usage = 2,
    /// secgroupd cannot be reached.
    Unreachable = 3,
    /// secgroupd failed, or contradicts itself (kernel vs reference).
    Failed = 4,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

/// A finished command: what to print where, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Code,
}

impl Output {
    pub fn success(stdout: impl Into<String>) -> Output {
        Output {
            stdout: stdout.into(),
            stderr: String::new(),
            code: Code::Success,
        }
    }

    pub fn with_code(mut self, code: Code) -> Output {
        self.code = code;
        self
    }

    pub fn with_stderr(mut self, stderr: impl Into<String>) -> Output {
        self.stderr = stderr.into();
        self
    }
}

/// Why a command could not answer. Printed as one line after
/// `secgroupctl: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answers on the socket, or we may not connect, or the daemon
    /// did not answer in time.
    #[error("cannot reach secgroupd at {}: {reason} ({hint})", socket.display())]
    Unreachable {
        socket: PathBuf,
        reason: String,
        hint: &'static str,
    },
    /// secgroupd understood the request and refused it (a 4xx answer): an
    /// unknown id, a trace it cannot run, a caller outside the admin group.
    #[error("{0}")]
    Refused(String),
    /// secgroupd failed (a 5xx answer) or said something we cannot read.
    #[error("secgroupd failed: {0}")]
    Daemon(String),
    /// Wrong input found by secgroupctl itself: a file, an id, a rules
    /// directory.
    #[error("{0:#}")]
    Input(#[from] anyhow::Error),
    /// Printing JSON failed (cannot happen with our types, but is not
    /// worth a panic).
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Unreachable { .. } => Code::Unreachable,
            Error::Refused(_) | Error::Input(_) => Code::No,
            Error::Daemon(_) | Error::Json(_) => Code::Failed,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `value` as pretty JSON with a final newline: what `--json` prints.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Output> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(Output::success(text))
}
