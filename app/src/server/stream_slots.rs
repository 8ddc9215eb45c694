//! The per-user cap on open event streams over all replicas (PostgreSQL). Each replica records
//! the streams it holds open and says it is alive (a heartbeat from its sweep); a new stream is
//! allowed when the user's streams on live replicas are under the cap, decided under a lock on
//! that user (`pg_advisory_xact_lock`), so two replicas cannot both let the last one through. A
//! replica that dies stops counting when its heartbeat expires; one that stops gives its rows
//! back. With SQLite there is one process: `streams` alone counts, in memory.
use std::sync::atomic::{AtomicU64, Ordering};

use super::{clock, db::Backend, error::ServiceError, AppState, Db};

/// A stream's place in the shared count, given back when the stream ends (dropped).
pub struct Slot {
    db: Db,
    id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (db, id) = (self.db.clone(), std::mem::take(&mut self.id));
        // Dropped with its stream, inside the runtime; at shutdown `release_all` does it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let gone = sqlx::query("DELETE FROM open_streams WHERE id = $1")
                    .bind(&id)
                    .execute(&db.pool)
                    .await;
                if let Err(e) = gone {
                    tracing::warn!(error = %e, "giving back a stream's place failed; it goes with the replica's rows");
                }
            });
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
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let owner = state.work.leases.owner();
    let id = format!("{owner}:{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM open_streams s JOIN replicas r ON r.owner = s.owner \
         WHERE s.user_id = $1 AND r.expires_at >= $2",
    )
    .bind(user_id)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    if open >= cap as i64 {
        return Ok(Taken::Full(cap));
    }
    sqlx::query("INSERT INTO open_streams (id, owner, user_id, opened_ms) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(owner)
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Taken::Slot(Slot {
        db: state.db.clone(),
        id,
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
        "DELETE FROM open_streams WHERE owner IN (SELECT owner FROM replicas WHERE expires_at < $1)",
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
        "DELETE FROM open_streams WHERE owner = $1",
        "DELETE FROM replicas WHERE owner = $1",
    ] {
        if let Err(e) = sqlx::query(sql).bind(owner).execute(&state.db.pool).await {
            tracing::warn!(error = %e, "giving back the replica's streams failed; they expire");
        }
    }
}
