//! The heartbeat history (rules: `model::rollup`). Each heartbeat is written three ways in one
//! transaction: its own row (kept `RAW_KEPT_HOURS`, for the diagnostic report), its hour's
//! roll-up (kept `traffic::KEPT_DAYS`; what the dashboard reads, 24 rows a connection a day
//! however short the interval) and the connection's latest heartbeat with its Down streaks.
use std::collections::HashMap;

use chrono::{DateTime, DurationRound, Utc};
use sqlx::Row;

use super::{clock, db::Backend, error::ServiceError, traffic, Db};
use crate::model::{
    dashboard::Health,
    heartbeat::Beat,
    rollup::{rtt_column, Counted, DownStreak, HourRollup, LatestBeat, RTT_BUCKETS},
    LinkStatus,
};

/// How long each heartbeat's own row is kept: the diagnostic report's last 100 heartbeats at the
/// default 60 s interval (nothing else reads them; at 1,000 connections every 10 s that is
/// 720,000 rows, where a day would be 8.64 million).
pub const RAW_KEPT_HOURS: i64 = 2;

/// Records a heartbeat that ran now with the statuses it implied.
#[tracing::instrument(skip(db))]
pub async fn record(
    db: &Db,
    connection_id: i64,
    beat: Beat,
    statuses: (LinkStatus, LinkStatus),
) -> Result<(), ServiceError> {
    let now = clock::now();
    let round_trip = beat
        .outbound_ms
        .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO heartbeats (connection_id, at, outbound_ms, outbound, inbound) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(connection_id)
    .bind(clock::to_db(now))
    .bind(round_trip)
    .bind(statuses.0.as_db())
    .bind(statuses.1.as_db())
    .execute(&mut *tx)
    .await?;
    count_in_hour(&mut tx, connection_id, now, round_trip, statuses).await?;
    let lock = match db.backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let before = sqlx::query(&format!(
        "SELECT {LATEST_COLUMNS} FROM heartbeat_latest WHERE connection_id = $1{lock}"
    ))
    .bind(connection_id)
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| latest(&r))
    .transpose()?
    .unwrap_or_default();
    write_latest(
        &mut tx,
        connection_id,
        before.after(now, round_trip, statuses),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One more heartbeat in its hour's roll-up: an upsert that adds to the counts, so concurrent
/// heartbeats of one connection (a scan's and the schedule's) both count.
async fn count_in_hour(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    connection_id: i64,
    now: DateTime<Utc>,
    round_trip: Option<i64>,
    (outbound, inbound): (LinkStatus, LinkStatus),
) -> Result<(), ServiceError> {
    let counted = Counted::of(round_trip, outbound, inbound);
    let hour = now
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now);
    let health = counted.health.map(Health::as_str);
    // The bucket's column (a name from the model's constant, never input).
    let (rtt_insert, rtt_update) = match counted.bucket {
        Some(b) => {
            let column = rtt_column(b);
            (
                format!(", {column}"),
                format!(", {column} = heartbeat_hours.{column} + 1"),
            )
        }
        None => (String::new(), String::new()),
    };
    let rtt_value = if counted.bucket.is_some() { ", 1" } else { "" };
    sqlx::query(&format!(
        "INSERT INTO heartbeat_hours (connection_id, hour, beats, answered, up, slow, down, min_ms, max_ms{rtt_insert}) \
         VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $7{rtt_value}) \
         ON CONFLICT (connection_id, hour) DO UPDATE SET beats = heartbeat_hours.beats + 1, \
         answered = heartbeat_hours.answered + excluded.answered, \
         up = heartbeat_hours.up + excluded.up, slow = heartbeat_hours.slow + excluded.slow, \
         down = heartbeat_hours.down + excluded.down, \
         min_ms = CASE WHEN heartbeat_hours.min_ms IS NULL OR excluded.min_ms < heartbeat_hours.min_ms \
                  THEN COALESCE(excluded.min_ms, heartbeat_hours.min_ms) ELSE heartbeat_hours.min_ms END, \
         max_ms = CASE WHEN heartbeat_hours.max_ms IS NULL OR excluded.max_ms > heartbeat_hours.max_ms \
                  THEN COALESCE(excluded.max_ms, heartbeat_hours.max_ms) ELSE heartbeat_hours.max_ms END\
         {rtt_update}"
    ))
    .bind(connection_id)
    .bind(clock::to_db(hour))
    .bind(i64::from(counted.answered))
    .bind(i64::from(health == Some("up")))
    .bind(i64::from(health == Some("slow")))
    .bind(i64::from(health == Some("down")))
    .bind(round_trip)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const LATEST_COLUMNS: &str = "connection_id, at, round_trip_ms, answered_at, outbound_down_since, \
     outbound_down_beats, inbound_down_since, inbound_down_beats";

async fn write_latest(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    connection_id: i64,
    latest: LatestBeat,
) -> Result<(), ServiceError> {
    let time = |t: Option<DateTime<Utc>>| t.map(clock::to_db);
    let since = |s: Option<DownStreak>| s.map(|s| clock::to_db(s.since));
    let beats = |s: Option<DownStreak>| s.map_or(0, |s| s.beats);
    sqlx::query(&format!(
        "INSERT INTO heartbeat_latest ({LATEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (connection_id) DO UPDATE SET at = excluded.at, \
         round_trip_ms = excluded.round_trip_ms, answered_at = excluded.answered_at, \
         outbound_down_since = excluded.outbound_down_since, \
         outbound_down_beats = excluded.outbound_down_beats, \
         inbound_down_since = excluded.inbound_down_since, \
         inbound_down_beats = excluded.inbound_down_beats"
    ))
    .bind(connection_id)
    .bind(time(latest.at))
    .bind(latest.round_trip_ms)
    .bind(time(latest.answered_at))
    .bind(since(latest.outbound_down))
    .bind(beats(latest.outbound_down))
    .bind(since(latest.inbound_down))
    .bind(beats(latest.inbound_down))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn latest(r: &sqlx::any::AnyRow) -> Result<LatestBeat, ServiceError> {
    let time = |column: &str| -> Result<Option<DateTime<Utc>>, ServiceError> {
        let raw: Option<String> = r.try_get(column)?;
        Ok(raw.as_deref().map(clock::from_db).transpose()?)
    };
    let at = time("at")?;
    let streak = |since: &str, beats: &str| -> Result<Option<DownStreak>, ServiceError> {
        let beats: i64 = r.try_get(beats)?;
        Ok(match (time(since)?, at) {
            (Some(since), Some(last)) if beats > 0 => Some(DownStreak { since, last, beats }),
            _ => None,
        })
    };
    Ok(LatestBeat {
        at,
        round_trip_ms: r.try_get("round_trip_ms")?,
        answered_at: time("answered_at")?,
        outbound_down: streak("outbound_down_since", "outbound_down_beats")?,
        inbound_down: streak("inbound_down_since", "inbound_down_beats")?,
    })
}

/// One connection's latest heartbeat (the default when it never had one).
pub async fn latest_of(db: &Db, connection_id: i64) -> Result<LatestBeat, ServiceError> {
    sqlx::query(&format!(
        "SELECT {LATEST_COLUMNS} FROM heartbeat_latest WHERE connection_id = $1"
    ))
    .bind(connection_id)
    .fetch_optional(&db.pool)
    .await?
    .map(|r| latest(&r))
    .transpose()
    .map(Option::unwrap_or_default)
}

/// Every connection's latest heartbeat.
pub async fn latest_all(db: &Db) -> Result<HashMap<i64, LatestBeat>, ServiceError> {
    let rows = sqlx::query(&format!("SELECT {LATEST_COLUMNS} FROM heartbeat_latest"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("connection_id")?, latest(r)?)))
        .collect()
}

/// Every connection's heartbeats from `since`'s hour on, summed up in the database (one row a
/// connection however many hours: the day's counts and histogram, as `HourRollup::add` would).
pub async fn summed_since(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<HashMap<i64, HourRollup>, ServiceError> {
    let rtt: Vec<String> = (0..RTT_BUCKETS).map(rtt_column).collect();
    let sums: Vec<String> = ["beats", "answered", "up", "slow", "down"]
        .iter()
        .map(|c| c.to_string())
        .chain(rtt.iter().cloned())
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect();
    let rows = sqlx::query(&format!(
        "SELECT connection_id, MIN(min_ms) AS min_ms, MAX(max_ms) AS max_ms, {} \
         FROM heartbeat_hours WHERE hour >= $1 GROUP BY connection_id",
        sums.join(", ")
    ))
    .bind(clock::to_db(since))
    .fetch_all(&db.pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let mut day = HourRollup::empty(since);
        day.beats = r.try_get("beats")?;
        day.answered = r.try_get("answered")?;
        day.up = r.try_get("up")?;
        day.slow = r.try_get("slow")?;
        day.down = r.try_get("down")?;
        day.min_ms = r.try_get("min_ms")?;
        day.max_ms = r.try_get("max_ms")?;
        for (n, column) in day.rtt.iter_mut().zip(&rtt) {
            *n = r.try_get(column.as_str())?;
        }
        out.insert(r.try_get("connection_id")?, day);
    }
    Ok(out)
}

/// Each connection's worst health in each hour from `since`'s hour on (`HourRollup::worst`),
/// for the 24-hour chart: only the counts by health are read.
pub async fn worst_by_hour(
    db: &Db,
    since: DateTime<Utc>,
) -> Result<Vec<(i64, DateTime<Utc>, Health)>, ServiceError> {
    let rows = sqlx::query(
        "SELECT connection_id, hour, up, slow, down FROM heartbeat_hours WHERE hour >= $1",
    )
    .bind(clock::to_db(since))
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut hour = HourRollup::empty(clock::from_db(&r.try_get::<String, _>("hour")?)?);
        hour.up = r.try_get("up")?;
        hour.slow = r.try_get("slow")?;
        hour.down = r.try_get("down")?;
        if let Some(worst) = hour.worst() {
            out.push((r.try_get("connection_id")?, hour.hour, worst));
        }
    }
    Ok(out)
}

/// Forgets a connection's latest heartbeat and its streaks (off-boarding: a new onboarding
/// starts with no Down streak carried over).
pub async fn forget_latest(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    connection_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM heartbeat_latest WHERE connection_id = $1")
        .bind(connection_id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Drops heartbeat rows older than `RAW_KEPT_HOURS` and roll-ups older than
/// `traffic::KEPT_DAYS`; returns how many rows went.
pub async fn prune(db: &Db) -> Result<u64, ServiceError> {
    let now = clock::now();
    let raw = sqlx::query("DELETE FROM heartbeats WHERE at < $1")
        .bind(clock::to_db(now - chrono::Duration::hours(RAW_KEPT_HOURS)))
        .execute(&db.pool)
        .await?
        .rows_affected();
    let hours = sqlx::query("DELETE FROM heartbeat_hours WHERE hour < $1")
        .bind(clock::to_db(
            now - chrono::Duration::days(traffic::KEPT_DAYS),
        ))
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(raw + hours)
}
