//! Builds the BPF object outside cargo, for inspection (`llvm-objdump`,
//! `bpftool`). The crate build compiles the same file with the same flags
//! in crates/secgroup-dataplane/build.rs.

use anyhow::Result;

pub fn build() -> Result<()> {
    let root = crate::root();
    let out_dir = root.join("target/bpf");
    std::fs::create_dir_all(&out_dir)?;
    let object = out_dir.join("secgroup.bpf.o");
    let object = object.to_string_lossy();
    let include = root.join("ebpf/include");
    let ebpf = root.join("ebpf");
    let source = root.join("ebpf/secgroup.c");
    crate::run_cmd(
        "clang-19",
        &[
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-Wall",
            "-Werror",
            "-I",
            &include.to_string_lossy(),
            "-I",
            &ebpf.to_string_lossy(),
            "-idirafter",
            &format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH),
            "-c",
            &source.to_string_lossy(),
            "-o",
            &object,
        ],
    )?;
    crate::run_cmd("llvm-objdump-19", &["-h", &object])?;
    eprintln!("xtask: wrote {object}");
    Ok(())
}
