//! A hypervisor host as the tests see it: its own network namespace, a
//! scratch dir holding the rules directory, the daemon's socket and logs,
//! and a unique pin directory; plus secgroupd preconfigured for all
//! three. Built after a sweep of what dead runs left behind.

use std::path::PathBuf;
use std::time::Duration;

use crate::binary::secgroupd_binary;
use crate::control::Control;
use crate::daemon::{Daemon, Secgroupd};
use crate::files::{PinDir, RulesDir, Scratch};
use crate::names::sweep_leftovers;
use crate::netns::NetNs;

pub struct Host {
    // Field order is drop order: the namespace (and its interfaces) goes
    // first, then the pins, then the files.
    pub ns: NetNs,
    pub pins: PinDir,
    pub rules: RulesDir,
    pub dir: Scratch,
}

impl Host {
    /// Namespace `sgtb-...-TAG-h`, files `$TMPDIR/sgtb-...-TAG`, pins
    /// `/sys/fs/bpf/sgtb-...-TAG`.
    pub fn new(tag: &str) -> Host {
        sweep_leftovers();
        let dir = Scratch::new(tag);
        Host {
            ns: NetNs::new(&format!("{tag}-h")),
            pins: PinDir::new(tag),
            rules: RulesDir::new(&dir),
            dir,
        }
    }

    /// The daemon's API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// `binary` in this host's namespace on its rules directory, socket
    /// and pin directory; add flags and environment, then `start`.
    pub fn secgroupd(&self, binary: impl Into<PathBuf>) -> Secgroupd {
        Secgroupd::new(binary, &self.dir.path)
            .netns(&self.ns)
            .rules_dir(&self.rules.path)
            .socket(&self.socket())
            .bpffs(&self.pins.path)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
    }

    /// The workspace's secgroupd ([`secgroupd_binary`]) with `flags`,
    /// started and ready.
    pub fn start_daemon(&self, flags: &[&str]) -> Daemon {
        self.secgroupd(secgroupd_binary()).args(flags).start()
    }

    /// Writes `rules` (a rule file's JSON) as `file` in the rules
    /// directory, starts the
    /// workspace's secgroupd with `flags` and waits up to `attach` for each
    /// of `instances` to be attached.
    pub fn start_enforcing(
        &self,
        file: &str,
        rules: &str,
        instances: &[String],
        flags: &[&str],
        attach: Duration,
    ) -> (Daemon, Control) {
        self.rules.write(file, rules);
        let daemon = self.start_daemon(flags);
        let control = Control::of(&daemon);
        for instance in instances {
            control.wait_attached(instance, attach);
        }
        (daemon, control)
    }

    /// Replaces `file` with `rules` (JSON) and waits until the daemon has
    /// applied them; panics with its error if it rejected them.
    pub fn apply_rules(&self, control: &Control, file: &str, rules: &str) {
        let status = control.reload_after(|| self.rules.replace(file, rules));
        if let Some(error) = status.last_error {
            panic!("the new rules were rejected: {error:?}");
        }
    }
}
