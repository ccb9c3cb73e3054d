//! `cargo xtask deb [--debug] [--check]`: a Debian package built with
//! dpkg-deb alone (no debhelper): what `cargo xtask install --prefix /usr`
//! stages ([`crate::install::stage`]), the unit in /lib/systemd/system, an
//! empty /etc/secgroup/rules.d, the maintainer scripts of config/debian/
//! (postinst creates the system group secgroup; none starts anything
//! without a running systemd or when installing into another root), md5sums
//! and conffiles (every file under /etc: today none, the rules directory is
//! the operator's). Version from the workspace, architecture from
//! `dpkg --print-architecture`, into target/deb/.
//!
//! `--check` ([`check`], also run by `cargo xtask test`) installs the
//! package into a fresh root with `dpkg --root` (maintainer scripts run
//! chrootless with `DPKG_ROOT` set: they write only there), runs
//! `secgroupctl validate` from it on the packaged examples, purges it, and
//! runs lintian.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::install::{Layout, RULES_DIR, install_file, write_file};

const USAGE: &str = "usage: cargo xtask deb [--debug] [--check]";
const PACKAGE: &str = "secgroup";
/// Where the unit goes on Debian 12 (not merged into /usr by dpkg yet).
const UNIT_DIR: &str = "/lib/systemd/system";
const MAINTAINER: &str = "secgroup developers <secgroup@example.org>";

pub fn run(args: &[String]) -> Result<()> {
    let mut release = true;
    let mut check_it = false;
    for arg in args {
        match arg.as_str() {
            "--debug" => release = false,
            "--check" => check_it = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if check_it {
        return check(release);
    }
    let deb = build(release)?;
    eprintln!("xtask: built {}", deb.display());
    Ok(())
}

fn output(program: &str, args: &[&str], dir: Option<&Path>) -> Result<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Builds the binaries and the package; returns the .deb's path.
pub fn build(release: bool) -> Result<PathBuf> {
    let bin_dir = crate::install::build(release)?;
    let version = env!("CARGO_PKG_VERSION");
    let arch = output("dpkg", &["--print-architecture"], None)?;
    let out_dir = crate::install::target_dir().join("deb");
    let stage = out_dir.join(format!("{PACKAGE}_{version}_{arch}"));
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("emptying {}", stage.display()))?;
    }
    let layout = Layout {
        prefix: PathBuf::from("/usr"),
        unit_dir: PathBuf::from(UNIT_DIR),
        destdir: Some(stage.clone()),
        bin_dir,
    };
    crate::install::stage(&layout)?;
    let root = crate::root();
    let config = root.join("config/debian");

    // What dh_strip would do: debug builds carry their symbols.
    for bin in crate::install::BINARIES {
        let path = layout.staged(&layout.prefix.join("bin").join(bin));
        let path = path.to_string_lossy();
        crate::run_cmd(
            "strip",
            &[
                "--remove-section=.comment",
                "--remove-section=.note",
                "--strip-unneeded",
                &path,
            ],
        )?;
    }
    fs::create_dir_all(layout.staged(Path::new(RULES_DIR)))
        .with_context(|| format!("creating {RULES_DIR} in {}", stage.display()))?;
    let doc = layout.staged(&layout.doc_dir());
    install_file(&config.join("copyright"), &doc.join("copyright"), 0o644)?;
    write_file(
        &doc.join("changelog.gz"),
        &gzip(changelog(version).as_bytes())?,
        0o644,
    )?;
    install_file(
        &config.join("lintian-overrides"),
        &layout.staged(
            Path::new("/usr/share/lintian/overrides")
                .join(PACKAGE)
                .as_path(),
        ),
        0o644,
    )?;

    let control = stage.join("DEBIAN");
    fs::create_dir_all(&control).context("creating DEBIAN")?;
    for script in ["postinst", "prerm", "postrm"] {
        install_file(&config.join(script), &control.join(script), 0o755)?;
    }
    let conffiles = files_under(&stage.join("etc"))?
        .iter()
        .map(|f| format!("/{}\n", rel(&stage, f)))
        .collect::<String>();
    if !conffiles.is_empty() {
        write_file(&control.join("conffiles"), conffiles.as_bytes(), 0o644)?;
    }
    let mut md5sums = String::new();
    let mut size_kib = 0;
    for file in files_under(&stage)? {
        let rel = rel(&stage, &file);
        if rel.starts_with("DEBIAN/") {
            continue;
        }
        let sum = output("md5sum", &[&rel], Some(&stage))?;
        md5sums.push_str(&sum);
        md5sums.push('\n');
        size_kib += file.metadata().map_or(0, |m| m.len()).div_ceil(1024);
    }
    write_file(&control.join("md5sums"), md5sums.as_bytes(), 0o644)?;
    let depends = shlibs_depends(&layout)?;
    let control_text = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {size_kib}\n\
         Depends: {depends}, passwd\n\
         Section: net\n\
         Priority: optional\n\
         Description: cloud security groups for virtual machines, enforced with eBPF\n \
         secgroupd enforces the security groups of a directory of JSON rule files\n \
         on the virtual machine interfaces of a hypervisor host: XDP and TCX\n \
         programs with connection tracking, port security and per-rule counters,\n \
         reloaded within milliseconds when the files change.\n \
         .\n \
         secgroupctl validates and edits rule files and asks the daemon what is\n \
         in force, what matched and why.\n",
        maintainer = std::env::var("SECGROUP_DEB_MAINTAINER").unwrap_or(MAINTAINER.to_owned()),
    );
    write_file(&control.join("control"), control_text.as_bytes(), 0o644)?;

    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    crate::run_cmd(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "-Zxz",
            "--build",
            &stage.to_string_lossy(),
            &deb.to_string_lossy(),
        ],
    )?;
    Ok(deb)
}

/// The libraries' packages the binaries need (`dpkg-shlibdeps`, which
/// wants a debian/control to read; given a throwaway one).
fn shlibs_depends(layout: &Layout) -> Result<String> {
    let tmp = crate::install::target_dir().join("deb/shlibdeps");
    fs::create_dir_all(tmp.join("debian")).context("creating the shlibdeps directory")?;
    fs::write(
        tmp.join("debian/control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"),
    )
    .context("writing the shlibdeps control")?;
    let mut args = vec!["-O".to_owned()];
    for bin in crate::install::BINARIES {
        let path = layout.staged(&layout.prefix.join("bin").join(bin));
        args.push(format!("-e{}", path.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = output("dpkg-shlibdeps", &args, Some(&tmp))?;
    let depends = out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .with_context(|| format!("dpkg-shlibdeps said no shlibs:Depends: {out}"))?;
    Ok(depends.to_owned())
}

fn changelog(version: &str) -> String {
    let date = output("git", &["log", "-1", "--format=%aD"], Some(&crate::root()))
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * Built from the workspace by cargo xtask deb.\n\n \
         -- {MAINTAINER}  {date}\n"
    )
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting gzip")?;
    child
        .stdin
        .take()
        .context("gzip's stdin")?
        .write_all(bytes)
        .context("writing to gzip")?;
    let out = child.wait_with_output().context("waiting for gzip")?;
    if !out.status.success() {
        bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Every regular file under `dir` (none if it does not exist), sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let kind = entry.file_type().context("file type")?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The package test: build (debug binaries unless `release`), install into
/// a fresh root, use, purge, lintian. Needs root for dpkg; skips loudly
/// without it, never under CI=true.
pub fn check(release: bool) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("CI=true but not root: the Debian package test must run in CI");
        }
        eprintln!(
            "\n*** SKIPPED the Debian package test (cargo xtask deb --check): needs root ***\n"
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    let deb = build(release)?;
    let deb_arg = deb.to_string_lossy().into_owned();
    let real_group = fs::read("/etc/group").context("reading /etc/group")?;

    let root = std::env::temp_dir().join(format!("secgroup-deb-check-{}", std::process::id()));
    let result = check_in(&root, &deb_arg);
    let _ = fs::remove_dir_all(&root);
    result?;
    if fs::read("/etc/group").context("reading /etc/group")? != real_group {
        bail!("the real /etc/group changed while testing the package");
    }

    // lintian prints its tags on stdout and fails on any of them.
    eprintln!("xtask: running lintian on {deb_arg}");
    let lintian = Command::new("lintian")
        .args([
            "--fail-on",
            "error,warning,info",
            "--display-info",
            &deb_arg,
        ])
        .output()
        .context("starting lintian (cargo xtask deps installs it)")?;
    let tags = String::from_utf8_lossy(&lintian.stdout);
    eprint!("{tags}{}", String::from_utf8_lossy(&lintian.stderr));
    if !lintian.status.success() {
        bail!(
            "lintian found problems in {deb_arg} ({}): fix each, or explain it in config/debian/lintian-overrides",
            lintian.status
        );
    }
    eprintln!(
        "xtask: Debian package test passed in {:.1?}: {} installs, works and purges in a fresh root; lintian clean",
        started.elapsed(),
        deb.display()
    );
    Ok(())
}

fn check_in(root: &Path, deb: &str) -> Result<()> {
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/log",
        "etc",
    ] {
        fs::create_dir_all(r(dir)).with_context(|| format!("creating {dir} in the test root"))?;
    }
    fs::write(r("var/lib/dpkg/status"), "").context("writing the test root's dpkg status")?;
    fs::write(r("etc/group"), "root:x:0:\n").context("writing the test root's /etc/group")?;
    fs::write(r("etc/gshadow"), "root:*::\n").context("writing the test root's /etc/gshadow")?;
    fs::write(r("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .context("writing the test root's /etc/passwd")?;
    let root_arg = format!("--root={}", root.display());
    let dpkg = |args: &[&str]| -> Result<String> {
        let mut all = vec![
            root_arg.as_str(),
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ];
        all.extend(args);
        output("dpkg", &all, None)
    };
    dpkg(&["--install", deb])?;

    let group = fs::read_to_string(r("etc/group")).context("reading the test root's /etc/group")?;
    if !group.lines().any(|l| l.starts_with("secgroup:")) {
        bail!("postinst did not create group secgroup in the test root:\n{group}");
    }
    let rules = r(RULES_DIR);
    if fs::read_dir(&rules)
        .with_context(|| format!("{RULES_DIR} is not in the package"))?
        .next()
        .is_some()
    {
        bail!("{RULES_DIR} is not empty in the package");
    }
    let listed = dpkg(&["--listfiles", PACKAGE])?;
    for wanted in [
        "/usr/bin/secgroupd",
        "/usr/bin/secgroupctl",
        "/lib/systemd/system/secgroupd.service",
        "/usr/lib/sysusers.d/secgroup.conf",
        "/usr/share/man/man8/secgroupd.8.gz",
        "/usr/share/man/man1/secgroupctl.1.gz",
        "/usr/share/man/man1/secgroupctl-validate.1.gz",
        "/usr/share/man/man5/secgroup-rules.5.gz",
        "/usr/share/bash-completion/completions/secgroupctl",
        "/usr/share/zsh/vendor-completions/_secgroupctl",
        "/usr/share/fish/vendor_completions.d/secgroupctl.fish",
        "/usr/share/doc/secgroup/daemon.md",
        "/usr/share/doc/secgroup/examples/web-bastion-db.json",
        "/usr/share/secgroup/schema/secgroup-rules.schema.json",
        "/usr/share/secgroup/schema/tencent-policy.schema.json",
        RULES_DIR,
    ] {
        if !listed.lines().any(|l| l == wanted) {
            bail!("the package lacks {wanted}; it has:\n{listed}");
        }
    }
    let unit = fs::read_to_string(r("lib/systemd/system/secgroupd.service"))
        .context("reading the packaged unit")?;
    for wanted in [
        "ExecStart=/usr/bin/secgroupd\n",
        "Environment=SECGROUP_INTERFACE_PATTERN=tap*,vnet*\n",
        "file:///usr/share/doc/secgroup/daemon.md",
    ] {
        if !unit.contains(wanted) {
            bail!("the packaged unit lacks {wanted:?}");
        }
    }
    let ctl = r("usr/bin/secgroupctl");
    let ctl = ctl.to_string_lossy();
    let examples = r("usr/share/doc/secgroup/examples");
    let examples = examples.to_string_lossy();
    let validated = output(&ctl, &["validate", &examples], None)
        .context("the packaged secgroupctl does not validate the packaged examples")?;
    eprintln!("xtask: packaged secgroupctl validate: {validated}");
    output(
        &r("usr/bin/secgroupd").to_string_lossy(),
        &["--version"],
        None,
    )?;

    fs::create_dir_all(r("var/lib/secgroup")).context("creating the test root's state dir")?;
    fs::write(r("var/lib/secgroup/applied.json"), "{}").context("writing a state file")?;
    dpkg(&["--purge", PACKAGE])?;
    for gone in [
        "usr/bin/secgroupd",
        "var/lib/secgroup",
        "etc/secgroup/rules.d",
    ] {
        if r(gone).exists() {
            bail!("/{gone} is still there after purge");
        }
    }
    Ok(())
}
