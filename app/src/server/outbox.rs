//! Outgoing email, kept in the database so everything works without a mail server; the app shows
//! the outbox to administrators.
use sqlx::{Any, Row, Transaction};

use super::{clock, error::ServiceError, smtp::SmtpRelay, Db};
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

/// Sends queued emails through the SMTP relay when `IMPACT_SMTP_URL` is configured (the outbox
/// keeps them either way). One delivery pass at a time, so nothing is sent twice.
pub fn deliver_pending(state: &super::AppState) {
    let Some(relay) = state.settings.smtp_url.clone() else {
        return;
    };
    let from = state.settings.mail_from.clone();
    let db = state.db.clone();
    tokio::spawn(async move {
        static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _guard = ONE_AT_A_TIME.lock().await;
        if let Err(e) = deliver(&db, &relay, &from).await {
            tracing::warn!(error = %e, "email delivery pass failed");
        }
    });
}

#[tracing::instrument(skip_all, fields(relay = %relay.host(), port = relay.port()))]
async fn deliver(db: &Db, relay: &SmtpRelay, from: &str) -> Result<(), ServiceError> {
    use lettre::{AsyncTransport, Message};

    let transport = relay.transport();
    let rows = sqlx::query(
        "SELECT id, to_addr, subject, body, link FROM outbox WHERE sent_at IS NULL AND send_error IS NULL ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let to: String = r.try_get("to_addr")?;
        let link: Option<String> = r.try_get("link")?;
        let mut text: String = r.try_get("body")?;
        if let Some(l) = link {
            text.push_str(&format!("\nConnect with Impact IDI: {l}\n"));
        }
        let built = (|| {
            Message::builder()
                .from(from.parse().map_err(|e| format!("sender {from:?}: {e}"))?)
                .to(to.parse().map_err(|e| format!("recipient: {e}"))?)
                .subject(
                    r.try_get::<String, _>("subject")
                        .map_err(|e| e.to_string())?,
                )
                .body(text)
                .map_err(|e| e.to_string())
        })();
        let outcome = match built {
            Ok(message) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| relay.describe_send_error(&e)),
            Err(e) => Err(e),
        };
        let now = clock::to_db(clock::now());
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&db.pool)
                    .await?;
            }
            Err(e) => {
                tracing::warn!(message = id, error = %e, "email not delivered; it stays in the outbox");
                sqlx::query("UPDATE outbox SET send_error = $1 WHERE id = $2")
                    .bind(e)
                    .bind(id)
                    .execute(&db.pool)
                    .await?;
            }
        }
    }
    Ok(())
}
