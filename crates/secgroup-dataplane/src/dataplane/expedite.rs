//! Expedited RCU grace periods while many interfaces are hooked: the
//! daemon default (`secgroupd --expedite-grace-periods=false` keeps the
//! normal pace).
//!
//! Creating a TCX link waits for an RCU grace period while holding RTNL
//! (the kernel swaps the device's program array, then calls
//! `synchronize_rcu()`), so a thousand interfaces take a thousand grace
//! periods one after another, whatever the number of threads: 14–17 ms
//! each on the benchmark machine, against 0.06 ms with the kernel's
//! `rcu_expedited` on (an XDP link, 0.15 ms, waits for none). Expediting
//! costs every CPU an interrupt per grace period, host-wide, for as long as
//! it is on: so only for the bulk attach, put back as it was right after,
//! and recorded in a file first so that a daemon killed in between puts it
//! back at its next start.

use std::path::{Path, PathBuf};

/// The kernel's switch.
pub const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

/// Where and how to expedite: the switch (a parameter for tests) and the
/// file that records the value to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expedite {
    pub switch: PathBuf,
    pub record: PathBuf,
}

/// Grace periods expedited until dropped.
pub(crate) struct Expedited<'a> {
    expedite: &'a Expedite,
    previous: String,
}

impl Expedite {
    /// Turns expediting on, after recording the current value. `Err` says
    /// why not (the switch unreadable or read-only, e.g. under systemd's
    /// `ProtectKernelTunables=`): the attach then runs at the normal pace.
    pub(crate) fn begin(&self) -> std::io::Result<Expedited<'_>> {
        let previous = std::fs::read_to_string(&self.switch)?.trim().to_owned();
        if previous != "0" {
            // Already on (the operator's choice): nothing to put back.
            return Ok(Expedited {
                expedite: self,
                previous: String::new(),
            });
        }
        if let Some(dir) = self.record.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.record, &previous)?;
        if let Err(e) = std::fs::write(&self.switch, "1") {
            let _ = std::fs::remove_file(&self.record);
            return Err(e);
        }
        Ok(Expedited {
            expedite: self,
            previous,
        })
    }

    /// Puts back a value a killed predecessor left recorded; `Some(value)`
    /// if there was one.
    pub fn restore_leftover(&self) -> std::io::Result<Option<String>> {
        let previous = match std::fs::read_to_string(&self.record) {
            Ok(value) => value.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        restore(&self.switch, &self.record, &previous)?;
        Ok(Some(previous))
    }
}

impl Drop for Expedited<'_> {
    fn drop(&mut self) {
        if !self.previous.is_empty() {
            // Nothing better to do on failure than leave the record for
            // the next start.
            let _ = restore(&self.expedite.switch, &self.expedite.record, &self.previous);
        }
    }
}

fn restore(switch: &Path, record: &Path, previous: &str) -> std::io::Result<()> {
    std::fs::write(switch, previous)?;
    std::fs::remove_file(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> (Expedite, PathBuf) {
        let dir = std::env::temp_dir().join(format!("sg-expedite-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let expedite = Expedite {
            switch: dir.join("rcu_expedited"),
            record: dir.join("state").join("rcu-expedited.restore"),
        };
        (expedite, dir)
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn on_while_held_then_put_back_and_the_record_gone() {
        let (expedite, dir) = scratch("held");
        std::fs::write(&expedite.switch, "0\n").unwrap_or_else(|e| panic!("{e}"));
        {
            let _on = expedite.begin().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(read(&expedite.switch), "1");
            assert_eq!(read(&expedite.record), "0", "the value to put back");
        }
        assert_eq!(read(&expedite.switch), "0");
        assert!(!expedite.record.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn already_on_is_left_on_and_a_leftover_is_put_back() {
        let (expedite, dir) = scratch("leftover");
        std::fs::write(&expedite.switch, "1\n").unwrap_or_else(|e| panic!("{e}"));
        drop(expedite.begin().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(read(&expedite.switch), "1\n", "the operator's setting");
        assert!(!expedite.record.exists());

        // A daemon killed while expediting left the switch on and its
        // record: the next start puts it back.
        std::fs::write(&expedite.switch, "0").unwrap_or_else(|e| panic!("{e}"));
        let on = expedite.begin().unwrap_or_else(|e| panic!("{e}"));
        std::mem::forget(on);
        assert_eq!(read(&expedite.switch), "1");
        assert_eq!(
            expedite
                .restore_leftover()
                .unwrap_or_else(|e| panic!("{e}")),
            Some("0".to_owned())
        );
        assert_eq!(read(&expedite.switch), "0");
        assert_eq!(
            expedite
                .restore_leftover()
                .unwrap_or_else(|e| panic!("{e}")),
            None
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
