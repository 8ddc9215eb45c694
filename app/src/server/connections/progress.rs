//! The columns the background work keeps on a connection row: the authorisation round's state
//! value, the onboarding run number, when the provider was last heard inbound, and the event
//! log's sequence counter (on the row so that concurrent writers are ordered by its lock).
use sqlx::{Any, Row, Transaction};

use crate::server::{clock, error::ServiceError, Db};

/// Remembers the state value sent with the named contact to the provider's authorisation page.
pub async fn set_auth_state(db: &Db, id: i64, value: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE connections SET auth_state = $1 WHERE id = $2")
        .bind(value)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Checks and clears the state value in one statement: of two answers carrying the same value
/// (two tabs, a replay), exactly one gets `true`.
pub async fn take_auth_state(db: &Db, id: i64, value: &str) -> Result<bool, ServiceError> {
    if value.is_empty() {
        return Ok(false);
    }
    let cleared =
        sqlx::query("UPDATE connections SET auth_state = NULL WHERE id = $1 AND auth_state = $2")
            .bind(id)
            .bind(value)
            .execute(&db.pool)
            .await?
            .rows_affected();
    Ok(cleared == 1)
}

/// A new onboarding run begins (inside the transaction that records its start).
pub async fn next_onboarding_run(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<(), ServiceError> {
    sqlx::query("UPDATE connections SET onboarding_run = onboarding_run + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn onboarding_run(db: &Db, id: i64) -> Result<i64, ServiceError> {
    Ok(
        sqlx::query("SELECT onboarding_run FROM connections WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await?
            .try_get("onboarding_run")?,
    )
}

/// The provider's verified "onboarded" call reached our inbound endpoint, during the onboarding
/// run the row counts now.
pub async fn mark_inbound_seen(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET inbound_seen_at = $1, inbound_seen_run = onboarding_run WHERE id = $2",
    )
        .bind(clock::to_db(clock::now()))
        .bind(id)
        .execute(&db.pool)
        .await
        .map(|_| ())
}

/// Whether the provider's verified "onboarded" call arrived during onboarding run `run`.
pub async fn inbound_seen_in_run(db: &Db, id: i64, run: i64) -> Result<bool, ServiceError> {
    let seen: Option<i64> = sqlx::query("SELECT inbound_seen_run FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await?
        .try_get("inbound_seen_run")?;
    Ok(seen == Some(run))
}

/// Connections whose onboarding run was started and not finished.
pub async fn onboarding_in_progress(db: &Db) -> Result<Vec<i64>, ServiceError> {
    ids(
        db,
        "SELECT id FROM connections WHERE onboarding IN ('started', 'syncing')",
    )
    .await
}

/// Connections whose pre-onboarding scan was started and not settled.
pub async fn awaiting_validation(db: &Db) -> Result<Vec<i64>, ServiceError> {
    ids(
        db,
        "SELECT id FROM connections WHERE state = 'awaiting_validation'",
    )
    .await
}

async fn ids(db: &Db, query: &str) -> Result<Vec<i64>, ServiceError> {
    let rows = sqlx::query(query).fetch_all(&db.pool).await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// How many live connections the company has (the scan's "one connection per company" check;
/// an off-boarded one no longer holds the company).
pub async fn count_for_company(db: &Db, company_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM connections WHERE company_id = $1 AND state <> 'off_boarded'",
    )
    .bind(company_id)
    .fetch_one(&db.pool)
    .await?
    .try_get("n")
}

/// The connection's next event sequence number. The update takes the row's lock, so
/// concurrent writers of one connection's events are serialised.
pub(crate) async fn next_event_seq(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<i64, ServiceError> {
    Ok(sqlx::query(
        "UPDATE connections SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("event_seq")?)
}
