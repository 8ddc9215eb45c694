//! Resuming a whole-suite run that a crash cut short (pre-onboarding, or connection health once
//! onboarded): what it had already recorded.
use std::collections::HashSet;

use sqlx::Row;

use super::store::{self, FULL_SUITE};
use crate::model::{CheckResult, EventBody, Suite};
use crate::server::{clock, error::ServiceError, events, AppState};

/// What a full-suite run cut short by a crash had already recorded.
pub(super) struct Resumed {
    pub run_id: i64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub results: Vec<CheckResult>,
    /// Checks whose "started" event is already in the log.
    pub started: HashSet<String>,
}

/// Onboarded connections whose connection health run never finished (a Rescan cut short).
pub(super) async fn unfinished_health_runs(state: &AppState) -> Result<Vec<i64>, ServiceError> {
    let rows = sqlx::query(
        "SELECT DISTINCT r.connection_id FROM scan_runs r JOIN connections c ON c.id = r.connection_id \
         WHERE r.suite = $1 AND r.finished_at IS NULL AND c.onboarding = 'complete' \
         AND c.state <> 'off_boarded'",
    )
    .bind(Suite::ConnectionHealth.as_str())
    .fetch_all(&state.db.pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("connection_id"))
        .collect::<Result<_, _>>()?)
}

/// The connection's unfinished whole-suite run, if the server stopped in the middle of one.
pub(super) async fn unfinished(state: &AppState, id: i64) -> Result<Option<Resumed>, ServiceError> {
    match unfinished_run(state, id).await? {
        Some(run_id) => Ok(Some(resumed(state, id, run_id).await?)),
        None => Ok(None),
    }
}

async fn resumed(state: &AppState, id: i64, run_id: i64) -> Result<Resumed, ServiceError> {
    let started_at: String = sqlx::query("SELECT started_at FROM scan_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&state.db.pool)
        .await?
        .try_get("started_at")?;
    let results = store::run_results(state, run_id).await?;
    let started = events::since(&state.db, id, 0)
        .await?
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Check {
                run_id: r,
                check_id,
                result: None,
                ..
            } if r == run_id => Some(check_id),
            _ => None,
        })
        .collect();
    Ok(Resumed {
        run_id,
        started_at: clock::from_db(&started_at)?,
        results,
        started,
    })
}

/// The latest run of the suite the connection runs now, when it never finished (the server
/// stopped mid-run). A run of the other suite (a health run cut short before a re-registration)
/// is not carried on as this one.
async fn unfinished_run(state: &AppState, id: i64) -> Result<Option<i64>, ServiceError> {
    let onboarding = crate::server::connections::get(&state.db, id)
        .await?
        .onboarding;
    let suite = match Suite::for_onboarding(onboarding) {
        Suite::PreOnboarding => FULL_SUITE,
        Suite::ConnectionHealth => Suite::ConnectionHealth.as_str(),
    };
    let row = sqlx::query(
        "SELECT id, finished_at, suite FROM scan_runs WHERE connection_id = $1 \
         AND suite IN ($2, $3) ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .bind(FULL_SUITE)
    .bind(Suite::ConnectionHealth.as_str())
    .fetch_optional(&state.db.pool)
    .await?;
    let row = match row {
        Some(r) if r.try_get::<String, _>("suite")? == suite => Some(r),
        _ => None,
    };
    let Some(row) = row else { return Ok(None) };
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(match finished {
        None => Some(row.try_get("id")?),
        Some(_) => None,
    })
}
