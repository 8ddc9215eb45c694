//! The per-user cap on open event streams over all replicas (PostgreSQL). Each replica counts
//! the streams it holds open per user and says it is alive (a heartbeat from its sweep); a new
//! stream is allowed when the user's counts on live replicas add up to less than the cap
//! (one row per replica: the check does not grow with the streams), decided under a lock on
//! that user (`pg_advisory_xact_lock`), so two replicas cannot both let the last one through. A
//! replica that dies stops counting when its heartbeat expires; one that stops gives its rows
//! back. With SQLite there is one process: `streams` alone counts, in memory.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use super::{clock, db::Backend, error::ServiceError, AppState, Db};

/// A stream's place in the shared count, given back when the stream ends (dropped).
pub struct Slot {
    returns: Returns,
    user_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.returns.give_back(self.user_id);
    }
}

/// This replica's places given back by ended streams and not yet written, per user. One task
/// at a time writes them, one UPDATE per user for every stream that ended meanwhile: tens of
/// thousands of streams ending together (a deploy, a load balancer's reset) are then a handful
/// of writes, not one each on the same row while live events wait for the same pool.
#[derive(Clone)]
pub struct Returns {
    db: Db,
    owner: String,
    pending: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    by_user: HashMap<i64, i64>,
    writing: bool,
}

impl std::fmt::Debug for Returns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Returns({} users pending)", self.pending().by_user.len())
    }
}

impl Returns {
    /// Writes go to `db`, to the rows of `owner` (this replica).
    pub fn new(db: Db, owner: &str) -> Self {
        Self {
            db,
            owner: owner.to_string(),
            pending: Arc::default(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // One insert or take per critical section: a poisoned map is still whole.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn give_back(&self, user_id: i64) {
        let mut pending = self.pending();
        *pending.by_user.entry(user_id).or_default() += 1;
        if pending.writing {
            return;
        }
        // Dropped with its stream, inside the runtime; outside it (shutdown) `release_all`
        // gives every place back.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        pending.writing = true;
        let returns = self.clone();
        rt.spawn(async move { returns.write().await });
    }

    /// Writes what is pending until nothing is.
    async fn write(&self) {
        loop {
            let batch = {
                let mut pending = self.pending();
                if pending.by_user.is_empty() {
                    pending.writing = false;
                    return;
                }
                std::mem::take(&mut pending.by_user)
            };
            for (user_id, ended) in batch {
                let gone = sqlx::query(
                    "UPDATE replica_streams SET open = GREATEST(open - $3, 0) \
                     WHERE owner = $1 AND user_id = $2",
                )
                .bind(&self.owner)
                .bind(user_id)
                .bind(ended)
                .execute(&self.db.pool)
                .await;
                if let Err(e) = gone {
                    tracing::warn!(error = %e, "giving back streams' places failed; they go with the replica's rows");
                }
            }
        }
    }
}

/// What `take` found.
pub enum Taken {
    /// One more stream is allowed; hold the slot for as long as it is open.
    Slot(Slot),
    /// Counted in memory only (SQLite: one process).
    Local,
    /// The user has this many open on the replicas together.
    Full(usize),
}

fn now_ms() -> i64 {
    clock::now().timestamp_millis()
}

/// A place for one more stream of `user_id`, unless the user's streams on live replicas reach
/// `cap`.
pub async fn take(state: &AppState, user_id: i64, cap: usize) -> Result<Taken, ServiceError> {
    if state.db.backend != Backend::Postgres {
        return Ok(Taken::Local);
    }
    let owner = state.work.leases.owner();
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(s.open), 0) AS BIGINT) FROM replica_streams s \
         JOIN replicas r ON r.owner = s.owner WHERE s.user_id = $1 AND r.expires_at >= $2",
    )
    .bind(user_id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    if open >= cap as i64 {
        return Ok(Taken::Full(cap));
    }
    sqlx::query(
        "INSERT INTO replica_streams (owner, user_id, open) VALUES ($1, $2, 1) \
         ON CONFLICT (owner, user_id) DO UPDATE SET open = replica_streams.open + 1",
    )
    .bind(owner)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Taken::Slot(Slot {
        returns: state.stream_returns.clone(),
        user_id,
    }))
}

/// This replica is alive for one more lease time; the rows of replicas whose heartbeat expired
/// go. Called by the sweep (and once before serving).
pub async fn heartbeat(state: &AppState) -> Result<(), ServiceError> {
    if state.db.backend != Backend::Postgres {
        return Ok(());
    }
    let now = now_ms();
    let until = now.saturating_add(state.settings.lease.as_millis() as i64);
    sqlx::query(
        "INSERT INTO replicas (owner, expires_at) VALUES ($1, $2) \
         ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(state.work.leases.owner())
    .bind(until)
    .execute(&state.db.pool)
    .await?;
    sqlx::query(
        "DELETE FROM replica_streams WHERE owner NOT IN (SELECT owner FROM replicas WHERE expires_at >= $1)",
    )
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    sqlx::query("DELETE FROM replicas WHERE expires_at < $1")
        .bind(now)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// A graceful stop: this replica's streams (ended now) and its heartbeat go.
pub async fn release_all(state: &AppState) {
    if state.db.backend != Backend::Postgres {
        return;
    }
    let owner = state.work.leases.owner();
    for sql in [
        "DELETE FROM replica_streams WHERE owner = $1",
        "DELETE FROM replicas WHERE owner = $1",
    ] {
        if let Err(e) = sqlx::query(sql).bind(owner).execute(&state.db.pool).await {
            tracing::warn!(error = %e, "giving back the replica's streams failed; they expire");
        }
    }
}
