//! Turns `results.json` (and `machine.json`) into what people read: a
//! Markdown table with the goals judged (`table.md`, also printed) and an
//! SVG plot (`performance.svg`). Pure functions of the records, so a
//! report can be rendered again from old results without measuring.

mod fleet;
mod format;
mod goals;
mod plot;
mod table;
mod thousand;

use std::path::Path;

use anyhow::Result;

use crate::machine::Machine;
use crate::record::Results;

pub use goals::{Goal, Verdict, goals};

/// Reads `dir/results.json` and `dir/machine.json`, writes `dir/table.md`
/// and `dir/performance.svg`, and returns the table.
pub fn render(dir: &Path) -> Result<String> {
    let results = Results::read(&dir.join("results.json"))?;
    let machine = Machine::read(&dir.join("machine.json")).ok();
    let text = table::markdown(&results, machine.as_ref());
    std::fs::write(dir.join("table.md"), &text)?;
    plot::svg(&results, &dir.join("performance.svg"))?;
    Ok(text)
}
