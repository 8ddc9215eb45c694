//! "Connect to provider": the named contact authorises on the provider, then a durable
//! onboarding run syncs the provider's settings. Every step is recorded as it happens; a run cut
//! short by a crash resumes from the record at start-up (the provider's steps are idempotent).
use rand::RngCore;
use sqlx::Row;

use super::{
    clock, connections, error::ServiceError, events, provider::ProviderError, scan, AppState,
};
use crate::model::{Access, Action, ConnectionView, CurrentUser, EventBody, Onboarding};

pub const STARTED: &str = "Provider onboarding started";
pub const SYNCING: &str = "Syncing settings to complete onboarding";
pub const COMPLETE: &str = "Onboarding Complete";

fn nonce() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where to send the named contact to authorise: the provider's page, with a one-time state
/// value we check on the way back. Only offered when the state machine allows "Connect to
/// provider" (or Retry after a failure).
#[tracing::instrument(skip(state))]
pub async fn authorize_url(
    state: &AppState,
    id: i64,
    user: &CurrentUser,
) -> Result<String, ServiceError> {
    if !user.may(Access::ManageConnection) {
        return Err(ServiceError::Forbidden(
            Access::ManageConnection.refusal().into(),
        ));
    }
    let current = connections::get(&state.db, id).await?;
    crate::model::transition(current.status(), Action::Onboard)?;
    let Some(creds) = scan::credentials(state, id).await? else {
        return Err(ServiceError::Conflict(
            "This connection has no provider credentials yet: Rescan first.".into(),
        ));
    };
    let auth_state = nonce();
    sqlx::query("UPDATE connections SET auth_state = $1 WHERE id = $2")
        .bind(&auth_state)
        .bind(id)
        .execute(&state.db.pool)
        .await?;
    let redirect = format!("{}/connections/{id}/authorized", state.settings.public_url);
    let mut url = reqwest::Url::parse(&format!(
        "{}/idi/authorize",
        current.url.trim_end_matches('/')
    ))
    .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("bad provider URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("consumer_id", &creds.consumer_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", &auth_state);
    Ok(url.to_string())
}

/// The provider sent the named contact back. Checks the state value, exchanges the code, and
/// starts onboarding exactly once (the state machine's version check decides between racers).
#[tracing::instrument(skip(state, code, returned_state))]
pub async fn authorized(
    state: &AppState,
    id: i64,
    code: Option<&str>,
    error: Option<&str>,
    returned_state: &str,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    // Check and clear in one statement: of two answers carrying the same state (two tabs, a
    // replay), exactly one clears it; the others find it gone.
    let cleared = if returned_state.is_empty() {
        0
    } else {
        sqlx::query("UPDATE connections SET auth_state = NULL WHERE id = $1 AND auth_state = $2")
            .bind(id)
            .bind(returned_state)
            .execute(&state.db.pool)
            .await?
            .rows_affected()
    };
    if cleared != 1 {
        connections::get(&state.db, id).await?;
        return Err(ServiceError::Conflict(
            "This authorisation answer does not match the request we sent (it was already used, is old or was altered). Select \"Connect to provider\" again."
                .into(),
        ));
    }
    if let Some(err) = error {
        return Err(ServiceError::Conflict(format!(
            "The provider did not grant access ({err}). The named contact must select \"Allow\" on the provider's page."
        )));
    }
    let code = code.unwrap_or("");
    let creds = scan::credentials(state, id).await?.ok_or_else(|| {
        ServiceError::Conflict("This connection has no provider credentials.".into())
    })?;
    let current = connections::get(&state.db, id).await?;
    let client = state.provider(&current.url);
    client.authorize_code(&creds, code).await.map_err(|e| {
        ServiceError::Provider(format!("The provider did not accept the authorisation: {e}. Select \"Connect to provider\" again."))
    })?;
    start(state, id, actor).await
}

/// Starts (Onboard) or restarts (Retry) the run. Exactly one caller wins the transition.
pub async fn start(state: &AppState, id: i64, actor: &str) -> Result<ConnectionView, ServiceError> {
    let current = connections::get(&state.db, id).await?;
    let action = if current.onboarding == Onboarding::Failed {
        Action::Retry
    } else {
        Action::Onboard
    };
    let view = connections::apply(
        state,
        id,
        action,
        actor,
        "Authorised on the provider",
        Some(current.version),
    )
    .await?;
    emit(state, id, "started", STARTED, false).await;
    spawn_run(state.clone(), id);
    Ok(view)
}

async fn emit(state: &AppState, id: i64, step: &str, message: &str, failed: bool) {
    let body = EventBody::Onboarding {
        step: step.into(),
        message: message.into(),
        failed,
    };
    events::record(state, id, body).await;
}

pub fn spawn_run(state: AppState, id: i64) {
    tokio::spawn(async move {
        if let Err(e) = run(&state, id).await {
            fail(&state, id, &e.to_api().message).await;
        }
    });
}

async fn fail(state: &AppState, id: i64, reason: &str) {
    emit(
        state,
        id,
        "failed",
        &format!("Onboarding failed: {reason}"),
        true,
    )
    .await;
    if let Err(e) =
        connections::apply(state, id, Action::OnboardingFailed, "system", reason, None).await
    {
        tracing::warn!(error = %e, "recording the onboarding failure failed");
    }
}

fn step_error(what: &str, e: ProviderError) -> ServiceError {
    ServiceError::Provider(format!(
        "{what}: {e}. Select Retry once the provider is reachable"
    ))
}

/// The run itself, from wherever the record says it stands.
#[tracing::instrument(skip(state))]
async fn run(state: &AppState, id: i64) -> Result<(), ServiceError> {
    let current = connections::get(&state.db, id).await?;
    let creds = scan::credentials(state, id).await?.ok_or_else(|| {
        ServiceError::Conflict("the connection has no provider credentials".into())
    })?;
    let client = state.provider(&current.url);
    let started = client
        .start_onboarding(&creds)
        .await
        .map_err(|e| step_error("The provider could not start onboarding", e))?;
    let groups: Vec<String> = started["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if current.onboarding == Onboarding::Started {
        // Our calls reach the provider: Outbound is Up.
        connections::apply(
            state,
            id,
            Action::OnboardingSyncing,
            "system",
            "Provider accepted onboarding",
            None,
        )
        .await?;
        emit(state, id, "syncing", SYNCING, false).await;
    }
    for (i, group) in groups.iter().enumerate() {
        let body = client
            .settings_group(&creds, group)
            .await
            .map_err(|e| step_error(&format!("Syncing \"{group}\" failed"), e))?;
        store_group(state, id, group, &body).await?;
        emit(
            state,
            id,
            "synced_group",
            &format!(
                "Synced {} ({}/{})",
                group.replace('_', " "),
                i + 1,
                groups.len()
            ),
            false,
        )
        .await;
    }
    let done = client
        .complete_onboarding(&creds)
        .await
        .map_err(|e| step_error("The provider could not complete onboarding", e))?;
    if done["inbound_ok"].as_bool() != Some(true) {
        let why = done["error"]
            .as_str()
            .unwrap_or("the provider could not reach this instance");
        return Err(ServiceError::Provider(format!(
            "The provider could not reach this instance's inbound endpoint ({why}). Check the base URL and firewall, then select Retry"
        )));
    }
    connections::apply(
        state,
        id,
        Action::OnboardingComplete,
        "system",
        "All settings synced; the provider reached us",
        None,
    )
    .await?;
    emit(state, id, "complete", COMPLETE, false).await;
    Ok(())
}

async fn store_group(
    state: &AppState,
    id: i64,
    group: &str,
    body: &serde_json::Value,
) -> Result<(), ServiceError> {
    let json = serde_json::to_string(body).map_err(anyhow::Error::from)?;
    let now = clock::to_db(clock::now());
    // Upsert: a resumed run rewrites the same group.
    sqlx::query(
        "INSERT INTO synced_settings (connection_id, grp, body, synced_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connection_id, grp) DO UPDATE SET body = excluded.body, synced_at = excluded.synced_at",
    )
    .bind(id)
    .bind(group)
    .bind(json)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    Ok(())
}

/// The provider reached our inbound endpoint (onboarding's last step).
pub async fn inbound_confirmed(state: &AppState, id: i64) {
    let r = sqlx::query("UPDATE connections SET inbound_seen_at = $1 WHERE id = $2")
        .bind(clock::to_db(clock::now()))
        .bind(id)
        .execute(&state.db.pool)
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "recording the inbound call failed");
    }
}

/// At start-up: runs left mid-way by a crash resume from their last completed step.
pub async fn resume_interrupted(state: &AppState) -> Result<usize, ServiceError> {
    let rows = sqlx::query("SELECT id FROM connections WHERE onboarding IN ('started', 'syncing')")
        .fetch_all(&state.db.pool)
        .await?;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        tracing::info!(connection = id, "resuming an interrupted onboarding run");
        emit(
            state,
            id,
            "resumed",
            "Onboarding resumed after a restart",
            false,
        )
        .await;
        spawn_run(state.clone(), id);
    }
    Ok(rows.len())
}

/// Scans cut short by a crash would leave the record Awaiting validation: run them again.
pub async fn resume_scans(state: &AppState) -> Result<usize, ServiceError> {
    let rows = sqlx::query("SELECT id FROM connections WHERE state = 'awaiting_validation'")
        .fetch_all(&state.db.pool)
        .await?;
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        scan::spawn_suite(state.clone(), id, "system".into());
    }
    Ok(rows.len())
}
