//! Unique names, and the sweep of what crashed runs left behind.
//!
//! Every namespace and pin directory is called `sge2e-<pid>-<n>-<tag>`:
//! unique across the tests of one process and across processes, and the
//! pid tells the sweep whether its owner still lives, so parallel test
//! processes never remove each other's test beds.

use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix of everything the test bed creates.
pub const PREFIX: &str = "sge2e";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh name `sge2e-<pid>-<n>-<tag>`. No dots: bpffs refuses them.
pub fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{}-{n}-{tag}", std::process::id())
}

/// The pid in a name made by [`unique`].
fn owner(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?
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

/// Removes namespaces, pin directories and temp dirs of test processes
/// that died without cleaning up (SIGKILL, an abort). Once per process.
pub fn sweep_leftovers() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        for name in dead_entries(Path::new("/run/netns")) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &name])
                .status();
        }
        for name in dead_entries(Path::new("/sys/fs/bpf")) {
            let dir = Path::new("/sys/fs/bpf").join(&name);
            let _ = secgroup_dataplane::uninstall(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let tmp = std::env::temp_dir();
        for name in dead_entries(&tmp) {
            let _ = std::fs::remove_dir_all(tmp.join(name));
        }
    });
}

fn dead_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| owner(name).is_some_and(|pid| !alive(pid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_back_from_unique_names() {
        let name = unique("vm-a");
        assert_eq!(owner(&name), Some(std::process::id() as i32));
        for foreign in ["tour-h", "sgd-x-1-2", "sge2e", "sge2e-abc-1"] {
            assert_eq!(owner(foreign), None, "{foreign}");
        }
    }
}
