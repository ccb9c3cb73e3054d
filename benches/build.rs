// A build script reports failure by panicking: that is its error channel.
#![allow(clippy::expect_used)]

//! Compiles `floor.bpf.c` (the reference programs the per-packet figures
//! are divided by) into OUT_DIR with the same clang and flags as the data
//! plane's own build script, against the data plane's ABI header and
//! common.h (the stateful floors use its conntrack and interface types and
//! build the key as it does).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = manifest_dir.join("floor.bpf.c");
    let ebpf = manifest_dir.join("../ebpf");
    let abi = ebpf.join("include");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", abi.join("abi.h").display());
    println!(
        "cargo:rerun-if-changed={}",
        ebpf.join("lib/common.h").display()
    );
    println!("cargo:rerun-if-env-changed=SECGROUP_CLANG");
    let clang = env::var("SECGROUP_CLANG").unwrap_or_else(|_| "clang-19".to_owned());
    let output = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        // -target bpf does not search the multiarch directory where Debian
        // keeps <asm/types.h>.
        .arg("-idirafter")
        .arg(format!("/usr/include/{}-linux-gnu", env::consts::ARCH))
        .arg("-I")
        .arg(&abi)
        .arg("-I")
        .arg(&ebpf)
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(out_dir.join("floor.bpf.o"))
        .output()
        .unwrap_or_else(|e| {
            panic!("running {clang} (install clang-19, or set SECGROUP_CLANG): {e}")
        });
    if !output.status.success() {
        panic!(
            "\n\n{clang} failed to compile benches/floor.bpf.c:\n{}\n",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
