// A build script reports failure by panicking: that is its error channel.
#![allow(clippy::expect_used)]

//! Compiles the C data plane (`ebpf/secgroup.c`) into one BPF object in
//! OUT_DIR; `src/object.rs` embeds it. The Rust-for-BPF toolchain cannot be
//! built on our machines, so the programs are C and clang is a build
//! dependency like any C compiler.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// clang binaries tried in order when SECGROUP_CLANG is unset.
const CLANG_CANDIDATES: &[&str] = &["clang-19", "clang"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ebpf_dir = manifest_dir.join("../../ebpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out_dir.join("secgroup.bpf.o");

    println!("cargo:rerun-if-env-changed=SECGROUP_CLANG");
    emit_rerun_for_dir(&ebpf_dir);

    let clang = find_clang().unwrap_or_else(|| {
        panic!(
            "\n\nsecgroup-dataplane needs clang to compile the eBPF programs in ebpf/.\n\
             Install it with `apt-get install clang-19 llvm-19 libbpf-dev linux-libc-dev`,\n\
             or point SECGROUP_CLANG at a clang binary that supports `-target bpf`.\n\n"
        )
    });

    // -g keeps BTF (aya needs it for the map definitions and the ABI layout
    // test reads it); -O2 because the verifier rejects unoptimised code.
    let output = Command::new(&clang)
        .arg("-O2")
        .arg("-g")
        .arg("-target")
        .arg("bpf")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(ebpf_dir.join("include"))
        .arg("-I")
        .arg(&ebpf_dir)
        // -target bpf does not search the multiarch directory where Debian
        // keeps <asm/types.h>.
        .arg("-idirafter")
        .arg(multiarch_include())
        .arg("-c")
        .arg(ebpf_dir.join("secgroup.c"))
        .arg("-o")
        .arg(&object)
        .output()
        .unwrap_or_else(|e| panic!("running {clang}: {e}"));
    if !output.status.success() {
        panic!(
            "\n\n{clang} failed to compile ebpf/secgroup.c:\n{}\n",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn multiarch_include() -> String {
    format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH)
}

fn find_clang() -> Option<String> {
    if let Some(clang) = env::var_os("SECGROUP_CLANG") {
        return Some(clang.to_string_lossy().into_owned());
    }
    CLANG_CANDIDATES
        .iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|name| (*name).to_owned())
}

fn emit_rerun_for_dir(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            emit_rerun_for_dir(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
