//! A day of heartbeat history written straight into the server's SQLite database, so the
//! benchmark measures the dashboard's read at what a day leaves behind without running for a
//! day: the 23 hours before this one, per onboarded connection, as the hourly roll-ups
//! (`heartbeat_hours`, migration 0019) a heartbeat every `interval` seconds would have written.
use anyhow::Context;
use sqlx::Connection;

/// Writes the roll-ups; returns how many rows (connections × 23 hours).
pub async fn seed_day(sqlite_url: &str, interval_s: u64) -> anyhow::Result<u64> {
    let mut db = sqlx::SqliteConnection::connect(sqlite_url)
        .await
        .with_context(|| format!("cannot open {sqlite_url}"))?;
    let beats = i64::try_from(3_600 / interval_s.max(1))?;
    // Most answers in the 3–5 ms bucket (rtt_03), a tenth in 20–30 ms (rtt_08): two buckets,
    // so the percentiles have something to place. Hours already written (this one, the last)
    // stay as the server wrote them.
    let written = sqlx::query(
        "WITH RECURSIVE back(h) AS (SELECT 2 UNION ALL SELECT h + 1 FROM back WHERE h < 24) \
         INSERT INTO heartbeat_hours (connection_id, hour, beats, answered, up, slow, down, min_ms, max_ms, rtt_03, rtt_08) \
         SELECT c.id, strftime('%Y-%m-%dT%H:00:00.000000Z', 'now', '-' || (back.h - 1) || ' hours'), \
                ?1, ?1, ?1, 0, 0, 4, 27, ?1 - ?1 / 10, ?1 / 10 \
         FROM connections c CROSS JOIN back WHERE c.onboarding = 'complete' \
         ON CONFLICT (connection_id, hour) DO NOTHING",
    )
    .bind(beats)
    .execute(&mut db)
    .await?
    .rows_affected();
    Ok(written)
}
