//! The guests' boot image, assembled at test time from what the machine
//! has installed (nothing downloaded, nothing large committed): the
//! host's kernel (`/boot/vmlinuz-*`, Debian's `linux-image-amd64`) and an
//! initramfs of busybox (`busybox-static`), the virtio drivers of that
//! kernel in dependency order, the agent (`guest/agent`) and the test
//! bed's own static helper (`guest/sgtb-tool.c`, compiled here). Built
//! once per process into a temp dir named after the pid, so the sweep
//! removes it once the process is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cmd::try_run;
use crate::error::Error;
use crate::names::unique;

const INIT: &str = include_str!("../../guest/init");
const AGENT: &str = include_str!("../../guest/agent");
const UDHCPC_SCRIPT: &str = include_str!("../../guest/udhcpc.script");
const TOOL_SOURCE: &str = include_str!("../../guest/sgtb-tool.c");

/// The drivers a guest needs for its NIC; their dependencies (virtio,
/// virtio_ring, failover, ...) come along from `modules.dep`.
const ROOT_MODULES: [&str; 2] = ["virtio_pci", "virtio_net"];

/// Where busybox-static installs itself.
const BUSYBOX: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

/// A kernel and the initramfs built for it.
#[derive(Debug)]
pub struct Image {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The kernel's release (`6.1.0-57-amd64`).
    pub release: String,
}

/// The image of this process, built on first use.
pub fn image() -> Result<&'static Image, Error> {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| build().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Guest {
            name: "image".into(),
            what: e.clone(),
        })
}

fn missing(what: String) -> Error {
    Error::Guest {
        name: "image".into(),
        what,
    }
}

fn build() -> Result<Image, Error> {
    let (kernel, release) = kernel()?;
    let modules = Path::new("/lib/modules").join(&release);
    let busybox = BUSYBOX
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| missing("no busybox (install busybox-static)".into()))?;
    let dir = std::env::temp_dir().join(unique("guest-image"));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "creating",
        path: dir.clone(),
        source,
    })?;
    remove_at_exit(&dir);
    let tool = compile_tool(&dir)?;
    let mut cpio = Cpio::default();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "lib",
        "lib/modules",
        "usr",
        "usr/share",
        "usr/share/udhcpc",
    ] {
        cpio.dir(d);
    }
    // The kernel opens /dev/console before init mounts devtmpfs.
    cpio.char_device("dev/console", 5, 1);
    cpio.file("init", INIT.as_bytes(), 0o755);
    cpio.file("bin/agent", AGENT.as_bytes(), 0o755);
    cpio.file(
        "usr/share/udhcpc/default.script",
        UDHCPC_SCRIPT.as_bytes(),
        0o755,
    );
    cpio.file("bin/busybox", &read(busybox)?, 0o755);
    cpio.file("bin/sgtb-tool", &read(&tool)?, 0o755);
    let mut order = String::new();
    for (name, path) in drivers(&modules)? {
        cpio.file(
            &format!("lib/modules/{name}.ko"),
            &module_bytes(&path)?,
            0o644,
        );
        order.push_str(&name);
        order.push('\n');
    }
    cpio.file("lib/modules/order", order.as_bytes(), 0o644);
    let initramfs = dir.join("initramfs.cpio");
    std::fs::write(&initramfs, cpio.finish()).map_err(|source| Error::Io {
        what: "writing",
        path: initramfs.clone(),
        source,
    })?;
    Ok(Image {
        kernel,
        initramfs,
        release,
    })
}

/// The image's directory, removed when the process exits normally (the
/// image lives as long as the process; the sweep removes it otherwise).
fn remove_at_exit(dir: &Path) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn remove() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if DIR.set(dir.to_owned()).is_ok() {
        // SAFETY: registers a function that only removes a directory.
        unsafe { libc::atexit(remove) };
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        what: "reading",
        path: path.to_owned(),
        source,
    })
}

/// The newest `/boot/vmlinuz-*` whose modules include virtio_net.
fn kernel() -> Result<(PathBuf, String), Error> {
    let mut kernels: Vec<(PathBuf, String)> = std::fs::read_dir("/boot")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let release = name.strip_prefix("vmlinuz-")?.to_owned();
            Path::new("/lib/modules")
                .join(&release)
                .join("modules.dep")
                .exists()
                .then(|| (e.path(), release))
        })
        .collect();
    kernels.sort_by(|a, b| a.1.cmp(&b.1));
    kernels.pop().ok_or_else(|| {
        missing("no /boot/vmlinuz-* with its /lib/modules (install linux-image-amd64)".into())
    })
}

/// The NIC's drivers and their dependencies, each after what it needs:
/// `(name, path)`. A module built into the kernel is skipped.
fn drivers(modules: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let dep_file = modules.join("modules.dep");
    let text = String::from_utf8_lossy(&read(&dep_file)?).into_owned();
    let builtin = std::fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
    let deps = parse_modules_dep(&text);
    let mut order = Vec::new();
    for root in ROOT_MODULES {
        if !deps.contains_key(root) && builtin.lines().any(|l| module_name(l) == root) {
            continue;
        }
        visit(root, &deps, &mut order).map_err(|m| {
            missing(format!(
                "module {m} not in {} (is linux-image-amd64 installed?)",
                dep_file.display()
            ))
        })?;
    }
    Ok(order
        .into_iter()
        .map(|name| {
            let path = modules.join(&deps[&name].0);
            (name, path)
        })
        .collect())
}

/// `virtio_net` from `kernel/drivers/net/virtio_net.ko.xz`.
fn module_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split(".ko").next().unwrap_or(base)
}

/// modules.dep: `path: dep-path dep-path...`, keyed by module name.
fn parse_modules_dep(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let (path, deps) = line.split_once(':')?;
            let deps = deps
                .split_whitespace()
                .map(|d| module_name(d).to_owned())
                .collect();
            Some((module_name(path).to_owned(), (path.to_owned(), deps)))
        })
        .collect()
}

fn visit(
    name: &str,
    deps: &BTreeMap<String, (String, Vec<String>)>,
    order: &mut Vec<String>,
) -> Result<(), String> {
    if order.iter().any(|n| n == name) {
        return Ok(());
    }
    let (_, needs) = deps.get(name).ok_or_else(|| name.to_owned())?;
    for need in needs {
        visit(need, deps, order)?;
    }
    order.push(name.to_owned());
    Ok(())
}

/// A module's bytes, decompressed (busybox's insmod takes plain `.ko`).
fn module_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let text = path.to_string_lossy();
    let tool = [(".xz", "xz"), (".zst", "zstd"), (".gz", "gzip")]
        .into_iter()
        .find(|(ext, _)| text.ends_with(ext));
    match tool {
        None => read(path),
        Some((_, tool)) => Ok(try_run(Command::new(tool).arg("-dc").arg(path), None)?.stdout),
    }
}

/// Compiles the guest helper statically with the first C compiler found.
fn compile_tool(dir: &Path) -> Result<PathBuf, Error> {
    let source = dir.join("sgtb-tool.c");
    std::fs::write(&source, TOOL_SOURCE).map_err(|e| Error::Io {
        what: "writing",
        path: source.clone(),
        source: e,
    })?;
    let binary = dir.join("sgtb-tool");
    let mut last = None;
    for cc in ["cc", "gcc", "clang-19", "clang"] {
        let result = try_run(
            Command::new(cc)
                .args(["-static", "-O2", "-o"])
                .arg(&binary)
                .arg(&source),
            None,
        );
        match result {
            Ok(_) => return Ok(binary),
            Err(e) => last = Some(e),
        }
    }
    Err(missing(format!(
        "compiling the guest helper statically (needs gcc and libc6-dev): {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// An initramfs in the kernel's "newc" cpio format, uncompressed (the
/// kernel takes it as is; compressing would only cost time).
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, &[], (0, 0));
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) {
        self.entry(name, 0o100_000 | mode, data, (0, 0));
    }

    fn char_device(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, &[], (major, minor));
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], (major, minor): (u32, u32)) {
        self.inode += 1;
        let size = u32::try_from(data.len()).unwrap_or_else(|_| panic!("{name} too large"));
        let name_size = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
        let fields = [
            self.inode, mode, 0, 0, 1, 0, size, 0, 0, major, minor, name_size, 0,
        ];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_after_their_dependencies() {
        let deps = parse_modules_dep(
            "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
             kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz\n\
             kernel/net/core/failover.ko.xz:\n\
             kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n",
        );
        let mut order = Vec::new();
        for root in ROOT_MODULES {
            visit(root, &deps, &mut order).unwrap_or_else(|m| panic!("{m} missing"));
        }
        assert_eq!(
            order,
            [
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        assert_eq!(deps["virtio_net"].0, "kernel/drivers/net/virtio_net.ko.xz");
        let mut order = Vec::new();
        assert_eq!(visit("absent", &deps, &mut order), Err("absent".into()));
    }

    #[test]
    fn cpio_entries_are_aligned_and_end_with_a_trailer() {
        let mut cpio = Cpio::default();
        cpio.dir("bin");
        cpio.file("bin/x", b"abc", 0o755);
        let out = cpio.finish();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("bin/x\0"), "{text}");
        assert!(text.contains("TRAILER!!!"), "{text}");
        // The file's size field (7th) says 3 bytes.
        let second = text.find("bin/x").unwrap_or(0) - 110;
        assert_eq!(&text[second + 54..second + 62], "00000003");
    }
}
