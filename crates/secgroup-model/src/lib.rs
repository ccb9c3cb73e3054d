//! The rule-file schema of secgroup: parsing, validation and the validated
//! model. Pure: no I/O beyond the bytes it is handed.
//!
//! Layers, outermost first (in the spirit of ripgrep's low/high args):
//! `json` (a span-preserving parser) → `raw` / `tencent` (the file exactly
//! as written, every value located) → `validate` (raw → [`model`], all
//! errors collected) → [`RuleSet`].

mod diagnostic;
mod json;
mod location;
pub mod model;
mod raw;
pub mod render;
mod source;
pub mod templates;
mod tencent;
mod validate;
mod values;

pub use diagnostic::{Diagnostic, Diagnostics, Limits, SourceFile};
pub use model::*;

/// Parses, merges and validates rule files.
///
/// Every file may define any kind of object; ids must be unique across all
/// of them and every reference must resolve. Errors from all files are
/// collected and returned sorted by file name and position; the rule set
/// is returned only when there are none.
pub fn load(files: &[SourceFile<'_>], limits: &Limits) -> Result<RuleSet, Diagnostics> {
    // File-name order decides which of two definitions is "first".
    let mut ordered: Vec<&SourceFile<'_>> = files.iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(b.name));
    let mut errors = Vec::new();
    let mut validator = validate::Validator::new(limits);
    for file in ordered {
        if let Some(raw) = source::decode(file, limits, &mut errors) {
            validator.file(&raw);
        }
    }
    let (rules, more) = validator.finish();
    errors.extend(more);
    if errors.is_empty() {
        Ok(rules)
    } else {
        errors.sort();
        errors.dedup();
        Err(Diagnostics(errors))
    }
}
