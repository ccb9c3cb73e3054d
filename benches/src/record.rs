//! One measured figure, as `target/bench/results.json` holds it: an array
//! of flat records that any tool can read, the table and the plot of
//! `cargo xtask bench` included.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What was measured, e.g. `new-flow-last-rule` or `throughput-new-flows-64B`.
    pub scenario: String,
    /// Who was measured: `secgroup-xdp`, `floor-tc`, `nftables`, `none`, ...
    pub variant: String,
    /// Rules per direction (0 where rules do not apply).
    pub rules: u64,
    /// `ns-per-packet`, `x-floor`, `rx-pps`, `p99`, ...
    pub metric: String,
    pub value: f64,
    /// `ns`, `x` (a ratio), `pps`, `ms`, `bytes`, `packets`.
    pub unit: String,
}

impl Record {
    pub fn new(
        scenario: &str,
        variant: &str,
        rules: usize,
        metric: &str,
        value: f64,
        unit: &str,
    ) -> Record {
        Record {
            scenario: scenario.to_owned(),
            variant: variant.to_owned(),
            rules: rules as u64,
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
        }
    }
}

/// Collects records and prints each as it arrives, so a long run shows
/// progress and a crash loses nothing that was printed.
#[derive(Debug, Default)]
pub struct Results {
    records: Vec<Record>,
}

impl Results {
    pub fn push(&mut self, record: Record) {
        eprintln!(
            "  {:<28} {:<26} {:>6} rules  {:<16} {:>14.2} {}",
            record.scenario, record.variant, record.rules, record.metric, record.value, record.unit
        );
        self.records.push(record);
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Reads what [`write`](Self::write) wrote.
    pub fn read(path: &Path) -> Result<Results> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let records =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Results { records })
    }

    /// The value of one figure.
    pub fn get(&self, scenario: &str, variant: &str, rules: u64, metric: &str) -> Option<f64> {
        self.records
            .iter()
            .find(|r| {
                r.scenario == scenario
                    && r.variant == variant
                    && r.rules == rules
                    && r.metric == metric
            })
            .map(|r| r.value)
    }

    /// The rule counts measured for a scenario and variant, ascending.
    pub fn rule_counts(&self, scenario: &str, variant: &str) -> Vec<u64> {
        let mut counts: Vec<u64> = self
            .records
            .iter()
            .filter(|r| r.scenario == scenario && r.variant == variant)
            .map(|r| r.rules)
            .collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// Records matching a scenario (all variants), in order of arrival.
    pub fn of(&self, scenario: &str) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.scenario == scenario)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(&self.records)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
