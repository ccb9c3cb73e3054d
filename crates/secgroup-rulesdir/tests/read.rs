//! Reading rule directories from a real file system.

use std::fs;
use std::path::{Path, PathBuf};

use secgroup_model::Limits;
use secgroup_rulesdir::{
    LoadError, RulesDirError, load_paths, load_paths_with, read_sources, read_sources_limited,
};

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
    let files = read_sources(std::slice::from_ref(&dir))
        .unwrap_or_else(|e| panic!("{e}"))
        .files;
    assert_eq!(names(&dir, &files), ["a.json", "b.json"]);
    assert_eq!(files[0].name, dir.join("a.json").display().to_string());
}

#[test]
fn explicit_files_are_read_whatever_their_name_and_only_once() {
    let dir = scratch("explicit");
    write(&dir, "a.json", GROUP_A);
    write(&dir, "extra.rules", GROUP_B);
    let paths = [dir.clone(), dir.join("extra.rules"), dir.join("a.json")];
    let files = read_sources(&paths).unwrap_or_else(|e| panic!("{e}")).files;
    assert_eq!(names(&dir, &files), ["a.json", "extra.rules"]);
    let rules = load_paths(&paths, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = rules.security_groups.keys().map(|id| id.as_str()).collect();
    assert_eq!(ids, ["sg-a", "sg-b"]);
    // A successful load says which files it read, for the next one.
    let loaded = load_paths_with(&paths, &Limits::default(), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.files, [dir.join("a.json"), dir.join("extra.rules")]);
}

#[test]
fn size_limit_reads_at_most_one_byte_more() {
    let dir = scratch("size");
    write(&dir, "big.json", &" ".repeat(1000));
    let files = read_sources_limited(std::slice::from_ref(&dir), 100)
        .unwrap_or_else(|e| panic!("{e}"))
        .files;
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
fn given_paths_that_cannot_be_read_are_errors() {
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

/// Loads `dir` and returns every diagnostic as text, with the directory
/// written as `D`.
fn diagnostics(dir: &Path, known: &[PathBuf]) -> Vec<String> {
    match load_paths_with(
        std::slice::from_ref(&dir.to_owned()),
        &Limits::default(),
        known,
    ) {
        Err(LoadError::Invalid(d)) => {
            let prefix = format!("{}/", dir.display());
            d.0.iter()
                .map(|d| d.to_string().replace(&prefix, "D/"))
                .collect()
        }
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

#[test]
fn unreadable_entries_are_reported_with_every_other_problem() {
    let dir = scratch("unreadable");
    write(&dir, "a.json", GROUP_A);
    write(
        &dir,
        "b-bad.json",
        "{\"security_groups\": [{\"id\": \"sg-b\", \"ingress\": [{\"action\": \"allow\", \"protocol\": \"tcp\"}]}]}",
    );
    std::os::unix::fs::symlink("loop.json", dir.join("loop.json"))
        .unwrap_or_else(|e| panic!("symlink: {e}"));
    fs::create_dir_all(dir.join("odd.json")).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("gone.json", dir.join("dangling.json"))
        .unwrap_or_else(|e| panic!("symlink: {e}"));

    // Reading alone fails for none of them: they are listed.
    let sources = read_sources(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(names(&dir, &sources.files), ["a.json", "b-bad.json"]);
    let unreadable: Vec<PathBuf> = sources.unreadable.iter().map(|u| u.path.clone()).collect();
    assert_eq!(
        unreadable,
        [
            dir.join("dangling.json"),
            dir.join("loop.json"),
            dir.join("odd.json")
        ]
    );

    assert_eq!(
        diagnostics(&dir, &[]),
        [
            "D/b-bad.json:1:60: security_groups[0].ingress[0].action: unknown action \"allow\"; expected \"accept\" or \"drop\" (did you mean \"accept\"?)",
            "D/dangling.json:1:1: $: cannot read the file: No such file or directory (os error 2)",
            "D/loop.json:1:1: $: cannot read the file: Too many levels of symbolic links (os error 40)",
            "D/odd.json:1:1: $: a directory, not a regular file; only regular files (or links to them) are rule files",
        ]
    );

    // Alone, an unreadable entry still fails the load: all or nothing.
    fs::remove_file(dir.join("b-bad.json")).unwrap_or_else(|e| panic!("{e}"));
    fs::remove_file(dir.join("dangling.json")).unwrap_or_else(|e| panic!("{e}"));
    fs::remove_dir(dir.join("odd.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        diagnostics(&dir, &[]),
        [
            "D/loop.json:1:1: $: cannot read the file: Too many levels of symbolic links (os error 40)"
        ]
    );
}

/// (what, the old file, the new file, the diagnostic in the file reported:
/// `{at}` its name, `{other}` the other's, `{owner}` the other's instance)
const CONFLICTS: &[(&str, &str, &str, &str)] = &[
    (
        "duplicate security group id",
        r#"{"security_groups": [{"id": "sg-a"}]}"#,
        r#"{"security_groups": [{"id": "sg-a"}]}"#,
        "D/{at}:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at D/{other}:1:29",
    ),
    (
        "duplicate instance id",
        r#"{"instances": [{"id": "ins-1", "ips": [], "security_groups": ["sg-base"]}]}"#,
        r#"{"instances": [{"id": "ins-1", "ips": [], "security_groups": ["sg-base"]}]}"#,
        "D/{at}:1:23: instances[0].id: duplicate instance id \"ins-1\"; first defined at D/{other}:1:23",
    ),
    (
        "interface bound twice",
        r#"{"instances": [{"id": "ins-m-old", "interface": "tap0", "ips": [], "security_groups": ["sg-base"]}]}"#,
        r#"{"instances": [{"id": "ins-new", "interface": "tap0", "ips": [], "security_groups": ["sg-base"]}]}"#,
        "D/{at}:1:{col}: instances[0].interface: interface \"tap0\" is already bound to instance \"{owner}\" at D/{other}:1:{other_col}; an interface belongs to one instance",
    ),
];

#[test]
fn a_conflict_is_reported_in_the_file_that_brought_it() {
    // (new file, whether the previous load's files are passed, whether
    // the report is in the new file)
    let orders = [
        ("a-new.json", true, true),
        ("a-new.json", false, false),
        ("z-new.json", true, true),
        ("z-new.json", false, true),
    ];
    for (what, old, new, expected) in CONFLICTS {
        for (new_name, with_known, in_new) in orders {
            let dir = scratch("attribution");
            write(
                &dir,
                "0-base.json",
                r#"{"security_groups": [{"id": "sg-base"}]}"#,
            );
            write(&dir, "m-old.json", old);
            // What the daemon keeps from its last successful load.
            let previous = load_paths_with(std::slice::from_ref(&dir), &Limits::default(), &[])
                .unwrap_or_else(|e| panic!("{what}: the old files are invalid: {e}"));
            assert_eq!(
                previous.files,
                [dir.join("0-base.json"), dir.join("m-old.json")]
            );
            write(&dir, new_name, new);
            let known = if with_known {
                previous.files
            } else {
                Vec::new()
            };
            // The interface column differs: the old instance id is longer.
            let (old_col, new_col) = ("49", "47");
            let (at, other, owner, col, other_col) = if in_new {
                (new_name, "m-old.json", "ins-m-old", new_col, old_col)
            } else {
                ("m-old.json", new_name, "ins-new", old_col, new_col)
            };
            let expected = expected
                .replace("{at}", at)
                .replace("{other}", other)
                .replace("{owner}", owner)
                .replace("{other_col}", other_col)
                .replace("{col}", col);
            assert_eq!(
                diagnostics(&dir, &known),
                [expected],
                "{what}, new file {new_name}, known files given: {with_known}"
            );
        }
    }
}
