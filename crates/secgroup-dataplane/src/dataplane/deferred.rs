//! Freeing replaced tables after the new policy is reported, not before.
//!
//! An apply switches every interface to its new tables, then waits an
//! RCU grace period and deletes the tables nobody uses any more (step 3
//! of [`Dataplane::apply`]). When a group every VM is bound to changes,
//! that is a thousand old tables deleted and a grace period waited for
//! while the daemon still has not said the change is in force. With
//! deferred frees the apply stops after the switch and the owner calls
//! [`free_unused_now`](Dataplane::free_unused_now) once it has published
//! the new state. Until then the old tables stay in the maps, unused (a
//! list that comes back before it is freed gets its old table again).

use super::{ApplyReport, Dataplane};

impl Dataplane {
    /// Whether [`apply`](Self::apply) leaves unused tables for
    /// [`free_unused_now`](Self::free_unused_now) (off by default).
    pub fn set_deferred_frees(&mut self, defer: bool) {
        self.defer_frees = defer;
    }

    /// Step 3 of the applies since the last call: one grace period, then
    /// every table and port-security set no interface uses is deleted
    /// (and, after an adoption, everything this process did not write is
    /// swept). Nothing at all unless an apply deferred it: adopted tables
    /// stay untouched until this process has applied a policy of its own
    /// (a daemon started on invalid rules keeps enforcing them).
    pub fn free_unused_now(&mut self) -> ApplyReport {
        self.reap_all_now();
        let mut report = ApplyReport::default();
        if std::mem::take(&mut self.free_pending) {
            self.free_unused(&mut report);
        }
        report
    }
}
