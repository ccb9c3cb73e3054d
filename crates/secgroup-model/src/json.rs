//! A small JSON parser that remembers where every value starts.
//!
//! serde_json forgets positions once a value is built and stops at the first
//! error; the rule-file diagnostics need the line, column and path of every
//! offending value, so the raw layer is built on this tree instead. Strict
//! RFC 8259 (no comments, no trailing commas), plus two rules of our own: a
//! nesting limit, and duplicate keys in one object are errors (the second
//! definition would otherwise silently win or lose).

use std::collections::HashMap;

use crate::location::{LineIndex, ROOT, child_index, child_key, quote};

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

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    lines: LineIndex<'a>,
    pos: usize,
    /// Path of every value being parsed, outermost first; its length - 1 is
    /// the nesting depth.
    path: Vec<String>,
    errors: Vec<JsonError>,
}

impl Parser<'_> {
    fn value(&mut self) -> Result<Node, JsonError> {
        self.skip_whitespace();
        let offset = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Node { offset, value })
    }

    fn object(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut members: Vec<Member> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'"') => {}
                // The empty object was handled above: this '}' follows a comma.
                Some(b'}') => {
                    return Err(self.error_here("trailing comma before '}'; JSON allows none"));
                }
                _ => {
                    return Err(self.unexpected("a key (a double-quoted string)"));
                }
            }
            let key_offset = self.pos;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected("':' after the key"));
            }
            self.pos += 1;
            let parent = self.current_path().to_owned();
            self.path.push(child_key(&parent, &key));
            let value = self.value()?;
            self.path.pop();
            if let Some(&first) = seen.get(&key) {
                let (line, column) = self.lines.line_column(first);
                self.errors.push(JsonError {
                    offset: key_offset,
                    path: child_key(&parent, &key),
                    message: format!(
                        "duplicate key {} (first at line {line}, column {column})",
                        quote(&key)
                    ),
                });
            } else {
                seen.insert(key.clone(), key_offset);
                members.push(Member {
                    key,
                    key_offset,
                    value,
                });
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected("',' or '}' after an object member")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            if self.peek() == Some(b']') {
                return Err(self.error_here("trailing comma before ']'; JSON allows none"));
            }
            let parent = self.current_path().to_owned();
            self.path.push(child_index(&parent, items.len()));
            items.push(self.value()?);
            self.path.pop();
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']' after an array element")),
            }
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Stopping bytes are ASCII, so the run ends on a char boundary.
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => {
                    return Err(self.error_at(start, "unterminated string (missing closing '\"')"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(b'\n' | b'\r') => {
                    return Err(self.error_here(
                        "line break inside a string (missing closing '\"'?); write it as \\n",
                    ));
                }
                Some(b) => {
                    return Err(self.error_here(format!(
                        "control character U+{b:04X} inside a string; write it as \\u{b:04x}"
                    )));
                }
            }
        }
    }

    /// Decodes the escape at `pos` (which holds the backslash).
    fn escape(&mut self) -> Result<char, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4(start)?;
                return self.surrogate_pair(start, unit);
            }
            _ => {
                let what = self.describe_here();
                return Err(self.error_at(
                    start,
                    format!(
                        "invalid escape '\\{what}'; expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"
                    ),
                ));
            }
        };
        self.pos += 1;
        Ok(c)
    }

    /// Completes `\uXXXX`: a high surrogate must be followed by `\u` and a
    /// low one; lone surrogates are not characters.
    fn surrogate_pair(&mut self, start: usize, unit: u16) -> Result<char, JsonError> {
        match unit {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error_at(
                        start,
                        format!("unpaired surrogate \\u{unit:04x}; expected a low surrogate \\uDC00-\\uDFFF after it"),
                    ));
                }
                let low_start = self.pos;
                self.pos += 2;
                let low = self.hex4(low_start)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error_at(
                        low_start,
                        format!("\\u{low:04x} is not a low surrogate (\\uDC00-\\uDFFF) after \\u{unit:04x}"),
                    ));
                }
                let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                char::from_u32(code).ok_or_else(|| self.error_at(start, "invalid surrogate pair"))
            }
            0xDC00..=0xDFFF => Err(self.error_at(
                start,
                format!("unpaired surrogate \\u{unit:04x}; a low surrogate must follow a high one"),
            )),
            _ => char::from_u32(u32::from(unit))
                .ok_or_else(|| self.error_at(start, "invalid \\u escape")),
        }
    }

    fn hex4(&mut self, escape_start: usize) -> Result<u16, JsonError> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let parsed = digits
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u16::from_str_radix(d, 16).ok());
        match parsed {
            Some(unit) => {
                self.pos += 4;
                Ok(unit)
            }
            None => Err(self.error_at(
                escape_start,
                "invalid \\u escape; expected exactly four hex digits",
            )),
        }
    }

    fn number(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.error_at(start, "numbers must not have leading zeros"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected("a value"))
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        if self.path.len() > MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn current_path(&self) -> &str {
        self.path.last().map_or(ROOT, String::as_str)
    }

    /// The character at `pos`, for messages.
    fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of file".to_owned(),
            Some(c) if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
            Some(c) => c.to_string(),
        }
    }

    /// "unexpected X; expected Y", with hints for common non-JSON habits.
    fn unexpected(&self, expected: &str) -> JsonError {
        let found = match self.text[self.pos..].chars().next() {
            None => "end of file".to_owned(),
            Some(c) if c.is_control() || c.is_whitespace() => {
                format!("character U+{:04X}", c as u32)
            }
            Some(c) => format!("character '{c}'"),
        };
        let hint = match self.peek() {
            Some(b'/' | b'#') => "; JSON has no comments",
            Some(b'\'') => "; JSON strings use double quotes",
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') if expected.starts_with("a key") => {
                "; keys must be double-quoted"
            }
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') if expected == "a value" => {
                "; strings must be double-quoted"
            }
            _ => "",
        };
        self.error_here(format!("unexpected {found}; expected {expected}{hint}"))
    }

    fn error_here(&self, message: impl Into<String>) -> JsonError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> JsonError {
        JsonError {
            offset,
            path: self.current_path().to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(text: &str, expected: (usize, &str, &str)) {
        match parse(text) {
            Ok(parsed) => panic!("{text:?} parsed to {:?}, expected an error", parsed.root),
            Err(e) => {
                let got = (e.offset, e.path.as_str(), e.message.as_str());
                assert_eq!(got, expected, "input {text:?}");
            }
        }
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, (usize, &str, &str))] = &[
            ("", (0, "$", "unexpected end of file; expected a value")),
            (
                "{",
                (
                    1,
                    "$",
                    "unexpected end of file; expected a key (a double-quoted string)",
                ),
            ),
            (
                "{\"a\" 1}",
                (
                    5,
                    "$",
                    "unexpected character '1'; expected ':' after the key",
                ),
            ),
            (
                "{\"a\":1,}",
                (7, "$", "trailing comma before '}'; JSON allows none"),
            ),
            (
                "[1,]",
                (3, "$", "trailing comma before ']'; JSON allows none"),
            ),
            (
                "{a:1}",
                (
                    1,
                    "$",
                    "unexpected character 'a'; expected a key (a double-quoted string); keys must be double-quoted",
                ),
            ),
            (
                "{\"a\": [1 2]}",
                (
                    9,
                    "a",
                    "unexpected character '2'; expected ',' or ']' after an array element",
                ),
            ),
            (
                "{\"a\": [{\"b\": tru}]}",
                (
                    13,
                    "a[0].b",
                    "unexpected character 't'; expected a value; strings must be double-quoted",
                ),
            ),
            (
                "// x\n{}",
                (
                    0,
                    "$",
                    "unexpected character '/'; expected a value; JSON has no comments",
                ),
            ),
            (
                "{'a': 1}",
                (
                    1,
                    "$",
                    "unexpected character '''; expected a key (a double-quoted string); JSON strings use double quotes",
                ),
            ),
            (
                "{} {}",
                (
                    3,
                    "$",
                    "unexpected character '{'; expected end of file after the top-level value",
                ),
            ),
            (
                "\"abc",
                (0, "$", "unterminated string (missing closing '\"')"),
            ),
            (
                "\"a\nb\"",
                (
                    2,
                    "$",
                    "line break inside a string (missing closing '\"'?); write it as \\n",
                ),
            ),
            (
                "\"a\tb\"",
                (
                    2,
                    "$",
                    "control character U+0009 inside a string; write it as \\u0009",
                ),
            ),
            (
                "\"\\x\"",
                (
                    1,
                    "$",
                    "invalid escape '\\x'; expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
                ),
            ),
            (
                "\"\\u12g4\"",
                (
                    1,
                    "$",
                    "invalid \\u escape; expected exactly four hex digits",
                ),
            ),
            (
                "\"\\ud800\"",
                (
                    1,
                    "$",
                    "unpaired surrogate \\ud800; expected a low surrogate \\uDC00-\\uDFFF after it",
                ),
            ),
            (
                "\"\\ud800\\u0041\"",
                (
                    7,
                    "$",
                    "\\u0041 is not a low surrogate (\\uDC00-\\uDFFF) after \\ud800",
                ),
            ),
            (
                "\"\\udc00\"",
                (
                    1,
                    "$",
                    "unpaired surrogate \\udc00; a low surrogate must follow a high one",
                ),
            ),
            ("012", (0, "$", "numbers must not have leading zeros")),
            ("-", (1, "$", "unexpected end of file; expected a digit")),
            (
                "1.",
                (2, "$", "unexpected end of file; expected a digit after '.'"),
            ),
            (
                "1e+",
                (
                    3,
                    "$",
                    "unexpected end of file; expected a digit in the exponent",
                ),
            ),
        ];
        for &(text, expected) in cases {
            check_error(text, expected);
        }
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok(), "{MAX_DEPTH} levels must parse");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = parse(&deep).err().map(|e| (e.offset, e.message));
        assert_eq!(
            err,
            Some((MAX_DEPTH, format!("nesting deeper than {MAX_DEPTH} levels")))
        );
    }

    #[test]
    fn duplicate_keys_are_reported_and_first_kept() {
        let parsed = match parse("{\"a\": 1,\n \"a\": 2, \"b\": {\"c\": 1, \"c\": 1}}") {
            Ok(p) => p,
            Err(e) => panic!("unexpected syntax error {e:?}"),
        };
        let errors: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.offset, e.path.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (10, "a", "duplicate key \"a\" (first at line 1, column 2)"),
                (
                    32,
                    "b.c",
                    "duplicate key \"c\" (first at line 2, column 16)"
                ),
            ]
        );
        let Value::Object(members) = &parsed.root.value else {
            panic!("root is not an object: {:?}", parsed.root);
        };
        assert_eq!(members[0].value.value, Value::Number("1".into()));
    }

    #[test]
    fn strings_and_offsets() {
        let text = "{\"k\u{e9}y\": [\"\\u00e9\\ud83d\\ude00\\n\\/\", -1.5e3, true, null]}";
        let parsed = match parse(text) {
            Ok(p) => p,
            Err(e) => panic!("unexpected error {e:?}"),
        };
        let Value::Object(members) = &parsed.root.value else {
            panic!("not an object");
        };
        assert_eq!(members[0].key, "k\u{e9}y");
        assert_eq!(members[0].key_offset, 1);
        let Value::Array(items) = &members[0].value.value else {
            panic!("not an array");
        };
        let values: Vec<_> = items.iter().map(|n| (n.offset, n.value.clone())).collect();
        assert_eq!(
            values,
            [
                (10, Value::String("\u{e9}\u{1f600}\n/".into())),
                (36, Value::Number("-1.5e3".into())),
                (44, Value::Bool(true)),
                (50, Value::Null),
            ]
        );
    }

    /// Our tree as serde_json's, to compare the two parsers.
    fn to_serde(node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str(n)
                .unwrap_or_else(|e| panic!("serde_json rejects our number {n}: {e}")),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(to_serde).collect()),
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), to_serde(&m.value)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        let documents = [
            "null",
            " true ",
            "false",
            "0",
            "-0",
            "12345678901234567890",
            "-1.25e-3",
            "1E+2",
            "\"\"",
            "\"\\u0000\\u001f \\\" \\\\ \\/ \\b\\f\\n\\r\\t \\uD834\\uDD1E \u{e9}\u{1f600}\"",
            "[]",
            "[[], {}, [[1]], {\"a\": {\"b\": [null]}}]",
            "{\"\": 1, \"a b\": [1, 2, {\"c\": \"d\"}], \"e\": -0.5}",
            "\n\t\r {\"security_groups\": [{\"id\": \"sg-web\", \"ingress\": []}]}\n",
            // Invalid for both.
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "tru",
            "nul",
            "\"\\x\"",
            "\"a\nb\"",
            "\"\\ud800\"",
            "[1] [2]",
            "{\"a\" 1}",
            "{1: 2}",
            "NaN",
            "'a'",
        ];
        for text in documents {
            let ours = parse(text);
            let theirs = serde_json::from_str::<serde_json::Value>(text);
            match (ours, theirs) {
                (Ok(parsed), Ok(value)) => assert_eq!(to_serde(&parsed.root), value, "{text:?}"),
                (Err(_), Err(_)) => {}
                (ours, theirs) => panic!(
                    "parsers disagree on {text:?}: ours {:?}, serde_json {:?}",
                    ours.map(|p| p.root),
                    theirs
                ),
            }
        }
    }
}
