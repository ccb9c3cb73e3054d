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
