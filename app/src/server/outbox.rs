//! Outgoing email, kept in the database so everything works without a mail server; the app shows
//! the outbox to administrators.
use sqlx::{Any, Row, Transaction};

use super::{clock, error::ServiceError, lease::Work, smtp::SmtpRelay, Db};
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
/// keeps them either way). One delivery pass at a time over all replicas (the pass holds the
/// outbox lease), so nothing is sent twice; what a pass started before it was queued is picked
/// up by the next sweep (`sweep`).
pub fn deliver_pending(state: &super::AppState) {
    let Some(relay) = state.settings.smtp_url.clone() else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let lease = match state.work.leases.claim(Work::Outbox).await {
            Ok(Some(lease)) => lease,
            // A pass is running (here or on another replica).
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "claiming the email delivery pass failed");
                return;
            }
        };
        let work = state.work.clone();
        work.spawn(lease, move |_lease| async move {
            let from = state.settings.mail_from.clone();
            if let Err(e) = deliver(&state.db, &relay, &from).await {
                tracing::warn!(error = %e, "email delivery pass failed");
            }
        });
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
        let mut tx = db.begin().await?;
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(e) => {
                tracing::warn!(message = id, error = %e, "email not delivered; it stays in the outbox");
                sqlx::query("UPDATE outbox SET send_error = $1 WHERE id = $2")
                    .bind(e)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Recorded even if the lease was lost meanwhile: the message went out.
        tx.commit().await?;
    }
    Ok(())
}
