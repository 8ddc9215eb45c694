//! "Connect to provider": the named contact authorises on the provider, then a durable
//! onboarding run syncs the provider's settings. Every step is recorded as it happens, under
//! the run's lease; a run whose replica died or stopped is taken over from the record by
//! whichever replica claims the lease next (`take_over`). Each provider call carries an
//! idempotency key naming the run and the step, so a step repeated after a takeover is not done
//! twice on the provider.
use sqlx::Row;

use super::{
    clock, connections,
    error::ServiceError,
    events,
    lease::{Lease, Work},
    provider::{Idempotent, ProviderError},
    AppState,
};
use crate::model::{Access, Action, ConnectionView, CurrentUser, EventBody, Onboarding};

pub const STARTED: &str = "Provider onboarding started";
pub const SYNCING: &str = "Syncing settings to complete onboarding";
pub const COMPLETE: &str = "Onboarding Complete";

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
    let Some(creds) = connections::credentials(state, id).await? else {
        return Err(ServiceError::Conflict(
            "This connection has no provider credentials yet: Rescan first.".into(),
        ));
    };
    let auth_state = super::random::hex_string::<16>();
    connections::set_auth_state(&state.db, id, &auth_state).await?;
    let redirect = format!("{}/connections/{id}/authorized", state.settings.public_url);
    let mut url = reqwest::Url::parse(&current.provider_url()?.endpoint("/idi/authorize"))
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
    if !connections::take_auth_state(&state.db, id, returned_state).await? {
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
    let creds = connections::credentials(state, id).await?.ok_or_else(|| {
        ServiceError::Conflict("This connection has no provider credentials.".into())
    })?;
    let current = connections::get(&state.db, id).await?;
    let client = state.provider_at(&current.provider_url());
    client.authorize_code(&creds, code).await.map_err(|e| {
        ServiceError::Provider(format!("The provider did not accept the authorisation: {e}. Select \"Connect to provider\" again."))
    })?;
    start(state, id, actor).await
}

/// Starts (Onboard) or restarts (Retry) the run. Exactly one caller wins the transition. The
/// transition, the new run number and the "started" event are one transaction.
pub async fn start(state: &AppState, id: i64, actor: &str) -> Result<ConnectionView, ServiceError> {
    let current = connections::get(&state.db, id).await?;
    let action = if current.onboarding == Onboarding::Failed {
        Action::Retry
    } else {
        Action::Onboard
    };
    let next = crate::model::transition(current.status(), action)?;
    let mut tx = state.db.begin().await?;
    let changed = connections::write_transition(
        &mut tx,
        &current,
        current.version,
        next,
        None,
        actor,
        action,
        "Authorised on the provider",
    )
    .await?;
    connections::next_onboarding_run(&mut tx, id).await?;
    // Claimed with the transition: no other replica sees this run unclaimed.
    let Some(lease) = state
        .work
        .leases
        .claim_in(&mut tx, Work::Onboarding(id))
        .await?
    else {
        return Err(ServiceError::Conflict(
            "The previous onboarding run is still finishing. Try again in a few seconds.".into(),
        ));
    };
    let started = events::append(&mut tx, id, message("started", STARTED, false)).await?;
    tx.commit().await?;
    state.hub.publish(vec![changed, started]);
    spawn_run(state.clone(), id, lease);
    connections::get(&state.db, id).await
}

fn message(step: &str, message: &str, failed: bool) -> EventBody {
    EventBody::Onboarding {
        step: step.into(),
        message: message.into(),
        failed,
    }
}

fn spawn_run(state: AppState, id: i64, lease: Lease) {
    let work = state.work.clone();
    work.spawn(lease, move |lease| async move {
        match run(&state, id, &lease).await {
            Ok(()) => {}
            // Another replica holds the run now and carries it on.
            Err(ServiceError::LeaseLost(_)) => {}
            Err(e) => fail(&state, id, &lease, &e.to_api().message).await,
        }
    });
}

async fn fail(state: &AppState, id: i64, lease: &Lease, reason: &str) {
    let failed = message("failed", &format!("Onboarding failed: {reason}"), true);
    if let Err(e) = step(
        state,
        id,
        lease,
        Some((Action::OnboardingFailed, reason)),
        None,
        failed,
    )
    .await
    {
        tracing::warn!(error = %e, "recording the onboarding failure failed");
    }
}

/// A progress row of the current run: which step, and what it found.
struct Progress<'a> {
    run: i64,
    step: &'a str,
    detail: Option<&'a str>,
}

/// One step of a run as one transaction: the state change if any, the progress row if any, and
/// the step's event. Either all of it is recorded or none (a crash in between leaves the step
/// to be done again, never half-recorded). A system transition racing another writer is tried
/// again, as `connections::apply` does.
async fn step(
    state: &AppState,
    id: i64,
    lease: &Lease,
    action: Option<(Action, &str)>,
    progress: Option<Progress<'_>>,
    body: EventBody,
) -> Result<(), ServiceError> {
    let mut attempts = 0;
    loop {
        let current = connections::get(&state.db, id).await?;
        let mut tx = state.db.begin().await?;
        let mut published = Vec::new();
        if let Some((action, reason)) = action {
            match connections::write_system_transition(&mut tx, &current, action, reason).await {
                Ok(e) => published.push(e),
                Err(ServiceError::Conflict(_)) if attempts < 3 => {
                    attempts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(p) = &progress {
            sqlx::query(
                "INSERT INTO onboarding_steps (connection_id, run, step, detail, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(p.run)
            .bind(p.step)
            .bind(p.detail)
            .bind(clock::to_db(clock::now()))
            .execute(&mut *tx)
            .await?;
        }
        published.push(events::append(&mut tx, id, body).await?);
        lease.hold_in(&mut tx).await?;
        tx.commit().await?;
        state.hub.publish(published);
        return Ok(());
    }
}

/// What the current run has already done: its number, the provider's groups once the provider
/// has started onboarding for it, and the groups synced since.
struct Done {
    run: i64,
    groups: Option<Vec<String>>,
    synced: std::collections::HashSet<String>,
}

async fn done_so_far(state: &AppState, id: i64) -> Result<Done, ServiceError> {
    let run = connections::onboarding_run(&state.db, id).await?;
    let rows = sqlx::query(
        "SELECT step, detail FROM onboarding_steps WHERE connection_id = $1 AND run = $2",
    )
    .bind(id)
    .bind(run)
    .fetch_all(&state.db.pool)
    .await?;
    let mut done = Done {
        run,
        groups: None,
        synced: Default::default(),
    };
    for r in &rows {
        let step: String = r.try_get("step")?;
        if step == PROVIDER_STARTED {
            let detail: Option<String> = r.try_get("detail")?;
            let groups: Vec<String> = serde_json::from_str(detail.as_deref().unwrap_or("[]"))
                .map_err(anyhow::Error::from)?;
            done.groups = Some(groups);
        } else if let Some(group) = step.strip_prefix(GROUP_STEP) {
            done.synced.insert(group.to_string());
        }
    }
    Ok(done)
}

/// Progress steps: the provider started onboarding for this run; a group was synced.
const PROVIDER_STARTED: &str = "provider_started";
const GROUP_STEP: &str = "group:";

fn step_error(what: &str, e: ProviderError) -> ServiceError {
    ServiceError::Provider(format!(
        "{what}: {e}. Select Retry once the provider is reachable"
    ))
}

/// The run itself, from wherever the record says it stands: a resumed run neither starts the
/// provider's onboarding again (that would make it forget the groups already read) nor fetches a
/// group it has recorded as synced.
#[tracing::instrument(skip(state, lease))]
async fn run(state: &AppState, id: i64, lease: &Lease) -> Result<(), ServiceError> {
    let current = connections::get(&state.db, id).await?;
    let creds = connections::credentials(state, id).await?.ok_or_else(|| {
        ServiceError::Conflict("the connection has no provider credentials".into())
    })?;
    let client = state.provider_at(&current.provider_url());
    let done = done_so_far(state, id).await?;
    let groups = match done.groups {
        Some(groups) => groups,
        None => {
            let started = client
                .start_onboarding(&creds, &Idempotent::step(done.run, "start"))
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
            let detail = serde_json::to_string(&groups).map_err(anyhow::Error::from)?;
            let progress = Progress {
                run: done.run,
                step: PROVIDER_STARTED,
                detail: Some(&detail),
            };
            // Our calls reach the provider: Outbound is Up.
            let action = (current.onboarding == Onboarding::Started)
                .then_some((Action::OnboardingSyncing, "Provider accepted onboarding"));
            step(
                state,
                id,
                lease,
                action,
                Some(progress),
                message("syncing", SYNCING, false),
            )
            .await?;
            groups
        }
    };
    for (i, group) in groups.iter().enumerate() {
        if done.synced.contains(group) {
            continue;
        }
        let body = client
            .settings_group(&creds, group, &Idempotent::step(done.run, group))
            .await
            .map_err(|e| step_error(&format!("Syncing \"{group}\" failed"), e))?;
        let at = Position {
            index: i,
            total: groups.len(),
        };
        store_group(state, id, lease, done.run, group, &body, at).await?;
    }
    let finished = client
        .complete_onboarding(&creds, &Idempotent::step(done.run, "complete"))
        .await
        .map_err(|e| step_error("The provider could not complete onboarding", e))?;
    if finished["inbound_ok"].as_bool() != Some(true) {
        let why = finished["error"]
            .as_str()
            .unwrap_or("the provider could not reach this instance");
        return Err(ServiceError::Provider(format!(
            "The provider could not reach this instance's inbound endpoint ({why}). Check the base URL and firewall, then select Retry"
        )));
    }
    // Inbound is Up on a call we received and verified, not on the provider's word for it.
    if !connections::inbound_seen_in_run(&state.db, id, done.run).await? {
        return Err(ServiceError::Provider(
            "The provider says it reached this instance, but no signed call from it arrived at the inbound endpoint during this onboarding, so Inbound is not Up. Check that the provider calls this instance's base URL, then select Retry".into(),
        ));
    }
    step(
        state,
        id,
        lease,
        Some((
            Action::OnboardingComplete,
            "All settings synced; the provider reached us",
        )),
        None,
        message("complete", COMPLETE, false),
    )
    .await
}

/// Which of the run's groups this is (for its "Synced … (2/3)" event).
struct Position {
    index: usize,
    total: usize,
}

/// Stores a synced group, records the step and its "Synced" event: one transaction, under the
/// run's lease.
async fn store_group(
    state: &AppState,
    id: i64,
    lease: &Lease,
    run: i64,
    group: &str,
    body: &serde_json::Value,
    at: Position,
) -> Result<(), ServiceError> {
    let json = serde_json::to_string(body).map_err(anyhow::Error::from)?;
    let now = clock::to_db(clock::now());
    let mut tx = state.db.begin().await?;
    // Upsert: an earlier run (before a Retry) may have stored the same group.
    sqlx::query(
        "INSERT INTO synced_settings (connection_id, grp, body, synced_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connection_id, grp) DO UPDATE SET body = excluded.body, synced_at = excluded.synced_at",
    )
    .bind(id)
    .bind(group)
    .bind(json)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO onboarding_steps (connection_id, run, step, detail, at) VALUES ($1, $2, $3, NULL, $4)",
    )
    .bind(id)
    .bind(run)
    .bind(format!("{GROUP_STEP}{group}"))
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    let synced = events::append(
        &mut tx,
        id,
        message(
            "synced_group",
            &format!(
                "Synced {} ({}/{})",
                group.replace('_', " "),
                at.index + 1,
                at.total
            ),
            false,
        ),
    )
    .await?;
    lease.hold_in(&mut tx).await?;
    tx.commit().await?;
    state.hub.publish(vec![synced]);
    Ok(())
}

/// The provider reached our inbound endpoint (onboarding's last step).
pub async fn inbound_confirmed(state: &AppState, id: i64) {
    if let Err(e) = connections::mark_inbound_seen(&state.db, id).await {
        tracing::warn!(error = %e, "recording the inbound call failed");
    }
}

/// A run in progress that no replica holds (its holder died or stopped): claims it and carries
/// it on from its last recorded step. False when another replica holds it.
pub async fn take_over(state: &AppState, id: i64) -> Result<bool, ServiceError> {
    let Some(lease) = state.work.leases.claim(Work::Onboarding(id)).await? else {
        return Ok(false);
    };
    // Its holder may have finished it between our look and our claim (it records the end, then
    // gives the lease back): only a run still in progress is carried on.
    let current = connections::get(&state.db, id).await?;
    if !matches!(
        current.onboarding,
        Onboarding::Started | Onboarding::Syncing
    ) {
        lease.release().await;
        return Ok(false);
    }
    tracing::info!(connection = id, "taking over an interrupted onboarding run");
    let resumed = message("resumed", "Onboarding resumed after a restart", false);
    if let Err(e) = step(state, id, &lease, None, None, resumed).await {
        lease.release().await;
        return Err(e);
    }
    spawn_run(state.clone(), id, lease);
    Ok(true)
}
