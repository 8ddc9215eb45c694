//! Scheduling a run: the checks it needs go in waves (everything whose dependencies are settled
//! runs concurrently, each within its own time limit), the model's skip rule decides what is not
//! run, and every result is stored and published as it comes. Also the background runs started
//! by the state machine, and the verdict after one check's re-run.
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::future::join_all;

use super::{
    checks,
    context::Ctx,
    found::{failed, not_applicable, Found},
    resume::{self, Resumed},
    store::{self, FULL_SUITE},
    target,
};
use crate::model::{
    checks_for, heartbeat::scan_beat, skipped_because, Action, CheckId, CheckResult, CheckSpec,
    CheckStatus, ConnectionState, EventBody, ScanRunView, Suite,
};
use crate::server::{
    clock, connections, error::ServiceError, events, heartbeat, lease::Lease, metrics, AppState,
};

/// A run, new or resumed: a resumed one keeps its run id, does not repeat the checks it has
/// results for, and does not announce again what its log already says.
pub(super) async fn run_from(
    state: &AppState,
    lease: Option<&Lease>,
    id: i64,
    only: Option<CheckId>,
    resume: Option<Resumed>,
) -> Result<ScanRunView, ServiceError> {
    let target = target::load(state, id).await?;
    // Once onboarded, the connection health suite: registration is behind it, the heartbeat ahead.
    let kind = Suite::for_onboarding(target.view.onboarding);
    let suite = match (only, kind) {
        (Some(c), _) => format!("check:{c}"),
        (None, Suite::PreOnboarding) => FULL_SUITE.to_string(),
        (None, Suite::ConnectionHealth) => kind.as_str().to_string(),
    };
    let (run_id, started_at, earlier, announced) = match resume {
        Some(r) => (r.run_id, r.started_at, r.results, r.started),
        None => {
            let started_at = clock::now();
            let run_id = store::start(state, lease, id, &suite, started_at).await?;
            (run_id, started_at, Vec::new(), HashSet::new())
        }
    };

    let ctx = Ctx::new(state, target);
    let mut done: HashMap<CheckId, CheckStatus> = earlier
        .iter()
        .filter_map(|r| CheckId::parse(&r.check_id).map(|c| (c, r.status)))
        .chain(kind.settled().iter().map(|c| (*c, CheckStatus::Passed)))
        .collect();
    let mut results = earlier;
    let todo = checks_for(kind, only);
    // Waves: everything whose dependencies are settled runs concurrently.
    while todo.iter().any(|c| !done.contains_key(&c.id)) {
        let ready: Vec<&'static CheckSpec> = todo
            .iter()
            .copied()
            .filter(|c| {
                !done.contains_key(&c.id) && c.depends_on.iter().all(|d| done.contains_key(d))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        let outcomes = join_all(
            ready
                .iter()
                .map(|spec| run_one(&ctx, id, run_id, spec, &done, &announced)),
        )
        .await;
        for (spec, r) in ready.iter().zip(outcomes) {
            store::store_result(state, lease, id, run_id, &r).await?;
            done.insert(spec.id, r.status);
            results.push(r);
        }
    }

    let issues = results.iter().filter(|r| r.status.is_issue()).count();
    let outcome = if issues == 0 { "passed" } else { "failed" };
    store::finish(state, lease, id, run_id, &suite, only.is_none(), outcome).await?;
    if only.is_some() {
        settle(state, id).await?;
    } else if kind == Suite::ConnectionHealth {
        // The findings set Outbound and Inbound, as a heartbeat's do (`model::heartbeat`).
        let issue = |c: CheckId| done.get(&c).is_some_and(|s| s.is_issue());
        let failing: Vec<&str> = results
            .iter()
            .filter(|r| r.status.is_issue())
            .map(|r| r.name.as_str())
            .collect();
        let beat = ctx.beat();
        heartbeat::after_scan(state, id, beat, scan_beat(beat, issue), &failing).await?;
    }
    Ok(ScanRunView {
        id: run_id,
        suite,
        started_at,
        finished_at: Some(clock::now()),
        outcome: Some(outcome.into()),
        results,
    })
}

/// One check of a wave: Skipped when the skip rule says so; otherwise announced (unless the
/// log already says it started) and run within the time limit.
async fn run_one(
    ctx: &Ctx<'_>,
    id: i64,
    run_id: i64,
    spec: &'static CheckSpec,
    done: &HashMap<CheckId, CheckStatus>,
    announced: &HashSet<String>,
) -> CheckResult {
    if let Some(blocker) = skipped_because(spec, |d| done.get(&d).copied()) {
        let found = not_applicable(format!("Skipped: \"{}\" did not pass.", blocker.name));
        metrics::check_done(spec.id, found.status, Duration::ZERO);
        return result_for(spec, found, 0);
    }
    if !announced.contains(spec.id.as_str()) {
        events::record(
            ctx.state,
            id,
            EventBody::Check {
                run_id,
                check_id: spec.id.as_str().into(),
                name: spec.name.into(),
                result: None,
            },
        )
        .await;
    }
    let timeout = ctx.state.settings.provider_timeout;
    let t0 = Instant::now();
    let found = match tokio::time::timeout(timeout, checks::run(ctx, spec.id)).await {
        Ok(f) => f,
        Err(_) => failed(
            format!(
                "The check did not finish within {} ms.",
                timeout.as_millis()
            ),
            true,
        ),
    };
    let took = t0.elapsed();
    metrics::check_done(spec.id, found.status, took);
    result_for(spec, found, took.as_millis() as i64)
}

fn result_for(spec: &CheckSpec, found: Found, duration_ms: i64) -> CheckResult {
    CheckResult {
        check_id: spec.id.as_str().to_string(),
        name: spec.name.to_string(),
        severity: spec.severity,
        status: found.status,
        message: found.message,
        resolution: spec.resolution.iter().map(|s| s.to_string()).collect(),
        article: spec.article.to_string(),
        duration_ms,
        retryable: found.retryable,
        at: clock::now(),
    }
}

/// After one check re-run: the connection becomes Validated once no check's latest result is an
/// issue (the full suite's verdict is part of `store::finish`).
async fn settle(state: &AppState, id: i64) -> Result<(), ServiceError> {
    let current = connections::get(&state.db, id).await?;
    if current.state == ConnectionState::ValidationFailed
        && store::latest(state, id)
            .await?
            .iter()
            .all(|r| !r.status.is_issue())
    {
        connections::apply(
            state,
            id,
            Action::Rescan,
            crate::model::Actor::System.as_str(),
            "Every open issue is resolved",
            None,
        )
        .await?;
        connections::apply(
            state,
            id,
            Action::ValidationPassed,
            crate::model::Actor::System.as_str(),
            "Every pre-onboarding check passed",
            None,
        )
        .await?;
    }
    Ok(())
}

/// The full suite in the background under its lease; with `resume`, continuing the unfinished
/// run if there is one. A run that cannot run leaves the connection Validation failed, never
/// Awaiting validation; one whose lease was lost is carried on by the replica that has it.
pub(super) fn spawn_full(state: AppState, id: i64, actor: String, lease: Lease, resume: bool) {
    let work = state.work.clone();
    work.spawn(lease, move |lease| async move {
        let ran = async {
            let earlier = match resume {
                true => resume::unfinished(&state, id).await?,
                false => None,
            };
            run_from(&state, Some(&lease), id, None, earlier).await
        }
        .await;
        match ran {
            Ok(_) | Err(ServiceError::LeaseLost(_)) => {}
            Err(e) => {
                tracing::error!(connection = id, %actor, error = %e, "scan failed to run");
                // Never leave the record Awaiting validation for ever.
                let _ = connections::apply(
                    &state,
                    id,
                    Action::ValidationFailed,
                    crate::model::Actor::System.as_str(),
                    "The scan could not run",
                    None,
                )
                .await;
            }
        }
    });
}
