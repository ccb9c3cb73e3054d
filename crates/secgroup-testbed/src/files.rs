//! Directories a test owns: a scratch dir in the temp dir, a rules
//! directory edited the way controllers do it, a bpffs pin directory.
//! Each is removed on drop.

use std::path::{Path, PathBuf};

use crate::error::{Error, or_panic};
use crate::names::unique;

/// A directory in the temp dir, removed with its contents on drop.
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    /// `$TMPDIR/sgtb-<pid>-<n>-TAG`.
    pub fn new(tag: &str) -> Scratch {
        or_panic(Scratch::try_at(std::env::temp_dir().join(unique(tag))))
    }

    /// The directory `path`, created (with its parents).
    pub fn try_at(path: PathBuf) -> Result<Scratch, Error> {
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            what: "creating",
            path: path.clone(),
            source,
        })?;
        Ok(Scratch { path })
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A rules directory (inside a [`Scratch`], which removes it).
#[derive(Debug, Clone)]
pub struct RulesDir {
    pub path: PathBuf,
}

impl RulesDir {
    /// `dir/rules`, created.
    pub fn new(dir: &Scratch) -> RulesDir {
        let path = dir.join("rules");
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        RulesDir { path }
    }

    /// Writes a rule file in place.
    pub fn write(&self, file: &str, json: &str) {
        std::fs::write(self.path.join(file), json)
            .unwrap_or_else(|e| panic!("writing {file}: {e}"));
    }

    /// Replaces a rule file the way controllers and editors do: a temp
    /// file renamed over the old one.
    pub fn replace(&self, file: &str, json: &str) {
        or_panic(self.try_replace(file, json));
    }

    pub fn try_replace(&self, file: &str, json: &str) -> Result<(), Error> {
        let tmp = self.path.join(format!(".{file}.tmp"));
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { what, path, source }
        };
        std::fs::write(&tmp, json).map_err(io("writing", &tmp))?;
        let target = self.path.join(file);
        std::fs::rename(&tmp, &target).map_err(io("renaming onto", &target))
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.path.join(file))
            .unwrap_or_else(|e| panic!("removing {file}: {e}"));
    }
}

/// A bpffs pin directory the daemon (or a test) fills; removed with
/// everything in it on drop. Unpinning the links detaches the hooks
/// nobody else holds; the maps go with their last reference.
#[derive(Debug)]
pub struct PinDir {
    pub path: PathBuf,
}

impl PinDir {
    /// `/sys/fs/bpf/sgtb-<pid>-<n>-TAG`, not created (the daemon does).
    pub fn new(tag: &str) -> PinDir {
        PinDir::at(Path::new("/sys/fs/bpf").join(unique(tag)))
    }

    pub fn at(path: PathBuf) -> PinDir {
        PinDir { path }
    }

    /// The names pinned in `links/`, sorted.
    pub fn links(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path.join("links"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
