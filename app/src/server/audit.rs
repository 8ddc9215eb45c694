//! The audit log: who did what, when, to which connection. Connection state changes are in
//! `connection_history`; everything else (users, registrations) is recorded here.
use sqlx::{Any, Row, Transaction};

use super::{clock, error::ServiceError, Db};
use crate::model::AuditEntry;

pub(crate) async fn record(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    action: &str,
    connection_id: Option<i64>,
    detail: &str,
) -> Result<(), ServiceError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, connection_id, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(clock::to_db(clock::now()))
        .bind(actor)
        .bind(action)
        .bind(connection_id)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Everything, newest first: connection transitions and other audited actions together.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, limit: i64) -> Result<Vec<AuditEntry>, ServiceError> {
    let rows = sqlx::query(
        "SELECT at, actor, action, connection_id, from_state, to_state, reason AS detail FROM connection_history \
         UNION ALL SELECT at, actor, action, connection_id, from_state, to_state, detail FROM audit_log \
         ORDER BY at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: clock::from_db(&r.try_get::<String, _>("at")?)?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                connection_id: r.try_get("connection_id")?,
                from_state: r.try_get("from_state")?,
                to_state: r.try_get("to_state")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
