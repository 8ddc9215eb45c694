//! The scan suites (`model::Suite`): before onboarding, the pre-onboarding suite; once onboarded,
//! the connection health suite (Rescan). The checks of `model::CHECKS` run concurrently as far as
//! their dependencies allow, each within its own time limit. Every run and every result is stored, and
//! progress is published live as it happens.
//!
//! The rooms, each using only those after it in this list: `runner` (waves by dependency, skips,
//! time limits, background runs), `checks` (one fn per check, matched on `CheckId`), `signed`
//! (the checks made with the connection's credentials), `register` (the registration exchange),
//! `resume` (a run a crash cut short), `store` (runs and results in the database), `context`
//! (what one run's checks share), `target` (the connection and its credentials), `found` (a
//! check's verdict and its words). The catalogue, the skip rule and which checks a run needs are
//! pure, in `model::checks`.
pub mod across;
mod checks;
mod context;
mod found;
mod register;
mod resume;
mod runner;
mod signed;
mod store;
mod target;

pub use store::{latest, recent_results, runs, FULL_SUITE};

use super::{clock, connections, error::ServiceError, heartbeat_history, lease::Work, AppState};
use crate::model::{
    dashboard::{connection_score, current_health},
    health_score, CheckId, ConnectionState, HealthView, ScanRunView, Suite, CHECKS,
};

/// Runs the suite (or one check with what it depends on) and stores everything. For the full
/// suite the connection then becomes Validated or Validation failed; for one check, it becomes
/// Validated when no open issue is left.
#[tracing::instrument(skip(state))]
pub async fn run(
    state: &AppState,
    id: i64,
    only: Option<CheckId>,
) -> Result<ScanRunView, ServiceError> {
    runner::run_from(state, None, id, only, None).await
}

/// Runs the whole suite in the background (the caller has already moved the state), here if
/// this replica claims it (another replica's sweep may have been quicker: it runs it there).
/// A claim that fails is left to the sweep (`sweep`), which finds the connection awaiting
/// validation with nobody running its scan.
pub async fn start_suite(state: &AppState, id: i64, actor: &str) {
    match state.work.leases.claim(Work::Scan(id)).await {
        Ok(Some(lease)) => runner::spawn_full(state.clone(), id, actor.into(), lease, false),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(connection = id, error = %e, "claiming the scan failed; the sweep runs it")
        }
    }
}

/// The connection health suite of an onboarded connection, in the background under `lease`
/// (claimed by the caller, which refuses a second run while one holds it).
pub fn start_health(state: &AppState, id: i64, actor: &str, lease: super::lease::Lease) {
    runner::spawn_full(state.clone(), id, actor.into(), lease, false);
}

/// A scan that no replica holds and that should be running (its holder died or stopped): one
/// whose connection awaits validation, or an onboarded connection's health run cut short.
/// Claims it and continues its unfinished run (results kept, checks with a result not run
/// again) or, when none was recorded, runs the suite. False when another replica holds it or it
/// finished between our look and our claim.
pub async fn take_over(state: &AppState, id: i64) -> Result<bool, ServiceError> {
    let Some(lease) = state.work.leases.claim(Work::Scan(id)).await? else {
        return Ok(false);
    };
    let interrupted = match connections::get(&state.db, id).await? {
        c if c.state == ConnectionState::AwaitingValidation => true,
        c if c.onboarding == crate::model::Onboarding::Complete => {
            resume::unfinished(state, id).await?.is_some()
        }
        _ => false,
    };
    if !interrupted {
        lease.release().await;
        return Ok(false);
    }
    tracing::info!(connection = id, "taking over an interrupted scan");
    runner::spawn_full(
        state.clone(),
        id,
        crate::model::Actor::System.as_str().into(),
        lease,
        true,
    );
    Ok(true)
}

/// Connections with a connection health run cut short (for the sweep).
pub async fn interrupted_health_runs(state: &AppState) -> Result<Vec<i64>, ServiceError> {
    resume::unfinished_health_runs(state).await
}

/// The health dashboard: each check's latest result (issues first, by severity), the score,
/// and the recent runs.
#[tracing::instrument(skip(state))]
pub async fn health(state: &AppState, id: i64) -> Result<HealthView, ServiceError> {
    let connection = connections::get(&state.db, id).await?;
    let mut checks = latest(state, id).await?;
    let order = |id: &str| {
        CHECKS
            .iter()
            .position(|c| c.id.as_str() == id)
            .unwrap_or(usize::MAX)
    };
    checks.sort_by(|a, b| {
        (!a.status.is_issue(), a.severity, order(&a.check_id)).cmp(&(
            !b.status.is_issue(),
            b.severity,
            order(&b.check_id),
        ))
    });
    // Weighted by the heartbeat's health, as the dashboard's card is (one rule).
    let latest = heartbeat_history::latest_of(&state.db, id).await?;
    let health = current_health(
        &connection,
        latest.answered_at,
        clock::now(),
        state.settings.slow_after_age(),
    );
    let score = connection_score(health_score(&checks), health);
    Ok(HealthView {
        connection,
        checks,
        score,
        runs: runs(state, id, RUNS_SHOWN).await?,
    })
}

/// How many of a connection's latest runs its health (and the dashboard's suites) show.
pub const RUNS_SHOWN: i64 = 10;

/// "Rescan" for one check (the dashboard's Validate & Resolve): runs it with what it depends on.
pub async fn rescan_check(
    state: &AppState,
    id: i64,
    check_id: &str,
) -> Result<ScanRunView, ServiceError> {
    let Some(check) = CheckId::parse(check_id) else {
        return Err(ServiceError::NotFound(format!(
            "There is no check \"{check_id}\"."
        )));
    };
    let current = connections::get(&state.db, id).await?;
    if matches!(
        current.state,
        ConnectionState::Pending | ConnectionState::AwaitingValidation
    ) {
        return Err(ServiceError::Conflict(format!(
            "Checks can be re-run one by one once the first scan has finished; the connection is {}.",
            current.state.label()
        )));
    }
    let suite = Suite::for_onboarding(current.onboarding);
    if !suite.includes(check) {
        return Err(ServiceError::Conflict(format!(
            "\"{}\" is not one of the {} this connection runs now ({}).",
            check.spec().name,
            suite.label().to_lowercase(),
            match suite {
                Suite::PreOnboarding => "the heartbeat runs once the connection is onboarded",
                Suite::ConnectionHealth => "it belongs to making the link, which is done",
            }
        )));
    }
    run(state, id, Some(check)).await
}
