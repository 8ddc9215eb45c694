//! Every connection's checks and runs at once, for the health dashboard: a few queries in all,
//! however many connections (one per connection each would be thousands at a thousand).
use std::collections::HashMap;

use sqlx::Row;

use super::store::{result_columns, result_from_row, run_columns, run_from_row};
use crate::model::{CheckResult, ScanRunView};
use crate::server::{error::ServiceError, AppState};

/// Results grouped by connection, in the order read.
fn by_connection(
    rows: &[sqlx::any::AnyRow],
) -> Result<HashMap<i64, Vec<CheckResult>>, ServiceError> {
    let mut out: HashMap<i64, Vec<CheckResult>> = HashMap::new();
    for r in rows {
        out.entry(r.try_get("connection_id")?)
            .or_default()
            .push(result_from_row(r)?);
    }
    Ok(out)
}

/// Each connection's latest result of every check it ran (`latest`, for all).
pub async fn latest(state: &AppState) -> Result<HashMap<i64, Vec<CheckResult>>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT connection_id, ",
        result_columns!(),
        " FROM scan_results \
             WHERE id IN (SELECT MAX(id) FROM scan_results GROUP BY connection_id, check_id)"
    ))
    .fetch_all(&state.db.pool)
    .await?;
    by_connection(&rows)
}

/// Each connection's latest `limit` results of any run, newest first (`recent_results`, for all).
pub async fn recent_results(
    state: &AppState,
    limit: i64,
) -> Result<HashMap<i64, Vec<CheckResult>>, ServiceError> {
    let rows = sqlx::query(concat!(
        "SELECT connection_id, ",
        result_columns!(),
        " FROM (SELECT connection_id, id, ",
        result_columns!(),
        ", ROW_NUMBER() OVER (PARTITION BY connection_id ORDER BY id DESC) AS newest \
             FROM scan_results) ranked \
             WHERE newest <= $1 ORDER BY connection_id, id DESC"
    ))
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    by_connection(&rows)
}

/// The last `limit` runs of each of `connections` with their results, newest first (`runs`,
/// for a page of connections at once).
pub async fn runs(
    state: &AppState,
    limit: i64,
    connections: &[i64],
) -> Result<HashMap<i64, Vec<ScanRunView>>, ServiceError> {
    if connections.is_empty() {
        return Ok(HashMap::new());
    }
    // The ids are bound, one placeholder each ($2 on; $1 is the limit).
    let ids: Vec<String> = (0..connections.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let latest_runs = format!(
        concat!(
            "SELECT connection_id, ",
            run_columns!(),
            " FROM (SELECT connection_id, ",
            run_columns!(),
            ", ROW_NUMBER() OVER (PARTITION BY connection_id ORDER BY id DESC) AS newest \
             FROM scan_runs WHERE connection_id IN ({})) ranked WHERE newest <= $1"
        ),
        ids.join(", ")
    );
    let runs_sql = format!("{latest_runs} ORDER BY connection_id, id DESC");
    let results_sql = format!(
        concat!(
            "SELECT run_id, ",
            result_columns!(),
            " FROM scan_results WHERE run_id IN (SELECT id FROM ({latest_runs}) latest) ORDER BY id"
        ),
        latest_runs = latest_runs
    );
    let runs = bound(&runs_sql, limit, connections)
        .fetch_all(&state.db.pool)
        .await?;
    let results = bound(&results_sql, limit, connections)
        .fetch_all(&state.db.pool)
        .await?;
    let mut of_run: HashMap<i64, Vec<CheckResult>> = HashMap::new();
    for r in &results {
        of_run
            .entry(r.try_get("run_id")?)
            .or_default()
            .push(result_from_row(r)?);
    }
    let mut out: HashMap<i64, Vec<ScanRunView>> = HashMap::new();
    for r in &runs {
        let id: i64 = r.try_get("id")?;
        let run = run_from_row(r, of_run.remove(&id).unwrap_or_default())?;
        out.entry(r.try_get("connection_id")?)
            .or_default()
            .push(run);
    }
    Ok(out)
}

/// `sql` with the limit and then each connection id bound.
fn bound<'q>(
    sql: &'q str,
    limit: i64,
    connections: &[i64],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql).bind(limit);
    for id in connections {
        query = query.bind(*id);
    }
    query
}
