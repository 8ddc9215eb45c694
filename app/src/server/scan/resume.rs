//! Resuming a full-suite run that a crash cut short: what it had already recorded.
use std::collections::HashSet;

use sqlx::Row;

use super::store::{self, FULL_SUITE};
use crate::model::{CheckResult, EventBody};
use crate::server::{clock, error::ServiceError, events, AppState};

/// What a full-suite run cut short by a crash had already recorded.
pub(super) struct Resumed {
    pub run_id: i64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub results: Vec<CheckResult>,
    /// Checks whose "started" event is already in the log.
    pub started: HashSet<String>,
}

/// The connection's unfinished full-suite run, if the server stopped in the middle of one.
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

/// The full suite's latest run when it never finished (the server stopped mid-run).
async fn unfinished_run(state: &AppState, id: i64) -> Result<Option<i64>, ServiceError> {
    let row = sqlx::query(
        "SELECT id, finished_at FROM scan_runs WHERE connection_id = $1 AND suite = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .bind(FULL_SUITE)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(match finished {
        None => Some(row.try_get("id")?),
        Some(_) => None,
    })
}
