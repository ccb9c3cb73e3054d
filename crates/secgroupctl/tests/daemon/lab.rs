//! A pretend hypervisor for the CLI: the test bed's `Lab` (a host
//! namespace with the VM's "tap", the guest's namespace behind it, a
//! rules directory, a pin directory) running the real secgroupd, and the
//! built `secgroupctl` to ask questions with. Everything is removed on
//! drop, panics included.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use secgroup_testbed::{Control, Daemon, secgroupd_binary};

pub use secgroup_testbed::{GUEST_IP, root_or_skip};

/// What one secgroupctl run gave.
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(args: &[&str], output: Output) -> Run {
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code; returns self for more checks.
    pub fn exits(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "secgroupctl {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Human output must be readable at 100 columns.
    pub fn fits(self) -> Run {
        for line in self.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "secgroupctl {:?}: line wider than 100 columns:\n{line}",
                self.args
            );
        }
        self
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "secgroupctl {:?}: stdout is not the JSON expected ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    pub fn has(self, fragment: &str) -> Run {
        assert!(
            self.stdout.contains(fragment),
            "secgroupctl {:?}: stdout lacks {fragment:?}:\n{}",
            self.args,
            self.stdout
        );
        self
    }
}

/// Runs the built secgroupctl with `args` and `SECGROUP_SOCKET` unset.
pub fn secgroupctl(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_secgroupctl"))
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR")
        .output()
        .unwrap_or_else(|e| panic!("running secgroupctl: {e}"));
    Run::from(args, output)
}

pub struct Lab {
    // Field order is drop order: the daemon stops before the lab goes;
    // its guard prints its log if the test fails.
    _daemon: Daemon,
    lab: secgroup_testbed::Lab,
    pub dir: PathBuf,
    pub rules: PathBuf,
    pub socket: PathBuf,
}

impl Lab {
    /// The namespaces, the link, the rules (`rules.json` holding `rules`)
    /// and a running daemon with the instance attached.
    pub fn start(rules: &str) -> Lab {
        let lab = secgroup_testbed::Lab::new("ctl");
        lab.host.rules.write("rules.json", rules);
        let daemon = lab.host.secgroupd(secgroupd_binary()).start();
        Control::of(&daemon).wait_attached("ins-vm", Duration::from_secs(30));
        Lab {
            _daemon: daemon,
            dir: lab.host.dir.path.clone(),
            rules: lab.host.rules.path.clone(),
            socket: lab.host.socket(),
            lab,
        }
    }

    /// secgroupctl talking to this lab's daemon.
    pub fn ctl(&self, args: &[&str]) -> Run {
        let socket = self.socket.display().to_string();
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        secgroupctl(&full)
    }

    pub fn rules_dir(&self) -> String {
        self.rules.display().to_string()
    }

    /// One ping from the guest to the host (the VM's egress).
    pub fn guest_pings_host(&self) -> bool {
        self.lab.guest_pings_host()
    }

    /// One ping from the host to the guest (the VM's ingress).
    pub fn host_pings_guest(&self) -> bool {
        self.lab.host_pings_guest()
    }
}
