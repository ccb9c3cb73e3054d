//! A small JSON parser that remembers where every value starts.
//!
//! serde_json forgets positions once a value is built and stops at the first
//! error; the rule-file diagnostics need the line, column and path of every
//! offending value, so the raw layer is built on this tree instead. Strict
//! RFC 8259 (no comments, no trailing commas), plus two rules of our own: a
//! nesting limit, and duplicate keys in one object are errors (the second
//! definition would otherwise silently win or lose).

use crate::location::{LineIndex, ROOT};

use parser::Parser;

mod parser;
mod scalars;
#[cfg(test)]
mod tests;

/// Deeper nesting than any rule file needs; the limit keeps the recursive
/// descent from exhausting the stack on hostile input.
pub(crate) const MAX_DEPTH: usize = 64;

/// A JSON value and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) offset: usize,
    pub(crate) value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// The number as written: the decoder decides which numbers it accepts.
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in file order, keys unique.
    Object(Vec<Member>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub(crate) key: String,
    pub(crate) key_offset: usize,
    pub(crate) value: Node,
}

/// A problem found while parsing, at a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) offset: usize,
    /// Path of the innermost value being parsed.
    pub(crate) path: String,
    pub(crate) message: String,
}

/// A parsed document and the non-fatal problems (duplicate keys) in it.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) root: Node,
    pub(crate) errors: Vec<JsonError>,
}

/// Parses one document. A syntax error is fatal (there is no sensible way to
/// go on); duplicate keys are collected and the first definition is kept.
pub(crate) fn parse(text: &str) -> Result<Parsed, JsonError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        lines: LineIndex::new(text),
        pos: 0,
        path: vec![ROOT.to_owned()],
        errors: Vec::new(),
    };
    if text.starts_with('\u{feff}') {
        parser.pos = '\u{feff}'.len_utf8();
    }
    let root = parser.value()?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        parser.path.truncate(1);
        return Err(parser.unexpected("end of file after the top-level value"));
    }
    Ok(Parsed {
        root,
        errors: parser.errors,
    })
}
