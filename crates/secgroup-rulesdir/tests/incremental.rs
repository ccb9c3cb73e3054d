//! A load through a [`DecodeCache`] kept across loads (each unchanged
//! file's decoding and own checks reused, only the checks across files run
//! again) gives exactly what a load from scratch gives, and
//! `secgroup_policy::recompile` from the last valid load's policy gives
//! exactly what `compile` gives (and the same `diff`): random sequences of file edits, adds,
//! removes, renames and invalid edits, compared after every step at the
//! level of the validated rules, the index, the warnings, the errors
//! (with their locations) and the compiled policy.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secgroup_model::{DecodeCache, Limits};
use secgroup_rulesdir::{
    KeptFiles, LoadError, Loaded, load_paths_cached, load_paths_with, read_sources_kept,
};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rulesdir-incremental")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The kept files' margin here: a few jiffies (so that files are
/// skipped by their metadata without waiting seconds), far below the
/// default; the test's own writes are all on this machine's clock.
const KEPT_MARGIN: Duration = Duration::from_millis(12);

const NAMES: [&str; 6] = ["a.json", "b.json", "c.json", "d.json", "e.json", "f.json"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// One rule of a group of file `f`: a literal remote, the address set
/// of file 0, or a group (mostly of the same file: a reference to
/// another file fails while that file is missing or broken).
fn rule(rng: &mut StdRng, f: usize) -> String {
    let action = *pick(rng, &["accept", "drop"]);
    if rng.gen_range(0..20) == 0 {
        // The service set of file 0.
        return format!(r#"{{"action":"{action}","service":"ppm-a","remote":"203.0.113.7"}}"#);
    }
    let remote = match rng.gen_range(0..60) {
        0..=2 => "ipm-a".to_owned(),
        3..=4 => format!("sg-f{}-0", rng.gen_range(0..NAMES.len())),
        5..=9 => format!("sg-f{f}-0"),
        10..=30 => format!("198.51.100.0/{}", rng.gen_range(24..=32)),
        _ => format!("203.0.113.{}", rng.gen_range(0..256)),
    };
    let protocol = *pick(rng, &["tcp", "udp", "icmp", "all"]);
    let port = match protocol {
        "tcp" | "udp" => format!(r#","port":"{}""#, rng.gen_range(1..2000)),
        _ => String::new(),
    };
    format!(r#"{{"action":"{action}","protocol":"{protocol}"{port},"remote":"{remote}"}}"#)
}

fn group(rng: &mut StdRng, f: usize, k: usize) -> String {
    let side = |rng: &mut StdRng| {
        (0..rng.gen_range(0..5))
            .map(|_| rule(rng, f))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"id":"sg-f{f}-{k}","ingress":[{}],"egress":[{}]}}"#,
        side(rng),
        side(rng)
    )
}

fn instance(rng: &mut StdRng, f: usize, k: usize, groups: usize) -> String {
    let bound: Vec<String> = (0..rng.gen_range(1..=groups.max(1)))
        .map(|_| format!("\"sg-f{f}-{}\"", rng.gen_range(0..groups.max(1))))
        .collect();
    format!(
        r#"{{"id":"ins-f{f}-{k}","interface":"tap{f}x{k}","ips":["198.51.100.{}"],"security_groups":[{}]}}"#,
        f * 20 + k + 1,
        bound.join(",")
    )
}

/// The text of file `f` (an index of [`NAMES`]): its own groups and
/// instances (ids carry `f`: files do not clash unless copied or
/// renamed), an address set, or now and then something invalid.
fn file_text(rng: &mut StdRng, f: usize) -> String {
    match rng.gen_range(0..16) {
        0 => r#"{"security_groups": [ {"id": "sg-x", "ingress": [ "#.to_owned(),
        1 => r#"{"security_groups": [{"id": "web"}]}"#.to_owned(),
        _ => valid_text(rng, f),
    }
}

/// File `f`'s own groups and instances, valid by themselves.
fn valid_text(rng: &mut StdRng, f: usize) -> String {
    let n_groups = rng.gen_range(1..4);
    let groups: Vec<String> = (0..n_groups).map(|k| group(rng, f, k)).collect();
    let instances: Vec<String> = (0..rng.gen_range(0..3))
        .map(|k| instance(rng, f, k, n_groups))
        .collect();
    // File 0 also holds the address and service sets some rules name.
    let sets = if f == 0 {
        format!(
            r#","address_sets": [{{"id": "ipm-a", "addresses": ["203.0.113.0/{}", "2001:db8::/64"]}}],
"service_sets": [{{"id": "ppm-a", "services": ["tcp:{}", "udp:53"]}}]"#,
            rng.gen_range(26..=28),
            rng.gen_range(1..4)
        )
    } else {
        String::new()
    };
    format!(
        "{{\"security_groups\":[{}],\n\"instances\":[{}]{sets}}}\n",
        groups.join(",\n"),
        instances.join(",\n")
    )
}

/// One random change to the directory; returns what it did.
fn change(rng: &mut StdRng, dir: &Path) -> String {
    let existing: Vec<String> = NAMES
        .iter()
        .filter(|n| dir.join(n).exists())
        .map(|n| (*n).to_owned())
        .collect();
    let f = rng.gen_range(0..NAMES.len());
    let name = NAMES[f];
    match rng.gen_range(0..18) {
        // Rewrite in place, or through a temp file and a rename.
        0..=4 => {
            fs::write(dir.join(name), file_text(rng, f)).unwrap_or_else(|e| panic!("{e}"));
            format!("write {name}")
        }
        5..=7 => {
            let tmp = dir.join(format!(".{name}.tmp"));
            fs::write(&tmp, file_text(rng, f)).unwrap_or_else(|e| panic!("{e}"));
            fs::rename(&tmp, dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
            format!("save {name}")
        }
        8 if !existing.is_empty() => {
            let gone = pick(rng, &existing).clone();
            fs::remove_file(dir.join(&gone)).unwrap_or_else(|e| panic!("{e}"));
            format!("remove {gone}")
        }
        9 if !existing.is_empty() => {
            let from = pick(rng, &existing).clone();
            fs::rename(dir.join(&from), dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
            format!("rename {from} -> {name}")
        }
        // The same bytes under another name (duplicates everything).
        10 if !existing.is_empty() && rng.gen_bool(0.2) => {
            let from = pick(rng, &existing).clone();
            fs::copy(dir.join(&from), dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
            format!("copy {from} -> {name}")
        }
        // Make a file whole again (the way out of a bad edit).
        11 if !existing.is_empty() => {
            let fix = pick(rng, &existing).clone();
            let f = NAMES.iter().position(|n| *n == fix).unwrap_or(0);
            fs::write(dir.join(&fix), valid_text(rng, f)).unwrap_or_else(|e| panic!("{e}"));
            format!("fix {fix}")
        }
        // The same size, other bytes, written in place: only the
        // timestamps tell (and the inode stays).
        14 | 15 if !existing.is_empty() => {
            let edit = pick(rng, &existing).clone();
            let path = dir.join(&edit);
            let before = fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            let mut bytes = fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
            let Some(digit) = bytes.iter().rposition(u8::is_ascii_digit) else {
                return "nothing".to_owned();
            };
            bytes[digit] = if bytes[digit] == b'9' {
                b'1'
            } else {
                bytes[digit] + 1
            };
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{e}"));
            std::io::Write::write_all(&mut &file, &bytes).unwrap_or_else(|e| panic!("{e}"));
            // And its mtime put back, as `touch -r` or a restore would.
            let put_back = rng.gen_bool(0.5);
            if put_back {
                let mtime = before.modified().unwrap_or_else(|e| panic!("{e}"));
                file.set_modified(mtime).unwrap_or_else(|e| panic!("{e}"));
            }
            format!(
                "same size {edit}{}",
                if put_back { ", mtime put back" } else { "" }
            )
        }
        // Nothing for longer than the kept files' margin: every file is
        // trusted by its metadata on the next read.
        16 => {
            std::thread::sleep(KEPT_MARGIN + KEPT_MARGIN / 2);
            "settle".to_owned()
        }
        // Rewrite a file with its own bytes (new metadata, same content).
        _ if !existing.is_empty() => {
            let same = pick(rng, &existing).clone();
            let bytes = fs::read(dir.join(&same)).unwrap_or_else(|e| panic!("{e}"));
            fs::write(dir.join(&same), bytes).unwrap_or_else(|e| panic!("{e}"));
            format!("touch {same}")
        }
        _ => "nothing".to_owned(),
    }
}

/// What a load says, comparably: the loaded rules, index and warnings
/// with the compiled policy, or the errors.
#[derive(Debug, PartialEq)]
enum Outcome {
    Loaded(Box<Loaded>, Box<secgroup_policy::Policy>),
    Invalid(Vec<String>),
}

fn outcome(result: Result<Loaded, LoadError>) -> Outcome {
    match result {
        Ok(loaded) => {
            let policy = secgroup_policy::compile(&loaded.rules);
            Outcome::Loaded(Box::new(loaded), Box::new(policy))
        }
        Err(LoadError::Invalid(diagnostics)) => {
            Outcome::Invalid(diagnostics.0.iter().map(ToString::to_string).collect())
        }
        Err(e) => panic!("the directory itself could not be read: {e}"),
    }
}

#[test]
fn cached_loads_equal_loads_from_scratch_through_random_edits() {
    let limits = Limits::default();
    let (mut valid, mut invalid) = (0, 0);
    let (mut reused, mut read) = (0, 0);
    for seed in 0..12u64 {
        let dir = scratch(&format!("seed-{seed}"));
        let paths = [dir.clone()];
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cache = DecodeCache::default();
        let mut kept = KeptFiles::with_margin(KEPT_MARGIN);
        let mut linter = secgroup_policy::Linter::default();
        // Each side keeps its own "known files", as the daemon does.
        let (mut known_cached, mut known_fresh) = (Vec::new(), Vec::new());
        // The last valid load's rules and policy, what `recompile` starts
        // from (as the daemon does).
        let mut last: Option<(secgroup_model::RuleSet, secgroup_policy::Policy)> = None;
        let mut log = Vec::new();
        for step in 0..60 {
            log.push(change(&mut rng, &dir));
            // Files skipped by their metadata, and decoding skipped for
            // the same bytes.
            let sources = read_sources_kept(&paths, limits.max_file_bytes, &mut kept)
                .unwrap_or_else(|e| panic!("{e}"));
            let present = NAMES.iter().filter(|n| dir.join(n).exists()).count();
            assert_eq!(
                kept.reused_last() + kept.read_last(),
                present,
                "seed {seed}, step {step}: every file either read or reused"
            );
            (reused, read) = (reused + kept.reused_last(), read + kept.read_last());
            let cached = outcome(
                sources
                    .load_cached(&limits, &known_cached, &mut cache)
                    .map_err(LoadError::from),
            );
            let fresh = outcome(load_paths_with(&paths, &limits, &known_fresh));
            assert_eq!(
                cached,
                fresh,
                "seed {seed}, step {step}: the cached load differs from a load from scratch after:\n{}",
                log.join("\n")
            );
            assert_eq!(
                cache.len(),
                NAMES.iter().filter(|n| dir.join(n).exists()).count(),
                "seed {seed}, step {step}: the cache holds exactly the files of the directory"
            );
            if let Outcome::Loaded(loaded, compiled) = &cached {
                let next = if let Some((rules, policy)) = &last {
                    let recompiled = secgroup_policy::recompile(rules, policy, &loaded.rules);
                    assert!(
                        recompiled == **compiled,
                        "seed {seed}, step {step}: recompiling from the last valid load differs from compiling from scratch after:\n{}",
                        log.join("\n")
                    );
                    // What is shared is skipped by pointer: the same diff
                    // as comparing everything.
                    assert_eq!(
                        secgroup_policy::diff(policy, &recompiled),
                        secgroup_policy::diff(policy, compiled),
                        "seed {seed}, step {step}: the diff of the recompiled policy differs"
                    );
                    // The lint through the reaches kept from the last
                    // valid load's (shared lists reused): the same
                    // warnings as a lint from scratch.
                    assert_eq!(
                        linter.lint(&loaded.rules, &recompiled, &loaded.index),
                        secgroup_policy::lint(&loaded.rules, compiled, &loaded.index),
                        "seed {seed}, step {step}: the kept lint differs after:\n{}",
                        log.join("\n")
                    );
                    // Recompiled from recompiled policies, as the daemon
                    // chains them.
                    recompiled
                } else {
                    linter.lint(&loaded.rules, compiled, &loaded.index);
                    (**compiled).clone()
                };
                last = Some((loaded.rules.clone(), next));
                known_cached.clone_from(&loaded.files);
                known_fresh.clone_from(&loaded.files);
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
    // Both kinds of outcome were exercised, many times, and files were
    // both skipped by their metadata and read.
    assert!(
        valid > 100 && invalid > 100,
        "{valid} valid, {invalid} invalid loads"
    );
    assert!(
        reused > 300 && read > 300,
        "{reused} files reused, {read} read"
    );
}

#[test]
fn only_changed_files_are_decoded_again() {
    let dir = scratch("decoded");
    let paths = [dir.clone()];
    let limits = Limits::default();
    let mut cache = DecodeCache::default();
    fs::write(
        dir.join("a.json"),
        r#"{"security_groups": [{"id": "sg-a"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    fs::write(
        dir.join("b.json"),
        r#"{"security_groups": [{"id": "sg-b"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let first = load_paths_cached(&paths, &limits, &[], &mut cache);
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(cache.decoded_last(), 2);
    let again = load_paths_cached(&paths, &limits, &[], &mut cache);
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(cache.decoded_last(), 0, "nothing changed, nothing decoded");
    fs::write(
        dir.join("b.json"),
        r#"{"security_groups": [{"id": "sg-c"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let changed =
        load_paths_cached(&paths, &limits, &[], &mut cache).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cache.decoded_last(), 1, "one file changed, one decoded");
    let ids: Vec<String> = changed
        .rules
        .security_groups
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, ["sg-a", "sg-c"]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn files_are_skipped_by_metadata_only_once_settled() {
    let dir = scratch("kept");
    let paths = [dir.clone()];
    let max = Limits::default().max_file_bytes;
    let write = |name: &str, text: &str| {
        fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    write("a.json", r#"{"security_groups": [{"id": "sg-a"}]}"#);
    write("b.json", r#"{"security_groups": [{"id": "sg-b"}]}"#);
    let read = |kept: &mut KeptFiles| {
        let sources = read_sources_kept(&paths, max, kept).unwrap_or_else(|e| panic!("{e}"));
        (kept.reused_last(), kept.read_last(), sources.files)
    };
    // Just written: racily clean under the default margin, read every time.
    let mut kept = KeptFiles::default();
    assert_eq!(read(&mut kept).0, 0);
    assert_eq!(
        read(&mut kept).0,
        0,
        "files changed seconds ago are read again"
    );
    // Under a small margin, once it has passed: nothing read.
    let mut kept = KeptFiles::with_margin(KEPT_MARGIN);
    std::thread::sleep(KEPT_MARGIN * 2);
    let (reused, opened, first) = read(&mut kept);
    assert_eq!((reused, opened), (0, 2));
    let (reused, opened, again) = read(&mut kept);
    assert_eq!((reused, opened), (2, 0), "settled files are not opened");
    assert_eq!(first, again);
    // A save (a rename over it) is seen at once, and so is a rewrite of
    // the same size in place.
    let tmp = dir.join(".a.json.tmp");
    fs::write(&tmp, r#"{"security_groups": [{"id": "sg-c"}]}"#).unwrap_or_else(|e| panic!("{e}"));
    fs::rename(&tmp, dir.join("a.json")).unwrap_or_else(|e| panic!("{e}"));
    write("b.json", r#"{"security_groups": [{"id": "sg-d"}]}"#);
    let (reused, opened, files) = read(&mut kept);
    assert_eq!((reused, opened), (0, 2));
    let texts: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_slice()).collect();
    assert_eq!(
        texts,
        [
            br#"{"security_groups": [{"id": "sg-c"}]}"#.as_slice(),
            br#"{"security_groups": [{"id": "sg-d"}]}"#.as_slice()
        ]
    );
    // Removed: forgotten.
    fs::remove_file(dir.join("b.json")).unwrap_or_else(|e| panic!("{e}"));
    let (_, _, files) = read(&mut kept);
    assert_eq!(files.len(), 1);
    // b.json is gone; a.json, written just before, may still be racy.
    assert!(kept.len() <= 1, "{kept:?}");
    let _ = fs::remove_dir_all(&dir);
}
