//! What the figures were measured on, kept next to them
//! (`machine.json`): per-packet nanoseconds mean little without the CPU,
//! and nothing at all without knowing the machine was shared.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    /// `/proc/loadavg`'s 1-, 5- and 15-minute averages when the run began
    /// and ended: above `nproc`, other work competed for the cores.
    pub load_before: String,
    pub load_after: String,
    /// UTC, minutes.
    pub started: String,
    pub seconds: f64,
    pub quick: bool,
}

impl Machine {
    /// Everything but the end-of-run fields.
    pub fn probe(quick: bool) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: command_output("uname", &["-r"]),
            load_before: load(),
            load_after: String::new(),
            started: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            seconds: 0.0,
            quick,
        }
    }

    pub fn finish(&mut self, seconds: f64) {
        self.load_after = load();
        self.seconds = seconds;
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Machine> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
