//! One source file's bytes → raw structs: size limit, UTF-8, JSON syntax,
//! then the native or Tencent decoder depending on the top-level keys.

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Document, Limits, Shape};
use crate::json;
use crate::location::{LineIndex, ROOT};
use crate::raw::{self, Decoder, RawFile};
use crate::tencent;

/// `None` when the file could not be decoded at all; every problem found
/// is in `errors`.
pub(crate) fn decode(
    file: &Document<'_>,
    limits: &Limits,
    errors: &mut Vec<Diagnostic>,
) -> Option<RawFile> {
    let at = |line: usize, column: usize, path: &str, message: String| Diagnostic {
        file: file.name.to_owned(),
        line,
        column,
        path: path.to_owned(),
        message,
    };
    if file.bytes.len() > limits.max_file_bytes {
        errors.push(at(
            1,
            1,
            ROOT,
            format!(
                "file is larger than the limit of {} bytes (max_file_bytes); split it into several files",
                limits.max_file_bytes
            ),
        ));
        return None;
    }
    let text = match std::str::from_utf8(file.bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.valid_up_to();
            // The prefix up to the bad byte is valid UTF-8 by definition.
            let prefix = std::str::from_utf8(&file.bytes[..valid]).unwrap_or("");
            let (line, column) = LineIndex::new(prefix).line_column(prefix.len());
            let byte = file.bytes.get(valid).copied().unwrap_or(0);
            errors.push(at(
                line,
                column,
                ROOT,
                format!("invalid UTF-8 at byte offset {valid} (byte 0x{byte:02x}); rule files must be UTF-8"),
            ));
            return None;
        }
    };
    let lines = LineIndex::new(text);
    let parsed = match json::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let (line, column) = lines.line_column(e.offset);
            errors.push(at(line, column, &e.path, e.message));
            return None;
        }
    };
    for e in parsed.errors {
        let (line, column) = lines.line_column(e.offset);
        errors.push(at(line, column, &e.path, e.message));
    }
    let mut decoder = Decoder::new(Arc::from(file.name), &lines, errors);
    if let Shape::Object { kind, id } = file.shape {
        decoder.object(&parsed.root, ROOT)?;
        return Some(raw::native_object(&mut decoder, &parsed.root, kind, id));
    }
    let root = decoder.object(&parsed.root, ROOT)?;
    if tencent::MARKER_KEYS.iter().any(|k| root.has(k)) {
        Some(tencent::file(&mut decoder, root))
    } else {
        Some(raw::native_file(&mut decoder, root))
    }
}
