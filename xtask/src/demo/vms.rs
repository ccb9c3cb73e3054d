//! `demo --vms`: web and db as QEMU guests (`secgroup_testbed::Guest`)
//! instead of namespaces behind veths.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use secgroup_testbed::{Guest, GuestBuilder, Veth};

use super::{Demo, HOST, Probe, interrupted, title};

impl Demo {
    /// `vms` as QEMU guests on taps of the host's bridge (booting in
    /// parallel), the rest as namespaces behind veths.
    pub(super) fn boot_vms(
        &mut self,
        vms: &[(&str, &str, &str, &str)],
        others: &[(&str, &str, &str, &str)],
    ) -> Result<()> {
        let host = self.ns(HOST)?;
        let mut links = Vec::new();
        for (ns, tap, addr, _) in others {
            links.push(
                Veth::new(host, tap, self.ns(ns)?, "eth0")
                    .master("br0")
                    .peer_addr(addr),
            );
        }
        Veth::try_create_all(&links)?;
        for (ns, _, _, gateway) in others {
            self.ns(ns)?
                .try_ip(&["route", "add", "default", "via", gateway])?;
        }
        title("Booting web and db as QEMU guests (TCG: 10-35 s, by load)");
        let image = secgroup_testbed::image().context(
            "--vms needs qemu-system-x86, linux-image-amd64, busybox-static and gcc (cargo xtask deps)",
        )?;
        self.image_dir = image.initramfs.parent().map(PathBuf::from);
        out!(
            "kernel {} ({}), initramfs {}",
            image.kernel.display(),
            image.release,
            image.initramfs.display()
        );
        let mut guests = Vec::new();
        for (n, (ns, tap, addr, _)) in (1u8..).zip(vms) {
            interrupted()?;
            let guest = GuestBuilder::new(ns, tap, [0x02, 0x00, 0x00, 0x00, 0x0d, n])
                .bridge("br0")
                .ip4(addr)
                .try_start(self.ns(HOST)?)?;
            guests.push(guest);
        }
        for (guest, (_, _, _, gateway)) in guests.iter_mut().zip(vms) {
            interrupted()?;
            let took = guest.try_wait_booted()?;
            guest.try_sh(&format!("ip route add default via {gateway}"))?;
            out!(
                "{} booted in {:.1} s ({}), tap {}",
                guest.name,
                took.as_secs_f64(),
                guest.accel,
                guest.tap
            );
        }
        self.guests = guests;
        Ok(())
    }

    /// The guest playing machine `name`, with `--vms`.
    pub(super) fn guest(&self, name: &str) -> Option<&Guest> {
        self.guests.iter().find(|g| g.name == name)
    }
}

impl Probe {
    /// The same from inside a QEMU guest, with the test bed's clients.
    pub(super) fn run_in_guest(self, guest: &Guest, to: &str) -> Result<bool> {
        let to = to.parse().with_context(|| format!("bad address {to:?}"))?;
        Ok(match self {
            Probe::Tcp(port) => guest.tcp(to, port, Duration::from_secs(2)),
            Probe::Ping => guest.ping(to, Duration::from_secs(1)),
        })
    }
}
