//! Outgoing email, kept in the database so everything works without a mail server; the app shows
//! the outbox to administrators.
use sqlx::{Any, Row, Transaction};

use super::{clock, error::ServiceError, Db};
use crate::model::OutboxMessage;

pub(crate) async fn queue(
    tx: &mut Transaction<'static, Any>,
    to: &str,
    subject: &str,
    body: &str,
    link: Option<&str>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO outbox (to_addr, subject, body, link, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to)
    .bind(subject)
    .bind(body)
    .bind(link)
    .bind(clock::to_db(clock::now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[tracing::instrument(skip(db))]
pub async fn list(db: &Db) -> Result<Vec<OutboxMessage>, ServiceError> {
    let rows = sqlx::query("SELECT id, to_addr, subject, body, link, created_at FROM outbox ORDER BY id DESC LIMIT 200")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxMessage {
                id: r.try_get("id")?,
                to: r.try_get("to_addr")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                link: r.try_get("link")?,
                created_at: clock::from_db(&r.try_get::<String, _>("created_at")?)?,
            })
        })
        .collect()
}
