//! The rule files shown in README.md and docs/*.md are valid, as
//! `secgroupctl validate` (and the daemon) would load them.
//!
//! Every fenced block tagged ```` ```json ```` is a complete rule file and
//! must be valid on its own, unless the nearest non-blank line before its
//! fence is a marker comment (invisible on a rendered page) that says what
//! it is instead:
//!
//! - `<!-- example: fragment -->`: part of a rule file (one object, some
//!   keys); not checked.
//! - `<!-- example: not a rule file -->`: other JSON (an API answer); not
//!   checked.
//! - `<!-- example: rule file in config/examples instead of NAME -->`: a
//!   rule file that refers to objects defined elsewhere; checked in the
//!   directory `config/examples` in place of its file NAME.
//!
//! Any other marker fails the test, so that a typo cannot hide a block.
//! Blocks tagged otherwise (`sh`, `text`, `jsonc`, ...) are not looked at.

use std::fs;
use std::path::{Path, PathBuf};

use secgroup_model::Limits;
use secgroup_rulesdir::{LoadedFile, Sources};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a block's marker says to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    Alone,
    Skip,
    InExamplesInsteadOf(String),
}

/// One ```json block: where it starts (the line after the fence, 1-based)
/// and its text.
#[derive(Debug)]
struct Block {
    first_line: usize,
    check: Result<Check, String>,
    text: String,
}

const MARKER: &str = "<!-- example:";

fn marker(line: &str) -> Result<Check, String> {
    let inner = line
        .trim()
        .strip_prefix(MARKER)
        .and_then(|rest| rest.strip_suffix("-->"))
        .map(str::trim)
        .ok_or_else(|| format!("malformed marker {line:?}"))?;
    match inner {
        "fragment" | "not a rule file" => Ok(Check::Skip),
        "rule file" => Ok(Check::Alone),
        other => match other.strip_prefix("rule file in config/examples instead of ") {
            Some(name) => Ok(Check::InExamplesInsteadOf(name.trim().to_owned())),
            None => Err(format!("unknown marker {line:?}")),
        },
    }
}

/// Every ```json block of a Markdown text.
fn json_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let Some(info) = line.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        // The closing fence.
        i += 1;
        while i < lines.len() && !lines[i].trim().starts_with("```") {
            i += 1;
        }
        if info.trim() == "json" {
            let previous = lines[..start].iter().rev().find(|l| !l.trim().is_empty());
            let check = match previous {
                Some(p) if p.trim().starts_with(MARKER) => marker(p),
                _ => Ok(Check::Alone),
            };
            blocks.push(Block {
                first_line: start + 2,
                check,
                text: lines[start + 1..i.min(lines.len())].join("\n"),
            });
        }
        i += 1;
    }
    blocks
}

/// The problems of one block as `FILE:LINE:COLUMN: PATH: MESSAGE` lines,
/// located in the Markdown file (empty if it is valid or not checked).
fn problems(markdown_name: &str, block: &Block, examples: &Sources) -> Vec<String> {
    let fence = block.first_line - 1;
    let check = match &block.check {
        Ok(check) => check,
        Err(e) => return vec![format!("{markdown_name}:{fence}: {e}")],
    };
    let name = format!("{markdown_name}:{fence}");
    let file = LoadedFile {
        name: name.clone(),
        path: PathBuf::from(&name),
        bytes: block.text.as_bytes().to_vec(),
    };
    let sources = match check {
        Check::Skip => return Vec::new(),
        Check::Alone => Sources {
            files: vec![file],
            unreadable: Vec::new(),
        },
        Check::InExamplesInsteadOf(replaced) => {
            let mut sources = examples.clone();
            let before = sources.files.len();
            sources
                .files
                .retain(|f| f.path.file_name().is_none_or(|n| n != replaced.as_str()));
            if sources.files.len() == before {
                return vec![format!(
                    "{name}: the marker names {replaced}, which is not a file of config/examples"
                )];
            }
            sources.files.push(file);
            sources
        }
    };
    match sources.load(&Limits::default(), &[]) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics
            .0
            .iter()
            .map(|d| {
                if d.file == name {
                    format!(
                        "{markdown_name}:{}:{}: {}: {}",
                        fence + d.line,
                        d.column,
                        d.path,
                        d.message
                    )
                } else {
                    format!("{name}: with {d}")
                }
            })
            .collect(),
    }
}

fn examples() -> Sources {
    secgroup_rulesdir::read_sources(&[repo().join("config/examples")])
        .unwrap_or_else(|e| panic!("config/examples: {e}"))
}

#[test]
fn rule_files_in_the_documentation_are_valid() {
    let mut markdown = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(repo().join("docs"))
        .unwrap_or_else(|e| panic!("docs/: {e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("docs/: {e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().unwrap_or_default()))
        .collect();
    docs.sort();
    markdown.extend(docs);
    let examples = examples();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for name in &markdown {
        let text = fs::read_to_string(repo().join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", name.display()));
        let name = name.display().to_string();
        for block in json_blocks(&text) {
            if block.check != Ok(Check::Skip) {
                checked.push(format!("{name}:{}", block.first_line - 1));
            }
            failures.extend(problems(&name, &block, &examples));
        }
    }
    assert!(
        failures.is_empty(),
        "rule files in the documentation are invalid (see the top of tests/docs.rs for how a block is marked as a fragment):\n{}",
        failures.join("\n")
    );
    // The README's example is checked, and so is more than that: the test
    // would pass vacuously if it stopped finding blocks.
    assert!(
        checked.iter().any(|c| c.starts_with("README.md:")) && checked.len() >= 2,
        "checked only {checked:?}"
    );
}

/// The test itself: blocks are found, markers obeyed, problems located in
/// the Markdown file.
#[test]
fn blocks_markers_and_locations() {
    let markdown = "# Title\n\
                    \n\
                    ```json\n\
                    {\n  \"security_groups\": [\n    { \"id\": \"web\" }\n  ]\n}\n\
                    ```\n\
                    \n\
                    <!-- example: fragment -->\n\
                    \n\
                    ```json\n\
                    \"ingress\": []\n\
                    ```\n\
                    \n\
                    ```sh\n\
                    secgroupctl validate\n\
                    ```\n\
                    <!-- example: rule file in config/examples instead of tencent-format-sg-db.json -->\n\
                    ```json\n\
                    {\"security_groups\": [{\"id\": \"sg-db\", \"ingress\": [{\"action\": \"accept\", \"protocol\": \"tcp\", \"port\": \"3306\", \"remote\": \"sg-web\"}]}]}\n\
                    ```\n\
                    <!-- example: fragmnet -->\n\
                    ```json\n\
                    {}\n\
                    ```\n";
    let blocks = json_blocks(markdown);
    let checks: Vec<&Result<Check, String>> = blocks.iter().map(|b| &b.check).collect();
    assert_eq!(
        checks,
        [
            &Ok(Check::Alone),
            &Ok(Check::Skip),
            &Ok(Check::InExamplesInsteadOf(
                "tencent-format-sg-db.json".to_owned()
            )),
            &Err("unknown marker \"<!-- example: fragmnet -->\"".to_owned()),
        ]
    );
    let examples = examples();
    let found: Vec<Vec<String>> = blocks
        .iter()
        .map(|b| problems("x.md", b, &examples))
        .collect();
    assert_eq!(
        found[0],
        [
            "x.md:6:13: security_groups[0].id: \"web\" is not a security group id; expected \"sg-\" followed by letters, digits, '_', '.' or '-'"
        ],
        "{found:?}"
    );
    assert!(found[1].is_empty() && found[2].is_empty(), "{found:?}");
    assert_eq!(
        found[3],
        ["x.md:25: unknown marker \"<!-- example: fragmnet -->\""]
    );
}
