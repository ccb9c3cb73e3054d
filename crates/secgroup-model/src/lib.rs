//! The rule-file schema of secgroup: raw serde structs that mirror the JSON
//! exactly, and the validated model they become. Pure: no I/O beyond the
//! bytes it is handed.

pub mod model;

pub use model::*;
