//! Running commands: to completion, output captured, stdin closed (or
//! fed), and a failure that names the command and quotes its stderr.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::error::{Error, or_panic};

/// `program arg arg...`, for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to completion with `input` (or nothing) on its stdin;
/// its output whatever the exit status.
pub fn try_output(command: &mut Command, input: Option<&str>) -> Result<Output, Error> {
    let spawn_error = |command: &Command, source| Error::Spawn {
        command: describe(command),
        source,
    };
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| spawn_error(command, e))?;
    if let (Some(text), Some(mut pipe)) = (input, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| spawn_error(command, e))?;
    }
    child
        .wait_with_output()
        .map_err(|e| spawn_error(command, e))
}

/// [`try_output`], and an error unless it exited with 0.
pub fn try_run(command: &mut Command, input: Option<&str>) -> Result<Output, Error> {
    let output = try_output(command, input)?;
    if !output.status.success() {
        return Err(Error::Failed {
            command: describe(command),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// Runs `command` to completion; its output whatever the exit status.
/// Panics only if it cannot be started.
pub fn output(command: &mut Command) -> Output {
    or_panic(try_output(command, None))
}

/// Runs `args` (a program and its arguments); an error with its stderr
/// unless it succeeds.
pub fn try_sh(args: &[&str]) -> Result<Output, Error> {
    try_run(Command::new(args[0]).args(&args[1..]), None)
}

/// [`try_sh`], panicking with the command and its stderr.
pub fn sh(args: &[&str]) {
    or_panic(try_sh(args));
}

/// Makes `command`'s process die (SIGKILL) with the thread that spawns
/// it, whatever happens to the test or tool: for servers a test starts
/// (secgroupd, etcd).
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `command` silently and whether it succeeded: for cleanup, where
/// a failure is no news.
pub fn quietly(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_and_quotes_its_stderr() {
        let e = try_sh(&["sh", "-c", "echo oops >&2; exit 3"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("`sh -c echo oops >&2; exit 3` failed (exit status: 3): oops")
        );
        let out = try_run(&mut Command::new("cat"), Some("fed")).map(|o| o.stdout);
        assert_eq!(out.ok().as_deref(), Some(&b"fed"[..]));
        assert!(!quietly(&mut Command::new("false")));
        let missing = try_sh(&["/nonexistent/program"])
            .err()
            .map(|e| e.to_string());
        assert!(
            missing
                .as_deref()
                .is_some_and(|m| m.starts_with("starting `/nonexistent/program`")),
            "{missing:?}"
        );
    }
}
