//! The connection health check after onboarding (the rule: `model::heartbeat`). Every interval
//! (`IMPACT_HEALTH_INTERVAL_SECONDS`) each onboarded connection gets one heartbeat: the echo
//! exchange of "Verify the connection" (out to the provider, which calls this instance back).
//! A changed Outbound or Inbound is written like any transition: the record, its history (which
//! the audit log shows) and a live event, in one transaction.
//!
//! Once per interval per connection, over any number of replicas: the next due time is on the
//! connection row, and a replica runs a heartbeat only if its conditional UPDATE moved that time
//! (the same claim-by-update the leases use). A restart misses nothing: what fell due meanwhile
//! is overdue at the first tick.
use std::time::Duration;

use futures::StreamExt;
use sqlx::Row;

use super::{
    accounts, clock, connections, error::ServiceError, heartbeat_history, metrics, outbox, verify,
    AppState,
};
use crate::model::{
    heartbeat::{after_heartbeat, alert, change_reason, link_statuses, Alert, Beat},
    Action, Actor, ConnectionView,
};

/// How many heartbeats one replica has in flight at once.
const CONCURRENT: usize = 32;

/// How often a replica looks for due heartbeats: a quarter of the interval, so a heartbeat runs
/// at most a quarter late, within bounds that keep an idle replica quiet.
fn tick(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Runs due heartbeats until the task is aborted (a graceful stop aborts it).
pub async fn run(state: AppState) {
    let every = tick(state.settings.health_interval);
    loop {
        if let Err(e) = run_due(&state).await {
            tracing::warn!(error = %e, "checking connection health failed; trying again");
        }
        tokio::time::sleep(every).await;
    }
}

/// Claims every connection whose heartbeat is due and runs those heartbeats; returns how many.
#[tracing::instrument(skip(state))]
pub async fn run_due(state: &AppState) -> Result<usize, ServiceError> {
    let now = clock::to_db(clock::now());
    // Just onboarded (onboarding itself proved the link): the first heartbeat one interval on.
    sqlx::query(
        "UPDATE connections SET health_due_at = $1 WHERE onboarding = 'complete' \
         AND health_due_at IS NULL",
    )
    .bind(clock::to_db(next_due(state)))
    .execute(&state.db.pool)
    .await?;
    let claimed = claim_due(state, &now).await?;
    let count = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(CONCURRENT, |id| async move {
            // No request started it: its provider calls carry the work's own name as request id.
            let named = super::request_id::scope(format!("heartbeat-{id}").into(), beat(state, id));
            if let Err(e) = named.await {
                tracing::warn!(connection = id, error = %e, "a heartbeat could not be recorded");
            }
        })
        .await;
    Ok(count)
}

/// One interval from now.
fn next_due(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    clock::now()
        + chrono::Duration::from_std(state.settings.health_interval)
            .unwrap_or_else(|_| chrono::Duration::seconds(60))
}

/// Moves every due connection's next due time one interval on, in one statement, and returns
/// those it moved: of two replicas that saw a connection due, exactly one gets it (the second's
/// UPDATE finds the time already moved). One statement per tick, not one per connection: at
/// 1,000 connections every 10 s that was 100 commits a second.
async fn claim_due(state: &AppState, now: &str) -> Result<Vec<i64>, ServiceError> {
    sqlx::query(
        "UPDATE connections SET health_due_at = $1 WHERE onboarding = 'complete' \
         AND health_due_at <= $2 RETURNING id",
    )
    .bind(clock::to_db(next_due(state)))
    .bind(now)
    .fetch_all(&state.db.pool)
    .await?
    .iter()
    .map(|r| r.try_get("id").map_err(ServiceError::from))
    .collect()
}

/// One heartbeat: the exchange, then the statuses it implies, written if they changed.
#[tracing::instrument(skip(state))]
async fn beat(state: &AppState, id: i64) -> Result<(), ServiceError> {
    let conn = connections::get(&state.db, id).await?;
    let Some(creds) = connections::credentials(state, id).await? else {
        // Onboarded without credentials cannot happen; if it does, nothing can be sent.
        tracing::warn!(
            connection = id,
            "an onboarded connection holds no credentials"
        );
        return Ok(());
    };
    let done = verify::exchange(state, &conn, &creds).await;
    // The provider refuses this instance as another than the registered one (a clone): that is
    // what the connection says, rather than Down.
    if let Err(e) = &done.answer {
        if super::activate::is_instance_changed(e) {
            super::activate::instance_changed(state, id, e).await;
            return Ok(());
        }
    }
    let found = done.beat();
    let (outbound, inbound) = link_statuses(found, state.settings.slow_ms);
    metrics::heartbeat_done(
        outbound,
        inbound,
        done.answer.is_ok().then_some(done.outbound),
    );
    match &done.answer {
        Err(e) => {
            tracing::info!(connection = id, error = %e, "the provider did not answer the heartbeat")
        }
        // The provider asks for new credentials on its answer.
        Ok(answer) if answer.rotate => super::rotate::on_provider_request(state, id),
        Ok(_) => {}
    }
    heartbeat_history::record(&state.db, id, found, (outbound, inbound)).await?;
    record(state, id, found, None).await
}

/// What a connection health scan (Rescan once onboarded) found: its heartbeat is recorded as the
/// last one when it ran, and the statuses the scan implies are written like a heartbeat's.
pub async fn after_scan(
    state: &AppState,
    id: i64,
    heartbeat: Option<Beat>,
    found: Beat,
    failing: &[&str],
) -> Result<(), ServiceError> {
    if let Some(beat) = heartbeat {
        let statuses = link_statuses(beat, state.settings.slow_ms);
        heartbeat_history::record(&state.db, id, beat, statuses).await?;
    }
    let source = match failing {
        [] => "Connection health scan".to_string(),
        names => format!(
            "Connection health scan (did not pass: {})",
            names.join(", ")
        ),
    };
    record(state, id, found, Some(&source)).await
}

/// Writes the statuses `found` implies, if they differ from the record's; retries when a
/// concurrent change moved the version first. A connection no longer onboarded is left alone.
/// `source` names what found it when it was not the scheduled heartbeat.
async fn record(
    state: &AppState,
    id: i64,
    found: Beat,
    source: Option<&str>,
) -> Result<(), ServiceError> {
    for _ in 0..3 {
        let current = connections::get(&state.db, id).await?;
        let before = current.status();
        let next = match after_heartbeat(before, found, state.settings.slow_ms) {
            Ok(Some(next)) => next,
            Ok(None) | Err(_) => return Ok(()),
        };
        let reason = match source {
            Some(source) => format!("{source}: {}", change_reason(before, next, found)),
            None => change_reason(before, next, found),
        };
        let mut tx = state.db.begin().await?;
        // The alert goes with the change, in its transaction: at most one per change.
        if let Some(kind) = alert(before, next) {
            // The directions the alert is about: Down now, or Down before a recovery.
            let down = if kind == Alert::Down { next } else { before };
            queue_alert(&mut tx, state, &current, kind, &reason, down).await?;
        }
        match connections::write_transition(
            &mut tx,
            &current,
            current.version,
            next,
            None,
            Actor::System.as_str(),
            Action::Heartbeat,
            &reason,
        )
        .await
        {
            Ok(event) => {
                tx.commit().await?;
                tracing::info!(connection = id, %reason, "connection health changed");
                state.hub.publish(vec![event]);
                outbox::deliver_pending(state);
                return Ok(());
            }
            Err(ServiceError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An email to every Impact app admin and every follower of the connection's issues (the
/// outbox, and the relay when one is configured), unless every direction it is about is a muted
/// issue: muted issues stay quiet.
async fn queue_alert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    state: &AppState,
    conn: &ConnectionView,
    kind: Alert,
    reason: &str,
    down: crate::model::ConnectionStatus,
) -> Result<(), ServiceError> {
    let now = clock::now();
    let directions: Vec<&str> = [
        (down.outbound, crate::model::dashboard::OUTBOUND_DOWN),
        (down.inbound, crate::model::dashboard::INBOUND_DOWN),
    ]
    .into_iter()
    .filter(|(s, _)| *s == crate::model::LinkStatus::Down)
    .map(|(_, issue)| issue)
    .collect();
    let mut quiet = !directions.is_empty();
    for issue in &directions {
        quiet &= super::issues::muted(tx, conn.id, issue, now).await?;
    }
    if quiet {
        tracing::info!(connection = conn.id, "alert not sent: its issues are muted");
        return Ok(());
    }
    let (subject, opening) = match kind {
        Alert::Down => (
            format!("Connection Down: {} ({})", conn.company, conn.url),
            "The connection to the provider is Down.",
        ),
        Alert::Recovered => (
            format!("Connection recovered: {} ({})", conn.company, conn.url),
            "The connection to the provider is working again.",
        ),
    };
    let body = format!(
        "Hello,\n\n{opening}\n\nWhat the health check found: {reason}.\n\nThe Provider connection: {base}/connections/{id}\nIts health dashboard: {base}/connections/{id}/health\n\nIf it stays Down, contact your Customer Service Manager.\n",
        base = state.settings.public_url,
        id = conn.id,
    );
    let mut to: Vec<String> = accounts::admin_emails_in(tx).await?;
    for follower in super::issues::followers(tx, conn.id, now).await? {
        if !to.iter().any(|t| t.eq_ignore_ascii_case(&follower)) {
            to.push(follower);
        }
    }
    for to in to {
        outbox::queue(tx, &to, &subject, &body, None).await?;
    }
    Ok(())
}
