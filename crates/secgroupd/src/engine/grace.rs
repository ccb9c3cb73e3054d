//! Waiting for the grace period after a reload on a thread of its own, so
//! the engine can take the next change meanwhile (see the data plane's
//! `reap.rs`). The engine hands over the token of each retirement; the
//! waiter waits one grace period for the newest token it has (tokens that
//! queued meanwhile are covered by it) and tells the engine with an
//! [`Event::GraceElapsed`]. The engine then deletes the retired tables when
//! it has nothing else to do.

use std::sync::mpsc;

use secgroup_dataplane::{GraceBarrier, GraceToken};
use tokio::sync::mpsc as tokio_mpsc;
use tracing::warn;

use crate::event::Event;

pub struct GraceWaiter {
    tokens: mpsc::Sender<GraceToken>,
}

impl GraceWaiter {
    /// `None` if the thread cannot be started: the engine then waits
    /// inline.
    pub fn start(barrier: GraceBarrier, events: tokio_mpsc::Sender<Event>) -> Option<GraceWaiter> {
        let (tokens, queue) = mpsc::channel::<GraceToken>();
        let spawned = std::thread::Builder::new()
            .name("secgroupd-grace".to_owned())
            .spawn(move || {
                while let Ok(mut token) = queue.recv() {
                    // Retirements queue in epoch order: one grace period
                    // that begins now covers them all.
                    while let Ok(newer) = queue.try_recv() {
                        token = newer;
                    }
                    let event = match barrier.wait() {
                        Ok(()) => Event::GraceElapsed(token),
                        Err(e) => {
                            warn!(error = %e, "waiting for an RCU grace period failed; the engine waits itself");
                            Event::GraceFailed
                        }
                    };
                    if events.blocking_send(event).is_err() {
                        return; // the engine is gone
                    }
                }
            });
        match spawned {
            Ok(_) => Some(GraceWaiter { tokens }),
            Err(e) => {
                warn!(error = %e, "no thread for grace periods: replaced tables are freed inline");
                None
            }
        }
    }

    /// Asks for `token`'s grace period; `false` if the waiter is gone.
    pub fn wait_for(&self, token: GraceToken) -> bool {
        self.tokens.send(token).is_ok()
    }
}
