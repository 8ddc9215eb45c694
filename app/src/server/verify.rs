//! "Verify the connection": a real round trip. We ask the provider to echo a nonce back to our
//! inbound endpoint and wait for it; `echo_received` is called by that endpoint once the
//! provider's signature checked out.
use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::{
    audit, clock, connections,
    error::ServiceError,
    guided::{self, Detail, KIND_CONNECTION, KIND_DATA},
    provider::{CallbackResult, Credentials},
    provider_error::ProviderError,
    AppState,
};
use crate::model::{
    onboarding_gaps, run_refusal, Access, ActivityId, ActivityStatus, ConnectionView, CurrentUser,
    LinkStatus, TableSample, VerificationView,
};

type Waiters = Mutex<HashMap<(i64, String), oneshot::Sender<()>>>;

/// Process-wide: the inbound endpoint and the waiting run meet here by (connection, nonce).
fn waiters() -> std::sync::MutexGuard<'static, HashMap<(i64, String), oneshot::Sender<()>>> {
    static W: OnceLock<Waiters> = OnceLock::new();
    // A panic elsewhere while holding the lock leaves the map itself intact: keep using it.
    W.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One run's wait for its echo. Dropping it (arrived, timed out, or the request cancelled)
/// forgets the waiter, so nothing accumulates.
struct EchoWait {
    key: (i64, String),
    arrived: oneshot::Receiver<()>,
}

impl EchoWait {
    fn register(connection_id: i64, nonce: &str) -> Self {
        let (tx, arrived) = oneshot::channel();
        let key = (connection_id, nonce.to_string());
        waiters().insert(key.clone(), tx);
        Self { key, arrived }
    }
}

impl Drop for EchoWait {
    fn drop(&mut self) {
        waiters().remove(&self.key);
    }
}

/// Where an echo for a waiter on another replica is announced (PostgreSQL `NOTIFY`; every
/// replica's relay listens and hands it to `echo_received`).
pub const ECHOES: &str = "impact_echoes";

/// The provider echoed a nonce back to us (its signature already checked by the endpoint). The
/// run waiting for it may be on another replica (the provider's call came through the
/// balancer): if nobody waits here, the echo is announced to the others.
pub async fn echo_arrived(state: &AppState, connection_id: i64, nonce: &str) {
    if echo_received(connection_id, nonce) {
        return;
    }
    // Ours are 32 hex digits; anything else waits nowhere (and stays out of a NOTIFY payload).
    let ours = nonce.len() <= 64 && nonce.chars().all(|c| c.is_ascii_hexdigit());
    if !ours || state.db.backend != super::db::Backend::Postgres {
        // Not ours, or one process: nobody waits for it anywhere.
        tracing::info!(
            connection = connection_id,
            "an echo nobody waits for (late or unknown)"
        );
        return;
    }
    let payload = format!("{connection_id}:{nonce}");
    if let Err(e) = state.db.notify(ECHOES, &payload).await {
        tracing::warn!(connection = connection_id, error = %e, "announcing an echo to the other replicas failed");
    }
}

/// Hands an echo to the run waiting for it here; false when no run here waits for it.
pub fn echo_received(connection_id: i64, nonce: &str) -> bool {
    match waiters().remove(&(connection_id, nonce.to_string())) {
        Some(tx) => {
            let _ = tx.send(());
            true
        }
        None => false,
    }
}

/// Said after every failure: who can help, and the way back.
const WHAT_NEXT: &str = "If it keeps failing, contact the Customer Service Manager, or go back to manual registration (Guided Setup, \"Register your instance\") and connect again.";

/// One run's result, before it is stored.
struct Outcome {
    ok: bool,
    latency_ms: Option<i64>,
    detail: Detail,
}

fn failure(message: String, outbound: Option<LinkStatus>, inbound: Option<LinkStatus>) -> Outcome {
    Outcome {
        ok: false,
        latency_ms: None,
        detail: Detail {
            message: format!("{message} {WHAT_NEXT}"),
            outbound,
            inbound,
            ..Detail::default()
        },
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What must hold before anything is sent: the connection onboarded and Up, and its credentials.
async fn preflight(
    state: &AppState,
    conn: &ConnectionView,
) -> Result<Result<Credentials, Outcome>, ServiceError> {
    let gaps = onboarding_gaps(conn);
    if !gaps.is_empty() {
        return Ok(Err(failure(
            format!(
                "The connection is not onboarded and Up: {}. Finish it on the Provider connection form first.",
                gaps.join("; ")
            ),
            Some(conn.outbound),
            Some(conn.inbound),
        )));
    }
    match connections::credentials(state, conn.id).await? {
        Some(c) => Ok(Ok(c)),
        None => Ok(Err(failure(
            "This connection holds no provider credentials, so nothing can be sent to the provider."
                .into(),
            Some(conn.outbound),
            Some(conn.inbound),
        ))),
    }
}

/// One echo exchange, as "Verify the connection" and the scheduled heartbeat both make it.
pub(crate) struct Exchange {
    /// The provider's answer to our call.
    pub answer: Result<CallbackResult, ProviderError>,
    /// From sending to the provider's answer.
    pub outbound: Duration,
    /// The provider's call back reached our inbound endpoint (its signature checked) within the
    /// time limit.
    pub arrived: bool,
    /// From sending to the call back's arrival (or to giving up).
    pub total: Duration,
}

impl Exchange {
    /// What it found, as the health rule reads a heartbeat.
    pub fn beat(&self) -> crate::model::heartbeat::Beat {
        crate::model::heartbeat::Beat {
            outbound_ms: self
                .answer
                .as_ref()
                .ok()
                .map(|_| u64::try_from(self.outbound.as_millis()).unwrap_or(u64::MAX)),
            inbound_arrived: self.arrived,
        }
    }
}

/// Out to the provider's echo with a fresh nonce, back in to our inbound endpoint: waits for the
/// call back for what is left of the provider time limit.
pub(crate) async fn exchange(
    state: &AppState,
    conn: &ConnectionView,
    creds: &Credentials,
) -> Exchange {
    let limit = state.settings.provider_timeout;
    let nonce = super::random::hex_string::<16>();
    // Registered before sending: the provider calls us back before it answers.
    let mut wait = EchoWait::register(conn.id, &nonce);
    let client = state.provider_at(&conn.provider_url());
    let started = Instant::now();
    super::traffic::count(&state.db, conn.id, super::traffic::Direction::Outbound).await;
    let answer = client.echo(creds, &nonce).await;
    let outbound = started.elapsed();
    let arrived = match &answer {
        Ok(a) if a.ok => {
            // Usually already here; otherwise wait out what is left of the time limit.
            let left = limit.saturating_sub(started.elapsed());
            matches!(
                tokio::time::timeout(left, &mut wait.arrived).await,
                Ok(Ok(()))
            )
        }
        _ => false,
    };
    Exchange {
        answer,
        outbound,
        arrived,
        total: started.elapsed(),
    }
}

/// The round trip: out to the provider's echo, back in to our inbound endpoint.
async fn round_trip(state: &AppState, conn: &ConnectionView) -> Result<Outcome, ServiceError> {
    let creds = match preflight(state, conn).await? {
        Ok(c) => c,
        Err(failed) => return Ok(failed),
    };
    let limit = state.settings.provider_timeout;
    let done = exchange(state, conn, &creds).await;
    let answer = match done.answer {
        Ok(a) => a,
        Err(e) => {
            return Ok(failure(
                format!(
                    "The test message did not reach the provider: {}.",
                    e.clause()
                ),
                Some(LinkStatus::Down),
                None,
            ));
        }
    };
    if !answer.ok {
        let why = answer
            .error
            .unwrap_or_else(|| "no reason given".to_string());
        let why = why.trim_end_matches('.');
        return Ok(failure(
            format!(
                "The provider received the test message but could not reach this instance's inbound endpoint ({why}). Check that this instance's base URL is reachable from the provider."
            ),
            Some(LinkStatus::Up),
            Some(LinkStatus::Down),
        ));
    }
    if !done.arrived {
        return Ok(failure(
            format!(
                "The provider says it echoed the test message, but it did not arrive at this instance's inbound endpoint within {} ms.",
                limit.as_millis()
            ),
            Some(LinkStatus::Up),
            Some(LinkStatus::Down),
        ));
    }
    let total = millis(done.total);
    Ok(Outcome {
        ok: true,
        latency_ms: Some(total),
        detail: Detail {
            message: format!(
                "The test message went out to the provider and came back to this instance in {total} ms: Outbound and Inbound are Up."
            ),
            outbound: Some(LinkStatus::Up),
            inbound: Some(LinkStatus::Up),
            provider_round_trip_ms: answer.round_trip_ms,
            ..Detail::default()
        },
    })
}

#[derive(serde::Deserialize)]
struct Sample {
    tables: Vec<SampleTable>,
}

#[derive(serde::Deserialize)]
struct SampleTable {
    name: String,
    count: i64,
    #[serde(default)]
    newest: Option<String>,
}

/// Pulls the provider's data sample and says what arrived.
async fn data_sample(state: &AppState, conn: &ConnectionView) -> Result<Outcome, ServiceError> {
    let creds = match preflight(state, conn).await? {
        Ok(c) => c,
        Err(failed) => return Ok(failed),
    };
    let client = state.provider_at(&conn.provider_url());
    let started = Instant::now();
    let raw = match client.data_sample(&creds).await {
        Ok(v) => v,
        Err(e) => {
            return Ok(failure(
                format!("The provider did not send the data sample: {}.", e.clause()),
                None,
                None,
            ))
        }
    };
    let latency = millis(started.elapsed());
    let sample: Sample = match serde_json::from_value(raw) {
        Ok(s) => s,
        Err(e) => {
            return Ok(failure(
                format!(
                    "The provider's data sample is not in the expected shape ({}).",
                    e.to_string().trim_end_matches('.')
                ),
                None,
                None,
            ))
        }
    };
    let tables: Vec<TableSample> = sample
        .tables
        .into_iter()
        .map(|t| TableSample {
            // A time we cannot read shows as unknown rather than failing the whole sample.
            newest: t.newest.as_deref().and_then(|s| clock::from_db(s).ok()),
            name: t.name,
            count: t.count,
        })
        .collect();
    if tables.is_empty() {
        return Ok(failure(
            "The provider answered, but its data sample holds no tables: no Impact data is shared with this instance yet."
                .into(),
            None,
            None,
        ));
    }
    let records: i64 = tables.iter().map(|t| t.count).sum();
    let newest = tables
        .iter()
        .filter_map(|t| t.newest)
        .max()
        .map(|t| {
            format!(
                "; the newest record is from {}",
                t.format("%Y-%m-%d %H:%M:%S UTC")
            )
        })
        .unwrap_or_default();
    Ok(Outcome {
        ok: true,
        latency_ms: Some(latency),
        detail: Detail {
            message: format!(
                "{} tables arrived with {records} records in {latency} ms{newest}.",
                tables.len()
            ),
            tables,
            ..Detail::default()
        },
    })
}

/// Stores the run (and, when it passed, the activity's completion) with its audit line.
async fn store(
    state: &AppState,
    kind: &str,
    activity: ActivityId,
    conn: &ConnectionView,
    outcome: Outcome,
    actor: &str,
    already_complete: bool,
) -> Result<VerificationView, ServiceError> {
    let at = clock::now();
    let detail = serde_json::to_string(&outcome.detail).map_err(anyhow::Error::from)?;
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO verification_results (kind, connection_id, ok, latency_ms, detail, run_by, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(kind)
    .bind(conn.id)
    .bind(i64::from(outcome.ok))
    .bind(outcome.latency_ms)
    .bind(&detail)
    .bind(actor)
    .bind(clock::to_db(at))
    .execute(&mut *tx)
    .await?;
    let verdict = if outcome.ok { "passed" } else { "failed" };
    audit::record(
        &mut tx,
        actor,
        &format!("{} {verdict}", activity.title()),
        Some(conn.id),
        &outcome.detail.message,
    )
    .await?;
    // A pass completes the activity; one that stood complete keeps its first completion.
    if outcome.ok && !already_complete {
        guided::record_completion(&mut tx, activity, actor, Some(conn.id)).await?;
    }
    tx.commit().await?;
    Ok(VerificationView {
        ok: outcome.ok,
        latency_ms: outcome.latency_ms,
        detail: outcome.detail.message,
        outbound: outcome.detail.outbound,
        inbound: outcome.detail.inbound,
        tables: outcome.detail.tables,
        run_by: actor.to_string(),
        at,
    })
}

/// The connection a Guided Setup activity runs on (a verification, the data migration), once
/// the activity is unlocked; with whether it is already complete.
pub(crate) async fn target(
    state: &AppState,
    activity: ActivityId,
    user: &CurrentUser,
) -> Result<(ConnectionView, bool), ServiceError> {
    if !user.may(Access::ManageConnection) {
        return Err(ServiceError::Forbidden(
            Access::ManageConnection.refusal().into(),
        ));
    }
    let setup = guided::view(state).await?;
    if let Some(reason) = run_refusal(&setup, activity) {
        return Err(ServiceError::Conflict(reason));
    }
    let complete = setup.status(activity) == ActivityStatus::Complete;
    let conn = setup.connection.ok_or_else(|| {
        ServiceError::Conflict(
            "There is no provider connection yet. Open the \"Connect with Impact IDI\" link in the welcome email to create it."
                .into(),
        )
    })?;
    Ok((conn, complete))
}

/// "Verify the connection": a real round trip, measured and stored. A failure is a stored
/// result (not an error) so the page shows it and it can be re-run.
#[tracing::instrument(skip(state, user), fields(user = %user.email))]
pub async fn verify_connection(
    state: &AppState,
    user: &CurrentUser,
) -> Result<VerificationView, ServiceError> {
    verify(state, user, ActivityId::VerifyConnection).await
}

/// "Verify Impact data connection": the provider's data sample, counted and stored.
#[tracing::instrument(skip(state, user), fields(user = %user.email))]
pub async fn verify_data(
    state: &AppState,
    user: &CurrentUser,
) -> Result<VerificationView, ServiceError> {
    verify(state, user, ActivityId::VerifyData).await
}

/// One of the two verifications: checked against the setup's order, run, stored.
async fn verify(
    state: &AppState,
    user: &CurrentUser,
    activity: ActivityId,
) -> Result<VerificationView, ServiceError> {
    let (conn, complete) = target(state, activity, user).await?;
    let (kind, outcome) = if activity == ActivityId::VerifyData {
        (KIND_DATA, data_sample(state, &conn).await?)
    } else {
        (KIND_CONNECTION, round_trip(state, &conn).await?)
    };
    store(state, kind, activity, &conn, outcome, &user.email, complete).await
}
