//! Where a conflict between two files is reported: at the later file by
//! name, unless exactly one of the two is new (not among the files of the
//! previous successful load), and then in the new one.

use secgroup_model::{Limits, SourceFile, load, load_with};

/// Binds the instances of the conflict files to a group.
const BASE: (&str, &str) = ("0-base.json", r#"{"security_groups": [{"id": "sg-base"}]}"#);

/// Two definitions that cannot both stand, one in the old file and one in
/// the new file, and the diagnostic expected in the file reported (`{at}`
/// is its name, `{other}` the other file's name and `{owner}` the instance
/// id of the other file).
struct Conflict {
    what: &'static str,
    old: &'static str,
    new: &'static str,
    expected: &'static str,
    /// The instance ids of the old and new files, for `{owner}`.
    owners: (&'static str, &'static str),
}

const CONFLICTS: &[Conflict] = &[
    Conflict {
        what: "duplicate security group id",
        old: r#"{"security_groups": [{"id": "sg-a"}]}"#,
        new: r#"{"security_groups": [{"id": "sg-a"}]}"#,
        expected: "{at}:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at {other}:1:29",
        owners: ("", ""),
    },
    Conflict {
        what: "duplicate instance id",
        old: r#"{"instances": [{"id": "ins-1", "ips": [], "security_groups": ["sg-base"]}]}"#,
        new: r#"{"instances": [{"id": "ins-1", "ips": [], "security_groups": ["sg-base"]}]}"#,
        expected: "{at}:1:23: instances[0].id: duplicate instance id \"ins-1\"; first defined at {other}:1:23",
        owners: ("", ""),
    },
    Conflict {
        what: "interface bound twice",
        old: r#"{"instances": [{"id": "ins-old", "interface": "tap0", "ips": [], "security_groups": ["sg-base"]}]}"#,
        new: r#"{"instances": [{"id": "ins-new", "interface": "tap0", "ips": [], "security_groups": ["sg-base"]}]}"#,
        expected: "{at}:1:47: instances[0].interface: interface \"tap0\" is already bound to instance \"{owner}\" at {other}:1:47; an interface belongs to one instance",
        owners: ("ins-old", "ins-new"),
    },
];

/// Which file holds the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Old,
    New,
}

/// (name of the new file, whether the previous load is known, where the
/// conflict must be reported). The old file is `m-old.json`.
const ORDERS: &[(&str, bool, At)] = &[
    // The new file sorts first: only the known files say it is new.
    ("a-new.json", true, At::New),
    ("a-new.json", false, At::Old),
    // The new file sorts last: the later file is the new one anyway.
    ("z-new.json", true, At::New),
    ("z-new.json", false, At::New),
];

const OLD: &str = "m-old.json";

fn expected(conflict: &Conflict, new: &str, at: At) -> String {
    let (file, other, owner) = match at {
        At::New => (new, OLD, conflict.owners.0),
        At::Old => (OLD, new, conflict.owners.1),
    };
    conflict
        .expected
        .replace("{at}", file)
        .replace("{other}", other)
        .replace("{owner}", owner)
}

#[test]
fn conflicts_are_reported_in_the_file_that_brought_them() {
    for conflict in CONFLICTS {
        // The old state is valid on its own.
        let old = [
            SourceFile {
                name: BASE.0,
                bytes: BASE.1.as_bytes(),
            },
            SourceFile {
                name: OLD,
                bytes: conflict.old.as_bytes(),
            },
        ];
        if let Err(e) = load(&old, &Limits::default()) {
            panic!("{}: the old files are invalid:\n{e}", conflict.what);
        }
        for &(new, known, at) in ORDERS {
            let mut files = old.to_vec();
            files.push(SourceFile {
                name: new,
                bytes: conflict.new.as_bytes(),
            });
            let known_names: &[&str] = if known { &[BASE.0, OLD] } else { &[] };
            let got = match load_with(&files, &Limits::default(), known_names) {
                Ok(_) => panic!("{}, new file {new}: loaded", conflict.what),
                Err(d) => d.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            };
            assert_eq!(
                got,
                [expected(conflict, new, at)],
                "{}, new file {new}, known files {known}",
                conflict.what
            );
        }
    }
}

#[test]
fn without_history_every_file_counts_the_same() {
    // No known files, or all files known, or none of them: name order.
    let files = [
        SourceFile {
            name: "b.json",
            bytes: br#"{"security_groups": [{"id": "sg-a"}]}"#,
        },
        SourceFile {
            name: "a.json",
            bytes: br#"{"security_groups": [{"id": "sg-a"}]}"#,
        },
    ];
    let expected = "b.json:1:29: security_groups[0].id: duplicate security group id \"sg-a\"; first defined at a.json:1:29";
    for known in [&[][..], &["a.json", "b.json"], &["unrelated.json"]] {
        match load_with(&files, &Limits::default(), known) {
            Ok(_) => panic!("loaded with {known:?}"),
            Err(d) => assert_eq!(d.to_string(), expected, "{known:?}"),
        }
    }
}
