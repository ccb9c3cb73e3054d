//! The scalar readers: strings and their escapes, numbers, literals.

use super::parser::Parser;
use super::{JsonError, Value};

impl Parser<'_> {
    pub(super) fn string(&mut self) -> Result<String, JsonError> {
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

    pub(super) fn number(&mut self) -> Result<String, JsonError> {
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

    pub(super) fn literal(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.unexpected("a value"))
        }
    }
}
