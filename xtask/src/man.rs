//! `cargo xtask man`: the man pages, into target/man. None is written by
//! hand, so none can drift from what it describes:
//!
//! - secgroupctl.1 and one page per subcommand (secgroupctl-sg-show.1, ...)
//!   from secgroupctl's clap definitions, written by a built secgroupctl
//!   (its hidden `man --out-dir`);
//! - secgroupd.8 from `secgroupd --help` of a built daemon.
//!
//! xtask links neither: they need clang (the data plane) and protoc (the
//! etcd client) to build, and xtask must build on a machine that has
//! nothing installed yet, since `cargo xtask deps` is what installs them.
//! - secgroup-rules.5, the rule-file format, from docs/rule-files.md.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The rule-file page's name (section 5).
pub const RULES_PAGE: &str = "secgroup-rules";

pub fn run(args: &[String]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("man takes no arguments, not {extra:?}");
    }
    crate::run_cmd("cargo", &["build", "-p", "secgroupd", "-p", "secgroupctl"])?;
    let built = crate::install::target_dir().join("debug");
    let dir = crate::install::target_dir().join("man");
    let pages = render(&dir, &built.join("secgroupd"), &built.join("secgroupctl"))?;
    let names: Vec<String> = pages
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    eprintln!(
        "xtask: wrote {} man pages into {} ({}); read one with: man -l {}",
        pages.len(),
        dir.display(),
        names.join(", "),
        dir.join("secgroupctl.1").display()
    );
    Ok(())
}

/// Writes every page into `dir` (emptied of earlier pages first) and
/// returns their paths, sorted. `secgroupd` is the daemon binary whose
/// `--help` becomes secgroupd.8; `secgroupctl` the CLI binary that writes
/// its own pages.
pub fn render(dir: &Path, secgroupd: &Path, secgroupctl: &Path) -> Result<Vec<PathBuf>> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = Command::new(secgroupctl)
        .arg("man")
        .arg("--out-dir")
        .arg(dir)
        .output()
        .with_context(|| format!("running {} man", secgroupctl.display()))?;
    if !out.status.success() {
        bail!(
            "{} man --out-dir {} failed ({}): {}",
            secgroupctl.display(),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    fs::write(dir.join("secgroupd.8"), daemon_page(secgroupd)?).context("writing secgroupd.8")?;
    let rules = crate::root().join("docs/rule-files.md");
    let markdown =
        fs::read_to_string(&rules).with_context(|| format!("reading {}", rules.display()))?;
    fs::write(
        dir.join(format!("{RULES_PAGE}.5")),
        markdown_page(
            RULES_PAGE,
            5,
            "the rule files of secgroupd and secgroupctl",
            &markdown,
        ),
    )
    .with_context(|| format!("writing {RULES_PAGE}.5"))?;
    let mut pages: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    pages.sort();
    Ok(pages)
}

/// The section a page belongs to: the digit its name ends with.
pub fn section(page: &Path) -> Result<char> {
    page.extension()
        .and_then(|e| e.to_str())
        .and_then(|e| e.chars().next())
        .filter(char::is_ascii_digit)
        .with_context(|| format!("{} has no man section", page.display()))
}

fn output_of(program: &Path, arg: &str) -> Result<String> {
    let out = Command::new(program)
        .arg(arg)
        .output()
        .with_context(|| format!("running {} {arg}", program.display()))?;
    if !out.status.success() {
        bail!("{} {arg} failed ({})", program.display(), out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("{} {arg}: not UTF-8", program.display()))
}

/// secgroupd.8 from the daemon's clap help: the about line, then one
/// tagged paragraph per option (clap's `--help` layout: the option at two
/// to six spaces, its description at ten).
fn daemon_page(secgroupd: &Path) -> Result<String> {
    let help = output_of(secgroupd, "--help")?;
    let version = output_of(secgroupd, "--version")?;
    let version = version.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut lines = help.lines();
    let about = lines.next().unwrap_or_default().trim();
    let mut page = format!(
        ".TH SECGROUPD 8 \"\" \"secgroupd {version}\" \"System Administration\"\n\
         .SH NAME\nsecgroupd \\- {}\n\
         .SH SYNOPSIS\n\\fBsecgroupd\\fR [\\fIOPTIONS\\fR]\n\
         .SH DESCRIPTION\n{}\n.PP\n\
         Every option can also be set through the environment variable shown \
         with it, which is how a systemd drop-in sets them \
         (\\fBsystemctl edit secgroupd\\fR). SIGHUP reloads the rules directory; \
         SIGTERM stops the daemon and leaves the pinned hooks filtering.\n\
         .SH OPTIONS\n",
        roff_text(&lowercase_first(about)),
        roff_text(about)
    );
    let mut options = 0;
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.ends_with(':') && indent == 0 {
            continue;
        }
        if indent < 10 && text.starts_with('-') {
            options += 1;
            let _ = writeln!(page, ".TP\n\\fB{}\\fR", roff_text(text));
        } else if indent >= 10 && options > 0 {
            let _ = writeln!(page, "{}", roff_text(text));
        }
    }
    if options < 5 {
        bail!(
            "{} --help lists only {options} options: has its layout changed?",
            secgroupd.display()
        );
    }
    page.push_str(
        ".SH FILES\n\
         .TP\n/etc/secgroup/rules.d\nthe rules directory (see \\fBsecgroup-rules\\fR(5))\n\
         .TP\n/run/secgroup/secgroupd.sock\nthe API socket\n\
         .TP\n/sys/fs/bpf/secgroup\nthe pinned maps and hooks\n\
         .TP\n/var/lib/secgroup\nthe rules last applied\n\
         .SH SEE ALSO\n\\fBsecgroupctl\\fR(1), \\fBsecgroup-rules\\fR(5), \\fBsystemd.service\\fR(5)\n",
    );
    Ok(page)
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would
/// read as a request.
fn roff_text(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

/// Inline markdown to roff: `code` in bold, links reduced to their text.
fn inline(text: &str) -> String {
    let out = inline_body(text);
    if out.starts_with('.') || out.starts_with('\'') {
        format!("\\&{out}")
    } else {
        out
    }
}

fn inline_body(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut code = false;
    while let Some(i) = rest.find(['`', '[']) {
        let (before, after) = rest.split_at(i);
        out.push_str(&roff_inline(before));
        if let Some(tail) = after.strip_prefix('`') {
            out.push_str(if code { "\\fR" } else { "\\fB" });
            code = !code;
            rest = tail;
        } else if let Some((label, tail)) = link(after).filter(|_| !code) {
            out.push_str(&inline_body(label));
            rest = tail;
        } else {
            out.push_str(&roff_inline("["));
            rest = &after[1..];
        }
    }
    out.push_str(&roff_inline(rest));
    if code {
        out.push_str("\\fR");
    }
    out.replace("**", "")
}

fn roff_inline(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// `[label](target)rest` → (label, rest).
fn link(text: &str) -> Option<(&str, &str)> {
    let close = text.find("](")?;
    let end = text[close..].find(')')? + close;
    Some((&text[1..close], &text[end + 1..]))
}

/// A section-N page from a markdown document: `#` is the title (and the
/// NAME line uses `summary`), `##` sections, `###` and deeper subsections;
/// paragraphs and list items are filled, code blocks and tables kept as
/// they are.
fn markdown_page(name: &str, section: u8, summary: &str, markdown: &str) -> String {
    let mut page = format!(
        ".TH {} {section} \"\" \"secgroup\" \"File Formats\"\n.SH NAME\n{name} \\- {}\n",
        name.to_uppercase(),
        roff_inline(summary)
    );
    let mut in_code = false;
    let mut in_table = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            page.push_str(if in_code {
                ".fi\n.RE\n"
            } else {
                ".PP\n.RS 4\n.nf\n"
            });
            in_code = !in_code;
            continue;
        }
        if in_code {
            let _ = writeln!(page, "\\&{}", roff_inline(line));
            continue;
        }
        let is_table = line.starts_with('|');
        if is_table != in_table {
            page.push_str(if is_table { ".PP\n.nf\n" } else { ".fi\n" });
            in_table = is_table;
        }
        if is_table {
            if !line.starts_with("|--") && !line.starts_with("|:-") {
                let _ = writeln!(page, "\\&{}", inline(line));
            }
            continue;
        }
        let trimmed = line.trim();
        if line.starts_with("<!--") {
            continue;
        } else if let Some(title) = line.strip_prefix("# ") {
            let _ = writeln!(page, ".SH DESCRIPTION\n.I {}", inline(title));
        } else if let Some(title) = line.strip_prefix("## ") {
            let _ = writeln!(
                page,
                ".SH \"{}\"",
                inline(title).to_uppercase().replace('"', "")
            );
        } else if let Some(title) = line
            .strip_prefix("###")
            .map(|l| l.trim_start_matches('#'))
            .and_then(|l| l.strip_prefix(' '))
        {
            let _ = writeln!(page, ".SS \"{}\"", inline(title).replace('"', ""));
        } else if trimmed.is_empty() {
            page.push_str(".PP\n");
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            let _ = writeln!(page, ".IP \\(bu 2\n{}", inline(item));
        } else {
            let _ = writeln!(page, "{}", inline(trimmed));
        }
    }
    if in_code || in_table {
        page.push_str(".fi\n");
    }
    page.push_str(".SH SEE ALSO\n\\fBsecgroupctl\\fR(1), \\fBsecgroupctl\\-validate\\fR(1), \\fBsecgroupd\\fR(8)\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markdown() {
        assert_eq!(inline("a `b-c` [d](e.md) f"), "a \\fBb\\-c\\fR d f");
        assert_eq!(inline(".x"), "\\&.x");
        assert_eq!(inline("[not a link"), "[not a link");
    }

    #[test]
    fn rule_file_page_has_every_section() {
        let markdown = fs::read_to_string(crate::root().join("docs/rule-files.md"))
            .unwrap_or_else(|e| panic!("docs/rule-files.md: {e}"));
        let page = markdown_page(RULES_PAGE, 5, "x", &markdown);
        let sections = markdown.lines().filter(|l| l.starts_with("## ")).count();
        assert_eq!(page.matches("\n.SH \"").count(), sections);
        assert_eq!(page.matches(".nf\n").count(), page.matches(".fi\n").count());
    }
}
