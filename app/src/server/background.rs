//! The background work this process runs, each piece under its lease: a heartbeat renews the
//! lease while the work runs and stops the work when the lease is lost; the lease is given back
//! when the work ends. On a graceful stop every piece is stopped and its lease handed back, so
//! another replica takes it over at once (from the last step the database recorded).
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::lease::{Lease, Leases, Work};

#[derive(Clone, Debug)]
pub struct Background {
    pub leases: Leases,
    running: Arc<Mutex<HashMap<Work, JoinHandle<()>>>>,
}

impl Background {
    pub fn new(leases: Leases) -> Self {
        Self {
            leases,
            running: Default::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<Work, JoinHandle<()>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process runs `work` now.
    pub fn runs(&self, work: Work) -> bool {
        self.running().contains_key(&work)
    }

    /// Runs `task` under `lease` until it ends or the lease is lost, then gives the lease back.
    /// The task gets the lease to hold it in each step's transaction (`Lease::hold_in`).
    ///
    /// The work keeps the id of the request that started it (its provider calls carry it, its
    /// log lines are in a span naming it); started by no request (resumed, the email pass), it
    /// is named after the work itself (`scan-12`). See `request_id`.
    pub fn spawn<F, T>(&self, lease: Lease, task: T)
    where
        T: FnOnce(Arc<Lease>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let lease = Arc::new(lease);
        let work = lease.work();
        let request_id =
            super::request_id::current().unwrap_or_else(|| work.key().replace(':', "-").into());
        let span = tracing::info_span!("work", request_id = %request_id, work = %work.key());
        let task = super::request_id::scope(request_id, task(lease.clone()));
        let every = heartbeat(self.leases.ttl());
        let this = self.clone();
        // Held across spawn and insert, so the task's own removal (which takes the same lock)
        // always comes after its insertion.
        let mut running = self.running();
        let handle = tokio::spawn(async move {
            // Removes the entry even if the task panics (its lease then expires).
            let _gone = Gone(this.clone(), work);
            tokio::select! {
                _ = task => {}
                _ = keep(&lease, every) => {
                    tracing::warn!(work = %work.key(), "lease lost: another server carries this work on");
                }
            }
            lease.release().await;
        }.instrument(span));
        running.insert(work, handle);
    }

    /// A graceful stop: every piece of work is stopped (a step mid-way is rolled back with its
    /// transaction) and its lease handed back.
    pub async fn stop_all(&self) {
        let handles: Vec<(Work, JoinHandle<()>)> = self.running().drain().collect();
        for (_, h) in &handles {
            h.abort();
        }
        for (work, h) in handles {
            if let Err(e) = h.await {
                if !e.is_cancelled() {
                    tracing::warn!(work = %work.key(), error = %e, "background work ended badly");
                }
            }
        }
        match self.leases.release_all().await {
            Ok(n) => tracing::info!(leases = n, "handed back leases"),
            Err(e) => tracing::warn!(error = %e, "handing back leases failed; they expire"),
        }
    }
}

struct Gone(Background, Work);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.running().remove(&self.1);
    }
}

/// Renewed three times per lease time: two renewals can fail (a database hiccup) before the
/// lease runs out.
pub fn heartbeat(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(50))
}

/// Renews the lease until it is lost. A renewal that fails (the database briefly unreachable)
/// is tried again at the next beat: the lease is only lost when another replica took it.
async fn keep(lease: &Lease, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match lease.renew().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(work = %lease.work().key(), error = %e, "renewing a lease failed")
            }
        }
    }
}
