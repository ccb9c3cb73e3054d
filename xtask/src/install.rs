//! `cargo xtask install [--prefix /usr/local] [--destdir D]`: release
//! binaries, the systemd unit, the sysusers entry for group `secgroup`,
//! the docs, and the example rules when /etc/secgroup/rules.d is empty.
//! `--destdir` stages everything under another root (packaging).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask install [--prefix /usr/local] [--destdir DIR]";
const BINARIES: [&str; 2] = ["secgroupd", "secgroupctl"];
const RULES_DIR: &str = "/etc/secgroup/rules.d";

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

impl Options {
    /// Where an absolute path of the installed system lands now.
    fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            Some(destdir) => destdir.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_owned(),
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let mut build = vec!["build", "--release"];
    for bin in BINARIES {
        build.extend(["-p", bin]);
    }
    crate::run_cmd("cargo", &build)?;
    let root = crate::root();
    let target = target_dir();
    let prefix = &options.prefix;

    for bin in BINARIES {
        let to = options.staged(&prefix.join("bin").join(bin));
        install_file(&target.join("release").join(bin), &to, 0o755)?;
    }

    let unit = std::fs::read_to_string(root.join("config/systemd/secgroupd.service"))
        .context("reading the unit")?;
    let unit = unit
        .replace(
            "/usr/local/bin/secgroupd",
            &prefix.join("bin/secgroupd").display().to_string(),
        )
        .replace(
            "/usr/local/share/doc/secgroup",
            &prefix.join("share/doc/secgroup").display().to_string(),
        );
    write_file(
        &options.staged(&prefix.join("lib/systemd/system/secgroupd.service")),
        unit.as_bytes(),
        0o644,
    )?;
    write_file(
        &options.staged(&prefix.join("lib/sysusers.d/secgroup.conf")),
        b"# Members may change things through secgroupd's socket (reload, flush, trace).\ng secgroup -\n",
        0o644,
    )?;
    for doc in ["daemon.md", "rule-files.md"] {
        let from = root.join("docs").join(doc);
        if from.exists() {
            install_file(
                &from,
                &options.staged(&prefix.join("share/doc/secgroup").join(doc)),
                0o644,
            )?;
        }
    }

    let rules = options.staged(Path::new(RULES_DIR));
    let empty = std::fs::read_dir(&rules).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("config/examples"))
            .context("listing config/examples")?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        examples.sort();
        for example in &examples {
            let name = example.file_name().unwrap_or_default();
            install_file(example, &rules.join(name), 0o644)?;
        }
        eprintln!(
            "xtask: {} example rule files in {}",
            examples.len(),
            rules.display()
        );
    } else {
        eprintln!("xtask: {} is not empty; left alone", rules.display());
    }

    let bin = prefix.join("bin/secgroupd");
    eprintln!(
        "\nxtask: installed. Next, as root:\n  \
         systemd-sysusers            # creates group secgroup\n  \
         systemctl daemon-reload\n  \
         systemctl enable --now secgroupd\n  \
         {} --help\n",
        bin.display()
    );
    Ok(())
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` or `target/` in the
/// workspace.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::root().join("target"), PathBuf::from)
}

fn install_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_file(to, &bytes, mode)
}

/// Writes through a temp file and a rename, so a running binary is
/// replaced rather than overwritten in place.
fn write_file(to: &Path, bytes: &[u8], mode: u32) -> Result<()> {
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
