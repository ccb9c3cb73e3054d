//! The recursive descent over a document's structure (values, objects,
//! arrays) and the cursor and error helpers the scalar readers share.

use std::collections::HashMap;

use super::{JsonError, MAX_DEPTH, Member, Node, Value};
use crate::location::{LineIndex, ROOT, child_index, child_key, quote};

pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) lines: LineIndex<'a>,
    pub(super) pos: usize,
    /// Path of every value being parsed, outermost first; its length - 1 is
    /// the nesting depth.
    pub(super) path: Vec<String>,
    pub(super) errors: Vec<JsonError>,
}

impl Parser<'_> {
    pub(super) fn value(&mut self) -> Result<Node, JsonError> {
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

    fn enter(&mut self) -> Result<(), JsonError> {
        if self.path.len() > MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    pub(super) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn current_path(&self) -> &str {
        self.path.last().map_or(ROOT, String::as_str)
    }

    /// The character at `pos`, for messages.
    pub(super) fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of file".to_owned(),
            Some(c) if c.is_control() || c.is_whitespace() => format!("U+{:04X}", c as u32),
            Some(c) => c.to_string(),
        }
    }

    /// "unexpected X; expected Y", with hints for common non-JSON habits.
    pub(super) fn unexpected(&self, expected: &str) -> JsonError {
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

    pub(super) fn error_here(&self, message: impl Into<String>) -> JsonError {
        self.error_at(self.pos, message)
    }

    pub(super) fn error_at(&self, offset: usize, message: impl Into<String>) -> JsonError {
        JsonError {
            offset,
            path: self.current_path().to_owned(),
            message: message.into(),
        }
    }
}
