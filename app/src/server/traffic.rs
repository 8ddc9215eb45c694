//! The health dashboard's message counts: the messages each way counted per hour (outbound: the
//! heartbeats, verifications and migration pages this instance sends; inbound: every signed call
//! from the provider this instance accepted). Kept for `KEPT_DAYS` (the heartbeats' roll-ups
//! too: `heartbeat_history`); the sweep prunes older rows.
use chrono::{DurationRound, Utc};

use super::{clock, error::ServiceError, Db};

pub const KEPT_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// Counts one message of `connection_id` in its hour. A failure is logged, never the caller's:
/// a count must not fail the call it counts.
pub async fn count(db: &Db, connection_id: i64, direction: Direction) {
    if let Err(e) = record(&db.pool, connection_id, direction).await {
        tracing::warn!(connection = connection_id, error = %e, "counting a message failed");
    }
}

/// The count's statement on `on`: the pool, or a transaction that writes something else of the
/// same message (an inbound call's signature, `replay::take`), so both share one commit.
pub async fn record<'e, E>(
    on: E,
    connection_id: i64,
    direction: Direction,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let now = clock::now();
    let hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now);
    sqlx::query(
        "INSERT INTO link_traffic (connection_id, direction, hour, messages, last_at) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (connection_id, direction, hour) DO UPDATE SET messages = link_traffic.messages + 1, last_at = excluded.last_at",
    )
    .bind(connection_id)
    .bind(direction.as_str())
    .bind(clock::to_db(hour))
    .bind(clock::to_db(now))
    .execute(on)
    .await
    .map(|_| ())
}

/// Drops message counts older than `KEPT_DAYS`; returns how many rows went.
pub async fn prune(db: &Db) -> Result<u64, ServiceError> {
    let before = clock::to_db(Utc::now() - chrono::Duration::days(KEPT_DAYS));
    let traffic = sqlx::query("DELETE FROM link_traffic WHERE hour < $1")
        .bind(&before)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(traffic)
}
