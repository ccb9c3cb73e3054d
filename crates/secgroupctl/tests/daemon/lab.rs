//! A pretend hypervisor for the CLI: the test bed's `Lab` (a host
//! namespace with the VM's "tap", the guest's namespace behind it, a
//! rules directory, a pin directory) running the real secgroupd, and the
//! built `secgroupctl` to ask questions with. Everything is removed on
//! drop, panics included.

use std::fs::File;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
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

    /// Human output on a 100-column terminal must fit in it.
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

/// The built secgroupctl with `args` and `SECGROUP_SOCKET`,
/// `SECGROUP_RULES_DIR` and `COLUMNS` unset.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secgroupctl"));
    command
        .args(args)
        .env_remove("SECGROUP_SOCKET")
        .env_remove("SECGROUP_RULES_DIR")
        .env_remove("COLUMNS");
    command
}

/// Runs secgroupctl with its output piped, as a script would.
pub fn secgroupctl(args: &[&str]) -> Run {
    let output = command(args)
        .output()
        .unwrap_or_else(|e| panic!("running secgroupctl: {e}"));
    Run::from(args, output)
}

/// Runs secgroupctl with standard output on a terminal `columns` wide
/// (a pseudo-terminal in raw mode, so lines end in `\n` alone).
pub fn secgroupctl_on_tty(args: &[&str], columns: u16) -> Run {
    let (mut master, slave) = pty(columns);
    let mut command = command(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("running secgroupctl: {e}"));
    // Our copy of the terminal's end goes, so reading ends with the child.
    drop(command);
    let mut stdout = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match master.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => stdout.extend_from_slice(&buffer[..n]),
            // EIO: the other end is closed.
            Err(_) => break,
        }
    }
    let mut output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for secgroupctl: {e}"));
    output.stdout = stdout;
    Run::from(args, output)
}

/// A pseudo-terminal `columns` wide in raw mode: (master, slave).
fn pty(columns: u16) -> (File, File) {
    let size = libc::winsize {
        ws_row: 50,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two fds we then own; the termios calls work
    // on the slave we just got, with a struct we own.
    unsafe {
        assert_eq!(
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size
            ),
            0,
            "openpty: {}",
            std::io::Error::last_os_error()
        );
        let mut termios: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave, &mut termios), 0);
        libc::cfmakeraw(&mut termios);
        assert_eq!(libc::tcsetattr(slave, libc::TCSANOW, &termios), 0);
        (File::from_raw_fd(master), File::from_raw_fd(slave))
    }
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
        Lab::start_with(&[("rules.json", rules)])
    }

    /// As [`Lab::start`], with these rule files (name, contents).
    pub fn start_with(files: &[(&str, &str)]) -> Lab {
        Lab::start_for(files, "ins-vm")
    }

    /// As [`Lab::start_with`], waiting for `instance` (bound to the tap,
    /// `tap-vm`) to be attached.
    pub fn start_for(files: &[(&str, &str)], instance: &str) -> Lab {
        let lab = secgroup_testbed::Lab::new("ctl");
        for (name, contents) in files {
            lab.host.rules.write(name, contents);
        }
        let daemon = lab.host.secgroupd(secgroupd_binary()).start();
        Control::of(&daemon).wait_attached(instance, Duration::from_secs(30));
        Lab {
            _daemon: daemon,
            dir: lab.host.dir.path.clone(),
            rules: lab.host.rules.path.clone(),
            socket: lab.host.socket(),
            lab,
        }
    }

    /// secgroupctl talking to this lab's daemon, on a terminal 100
    /// columns wide.
    pub fn ctl(&self, args: &[&str]) -> Run {
        self.ctl_on_tty(args, 100)
    }

    /// secgroupctl talking to this lab's daemon, on a terminal `columns`
    /// wide.
    pub fn ctl_on_tty(&self, args: &[&str], columns: u16) -> Run {
        let socket = self.socket.display().to_string();
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        secgroupctl_on_tty(&full, columns)
    }

    /// secgroupctl talking to this lab's daemon, its output piped.
    pub fn ctl_piped(&self, args: &[&str]) -> Run {
        let socket = self.socket.display().to_string();
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        secgroupctl(&full)
    }

    /// secgroupctl talking to this lab's daemon, started and left running
    /// with its standard output piped (`monitor`).
    pub fn spawn_ctl(&self, args: &[&str]) -> std::process::Child {
        let socket = self.socket.display().to_string();
        let mut full = vec!["--socket", socket.as_str()];
        full.extend_from_slice(args);
        command(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running secgroupctl: {e}"))
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

    /// The test bed's lab: its namespaces and ends, for real traffic.
    pub fn bed(&self) -> &secgroup_testbed::Lab {
        &self.lab
    }
}
