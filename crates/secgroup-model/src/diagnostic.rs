//! Located error reports and the limits that can produce them.

use std::fmt;

use crate::outline::ObjectKind;

/// One problem in the rule files, pointing at the value that causes it.
///
/// Field order matters: the derived `Ord` sorts by file, then position,
/// which is the order diagnostics are reported in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    /// The file name as given to [`crate::load`].
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, counted in characters (not bytes).
    pub column: usize,
    /// JSON path of the offending value, e.g.
    /// `security_groups[0].ingress[2].port`; `$` for the whole document.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.path, self.message
        )
    }
}

/// Every problem found in a set of rule files, sorted by file and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Quotas enforced while loading. The defaults are what the data plane can
/// hold (one table holds at most 4,096 rules); Tencent Cloud's stricter
/// quota of 100 rules per direction per group is a warning
/// (`secgroup_policy::lint`), since a longer list works here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rules in one direction of one security group.
    pub max_rules_per_direction: usize,
    /// Rules in one instance's concatenated list for one direction: the sum
    /// over its security groups of that direction's rule counts.
    pub max_effective_rules: usize,
    /// Size of one rule file in bytes.
    pub max_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_rules_per_direction: 4096,
            max_effective_rules: 4096,
            max_file_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What a document holds: a rule file, or one object of a kind, as a
/// shared store keeps them (one per key, the key naming kind and id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape<'a> {
    File,
    /// One object of `kind` whose `id` must be `id`.
    Object {
        kind: ObjectKind,
        id: &'a str,
    },
}

/// A document handed to [`crate::load_documents`]: a rule file, or one
/// object (an etcd value). Diagnostics name it by `name` either way.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub shape: Shape<'a>,
}

impl<'a> From<SourceFile<'a>> for Document<'a> {
    fn from(file: SourceFile<'a>) -> Document<'a> {
        Document {
            name: file.name,
            bytes: file.bytes,
            shape: Shape::File,
        }
    }
}

/// Which host the rules are read for: what an instance's `"host"` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostView<'a> {
    /// No host in particular (`secgroupctl validate`, a publish): an
    /// instance with an `interface` is bound on its `host` (none: the one
    /// host of a rules directory), and interfaces and addresses must be
    /// unique per host.
    #[default]
    Fleet,
    /// Host `name` (the daemon's `--host-name`): only instances with an
    /// `interface` and no `host`, or this host, are bound here; the
    /// others lend their addresses to group references only.
    Host(&'a str),
}

/// One rule file handed to [`crate::load`].
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    /// How diagnostics name the file, usually its path.
    pub name: &'a str,
    pub bytes: &'a [u8],
}
