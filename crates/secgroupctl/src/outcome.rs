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
    /// A command line that cannot be run: one clap refuses, a malformed
    /// id, arguments that contradict each other, or a trace request the
    /// daemon finds malformed.
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
        hint: String,
    },
    /// The command line cannot be run as given, found before anything is
    /// read or asked (a malformed id, a tcp trace without `--port`), or a
    /// trace request secgroupd answers with 400.
    #[error("{0}")]
    Usage(String),
    /// secgroupd understood the request and refused it (a 4xx answer): an
    /// unknown id, a trace it cannot run, a caller outside the admin group.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// secgroupd failed (a 5xx answer) or said something we cannot read.
    #[error("secgroupd failed: {0}")]
    Daemon(String),
    /// Wrong input found by secgroupctl itself: a file, an id, a rules
    /// directory. Printed with its causes, each once (see [`chain`]).
    #[error("{}", chain(.0.chain()))]
    Input(#[from] anyhow::Error),
    /// Talking to etcd failed (`publish`, `export --etcd-endpoints`), or
    /// its flags are unusable.
    #[error("{0}")]
    Etcd(#[from] secgroup_etcd::EtcdError),
    /// Printing JSON failed (cannot happen with our types, but is not
    /// worth a panic).
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Unreachable { .. } => Code::Unreachable,
            Error::Usage(_) => Code::Usage,
            Error::Refused { .. } | Error::Input(_) => Code::No,
            Error::Daemon(_) | Error::Json(_) => Code::Failed,
            Error::Etcd(e) => etcd_code(e),
        }
    }
}

/// As for secgroupd: flags that cannot work are a usage error, an etcd
/// that does not answer is unreachable, the rest is a "no".
fn etcd_code(error: &secgroup_etcd::EtcdError) -> Code {
    use secgroup_etcd::EtcdError as E;
    match error {
        E::Options(_) | E::Prefix { .. } => Code::Usage,
        E::Request { .. } | E::Timeout { .. } => Code::Unreachable,
        E::ReadFile { .. } | E::Contended { .. } => Code::No,
        E::Compacted { .. } => Code::Failed,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes as one line, `outer: cause: root`, leaving out
/// every cause whose text is already there: many errors (ours, the
/// libraries', `io::Error` wrapped with its path) print their source
/// themselves, and `{:#}` would print it a second time.
pub fn chain<'a>(
    errors: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut text = String::new();
    for error in errors {
        let part = error.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// `value` as pretty JSON with a final newline: what `--json` prints.
pub fn json<T: serde::Serialize>(value: &T) -> Result<Output> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(Output::success(text))
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// An error that prints its source in its own text, as
    /// `secgroup_rulesdir::RulesDirError` does.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot access /x: {source}")]
    struct Access {
        source: io::Error,
    }

    #[test]
    fn causes_are_printed_once() {
        let root = || io::Error::new(io::ErrorKind::NotFound, "No such file (os error 2)");
        let check = |error: anyhow::Error, expected: &str| {
            assert_eq!(Error::Input(error).to_string(), expected);
        };
        check(
            anyhow::Error::new(Access { source: root() }).context("cannot read the rule files"),
            "cannot read the rule files: cannot access /x: No such file (os error 2)",
        );
        check(
            anyhow::Error::new(root()).context("cannot read a"),
            "cannot read a: No such file (os error 2)",
        );
        check(anyhow::anyhow!("plain"), "plain");
    }
}
