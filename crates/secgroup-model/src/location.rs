//! Byte offsets to human positions, and JSON paths.

use std::fmt::Write;

/// Turns byte offsets of one text into 1-based line and character column.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the first character of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    /// `offset` must lie on a character boundary (or at the end).
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let before = self.text.get(start..offset).unwrap_or("");
        // A byte-order mark is invisible in editors: do not count it.
        let before = if line == 0 {
            before.strip_prefix('\u{feff}').unwrap_or(before)
        } else {
            before
        };
        (line + 1, before.chars().count() + 1)
    }
}

/// The JSON path of the document root.
pub(crate) const ROOT: &str = "$";

/// `parent.key`, or `parent["odd key"]` when the key is not a plain word.
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let mut path = if parent == ROOT {
        String::new()
    } else {
        parent.to_owned()
    };
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&quote(key));
        path.push(']');
    }
    path
}

/// `parent[index]`.
pub(crate) fn child_index(parent: &str, index: usize) -> String {
    let mut path = if parent == ROOT {
        String::new()
    } else {
        parent.to_owned()
    };
    let _ = write!(path, "[{index}]");
    path
}

/// A string as a JSON literal, for quoting offending values in messages.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "ab\néé x\n\u{feff}";
        let index = LineIndex::new(text);
        let cases = [
            (0, (1, 1)),
            (1, (1, 2)),
            (3, (2, 1)),
            (7, (2, 3)),
            (8, (2, 4)),
        ];
        for (offset, expected) in cases {
            assert_eq!(index.line_column(offset), expected, "offset {offset}");
        }
        let bom = LineIndex::new("\u{feff}{}");
        assert_eq!(bom.line_column(3), (1, 1), "a leading BOM takes no column");
    }

    #[test]
    fn paths() {
        assert_eq!(child_key(ROOT, "instances"), "instances");
        assert_eq!(child_index("instances", 3), "instances[3]");
        assert_eq!(child_key("instances[3]", "ips"), "instances[3].ips");
        assert_eq!(child_key("a", "b c"), "a[\"b c\"]");
        assert_eq!(child_index(ROOT, 0), "[0]");
    }
}
