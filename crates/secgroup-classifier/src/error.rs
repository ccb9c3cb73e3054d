/// Why a rule list cannot become a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifierError {
    /// The list has more rules than a table's rule sets have bits.
    #[error("rule list has {rules} rules, a table holds at most {max}")]
    TooManyRules { rules: usize, max: usize },
}
