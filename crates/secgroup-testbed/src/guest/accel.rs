//! Which accelerator QEMU uses: TCG unless KVM demonstrably works.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::console::Console;
use super::image::image;
use crate::error::Error;

/// The accelerator every guest of this process uses.
pub fn accel() -> &'static str {
    static ACCEL: OnceLock<&'static str> = OnceLock::new();
    ACCEL.get_or_init(|| match std::env::var("SGTB_GUEST_ACCEL").as_deref() {
        Ok("kvm") => "kvm",
        Ok("tcg") => "tcg",
        _ => probe_kvm(),
    })
}

/// `kvm` when a guest boots with it within a few seconds (it needs
/// well under one when it works), else `tcg`; remembered per boot of the
/// machine in the temp dir, since a failed probe costs its timeout.
fn probe_kvm() -> &'static str {
    if !std::path::Path::new("/dev/kvm").exists() {
        return "tcg";
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = std::env::temp_dir().join(format!("sgtb-kvm-probe-{}", boot_id.trim()));
    if let Ok(text) = std::fs::read_to_string(&cache) {
        return if text.trim() == "kvm" { "kvm" } else { "tcg" };
    }
    let works = kvm_boots().unwrap_or(false);
    let answer = if works { "kvm" } else { "tcg" };
    let _ = std::fs::write(&cache, answer);
    answer
}

fn kvm_boots() -> Result<bool, Error> {
    let image = image()?;
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "128"])
        .args(["-nodefaults", "-no-user-config", "-no-reboot"])
        .args(["-display", "none", "-monitor", "none"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initramfs)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .args(["-serial", "null", "-serial", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        command: "qemu-system-x86_64 -accel kvm".into(),
        source,
    })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        unreachable!("stdin and stdout are piped");
    };
    let console = Console::new(stdin, stdout, ());
    let booted = console.wait_ready(Duration::from_secs(8)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    Ok(booted)
}
