//! Reading the rules directory: everything or nothing. Either the whole
//! directory validates and compiles, or the reload fails with every
//! problem listed and the policy in force stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use secgroup_model::{DecodeCache, Diagnostic, HostView, Index, Limits, RuleSet};
use secgroup_policy::{Linter, Policy};
use secgroup_rulesdir::{KeptFiles, RulesDirError};

/// A valid rules directory: the rules as written (for showing them), the
/// compiled policy (for enforcing it) and the files it came from.
#[derive(Debug)]
pub struct Loaded {
    pub rules: RuleSet,
    pub policy: Policy,
    /// The files read, in name order: `known` for the next load.
    pub files: Vec<PathBuf>,
    /// How long reading and validating, then compiling, took.
    pub timings: LoadTimings,
    /// The warnings of these rules, once [`lint_in_background`] is done.
    pub warnings: Warnings,
}

/// Where a load's warnings arrive: worked out off the engine's thread
/// after the policy is in force, shown by the API once there.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<OnceLock<Vec<String>>>);

impl Warnings {
    /// `None` while the lint still runs.
    pub fn get(&self) -> Option<&[String]> {
        self.0.get().map(Vec::as_slice)
    }

    /// Fills the slot as the lint does (for tests of what reads it).
    #[cfg(test)]
    pub fn set(&self, warnings: Vec<String>) {
        let _ = self.0.set(warnings);
    }
}

/// Where a load's time went (logged with every reload).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimings {
    pub read_validate: std::time::Duration,
    pub compile: std::time::Duration,
}

/// Why a rules directory was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFailure {
    /// One line.
    pub message: String,
    /// `file:line:column: path: message`, one per problem, as `secgroupctl
    /// validate` prints them (unreadable entries included); empty only
    /// when the directory itself could not be read.
    pub diagnostics: Vec<String>,
}

/// Loads `dir`. `known`: the files of the previous successful load, so a
/// conflict between an old and a new file is reported in the new one.
/// Only the files whose metadata says they may have changed since the
/// last call with `kept` are read again, and only those whose bytes
/// changed since the last call with `cache` are
/// decoded and checked by themselves again (the daemon keeps one for its
/// life); the checks across files run every time, so the directory is
/// accepted only as a whole. `previous`, this daemon's last load, if any:
/// only what the change can affect is compiled again, the rest of its
/// policy is shared. What [`lint`] needs is returned beside.
#[cfg(test)]
pub fn load_cached(
    dir: &Path,
    known: &[PathBuf],
    kept: &mut KeptFiles,
    cache: &mut DecodeCache,
    previous: Option<&Loaded>,
) -> Result<(Loaded, LintInput), LoadFailure> {
    let what = format!("the rule files of {}", dir.display());
    let extra = secgroup_rulesdir::Extra::default();
    let view = (HostView::Fleet, Lists::All);
    let caches = (kept, cache);
    load_view(Some(dir), &extra, view, &what, known, caches, previous)
}

/// Which instances a load compiles lists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    /// Every instance (a rules directory: the API shows instances
    /// elsewhere with the lists they would have).
    All,
    /// Only those bound here: a fleet's other hosts' instances are
    /// thousands, and count only as member addresses.
    BoundHere,
}

/// [`load_cached`] of `dir` (if any) and `extra` documents (etcd's
/// values) merged, for the host `view` says; `what` names them in the
/// failure's message. `kept`, `cache` and `previous` as for
/// [`load_cached`].
pub fn load_view(
    dir: Option<&Path>,
    extra: &secgroup_rulesdir::Extra<'_>,
    (view, lists): (HostView<'_>, Lists),
    what: &str,
    known: &[PathBuf],
    (kept, cache): (&mut KeptFiles, &mut DecodeCache),
    previous: Option<&Loaded>,
) -> Result<(Loaded, LintInput), LoadFailure> {
    let started = Instant::now();
    let limits = Limits::default();
    let sources = match dir {
        Some(dir) => {
            let sources = secgroup_rulesdir::read_sources_kept(
                &[dir.to_owned()],
                limits.max_file_bytes,
                kept,
            );
            tracing::debug!(
                read_ms = format!("{:.2}", started.elapsed().as_secs_f64() * 1e3),
                reused = kept.reused_last(),
                read = kept.read_last(),
                "rule files read"
            );
            sources
        }
        None => Ok(secgroup_rulesdir::Sources::default()),
    };
    let result = sources.and_then(|sources| {
        sources
            .load_with_documents(&limits, known, cache, extra, view)
            .map_err(RulesDirError::from)
    });
    match result {
        Ok(loaded) => {
            let read_validate = started.elapsed();
            let policy = match (previous, lists) {
                (Some(previous), Lists::All) => {
                    secgroup_policy::recompile(&previous.rules, &previous.policy, &loaded.rules)
                }
                (Some(previous), Lists::BoundHere) => secgroup_policy::recompile_bound(
                    &previous.rules,
                    &previous.policy,
                    &loaded.rules,
                ),
                (None, Lists::All) => secgroup_policy::compile(&loaded.rules),
                (None, Lists::BoundHere) => secgroup_policy::compile_bound(&loaded.rules),
            };
            let compile = started.elapsed() - read_validate;
            let rules = Loaded {
                rules: loaded.rules,
                policy,
                files: loaded.files,
                timings: LoadTimings {
                    read_validate,
                    compile,
                },
                warnings: Warnings::default(),
            };
            let lint_input = LintInput {
                index: loaded.index,
                loader_warnings: loaded.warnings,
            };
            Ok((rules, lint_input))
        }
        Err(RulesDirError::Invalid(diagnostics)) => {
            let n = diagnostics.0.len();
            Err(LoadFailure {
                message: format!("{n} error{} in {what}", if n == 1 { "" } else { "s" }),
                diagnostics: diagnostics.0.iter().map(ToString::to_string).collect(),
            })
        }
        Err(e) => Err(LoadFailure {
            message: e.to_string(),
            diagnostics: Vec::new(),
        }),
    }
}

/// Every warning of a load (valid but questionable, `file:line:column:
/// path: message`): the loader's and `secgroup_policy::lint`'s
/// (unbound groups, shadowed rules, ...), sorted.
pub fn lint(loaded: &Loaded, input: LintInput) -> Vec<String> {
    // Each list's analysis is kept for the next lint (the lists a reload
    // did not recompile are the same allocations): a reload of one VM's
    // file lints two lists again, not two thousand. One lint at a time
    // uses it; a lint that panicked left it as valid as before (each
    // entry is replaced whole).
    static LINTER: Mutex<Option<Linter>> = Mutex::new(None);
    let mut linter = LINTER.lock().unwrap_or_else(PoisonError::into_inner);
    let mut warnings = input.loader_warnings;
    warnings.extend(linter.get_or_insert_with(Linter::default).lint(
        &loaded.rules,
        &loaded.policy,
        &input.index,
    ));
    drop(linter);
    warnings.sort();
    warnings.dedup();
    warnings.iter().map(ToString::to_string).collect()
}

/// [`lint`] on a thread of its own, at a lower priority than the engine
/// and the API: on a thousand instances it costs more than the rest of a
/// reload (a few hundred milliseconds), and warnings never change what is
/// enforced, so the engine never waits for them (but for an API reload,
/// whose answer carries them: join the handle). Logs each warning and
/// leaves them in `loaded.warnings`. A lint that has not started when
/// the next one is asked for is skipped (a burst of reloads lints the
/// last rules only: the status shows no other's warnings).
pub fn lint_in_background(
    loaded: Arc<Loaded>,
    input: LintInput,
) -> Option<std::thread::JoinHandle<Vec<String>>> {
    /// The lint asked for last and not started yet. Its rules wait here,
    /// not in its thread: a thread holding them until it could start
    /// kept every policy of a burst of reloads alive while one lint ran
    /// (each waited for the one before it, at a lower priority than the
    /// engine): a thousand VMs' base group changed 40 times in a row
    /// took the daemon from 200 MB to over 300 MB. Replaced, a lint's
    /// rules are dropped at once.
    static PENDING: Mutex<Option<(u64, Arc<Loaded>, LintInput)>> = Mutex::new(None);
    /// Held while a lint runs: one at a time.
    static RUNNING: Mutex<()> = Mutex::new(());
    static LATEST: AtomicU64 = AtomicU64::new(0);
    let ticket = LATEST.fetch_add(1, Ordering::SeqCst) + 1;
    *PENDING.lock().unwrap_or_else(PoisonError::into_inner) = Some((ticket, loaded, input));
    let work = move || {
        lower_priority();
        if LATEST.load(Ordering::SeqCst) != ticket {
            return Vec::new();
        }
        let _running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        let job = {
            let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
            match pending.take() {
                Some((pending_ticket, loaded, input)) if pending_ticket == ticket => {
                    Some((loaded, input))
                }
                // A newer lint's (its own thread takes it), or none.
                other => {
                    *pending = other;
                    None
                }
            }
        };
        let Some((loaded, input)) = job else {
            return Vec::new();
        };
        let started = Instant::now();
        let warnings = lint(&loaded, input);
        for warning in &warnings {
            tracing::warn!(%warning, "questionable rule file");
        }
        tracing::debug!(
            lint_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
            "rule files linted"
        );
        let _ = loaded.warnings.0.set(warnings.clone());
        warnings
    };
    std::thread::Builder::new()
        .name("secgroupd-lint".to_owned())
        .spawn(work)
        .map_err(|e| {
            // Warnings change nothing enforced: without a thread there
            // are none to show for these rules.
            PENDING.lock().unwrap_or_else(PoisonError::into_inner).take();
            tracing::error!(error = %e, "no thread for the lint: these rules' warnings are not worked out");
        })
        .ok()
}

/// Nice 10 for the calling thread (Linux threads have their own): the
/// engine and the API answers come first on a busy host.
pub(crate) fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// What a load hands to [`lint`]: where each object is written, and the
/// loader's own warnings.
pub struct LintInput {
    index: Index,
    loader_warnings: Vec<Diagnostic>,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("secgroupd-rules-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text)
                .unwrap_or_else(|e| panic!("writing {name}: {e}"));
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load(dir: &Path, known: &[PathBuf]) -> Result<Loaded, LoadFailure> {
        let (mut kept, mut cache) = (KeptFiles::default(), DecodeCache::default());
        load_cached(dir, known, &mut kept, &mut cache, None).map(|(loaded, _)| loaded)
    }

    #[test]
    fn valid_invalid_and_missing() {
        let dir = TempDir::new("load");
        dir.write(
            "a.json",
            r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "22" } ] } ],
  "instances": [ { "id": "ins-a", "interface": "tap-a", "ips": ["198.51.100.5"], "security_groups": ["sg-a"] } ] }"#,
        );
        dir.write(".a.json.swp", "not json");
        let loaded = load(&dir.0, &[]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(loaded.policy.instances.len(), 1);

        dir.write(
            "b.json",
            "{\n  \"security_groups\": [ { \"id\": \"web\" } ]\n}",
        );
        let failure = load(&dir.0, &[])
            .err()
            .unwrap_or_else(|| panic!("an invalid file was accepted"));
        assert_eq!(
            failure.message,
            format!("1 error in the rule files of {}", dir.0.display())
        );
        assert_eq!(failure.diagnostics.len(), 1);
        assert_eq!(
            failure.diagnostics[0],
            format!(
                "{}:2:32: security_groups[0].id: \"web\" is not a security group id; expected \"sg-\" \
                 followed by letters, digits, '_', '.' or '-'",
                dir.0.join("b.json").display()
            )
        );

        let missing = dir.0.join("nope");
        let failure = load(&missing, &[])
            .err()
            .unwrap_or_else(|| panic!("a missing directory was accepted"));
        assert!(failure.message.starts_with("cannot access"), "{failure:?}");
        assert!(failure.diagnostics.is_empty());
    }
}
