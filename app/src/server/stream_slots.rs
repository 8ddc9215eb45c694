//! The per-user cap on open event streams over all replicas (PostgreSQL). Each replica counts
//! the streams it holds open per user and says it is alive (a heartbeat from its sweep); a new
//! stream is allowed when the user's counts on live replicas add up to less than the cap
//! (one row per replica: the check does not grow with the streams), decided under a lock on
//! that user (`pg_advisory_xact_lock`), so two replicas cannot both let the last one through. A
//! replica that dies stops counting when its heartbeat expires; one that stops gives its rows
//! back. With SQLite there is one process: `streams` alone counts, in memory.
use super::{clock, db::Backend, error::ServiceError, AppState, Db};

/// A stream's place in the shared count, given back when the stream ends (dropped).
pub struct Slot {
    db: Db,
    owner: String,
    user_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (db, owner, user_id) = (
            self.db.clone(),
            std::mem::take(&mut self.owner),
            self.user_id,
        );
        // Dropped with its stream, inside the runtime; at shutdown `release_all` does it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let gone = sqlx::query(
                    "UPDATE replica_streams SET open = open - 1 WHERE owner = $1 AND user_id = $2 AND open > 0",
                )
                .bind(&owner)
                .bind(user_id)
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
        db: state.db.clone(),
        owner: owner.to_string(),
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
