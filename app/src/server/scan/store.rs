//! Runs and results in the database (`scan_runs`, `scan_results`), each write in one transaction
//! with its event, published once committed.
use sqlx::Row;

use crate::model::{
    check_spec, Action, CheckResult, CheckStatus, ConnectionState, EventBody, ScanRunView, Severity,
};
use crate::server::{clock, connections, error::ServiceError, events, lease::Lease, AppState};

/// The columns `result_from_row` reads: every query of check results selects these (here and
/// in `across`), so a new column is added in one place.
macro_rules! result_columns {
    () => {
        "check_id, status, message, retryable, duration_ms, at"
    };
}
/// The columns `run_from_row` reads.
macro_rules! run_columns {
    () => {
        "id, suite, started_at, finished_at, outcome"
    };
}
pub(super) use {result_columns, run_columns};

/// A background run holds its lease in each write (see `lease`); a run for a request has none.
async fn held(
    lease: Option<&Lease>,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<(), ServiceError> {
    match lease {
        Some(l) => l.hold_in(tx).await,
        None => Ok(()),
    }
}

/// The suite name of a full run; one check's run is "check:<id>".
pub const FULL_SUITE: &str = "pre_onboarding";

/// A new run and its "started" event: one transaction. Returns the run id.
pub(super) async fn start(
    state: &AppState,
    lease: Option<&Lease>,
    id: i64,
    suite: &str,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, ServiceError> {
    let mut tx = state.db.begin().await?;
    let run_id: i64 = sqlx::query(
        "INSERT INTO scan_runs (connection_id, suite, started_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(id)
    .bind(suite)
    .bind(clock::to_db(started_at))
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    let e = events::append(
        &mut tx,
        id,
        EventBody::Scan {
            run_id,
            suite: suite.to_string(),
            outcome: None,
        },
    )
    .await?;
    held(lease, &mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![e]);
    Ok(run_id)
}

/// A check's result and its event: one transaction, so a resumed run finds either both or
/// neither.
pub(super) async fn store_result(
    state: &AppState,
    lease: Option<&Lease>,
    id: i64,
    run_id: i64,
    r: &CheckResult,
) -> Result<(), ServiceError> {
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO scan_results (run_id, connection_id, check_id, status, message, retryable, duration_ms, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(run_id)
    .bind(id)
    .bind(&r.check_id)
    .bind(r.status.as_db())
    .bind(&r.message)
    .bind(i64::from(r.retryable))
    .bind(r.duration_ms)
    .bind(clock::to_db(r.at))
    .execute(&mut *tx)
    .await?;
    let e = events::append(
        &mut tx,
        id,
        EventBody::Check {
            run_id,
            check_id: r.check_id.clone(),
            name: r.name.clone(),
            result: Some(r.clone()),
        },
    )
    .await?;
    held(lease, &mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![e]);
    Ok(())
}

/// Closes the run with its outcome event and, for the full suite, moves the connection to
/// Validated or Validation failed: one transaction, so a run is unfinished exactly while the
/// connection still awaits its verdict.
pub(super) async fn finish(
    state: &AppState,
    lease: Option<&Lease>,
    id: i64,
    run_id: i64,
    suite: &str,
    full: bool,
    outcome: &str,
) -> Result<(), ServiceError> {
    let mut attempts = 0;
    loop {
        let current = connections::get(&state.db, id).await?;
        let mut tx = state.db.begin().await?;
        sqlx::query("UPDATE scan_runs SET finished_at = $1, outcome = $2 WHERE id = $3")
            .bind(clock::to_db(clock::now()))
            .bind(outcome)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let mut published = vec![
            events::append(
                &mut tx,
                id,
                EventBody::Scan {
                    run_id,
                    suite: suite.to_string(),
                    outcome: Some(outcome.into()),
                },
            )
            .await?,
        ];
        if full && current.state == ConnectionState::AwaitingValidation {
            let (action, reason) = if outcome == "passed" {
                (
                    Action::ValidationPassed,
                    "Every pre-onboarding check passed",
                )
            } else {
                (
                    Action::ValidationFailed,
                    "Some pre-onboarding checks failed: see the health dashboard",
                )
            };
            match connections::write_system_transition(&mut tx, &current, action, reason).await {
                Ok(e) => published.push(e),
                Err(ServiceError::Conflict(_)) if attempts < 3 => {
                    attempts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        held(lease, &mut tx).await?;
        tx.commit().await?;
        state.hub.publish(published);
        return Ok(());
    }
}

/// Each check's most recent result for this connection.
pub async fn latest(state: &AppState, id: i64) -> Result<Vec<CheckResult>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        result_columns!(),
        " FROM scan_results r WHERE connection_id = $1 AND id = (SELECT MAX(id) FROM \
             scan_results q WHERE q.connection_id = r.connection_id AND q.check_id = r.check_id)"
    ))
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(result_from_row).collect()
}

/// The connection's latest `limit` check results of any run, newest first (the dashboard counts
/// repeated findings from them).
pub async fn recent_results(
    state: &AppState,
    id: i64,
    limit: i64,
) -> Result<Vec<CheckResult>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        result_columns!(),
        " FROM scan_results WHERE connection_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(id)
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(result_from_row).collect()
}

/// One run's results, in the order they were stored.
pub(super) async fn run_results(
    state: &AppState,
    run_id: i64,
) -> Result<Vec<CheckResult>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        result_columns!(),
        " FROM scan_results WHERE run_id = $1 ORDER BY id"
    ))
    .bind(run_id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(result_from_row).collect()
}

/// The last `limit` runs with their results, newest first.
pub async fn runs(state: &AppState, id: i64, limit: i64) -> Result<Vec<ScanRunView>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM scan_runs WHERE connection_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(id)
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let results = run_results(state, r.try_get("id")?).await?;
        out.push(run_from_row(&r, results)?);
    }
    Ok(out)
}

/// A stored run (`run_columns!`) with its results.
pub(super) fn run_from_row(
    r: &sqlx::any::AnyRow,
    results: Vec<CheckResult>,
) -> Result<ScanRunView, ServiceError> {
    let finished: Option<String> = r.try_get("finished_at")?;
    Ok(ScanRunView {
        id: r.try_get("id")?,
        suite: r.try_get("suite")?,
        started_at: clock::from_db(&r.try_get::<String, _>("started_at")?)?,
        finished_at: finished.as_deref().map(clock::from_db).transpose()?,
        outcome: r.try_get("outcome")?,
        results,
    })
}

/// A stored result, explained from the catalogue (an id it no longer has keeps its own words).
pub(super) fn result_from_row(r: &sqlx::any::AnyRow) -> Result<CheckResult, ServiceError> {
    let check_id: String = r.try_get("check_id")?;
    let spec = check_spec(&check_id);
    let status: String = r.try_get("status")?;
    Ok(CheckResult {
        name: spec
            .map(|s| s.name.to_string())
            .unwrap_or_else(|| check_id.clone()),
        severity: spec.map(|s| s.severity).unwrap_or(Severity::Medium),
        status: CheckStatus::from_db(&status).unwrap_or(CheckStatus::Error),
        message: r.try_get("message")?,
        resolution: spec
            .map(|s| s.resolution.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
        article: spec.map(|s| s.article.to_string()).unwrap_or_default(),
        duration_ms: r.try_get("duration_ms")?,
        retryable: r.try_get::<i64, _>("retryable")? != 0,
        at: clock::from_db(&r.try_get::<String, _>("at")?)?,
        check_id,
    })
}
