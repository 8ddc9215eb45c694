//! Reading connection records as people see them (`ConnectionView`) and their history.
use chrono::{DateTime, Utc};
use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::model::{ConnectionState, ConnectionView, HistoryEntry, LinkStatus, Onboarding};
use crate::server::{clock, db::decode, error::ServiceError, Db};

const SELECT: &str =
    "SELECT c.id, co.name AS company, c.url, c.state, c.registered, c.onboarding, \
    c.outbound, c.inbound, c.version, c.created_at, c.updated_at \
    FROM connections c JOIN companies co ON co.id = c.company_id";

fn time(r: &AnyRow, col: &str) -> Result<DateTime<Utc>, ServiceError> {
    Ok(clock::from_db(&r.try_get::<String, _>(col)?)?)
}

fn from_row(r: &AnyRow) -> Result<ConnectionView, ServiceError> {
    Ok(ConnectionView {
        id: r.try_get("id")?,
        company: r.try_get("company")?,
        url: r.try_get("url")?,
        state: decode(r.try_get("state")?, ConnectionState::from_db, "state")?,
        registered: r.try_get::<i64, _>("registered")? != 0,
        onboarding: decode(r.try_get("onboarding")?, Onboarding::from_db, "onboarding")?,
        outbound: decode(
            r.try_get("outbound")?,
            LinkStatus::from_db,
            "outbound status",
        )?,
        inbound: decode(r.try_get("inbound")?, LinkStatus::from_db, "inbound status")?,
        version: r.try_get("version")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

pub(super) fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("There is no provider connection #{id}. It may have been removed; open the Connections list."))
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, id: i64) -> Result<ConnectionView, ServiceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| not_found(id))?;
    from_row(&row)
}

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<ConnectionView>, ServiceError> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY c.id"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The live connection to this provider URL, if one exists (a second one is never created; an
/// off-boarded one is history and does not count).
pub async fn find_by_url(db: &Db, url: &str) -> Result<Option<ConnectionView>, ServiceError> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE c.url = $1 AND c.state <> 'off_boarded'"
    ))
    .bind(url)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn get_in(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<ConnectionView, ServiceError> {
    let row = sqlx::query(&format!("{SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| not_found(id))?;
    from_row(&row)
}

#[tracing::instrument(skip(db))]
pub async fn history(db: &Db, id: i64) -> Result<Vec<HistoryEntry>, ServiceError> {
    get(db, id).await?;
    let rows = sqlx::query(
        "SELECT at, actor, action, from_state, to_state, reason FROM connection_history \
         WHERE connection_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                at: time(r, "at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                from_state: decode(r.try_get("from_state")?, ConnectionState::from_db, "state")?,
                to_state: decode(r.try_get("to_state")?, ConnectionState::from_db, "state")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}
