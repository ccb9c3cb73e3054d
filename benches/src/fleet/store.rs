//! Writes to the fleet's etcd with the etcd v3 client (`etcd-client`),
//! from a thread inside the fabric namespace where etcd listens: a
//! timed write starts its clock just before the request, once the
//! connection is up, so a figure holds no process start or dial.

use std::time::Instant;

use anyhow::{Context, Result};
use etcd_client::{Client, Txn, TxnOp};
use secgroup_testbed::{Fleet, key};

/// Operations per transaction when loading a large store (far below
/// the `--max-txn-ops` and `--max-request-bytes` of the test bed's etcd).
const BATCH: usize = 2_000;

pub struct Store<'f> {
    fleet: &'f Fleet,
}

impl<'f> Store<'f> {
    pub fn new(fleet: &'f Fleet) -> Store<'f> {
        Store { fleet }
    }

    /// Runs `work` with a connected client on a current-thread runtime,
    /// on a thread inside the fabric namespace (the client's sockets are
    /// made there).
    fn with_client<T: Send>(
        &self,
        work: impl FnOnce(&tokio::runtime::Runtime, &mut Client) -> Result<T> + Send,
    ) -> Result<T> {
        let endpoint = self.fleet.etcd.endpoint();
        self.fleet.fabric.try_run(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a tokio runtime")?;
            let mut client = runtime
                .block_on(Client::connect([endpoint.as_str()], None))
                .with_context(|| format!("connecting to etcd at {endpoint}"))?;
            work(&runtime, &mut client)
        })?
    }

    /// Puts one object (`KIND/ID` under the fleet's prefix); when the
    /// request left, and the revision it made.
    pub fn put_timed(&self, kind: &str, id: &str, value: String) -> Result<(Instant, i64)> {
        let key = key(kind, id);
        self.with_client(move |runtime, client| {
            let started = Instant::now();
            let response = runtime
                .block_on(client.put(key.as_str(), value, None))
                .with_context(|| format!("putting {key}"))?;
            let revision = response.header().map_or(0, |h| h.revision());
            Ok((started, revision))
        })
    }

    /// Puts every `(kind, id, value)`, [`BATCH`] to a transaction; the
    /// last revision.
    pub fn put_all(&self, objects: Vec<(String, String, String)>) -> Result<i64> {
        self.with_client(move |runtime, client| {
            let mut revision = 0;
            for chunk in objects.chunks(BATCH) {
                let ops: Vec<TxnOp> = chunk
                    .iter()
                    .map(|(kind, id, value)| TxnOp::put(key(kind, id), value.as_str(), None))
                    .collect();
                let response = runtime
                    .block_on(client.txn(Txn::new().and_then(ops)))
                    .context("a transaction of puts")?;
                revision = response.header().map_or(revision, |h| h.revision());
            }
            Ok(revision)
        })
    }
}
