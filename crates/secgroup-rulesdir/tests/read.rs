//! Reading rule directories from a real file system.

use std::fs;
use std::path::{Path, PathBuf};

use secgroup_model::Limits;
use secgroup_rulesdir::{LoadError, RulesDirError, load_paths, read_sources, read_sources_limited};

/// A fresh directory under cargo's per-test scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rulesdir")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

const GROUP_A: &str = r#"{"security_groups": [{"id": "sg-a"}]}"#;
const GROUP_B: &str = r#"{"security_groups": [{"id": "sg-b"}]}"#;

fn names(dir: &Path, files: &[secgroup_rulesdir::LoadedFile]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            f.path
                .strip_prefix(dir)
                .unwrap_or(&f.path)
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn directory_takes_json_files_in_name_order_and_skips_leftovers() {
    let dir = scratch("order");
    for name in [
        "b.json",
        "a.json",
        ".hidden.json",
        ".#a.json",
        "#a.json#",
        "a.json~",
        ".a.json.swp",
        "notes.txt",
    ] {
        write(&dir, name, GROUP_A);
    }
    fs::create_dir_all(dir.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    write(&dir.join("sub"), "c.json", GROUP_A);
    let files = read_sources(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&dir, &files), ["a.json", "b.json"]);
    assert_eq!(files[0].name, dir.join("a.json").display().to_string());
}

#[test]
fn explicit_files_are_read_whatever_their_name_and_only_once() {
    let dir = scratch("explicit");
    write(&dir, "a.json", GROUP_A);
    write(&dir, "extra.rules", GROUP_B);
    let paths = [dir.clone(), dir.join("extra.rules"), dir.join("a.json")];
    let files = read_sources(&paths).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&dir, &files), ["a.json", "extra.rules"]);
    let rules = load_paths(&paths, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = rules.security_groups.keys().map(|id| id.as_str()).collect();
    assert_eq!(ids, ["sg-a", "sg-b"]);
}

#[test]
fn size_limit_reads_at_most_one_byte_more() {
    let dir = scratch("size");
    write(&dir, "big.json", &" ".repeat(1000));
    let files =
        read_sources_limited(std::slice::from_ref(&dir), 100).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files[0].bytes.len(), 101);
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    match load_paths(std::slice::from_ref(&dir), &limits) {
        Err(LoadError::Invalid(d)) => assert_eq!(
            d.to_string(),
            format!(
                "{}:1:1: $: file is larger than the limit of 100 bytes (max_file_bytes); split it into several files",
                dir.join("big.json").display()
            )
        ),
        other => panic!("expected a size diagnostic, got {other:?}"),
    }
}

#[test]
fn io_errors() {
    let dir = scratch("io");
    let missing = dir.join("missing");
    match read_sources(std::slice::from_ref(&missing)) {
        Err(e @ RulesDirError::Access { .. }) => {
            assert!(
                e.to_string()
                    .starts_with(&format!("cannot access {}: ", missing.display())),
                "{e}"
            );
        }
        other => panic!("expected an access error, got {other:?}"),
    }
    fs::create_dir_all(dir.join("odd.json")).unwrap_or_else(|e| panic!("{e}"));
    match read_sources(std::slice::from_ref(&dir)) {
        Err(e @ RulesDirError::NotAFile { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("{} is not a regular file", dir.join("odd.json").display())
            );
        }
        other => panic!("expected not-a-file, got {other:?}"),
    }
}

#[test]
fn invalid_files_across_a_directory_are_all_reported() {
    let dir = scratch("invalid");
    write(&dir, "a.json", GROUP_A);
    write(&dir, "b.json", GROUP_A);
    write(&dir, "c.json", "{\n  \"security_groups\": [}\n");
    match load_paths(std::slice::from_ref(&dir), &Limits::default()) {
        Err(LoadError::Invalid(d)) => {
            let expected = [
                format!(
                    "{}:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at {}:1:29",
                    dir.join("b.json").display(),
                    dir.join("a.json").display()
                ),
                format!(
                    "{}:2:23: security_groups[0]: unexpected character '}}'; expected a value",
                    dir.join("c.json").display()
                ),
            ];
            let got: Vec<String> = d.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, expected);
        }
        other => panic!("expected diagnostics, got {other:?}"),
    }
}
