//! What each rule file defines, by id and place: the outline of a file,
//! and the index of a whole set of files. Tools that edit the rules
//! directory (`secgroupctl import`) ask it which file holds a group;
//! it is known whether or not the files validate.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::diagnostic::{Diagnostic, Limits, SourceFile};
use crate::model::{
    AddressSetGroupId, AddressSetId, Direction, InstanceId, RuleSet, ServiceSetGroupId,
    ServiceSetId, SgId,
};
use crate::raw::{Loc, Located, RawFile, RawRule};
use crate::source;

/// The two formats a rule file may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// secgroup's own (`security_groups`, `instances`, … at the top).
    #[default]
    Native,
    /// One security group as Tencent Cloud's policy export writes it,
    /// recognised by any of its top-level keys (`SecurityGroupId`, …).
    Tencent,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Tencent => "tencent",
        }
    }
}

/// The kinds of object a rule file defines by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    SecurityGroup,
    Instance,
    AddressSet,
    AddressSetGroup,
    ServiceSet,
    ServiceSetGroup,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::SecurityGroup,
        ObjectKind::Instance,
        ObjectKind::AddressSet,
        ObjectKind::AddressSetGroup,
        ObjectKind::ServiceSet,
        ObjectKind::ServiceSetGroup,
    ];

    /// The top-level key of native files that holds this kind.
    pub fn key(self) -> &'static str {
        match self {
            ObjectKind::SecurityGroup => "security_groups",
            ObjectKind::Instance => "instances",
            ObjectKind::AddressSet => "address_sets",
            ObjectKind::AddressSetGroup => "address_set_groups",
            ObjectKind::ServiceSet => "service_sets",
            ObjectKind::ServiceSetGroup => "service_set_groups",
        }
    }

    /// "security group", "instance", ...
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::SecurityGroup => "security group",
            ObjectKind::Instance => "instance",
            ObjectKind::AddressSet => "address set",
            ObjectKind::AddressSetGroup => "address set group",
            ObjectKind::ServiceSet => "service set",
            ObjectKind::ServiceSetGroup => "service set group",
        }
    }
}

/// A place in a rule file: where a value starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file name as given to the loader.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// JSON path, e.g. `security_groups[1].id`.
    pub path: String,
}

impl From<&Loc> for Location {
    fn from(loc: &Loc) -> Location {
        Location {
            file: loc.file.to_string(),
            line: loc.line,
            column: loc.column,
            path: loc.path.clone(),
        }
    }
}

impl fmt::Display for Location {
    /// `file:line:column`, as diagnostics point at a second place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One object a file defines: its kind, its id as written (which need not
/// be a valid id) and where the id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub kind: ObjectKind,
    pub id: String,
    pub at: Location,
    /// Where its parts are, for warnings about them.
    pub parts: Parts,
}

/// Where the parts of a definition are: a security group's rule lists, an
/// instance's bindings. Empty for the other kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    /// A security group's `ingress` list; `None` when the key is absent,
    /// which is how a file tells an empty list it wrote on purpose
    /// (`"ingress": []`) from one it left out.
    pub ingress: Option<ListPlaces>,
    pub egress: Option<ListPlaces>,
    /// An instance's `security_groups` entries, in binding order.
    pub bindings: Vec<Location>,
}

impl Parts {
    pub fn list(&self, direction: Direction) -> Option<&ListPlaces> {
        match direction {
            Direction::Ingress => self.ingress.as_ref(),
            Direction::Egress => self.egress.as_ref(),
        }
    }
}

/// Where a rule list is, and each of its rules (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlaces {
    pub at: Location,
    pub rules: Vec<Location>,
}

impl ListPlaces {
    fn new(list: &Located<Vec<Located<RawRule>>>) -> ListPlaces {
        ListPlaces {
            at: Location::from(&list.loc),
            rules: list.value.iter().map(|r| Location::from(&r.loc)).collect(),
        }
    }
}

/// What one rule file defines, read from the file alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// The file name as given to the loader.
    pub file: String,
    /// `None` when the file is not even a JSON object.
    pub format: Option<Format>,
    /// In file order. Objects whose id could not be read are missing.
    pub definitions: Vec<Definition>,
    /// What is wrong with the file on its own: size, encoding, syntax,
    /// shape. The meaning of values and everything across files is
    /// checked by [`crate::load`] only.
    pub errors: Vec<Diagnostic>,
}

impl Outline {
    pub(crate) fn new(file: &str, raw: Option<&RawFile>, errors: Vec<Diagnostic>) -> Outline {
        let mut definitions = Vec::new();
        if let Some(raw) = raw {
            let mut add_with = |kind: ObjectKind, id: &Located<String>, parts: Parts| {
                definitions.push(Definition {
                    kind,
                    id: id.value.clone(),
                    at: Location::from(&id.loc),
                    parts,
                });
            };
            for g in &raw.security_groups {
                let parts = Parts {
                    ingress: g.value.ingress.as_ref().map(ListPlaces::new),
                    egress: g.value.egress.as_ref().map(ListPlaces::new),
                    bindings: Vec::new(),
                };
                add_with(ObjectKind::SecurityGroup, &g.value.id, parts);
            }
            for i in &raw.instances {
                let parts = Parts {
                    bindings: i
                        .value
                        .security_groups
                        .value
                        .iter()
                        .map(|b| Location::from(&b.loc))
                        .collect(),
                    ..Parts::default()
                };
                add_with(ObjectKind::Instance, &i.value.id, parts);
            }
            let mut add = |kind: ObjectKind, id: &Located<String>| {
                add_with(kind, id, Parts::default());
            };
            for s in &raw.address_sets {
                add(ObjectKind::AddressSet, &s.value.id);
            }
            for g in &raw.address_set_groups {
                add(ObjectKind::AddressSetGroup, &g.value.id);
            }
            for s in &raw.service_sets {
                add(ObjectKind::ServiceSet, &s.value.id);
            }
            for g in &raw.service_set_groups {
                add(ObjectKind::ServiceSetGroup, &g.value.id);
            }
            // Each list was decoded in file order; the file's order is
            // by position.
            definitions.sort_by_key(|d| (d.at.line, d.at.column));
        }
        Outline {
            file: file.to_owned(),
            format: raw.map(|r| r.format),
            definitions,
            errors,
        }
    }

    /// Whether the file defines `id` of `kind`.
    pub fn defines(&self, kind: ObjectKind, id: &str) -> bool {
        self.definition(kind, id).is_some()
    }

    /// The file's (first) definition of `id` of `kind`.
    pub fn definition(&self, kind: ObjectKind, id: &str) -> Option<&Definition> {
        self.definitions
            .iter()
            .find(|d| d.kind == kind && d.id == id)
    }

    /// How many objects of `kind` the file defines.
    pub fn count(&self, kind: ObjectKind) -> usize {
        self.definitions.iter().filter(|d| d.kind == kind).count()
    }

    /// The objects of this file as `rules` has them: what a rewrite of the
    /// file must keep. `None` if one of them is not in `rules` (the file
    /// is not part of them, or did not validate).
    pub fn objects_in(&self, rules: &RuleSet) -> Option<RuleSet> {
        fn take<K: Ord + Clone, V: Clone>(
            from: &BTreeMap<K, V>,
            into: &mut BTreeMap<K, V>,
            key: Option<K>,
        ) -> Option<()> {
            let key = key?;
            into.insert(key.clone(), from.get(&key)?.clone());
            Some(())
        }
        let mut subset = RuleSet::default();
        for d in &self.definitions {
            let id = d.id.as_str();
            match d.kind {
                ObjectKind::SecurityGroup => take(
                    &rules.security_groups,
                    &mut subset.security_groups,
                    SgId::new(id),
                ),
                ObjectKind::Instance => {
                    take(&rules.instances, &mut subset.instances, InstanceId::new(id))
                }
                ObjectKind::AddressSet => take(
                    &rules.address_sets,
                    &mut subset.address_sets,
                    AddressSetId::new(id),
                ),
                ObjectKind::AddressSetGroup => take(
                    &rules.address_set_groups,
                    &mut subset.address_set_groups,
                    AddressSetGroupId::new(id),
                ),
                ObjectKind::ServiceSet => take(
                    &rules.service_sets,
                    &mut subset.service_sets,
                    ServiceSetId::new(id),
                ),
                ObjectKind::ServiceSetGroup => take(
                    &rules.service_set_groups,
                    &mut subset.service_set_groups,
                    ServiceSetGroupId::new(id),
                ),
            }?;
        }
        Some(subset)
    }
}

/// Reads one file far enough to say what it defines; never fails (what
/// is wrong is in [`Outline::errors`]).
pub fn outline(file: &SourceFile<'_>, limits: &Limits) -> Outline {
    let mut errors = Vec::new();
    let raw = source::decode(&(*file).into(), limits, &mut errors);
    Outline::new(file.name, raw.as_ref(), errors)
}

/// (kind, id) → (file, definition): where an id is defined.
type Definitions = HashMap<ObjectKind, HashMap<String, (usize, usize)>>;

/// What a set of rule files defines, file by file, in file-name order.
/// Outlines are shared (a reload keeps those of unchanged files), and
/// where each id is defined is looked up by id: the lint asks it for
/// every rule of every list.
#[derive(Debug, Clone, Default)]
pub struct Index {
    files: Vec<Arc<Outline>>,
    /// (kind, id) → (file, definition) of the first file by name that
    /// defines it. Built on the first look-up: a reload hands its index
    /// to the lint, off the engine's thread, and that is where it is
    /// first asked (a few thousand ids copied).
    defined: OnceLock<Definitions>,
}

/// `defined` is a function of `files`, whether built yet or not.
impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.files == other.files
    }
}

impl Eq for Index {}

impl Index {
    pub fn new(files: Vec<Outline>) -> Index {
        Index::of_shared(files.into_iter().map(Arc::new).collect())
    }

    /// [`new`](Self::new) from outlines another index may hold too.
    pub fn of_shared(mut files: Vec<Arc<Outline>>) -> Index {
        files.sort_by(|a, b| a.file.cmp(&b.file));
        Index {
            files,
            defined: OnceLock::new(),
        }
    }

    fn defined(&self) -> &Definitions {
        self.defined.get_or_init(|| {
            let mut defined: Definitions = HashMap::new();
            for (f, outline) in self.files.iter().enumerate() {
                for (d, definition) in outline.definitions.iter().enumerate() {
                    defined
                        .entry(definition.kind)
                        .or_default()
                        .entry(definition.id.clone())
                        .or_insert((f, d));
                }
            }
            defined
        })
    }

    /// The outline of every file, in file-name order.
    pub fn files(&self) -> &[Arc<Outline>] {
        &self.files
    }

    /// The outline of the file the loader named `name`.
    pub fn file(&self, name: &str) -> Option<&Outline> {
        self.files.iter().find(|o| o.file == name).map(Arc::as_ref)
    }

    /// The file that defines `id` of `kind`, and where (the first file by
    /// name when several do, which only an invalid set allows; the first
    /// definition in it when it defines the id twice).
    pub fn defining(&self, kind: ObjectKind, id: &str) -> Option<(&Outline, &Definition)> {
        let (f, d) = *self.defined().get(&kind)?.get(id)?;
        let outline = &self.files[f];
        Some((outline, &outline.definitions[d]))
    }
}
