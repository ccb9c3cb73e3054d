//! How invalid rule files are answered, by every command that loads them
//! (`validate`, `export`, `import`, `sg clone`): every located problem,
//! then one line saying what that means for the command.

use secgroup_model::Diagnostics;

use crate::outcome::{Code, Output};

/// The answer when the rule files are invalid: every located problem,
/// then `closing` (what that means for this command). With `--json`, the
/// problems as [`diagnostics_json`] on stdout.
pub fn refused(diagnostics: &Diagnostics, closing: &str, as_json: bool) -> Output {
    let n = diagnostics.0.len();
    if as_json {
        let text = serde_json::to_string_pretty(&diagnostics_json(diagnostics)).unwrap_or_default();
        return Output::success(format!("{text}\n")).with_code(Code::No);
    }
    let mut stderr = String::new();
    for d in &diagnostics.0 {
        stderr.push_str(&format!("{d}\n"));
    }
    stderr.push_str(&format!(
        "secgroupctl: {n} error{} {closing}\n",
        if n == 1 { "" } else { "s" }
    ));
    Output::success("").with_stderr(stderr).with_code(Code::No)
}

/// `{"valid": false, "diagnostics": [{"file", "line", "column", "path",
/// "message"}, ...]}`.
pub fn diagnostics_json(diagnostics: &Diagnostics) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diagnostics.0.iter().map(diagnostic_json).collect();
    serde_json::json!({ "valid": false, "diagnostics": items })
}

/// `{"file", "line", "column", "path", "message"}`: one diagnostic, error
/// or warning.
pub fn diagnostic_json(d: &secgroup_model::Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "path": d.path,
        "message": d.message,
    })
}

#[cfg(test)]
mod tests {
    use secgroup_model::Diagnostic;

    use super::*;

    #[test]
    fn text_and_json() {
        let d = Diagnostics(vec![Diagnostic {
            file: "a.json".into(),
            line: 1,
            column: 2,
            path: "$".into(),
            message: "bad".into(),
        }]);
        let text = refused(&d, "here", false);
        assert_eq!(
            (text.stdout.as_str(), text.stderr.as_str(), text.code),
            (
                "",
                "a.json:1:2: $: bad\nsecgroupctl: 1 error here\n",
                Code::No
            )
        );
        let json = refused(&d, "here", true);
        let value: serde_json::Value =
            serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["diagnostics"][0]["column"], 2);
        assert_eq!(json.code, Code::No);
    }
}
