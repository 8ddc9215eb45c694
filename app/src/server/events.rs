//! The event log and its live channel. Events are appended inside the caller's transaction
//! (so they exist exactly when the change does) and published after commit.
use std::sync::Arc;

use sqlx::{Any, Row, Transaction};
use tokio::sync::broadcast;

use super::{clock, error::ServiceError, Db};
use crate::model::{ConnectionEvent, EventBody};

/// Live fan-out of committed events to every subscriber (SSE streams filter by connection).
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<ConnectionEvent>>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ConnectionEvent>> {
        self.tx.subscribe()
    }

    pub fn publish(&self, events: Vec<ConnectionEvent>) {
        for e in events {
            // No subscriber is fine: the log has it.
            let _ = self.tx.send(Arc::new(e));
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hub({} subscribers)", self.tx.receiver_count())
    }
}

/// Appends an event with the connection's next sequence number. The counter lives on the
/// connection row, so concurrent writers are serialised by the row update.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    connection_id: i64,
    body: EventBody,
) -> Result<ConnectionEvent, ServiceError> {
    let seq: i64 = sqlx::query(
        "UPDATE connections SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq",
    )
    .bind(connection_id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("event_seq")?;
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
        let mut tx = state.db.pool.begin().await?;
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
