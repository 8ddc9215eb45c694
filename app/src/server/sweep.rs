//! Every replica sweeps, once per heartbeat, for background work that should be running and that
//! nobody holds: a scan whose connection awaits validation, a connection health run cut short,
//! an onboarding run in progress, a data migration running, email
//! waiting for the relay; and it retires old secrets whose grace after a rotation is over. A lease that expired (its replica died) or was handed back (its replica
//! stopped) makes the work claimable; the first replica to claim it carries it on from the
//! record. At start-up the first sweep resumes what a crash cut short.
use super::{
    background::heartbeat, connections, error::ServiceError, lease::Work, migration, onboarding,
    outbox, scan, stream_slots, AppState,
};

/// Sweeps until the task is aborted (a graceful stop aborts it before handing leases back).
pub async fn run(state: AppState) {
    let every = heartbeat(state.settings.lease);
    loop {
        if let Err(e) = once(&state).await {
            tracing::warn!(error = %e, "sweeping for unheld work failed; trying again");
        }
        // This replica's streams keep counting for the per-user cap while it beats.
        if let Err(e) = stream_slots::heartbeat(&state).await {
            tracing::warn!(error = %e, "the replica's heartbeat failed; trying again");
        }
        tokio::time::sleep(every).await;
    }
}

/// One sweep: returns how many pieces of work this replica took over.
pub async fn once(state: &AppState) -> Result<usize, ServiceError> {
    let mut taken = 0;
    for id in connections::awaiting_validation(&state.db).await? {
        if !state.work.runs(Work::Scan(id)) && scan::take_over(state, id).await? {
            taken += 1;
        }
    }
    for id in scan::interrupted_health_runs(state).await? {
        if !state.work.runs(Work::Scan(id)) && scan::take_over(state, id).await? {
            taken += 1;
        }
    }
    for id in connections::onboarding_in_progress(&state.db).await? {
        if !state.work.runs(Work::Onboarding(id)) && onboarding::take_over(state, id).await? {
            taken += 1;
        }
    }
    for (id, migration) in migration::store::running(&state.db).await? {
        if !state.work.runs(Work::Migration(id))
            && migration::take_over(state, id, migration).await?
        {
            taken += 1;
        }
    }
    if !state.work.runs(Work::Outbox) {
        outbox::deliver_pending(state);
    }
    // The digest of open issues, when its period is due (one replica per period).
    if let Err(e) = super::digest::run_due(state).await {
        tracing::warn!(error = %e, "the issues digest failed; it is tried again next period");
    }
    // The health dashboard's history beyond what it keeps.
    let pruned = super::traffic::prune(&state.db).await?
        + super::heartbeat_history::prune(&state.db).await?;
    if pruned > 0 {
        tracing::info!(pruned, "old heartbeats and message counts pruned");
    }
    // Signatures of provider calls whose clock window has passed (no longer replayable).
    let forgotten = super::replay::prune(&state.db, chrono::Utc::now().timestamp()).await?;
    if forgotten > 0 {
        tracing::debug!(forgotten, "expired inbound signatures forgotten");
    }
    // Old secrets whose grace after a rotation is over (the inbound check already refuses them).
    let retired = connections::retire_previous_secrets(&state.db).await?;
    if retired > 0 {
        tracing::info!(retired, "rotated-out secrets retired");
    }
    Ok(taken)
}
