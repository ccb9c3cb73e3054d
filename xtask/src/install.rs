//! `cargo xtask install [--prefix /usr/local] [--destdir D]`: release
//! binaries, the systemd unit, the sysusers entry for group `secgroup`, man
//! pages, shell completions, the docs (with the example rules as
//! examples/ beside them) and the rule files' JSON Schemas
//! (PREFIX/share/secgroup/schema). It never writes into a rules directory: the
//! examples bind interfaces (tap-web1, ...) that a real host may have, so
//! /etc/secgroup/rules.d is only created, empty, when missing.
//! `--destdir` stages everything under another root (packaging).
//! `cargo xtask deb` stages with the same code ([`stage`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask install [--prefix /usr/local] [--destdir DIR]";
pub const BINARIES: [&str; 2] = ["secgroupd", "secgroupctl"];
pub const RULES_DIR: &str = "/etc/secgroup/rules.d";

struct Options {
    prefix: PathBuf,
    destdir: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        prefix: PathBuf::from("/usr/local"),
        destdir: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<PathBuf> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))?;
            Ok(PathBuf::from(value))
        };
        match arg.as_str() {
            "--prefix" => options.prefix = value("--prefix")?,
            "--destdir" => options.destdir = Some(value("--destdir")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if !options.prefix.is_absolute() {
        bail!(
            "--prefix must be an absolute path, not {}",
            options.prefix.display()
        );
    }
    Ok(options)
}

/// Where and what to install: shared by `install` and `deb`.
pub struct Layout {
    /// `/usr/local`, `/usr`.
    pub prefix: PathBuf,
    /// Where the systemd unit goes (an absolute path of the installed
    /// system).
    pub unit_dir: PathBuf,
    /// Stage under this root instead of `/`.
    pub destdir: Option<PathBuf>,
    /// Where the built binaries are (target/release, target/debug).
    pub bin_dir: PathBuf,
}

impl Layout {
    /// Where an absolute path of the installed system lands now.
    pub fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            Some(destdir) => destdir.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_owned(),
        }
    }

    /// `PREFIX/rel`, staged.
    fn under_prefix(&self, rel: &str) -> PathBuf {
        self.staged(&self.prefix.join(rel))
    }

    pub fn doc_dir(&self) -> PathBuf {
        self.prefix.join("share/doc/secgroup")
    }

    /// `PREFIX/share/secgroup/schema`: the rule files' JSON Schemas.
    pub fn schema_dir(&self) -> PathBuf {
        self.prefix.join("share/secgroup/schema")
    }
}

/// Builds the two binaries (`cargo build [--release]`) and returns the
/// directory they are in.
pub fn build(release: bool) -> Result<PathBuf> {
    let mut build = vec!["build"];
    if release {
        build.push("--release");
    }
    for bin in BINARIES {
        build.extend(["-p", bin]);
    }
    crate::run_cmd("cargo", &build)?;
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let bin_dir = build(true)?;
    let layout = Layout {
        unit_dir: options.prefix.join("lib/systemd/system"),
        prefix: options.prefix,
        destdir: options.destdir,
        bin_dir,
    };
    stage(&layout)?;
    let rules = layout.staged(Path::new(RULES_DIR));
    if rules.exists() {
        eprintln!("xtask: {} exists; left alone", rules.display());
    } else {
        std::fs::create_dir_all(&rules).with_context(|| format!("creating {}", rules.display()))?;
        eprintln!("xtask: created {}, empty", rules.display());
    }
    let bin = layout.prefix.join("bin/secgroupd");
    eprintln!(
        "\nxtask: installed. Examples in {}/examples (they bind tap-web1 and others: \
         copy only what fits this host). Next, as root:\n  \
         systemd-sysusers            # creates group secgroup\n  \
         systemctl daemon-reload\n  \
         systemctl enable --now secgroupd\n  \
         {} --help\n",
        layout.doc_dir().display(),
        bin.display()
    );
    Ok(())
}

/// Installs everything but the rules directory: binaries, unit, sysusers
/// entry, man pages (gzipped), completions, docs and examples, and the
/// rule files' JSON Schemas.
pub fn stage(layout: &Layout) -> Result<()> {
    let root = crate::root();
    let prefix = &layout.prefix;

    for bin in BINARIES {
        install_file(
            &layout.bin_dir.join(bin),
            &layout.under_prefix(&format!("bin/{bin}")),
            0o755,
        )?;
    }
    let secgroupd = layout.under_prefix("bin/secgroupd");
    let secgroupctl = layout.under_prefix("bin/secgroupctl");

    let unit = std::fs::read_to_string(root.join("config/systemd/secgroupd.service"))
        .context("reading the unit")?;
    let unit = unit
        .replace(
            "/usr/local/bin/secgroupd",
            &prefix.join("bin/secgroupd").display().to_string(),
        )
        .replace(
            "/usr/local/share/doc/secgroup",
            &layout.doc_dir().display().to_string(),
        );
    write_file(
        &layout.staged(&layout.unit_dir.join("secgroupd.service")),
        unit.as_bytes(),
        0o644,
    )?;
    install_file(
        &root.join("config/sysusers.d/secgroup.conf"),
        &layout.under_prefix("lib/sysusers.d/secgroup.conf"),
        0o644,
    )?;

    let man = target_dir().join("man-staging");
    for page in crate::man::render(&man, &secgroupd, &secgroupctl)? {
        let section = crate::man::section(&page)?;
        let name = page.file_name().unwrap_or_default().to_string_lossy();
        let to = layout.under_prefix(&format!("share/man/man{section}/{name}.gz"));
        write_file(&to, &gzip(&page)?, 0o644)?;
    }

    // Completions, from the installed binary itself. Zsh: Debian's zsh
    // reads vendor-completions under /usr, site-functions elsewhere.
    let zsh_dir = if prefix == Path::new("/usr") {
        "share/zsh/vendor-completions"
    } else {
        "share/zsh/site-functions"
    };
    for (shell, path) in [
        (
            "bash",
            "share/bash-completion/completions/secgroupctl".to_owned(),
        ),
        ("zsh", format!("{zsh_dir}/_secgroupctl")),
        (
            "fish",
            "share/fish/vendor_completions.d/secgroupctl.fish".to_owned(),
        ),
    ] {
        let out = std::process::Command::new(&secgroupctl)
            .args(["completions", shell])
            .output()
            .with_context(|| format!("running {} completions {shell}", secgroupctl.display()))?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!("secgroupctl completions {shell} failed ({})", out.status);
        }
        write_file(&layout.under_prefix(&path), &out.stdout, 0o644)?;
    }

    let doc = layout.staged(&layout.doc_dir());
    install_file(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    for name in ["daemon.md", "rule-files.md", "cli.md"] {
        install_file(&root.join("docs").join(name), &doc.join(name), 0o644)?;
    }
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("config/examples"))
        .context("listing config/examples")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "md"))
        .collect();
    examples.sort();
    for example in &examples {
        let name = example.file_name().unwrap_or_default();
        install_file(example, &doc.join("examples").join(name), 0o644)?;
    }
    // The JSON Schemas of the rule files, for editors (docs/rule-files.md).
    let schemas = layout.staged(&layout.schema_dir());
    for name in SCHEMAS {
        install_file(&root.join("schema").join(name), &schemas.join(name), 0o644)?;
    }
    Ok(())
}

/// The JSON Schemas under schema/, installed into [`Layout::schema_dir`].
pub const SCHEMAS: [&str; 2] = ["secgroup-rules.schema.json", "tencent-policy.schema.json"];

fn gzip(path: &Path) -> Result<Vec<u8>> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(path)
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!("gzip {} failed ({})", path.display(), out.status);
    }
    Ok(out.stdout)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `target/` in the
/// workspace.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::root().join("target"), PathBuf::from)
}

pub(crate) fn install_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_file(to, &bytes, mode)
}

/// Writes through a temp file and a rename, so a running binary is
/// replaced rather than overwritten in place.
pub(crate) fn write_file(to: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = to
        .parent()
        .with_context(|| format!("{} has no parent", to.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.xtask-tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))?;
    eprintln!("xtask: installed {}", to.display());
    Ok(())
}
