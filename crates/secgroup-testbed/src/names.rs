//! Unique names, and the sweep of what dead runs left behind.
//!
//! Everything the test bed creates is called `<prefix>-<pid>-<n>-<tag>`
//! (`sgtb-...` for tests): unique across the tests of one process and
//! across processes, and the pid tells a sweep whether its owner still
//! lives, so parallel test processes never remove each other's things.

use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix of everything the tests create.
pub const PREFIX: &str = "sgtb";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh name `sgtb-<pid>-<n>-<tag>`. No dots: bpffs refuses them.
pub fn unique(tag: &str) -> String {
    unique_with(PREFIX, tag)
}

/// A fresh name `<prefix>-<pid>-<n>-<tag>`, for tools with a prefix of
/// their own (the benchmarks' `sgb`).
pub fn unique_with(prefix: &str, tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{tag}", std::process::id())
}

/// The pid in a name made by [`unique_with`] with `prefix`.
fn owner(prefix: &str, name: &str) -> Option<i32> {
    name.strip_prefix(prefix)?
        .strip_prefix('-')?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence. EPERM still means it exists.
    // SAFETY: kill with signal 0 sends nothing.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Removes what processes that died without cleaning up (SIGKILL, an
/// abort) left under `prefix`: QEMU guests, network namespaces, bpffs pin directories
/// (unpinning their links detaches the hooks) and temp dirs.
pub fn sweep(prefix: &str) {
    // Guests first: a live QEMU keeps its namespace alive.
    for name in dead_entries(prefix, &std::env::temp_dir()) {
        kill_recorded(&std::env::temp_dir().join(name));
    }
    for name in dead_entries(prefix, Path::new("/run/netns")) {
        crate::cmd::quietly(std::process::Command::new("ip").args(["netns", "del", &name]));
    }
    for dir in [Path::new("/sys/fs/bpf").to_owned(), std::env::temp_dir()] {
        for name in dead_entries(prefix, &dir) {
            let _ = std::fs::remove_dir_all(dir.join(name));
        }
    }
}

/// Kills the process a dead run recorded in `dir/*.pid` (its QEMU
/// guests), if it still runs and its command line names `dir`: a pid
/// reused since by an unrelated process is left alone.
fn kill_recorded(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pid") {
            continue;
        }
        let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let needle = dir.to_string_lossy();
        if String::from_utf8_lossy(&cmdline).contains(needle.as_ref()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// [`sweep`] of the tests' own prefix, once per process.
pub fn sweep_leftovers() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep(PREFIX));
}

fn dead_entries(prefix: &str, dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| owner(prefix, name).is_some_and(|pid| !alive(pid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded process is killed only when its command line names the
    /// dead run's directory (pids get reused).
    #[test]
    fn recorded_processes_naming_the_dir_are_killed_and_others_left() {
        let dir = std::env::temp_dir().join(unique("pidfiles"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let spawn = |name: &str| {
            // Not the last command, so sh cannot exec it and drop `name`.
            let child = std::process::Command::new("sh")
                .args(["-c", "sleep 30; true", name])
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"));
            let cmdline = format!("/proc/{}/cmdline", child.id());
            let started = crate::wait::poll(std::time::Duration::from_secs(10), || {
                let text = std::fs::read(&cmdline).unwrap_or_default();
                String::from_utf8_lossy(&text).contains(name).then_some(())
            });
            assert!(started.is_some(), "sh never ran with {name}");
            child
        };
        let mut ours = spawn(&dir.to_string_lossy());
        let mut other = spawn("unrelated");
        std::fs::write(dir.join("qemu.pid"), ours.id().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("other.pid"), other.id().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        kill_recorded(&dir);
        let status = ours.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(!status.success(), "the recorded process was killed");
        assert!(
            matches!(other.try_wait(), Ok(None)),
            "the unrelated one lives"
        );
        let _ = other.kill();
        let _ = other.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn owner_is_read_back_from_unique_names() {
        let me = Some(std::process::id() as i32);
        assert_eq!(owner(PREFIX, &unique("vm-a")), me);
        assert_eq!(owner("sgb", &unique_with("sgb", "host")), me);
        for foreign in ["tour-h", "sgd-x-1-2", "sgtb", "sgtb-abc-1", "sgtbx-1-2"] {
            assert_eq!(owner(PREFIX, foreign), None, "{foreign}");
        }
    }
}
