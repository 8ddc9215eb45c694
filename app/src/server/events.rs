//! The event log. Events are appended inside the caller's transaction (so they exist exactly
//! when the change does), announced to the other replicas on commit (PostgreSQL), and published
//! to this replica's live channel (`hub`) after commit.
use sqlx::{Any, Row, Transaction};

pub use super::hub::{sse_frame, Hub, Published};
use super::{clock, error::ServiceError, Db};
use crate::model::{ConnectionEvent, EventBody};

/// Appends an event with the connection's next sequence number (`connections::progress::next_event_seq`:
/// concurrent writers are serialised by the row update).
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    body: EventBody,
) -> Result<ConnectionEvent, ServiceError> {
    let seq = super::connections::progress::next_event_seq(tx, connection_id).await?;
    announce(tx, connection_id, seq).await?;
    let at = clock::now();
    let json = serde_json::to_string(&body).map_err(anyhow::Error::from)?;
    sqlx::query(
        "INSERT INTO connection_events (connection_id, seq, at, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(connection_id)
    .bind(seq)
    .bind(clock::to_db(at))
    .bind(json)
    .execute(&mut **tx)
    .await?;
    Ok(ConnectionEvent {
        connection_id,
        seq,
        at,
        body,
    })
}

/// The PostgreSQL channel on which every appended event is announced (`relay` listens).
pub const ANNOUNCEMENTS: &str = "impact_events";

/// Announces `seq` of `connection_id` to the other replicas (`relay`), inside the transaction
/// that appends it: PostgreSQL delivers it on commit. SQLite has one process and no one to tell.
pub(crate) async fn announce(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    seq: i64,
) -> Result<(), ServiceError> {
    if tx.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ANNOUNCEMENTS)
        .bind(format!("{connection_id}:{seq}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The newest sequence number in this connection's log (0 for none).
pub async fn newest_seq(db: &Db, connection_id: i64) -> Result<i64, ServiceError> {
    let row = sqlx::query(
        "SELECT COALESCE(MAX(seq), 0) AS newest FROM connection_events WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(row.try_get("newest")?)
}

/// Stored events after `after`, in order.
pub async fn since(
    db: &Db,
    connection_id: i64,
    after: i64,
) -> Result<Vec<ConnectionEvent>, ServiceError> {
    let rows = sqlx::query(
        "SELECT seq, at, body FROM connection_events WHERE connection_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(connection_id)
    .bind(after)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            Ok(ConnectionEvent {
                connection_id,
                seq: r.try_get("seq")?,
                at: clock::from_db(&r.try_get::<String, _>("at")?)?,
                body: serde_json::from_str(&body).map_err(anyhow::Error::from)?,
            })
        })
        .collect()
}

/// Records one event in its own transaction and publishes it. A failure is logged, not
/// returned: progress events must never stop the work they describe.
pub async fn record(state: &super::AppState, connection_id: i64, body: EventBody) {
    let result = async {
        let mut tx = state.db.begin().await?;
        let e = append(&mut tx, connection_id, body).await?;
        tx.commit().await?;
        Ok::<_, ServiceError>(e)
    }
    .await;
    match result {
        Ok(e) => state.hub.publish(vec![e]),
        Err(e) => {
            tracing::warn!(connection = connection_id, error = %e, "could not record an event")
        }
    }
}
