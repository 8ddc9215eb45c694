//! The pre-onboarding scan suite: every check in `model::CHECKS`, run concurrently as far as their
//! dependencies allow, each within its own time limit. Every run and every result is stored, and
//! progress is published live as it happens.
use std::{collections::HashMap, time::Instant};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use futures::future::join_all;
use sqlx::Row;
use tokio::sync::OnceCell;

use super::{
    clock, connections,
    error::ServiceError,
    events,
    provider::{Credentials, Info, ProviderClient, ProviderError, PROTOCOL_VERSION},
    AppState,
};
use crate::model::{
    check_spec, Action, CheckId, CheckResult, CheckSpec, CheckStatus, ConnectionState,
    ConnectionView, EventBody, ProviderUrl, ScanRunView, CHECKS,
};

pub const FULL_SUITE: &str = "pre_onboarding";
/// Clocks further apart than this fail the clock check (signed requests fail at 300 s).
const MAX_CLOCK_DRIFT_SECS: i64 = 60;

/// A provider's message inside our sentence, without its own closing full stop.
fn sentence(message: &str) -> &str {
    message.trim().trim_end_matches('.')
}

/// What a check found.
struct Found {
    status: CheckStatus,
    message: String,
    retryable: bool,
}

fn passed(message: impl Into<String>) -> Found {
    Found {
        status: CheckStatus::Passed,
        message: message.into(),
        retryable: false,
    }
}

fn failed(message: impl Into<String>, retryable: bool) -> Found {
    Found {
        status: CheckStatus::Failed,
        message: message.into(),
        retryable,
    }
}

fn not_applicable(message: impl Into<String>) -> Found {
    Found {
        status: CheckStatus::Skipped,
        message: message.into(),
        retryable: false,
    }
}

/// A provider failure, worded for the check that met it.
fn provider_failure(what: &str, e: &ProviderError) -> Found {
    let retry = e.retryable();
    let status = match e {
        // An answer we do not understand is an unknown error, not a verdict.
        ProviderError::Malformed(_) | ProviderError::Network(_) => CheckStatus::Error,
        _ => CheckStatus::Failed,
    };
    Found {
        status,
        message: format!("{what}: {e}."),
        retryable: retry,
    }
}

/// The record plus what only the server sees (credentials, registration code).
struct Target {
    view: ConnectionView,
    company_id: i64,
    contact_email: String,
    registration_code: Option<String>,
    credentials: Option<Credentials>,
}

async fn load_target(state: &AppState, id: i64) -> Result<Target, ServiceError> {
    let view = connections::get(&state.db, id).await?;
    let row = sqlx::query(
        "SELECT company_id, contact_email, registration_code, consumer_id, secret FROM connections WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&state.db.pool)
    .await?;
    let consumer_id: Option<String> = row.try_get("consumer_id")?;
    let secret: Option<String> = row.try_get("secret")?;
    let credentials = match (consumer_id, secret) {
        (Some(consumer_id), Some(secret)) => Some(Credentials {
            consumer_id,
            secret: super::opened(
                &state.keys,
                &super::sealed::connection_secret_context(id),
                &secret,
                "the provider secret",
            )?,
        }),
        _ => None,
    };
    Ok(Target {
        view,
        company_id: row.try_get("company_id")?,
        contact_email: row.try_get("contact_email")?,
        registration_code: row.try_get("registration_code")?,
        credentials,
    })
}

/// The connection's provider credentials, for the onboarding and verification steps.
pub async fn credentials(state: &AppState, id: i64) -> Result<Option<Credentials>, ServiceError> {
    Ok(load_target(state, id).await?.credentials)
}

/// Shared by the checks of one run: each provider answer is fetched once.
struct Ctx<'a> {
    state: &'a AppState,
    target: Target,
    client: ProviderClient,
    info: OnceCell<Result<(Info, u64), ProviderError>>,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

impl Ctx<'_> {
    async fn info(&self) -> &Result<(Info, u64), ProviderError> {
        self.info
            .get_or_init(|| async {
                let started = Instant::now();
                self.client
                    .info()
                    .await
                    .map(|i| (i, started.elapsed().as_millis() as u64))
            })
            .await
    }

    async fn creds(&self) -> Option<Credentials> {
        self.credentials.lock().await.clone()
    }
}

async fn run_check(ctx: &Ctx<'_>, spec: &CheckSpec) -> Found {
    let url = &ctx.target.view.url;
    match spec.id.as_str() {
        "url" => match ProviderUrl::parse(url) {
            // The address policy may have changed since the URL was entered.
            Ok(u) => match ctx.state.settings.outbound.check(&u).await {
                Err(e) if e.is_policy() => failed(format!("The provider URL {url} is refused: {e}."), false),
                _ => passed(format!("{url} is a valid provider URL.")),
            },
            Err(e) => failed(format!("The provider URL {url:?} is not usable: {}", e.message), false),
        },
        "base_url" => match reqwest::Url::parse(&ctx.state.settings.public_url) {
            Ok(u) if u.host().is_some() && matches!(u.scheme(), "http" | "https") => {
                passed(format!("This instance's base URL is {}.", ctx.state.settings.public_url))
            }
            _ => failed("This instance's base URL is not set to an http(s) address the provider can call.", false),
        },
        "key_management" => {
            if ctx.state.signer.key_len() < 32 {
                return failed("The signing key is shorter than 32 bytes.", false);
            }
            match ctx.creds().await {
                Some(c) if c.secret.len() < 32 => {
                    failed("This connection's stored secret is damaged (shorter than 32 bytes).", false)
                }
                _ => passed("Signing keys are present and usable."),
            }
        }
        "company_unique" => {
            let n: i64 = match sqlx::query("SELECT COUNT(*) AS n FROM connections WHERE company_id = $1")
                .bind(ctx.target.company_id)
                .fetch_one(&ctx.state.db.pool)
                .await
                .and_then(|r| r.try_get("n"))
            {
                Ok(n) => n,
                Err(e) => return Found { status: CheckStatus::Error, message: format!("Could not count connections: {e}"), retryable: true },
            };
            if n == 1 {
                passed(format!("{} has only this connection.", ctx.target.view.company))
            } else {
                failed(format!("{} has {n} connections; each instance needs its own company.", ctx.target.view.company), false)
            }
        }
        "reachable" => match ctx.info().await {
            Ok((_, ms)) => passed(format!("The provider answered in {ms} ms.")),
            Err(ProviderError::Malformed(_)) => passed("The provider answered (its answer is checked by the protocol check)."),
            Err(e) => provider_failure("The provider could not be reached", e),
        },
        "tls" => {
            if url.starts_with("http://") {
                return not_applicable("Not applicable: the provider is called over plain http, which the operator allows for this host only.");
            }
            match ctx.info().await {
                Err(ProviderError::Tls(problem)) => failed(format!("The TLS connection to the provider failed: {problem}."), false),
                // Any answer over https, even an error or one we cannot read, means the
                // certificate was verified and the handshake completed.
                Ok(_) | Err(ProviderError::Status { .. } | ProviderError::Malformed(_) | ProviderError::TooLarge(_) | ProviderError::Redirected(_)) => {
                    passed("The provider's certificate is valid for its host name and issued by a trusted authority.")
                }
                Err(e) => provider_failure("The TLS connection could not be tried", e),
            }
        }
        "protocol" => match ctx.info().await {
            Ok((info, _)) if info.protocol_version == PROTOCOL_VERSION => {
                passed(format!("The provider speaks protocol version {}.", info.protocol_version))
            }
            Ok((info, _)) => failed(
                format!(
                    "The provider speaks protocol version {}; this app speaks version {PROTOCOL_VERSION}.",
                    info.protocol_version
                ),
                false,
            ),
            Err(e @ ProviderError::Malformed(_)) => Found {
                status: CheckStatus::Failed,
                message: format!("The provider's information endpoint did not answer with valid JSON ({e})."),
                retryable: false,
            },
            Err(e) => provider_failure("The provider's information endpoint failed", e),
        },
        "clock" => match ctx.info().await {
            Ok((info, _)) => {
                let drift = (info.server_time - clock::now()).num_seconds();
                if drift.abs() <= MAX_CLOCK_DRIFT_SECS {
                    passed(format!("Clocks agree within {} s.", drift.abs()))
                } else {
                    failed(format!("The provider's clock is {drift:+} s from ours (more than {MAX_CLOCK_DRIFT_SECS} s)."), false)
                }
            }
            Err(e) => provider_failure("The provider's time could not be read", e),
        },
        "app_versions" => match ctx.info().await {
            Ok((info, _)) => {
                let need = [("impact_core", 3), ("service_exchange", 2)];
                let mut problems = Vec::new();
                for (app, major) in need {
                    match info.applications.get(app) {
                        Some(v) if v.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= major) => {}
                        Some(v) => problems.push(format!("{app} is {v}, needs {major}.0 or later")),
                        None => problems.push(format!("{app} is not installed")),
                    }
                }
                if problems.is_empty() {
                    passed("Dependent applications are at compatible versions.")
                } else {
                    failed(format!("Incompatible applications on the provider: {}.", problems.join("; ")), false)
                }
            }
            Err(e) => provider_failure("The provider's applications could not be read", e),
        },
        "registration" => register(ctx).await,
        "credentials" => match ctx.creds().await {
            None => failed("This connection has no credentials yet.", false),
            Some(c) => match ctx.client.consumer(&c).await {
                Ok(_) => passed(format!("The provider accepts this connection's signed requests ({}).", c.consumer_id)),
                Err(e @ ProviderError::Status { status: 401, .. }) if e.code() == "clock_skew" => {
                    failed(format!("The provider refused our requests because the clocks differ too much ({e})."), false)
                }
                Err(ProviderError::Status { status: 401 | 403 | 404, message, .. }) => failed(
                    format!("The provider refused this connection's credentials: {}.", sentence(&message)),
                    false,
                ),
                Err(e) => provider_failure("The credentials could not be checked", &e),
            },
        },
        "entitlements" | "entitlement_identity" => {
            let Some(c) = ctx.creds().await else { return failed("This connection has no credentials yet.", false) };
            match ctx.client.entitlements(&c).await {
                Ok(list) if spec.id == CheckId::Entitlements => {
                    if list.entitlements.is_empty() {
                        return failed("The provider has no entitlement for this consumer.", false);
                    }
                    let not_active: Vec<String> = list
                        .entitlements
                        .iter()
                        .filter(|e| e.status != "active")
                        .map(|e| format!("{} is {}", e.name, e.status))
                        .collect();
                    if not_active.is_empty() {
                        passed(format!("{} entitlement(s), all active.", list.entitlements.len()))
                    } else {
                        failed(format!("Entitlements not active: {}.", not_active.join(", ")), false)
                    }
                }
                Ok(list) => {
                    let bad: Vec<&str> = list
                        .entitlements
                        .iter()
                        .filter(|e| e.entity.as_deref().unwrap_or("").is_empty() || e.identity.as_deref().unwrap_or("").is_empty())
                        .map(|e| e.name.as_str())
                        .collect();
                    if bad.is_empty() {
                        passed("Every entitlement names its entity and identity.")
                    } else {
                        failed(format!("Entitlements missing an entity or identity: {}.", bad.join(", ")), false)
                    }
                }
                Err(e) => provider_failure("The entitlements could not be read", &e),
            }
        }
        "inbound" => {
            let Some(c) = ctx.creds().await else { return failed("This connection has no credentials yet.", false) };
            match ctx.client.callback_test(&c).await {
                Ok(r) if r.ok => passed(format!("The provider reached this instance in {} ms.", r.round_trip_ms.unwrap_or(0))),
                Ok(r) => failed(
                    format!(
                        "The provider could not reach this instance's inbound endpoint: {}.",
                        r.error.unwrap_or_else(|| "no reason given".into())
                    ),
                    true,
                ),
                Err(e) => provider_failure("The inbound test could not run", &e),
            }
        }
        other => Found {
            status: CheckStatus::Error,
            message: format!("Unknown check {other:?}."),
            retryable: false,
        },
    }
}

/// Exchanges the registration code for credentials (once), stores them, and records Register.
async fn register(ctx: &Ctx<'_>) -> Found {
    if let Some(c) = ctx.creds().await {
        return passed(format!(
            "Registered with the provider as {}.",
            c.consumer_id
        ));
    }
    let Some(code) = ctx.target.registration_code.as_deref() else {
        return failed(
            "This connection has no registration code from the provider.",
            false,
        );
    };
    let t = &ctx.target;
    let registered = match ctx
        .client
        .register(
            code,
            &t.view.company,
            &t.contact_email,
            &ctx.state.settings.public_url,
        )
        .await
    {
        Ok(r) => r,
        Err(ProviderError::Status {
            status: 409,
            message,
            ..
        }) => {
            return failed(
                format!(
                    "The registration code was already used: {}.",
                    sentence(&message)
                ),
                false,
            )
        }
        Err(ProviderError::Status {
            status: 404,
            message,
            ..
        }) => {
            return failed(
                format!(
                    "The provider does not know this registration: {}.",
                    sentence(&message)
                ),
                false,
            )
        }
        Err(e) => return provider_failure("The registration could not be completed", &e),
    };
    let secret = match B64.decode(&registered.secret) {
        Ok(s) if s.len() >= 32 => s,
        _ => {
            return Found {
                status: CheckStatus::Error,
                message: "The provider returned an unusable secret.".into(),
                retryable: true,
            }
        }
    };
    let stored = sqlx::query("UPDATE connections SET consumer_id = $1, secret = $2 WHERE id = $3")
        .bind(&registered.consumer_id)
        .bind(ctx.state.keys.seal(
            &super::sealed::connection_secret_context(t.view.id),
            &secret,
        ))
        .bind(t.view.id)
        .execute(&ctx.state.db.pool)
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "storing credentials failed");
        return Found {
            status: CheckStatus::Error,
            message: "The credentials could not be stored.".into(),
            retryable: true,
        };
    }
    if let Err(e) = connections::apply(
        ctx.state,
        t.view.id,
        Action::Register,
        "system",
        "Registration code exchanged",
        None,
    )
    .await
    {
        tracing::warn!(error = %e, "recording Register failed");
    }
    *ctx.credentials.lock().await = Some(Credentials {
        consumer_id: registered.consumer_id.clone(),
        secret,
    });
    passed(format!(
        "Registered with the provider as {}.",
        registered.consumer_id
    ))
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

/// The checks `only` needs, itself included, in catalogue order (or every check).
fn selection(only: Option<&str>) -> Vec<&'static CheckSpec> {
    let Some(id) = only else {
        return CHECKS.iter().collect();
    };
    let mut wanted = vec![id.to_string()];
    let mut i = 0;
    while i < wanted.len() {
        if let Some(spec) = check_spec(&wanted[i]) {
            for d in spec.depends_on {
                if !wanted.iter().any(|w| w == d.as_str()) {
                    wanted.push(d.to_string());
                }
            }
        }
        i += 1;
    }
    CHECKS
        .iter()
        .filter(|c| wanted.iter().any(|w| w == c.id.as_str()))
        .collect()
}

/// Runs the suite (or one check with what it depends on) and stores everything. For the full
/// suite the connection then becomes Validated or Validation failed; for one check, it becomes
/// Validated when no open issue is left.
#[tracing::instrument(skip(state))]
pub async fn run(
    state: &AppState,
    id: i64,
    only: Option<&str>,
) -> Result<ScanRunView, ServiceError> {
    run_from(state, id, only, None).await
}

/// What a full-suite run cut short by a crash had already recorded.
struct Resumed {
    run_id: i64,
    started_at: chrono::DateTime<chrono::Utc>,
    results: Vec<CheckResult>,
    /// Checks whose "started" event is already in the log.
    started: std::collections::HashSet<String>,
}

async fn resumed(state: &AppState, id: i64, run_id: i64) -> Result<Resumed, ServiceError> {
    let started_at: String = sqlx::query("SELECT started_at FROM scan_runs WHERE id = $1")
        .bind(run_id)
        .fetch_one(&state.db.pool)
        .await?
        .try_get("started_at")?;
    let rows = sqlx::query(
        "SELECT check_id, status, message, retryable, duration_ms, at FROM scan_results WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(&state.db.pool)
    .await?;
    let results = rows.iter().map(result_from_row).collect::<Result<_, _>>()?;
    let started = events::since(&state.db, id, 0)
        .await?
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Check {
                run_id: r,
                check_id,
                result: None,
                ..
            } if r == run_id => Some(check_id),
            _ => None,
        })
        .collect();
    Ok(Resumed {
        run_id,
        started_at: clock::from_db(&started_at)?,
        results,
        started,
    })
}

/// The full suite's latest run when it never finished (the server stopped mid-run).
async fn unfinished_run(state: &AppState, id: i64) -> Result<Option<i64>, ServiceError> {
    let row = sqlx::query(
        "SELECT id, finished_at FROM scan_runs WHERE connection_id = $1 AND suite = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .bind(FULL_SUITE)
    .fetch_optional(&state.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let finished: Option<String> = row.try_get("finished_at")?;
    Ok(match finished {
        None => Some(row.try_get("id")?),
        Some(_) => None,
    })
}

/// A run, new or resumed: a resumed one keeps its run id, does not repeat the checks it has
/// results for, and does not announce again what its log already says.
async fn run_from(
    state: &AppState,
    id: i64,
    only: Option<&str>,
    resume: Option<Resumed>,
) -> Result<ScanRunView, ServiceError> {
    let target = load_target(state, id).await?;
    let suite = only
        .map(|c| format!("check:{c}"))
        .unwrap_or_else(|| FULL_SUITE.to_string());
    let (run_id, started_at, earlier, announced) = match resume {
        Some(r) => (r.run_id, r.started_at, r.results, r.started),
        None => {
            let started_at = clock::now();
            // The run and its "started" event: one transaction.
            let mut tx = state.db.pool.begin().await?;
            let run_id: i64 = sqlx::query(
                "INSERT INTO scan_runs (connection_id, suite, started_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(id)
            .bind(&suite)
            .bind(clock::to_db(started_at))
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            let e = events::append(
                &mut tx,
                id,
                EventBody::Scan {
                    run_id,
                    suite: suite.clone(),
                    outcome: None,
                },
            )
            .await?;
            tx.commit().await?;
            state.hub.publish(vec![e]);
            (run_id, started_at, Vec::new(), Default::default())
        }
    };

    let timeout = state.settings.provider_timeout;
    let credentials = tokio::sync::Mutex::new(target.credentials.clone());
    let ctx = Ctx {
        state,
        client: state.provider(&target.view.url),
        target,
        info: OnceCell::new(),
        credentials,
    };
    let mut done: HashMap<CheckId, CheckStatus> = earlier
        .iter()
        .filter_map(|r| check_spec(&r.check_id).map(|spec| (spec.id, r.status)))
        .collect();
    let mut results = earlier;
    let announced: &std::collections::HashSet<String> = &announced;
    let todo = selection(only);
    // Waves: everything whose dependencies are settled runs concurrently.
    while done.len() < todo.len() {
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
        let outcomes = join_all(ready.iter().map(|spec| {
            let ctx = &ctx;
            let done = &done;
            async move {
                let blocker = spec
                    .depends_on
                    .iter()
                    .find(|d| done.get(d) != Some(&CheckStatus::Passed));
                if let Some(b) = blocker {
                    // Not-applicable checks count as passed for their dependants.
                    if done.get(b) != Some(&CheckStatus::Skipped) || !b.spec().depends_on.is_empty()
                    {
                        let name = b.spec().name;
                        let found = not_applicable(format!("Skipped: \"{name}\" did not pass."));
                        return result_for(spec, found, 0);
                    }
                }
                if !announced.contains(spec.id.as_str()) {
                    events::record(
                        state,
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
                let t0 = Instant::now();
                let found = match tokio::time::timeout(timeout, run_check(ctx, spec)).await {
                    Ok(f) => f,
                    Err(_) => failed(
                        format!(
                            "The check did not finish within {} ms.",
                            timeout.as_millis()
                        ),
                        true,
                    ),
                };
                result_for(spec, found, t0.elapsed().as_millis() as i64)
            }
        }))
        .await;
        for r in outcomes {
            store_result(state, id, run_id, &r).await?;
            if let Some(spec) = check_spec(&r.check_id) {
                done.insert(spec.id, r.status);
            }
            results.push(r);
        }
    }

    let issues = results.iter().filter(|r| r.status.is_issue()).count();
    let outcome = if issues == 0 { "passed" } else { "failed" };
    finish(state, id, run_id, &suite, only.is_none(), outcome).await?;
    if only.is_some() {
        settle(state, id).await?;
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

/// A check's result and its event: one transaction, so a resumed run finds either both or
/// neither.
async fn store_result(
    state: &AppState,
    id: i64,
    run_id: i64,
    r: &CheckResult,
) -> Result<(), ServiceError> {
    let mut tx = state.db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO scan_results (run_id, connection_id, check_id, status, message, retryable, duration_ms, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(run_id)
    .bind(id)
    .bind(&r.check_id)
    .bind(r.status.as_db())
    .bind(&r.message)
    .bind(i64::from(r.retryable))
    .bind(r.duration_ms)
    .bind(clock::to_db(r.at))
    .execute(&mut *tx)
    .await?;
    let e = events::append(
        &mut tx,
        id,
        EventBody::Check {
            run_id,
            check_id: r.check_id.clone(),
            name: r.name.clone(),
            result: Some(r.clone()),
        },
    )
    .await?;
    tx.commit().await?;
    state.hub.publish(vec![e]);
    Ok(())
}

/// Closes the run with its outcome event and, for the full suite, moves the connection to
/// Validated or Validation failed: one transaction, so a run is unfinished exactly while the
/// connection still awaits its verdict.
async fn finish(
    state: &AppState,
    id: i64,
    run_id: i64,
    suite: &str,
    full: bool,
    outcome: &str,
) -> Result<(), ServiceError> {
    let mut attempts = 0;
    loop {
        let current = connections::get(&state.db, id).await?;
        let mut tx = state.db.pool.begin().await?;
        sqlx::query("UPDATE scan_runs SET finished_at = $1, outcome = $2 WHERE id = $3")
            .bind(clock::to_db(clock::now()))
            .bind(outcome)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        let mut published = vec![
            events::append(
                &mut tx,
                id,
                EventBody::Scan {
                    run_id,
                    suite: suite.to_string(),
                    outcome: Some(outcome.into()),
                },
            )
            .await?,
        ];
        if full && current.state == ConnectionState::AwaitingValidation {
            let (action, reason) = if outcome == "passed" {
                (
                    Action::ValidationPassed,
                    "Every pre-onboarding check passed",
                )
            } else {
                (
                    Action::ValidationFailed,
                    "Some pre-onboarding checks failed: see the health dashboard",
                )
            };
            match connections::write_system_transition(&mut tx, &current, action, reason).await {
                Ok(e) => published.push(e),
                Err(ServiceError::Conflict(_)) if attempts < 3 => {
                    attempts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        state.hub.publish(published);
        return Ok(());
    }
}

/// After one check re-run: the connection becomes Validated once no check's latest result is an
/// issue (the full suite's verdict is part of `finish`).
async fn settle(state: &AppState, id: i64) -> Result<(), ServiceError> {
    let current = connections::get(&state.db, id).await?;
    // One check re-run: the connection is validated once no check's latest result is an issue.
    if current.state == ConnectionState::ValidationFailed
        && latest(state, id)
            .await?
            .iter()
            .all(|r| !r.status.is_issue())
    {
        connections::apply(
            state,
            id,
            Action::Rescan,
            "system",
            "Every open issue is resolved",
            None,
        )
        .await?;
        connections::apply(
            state,
            id,
            Action::ValidationPassed,
            "system",
            "Every pre-onboarding check passed",
            None,
        )
        .await?;
    }
    Ok(())
}

/// Each check's most recent result for this connection.
pub async fn latest(state: &AppState, id: i64) -> Result<Vec<CheckResult>, ServiceError> {
    let rows = sqlx::query(
        "SELECT check_id, status, message, retryable, duration_ms, at FROM scan_results r \
         WHERE connection_id = $1 AND id = (SELECT MAX(id) FROM scan_results q WHERE q.connection_id = r.connection_id AND q.check_id = r.check_id)",
    )
    .bind(id)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(result_from_row).collect()
}

fn result_from_row(r: &sqlx::any::AnyRow) -> Result<CheckResult, ServiceError> {
    let check_id: String = r.try_get("check_id")?;
    let spec = check_spec(&check_id);
    let status: String = r.try_get("status")?;
    Ok(CheckResult {
        name: spec
            .map(|s| s.name.to_string())
            .unwrap_or_else(|| check_id.clone()),
        severity: spec
            .map(|s| s.severity)
            .unwrap_or(crate::model::Severity::Medium),
        status: CheckStatus::from_db(&status).unwrap_or(CheckStatus::Error),
        message: r.try_get("message")?,
        resolution: spec
            .map(|s| s.resolution.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
        article: spec.map(|s| s.article.to_string()).unwrap_or_default(),
        duration_ms: r.try_get("duration_ms")?,
        retryable: r.try_get::<i64, _>("retryable")? != 0,
        at: clock::from_db(&r.try_get::<String, _>("at")?)?,
        check_id,
    })
}

/// The last `limit` runs with their results, newest first.
pub async fn runs(state: &AppState, id: i64, limit: i64) -> Result<Vec<ScanRunView>, ServiceError> {
    let rows = sqlx::query(
        "SELECT id, suite, started_at, finished_at, outcome FROM scan_runs WHERE connection_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let run_id: i64 = r.try_get("id")?;
        let results = sqlx::query(
            "SELECT check_id, status, message, retryable, duration_ms, at FROM scan_results WHERE run_id = $1 ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&state.db.pool)
        .await?;
        let finished: Option<String> = r.try_get("finished_at")?;
        out.push(ScanRunView {
            id: run_id,
            suite: r.try_get("suite")?,
            started_at: clock::from_db(&r.try_get::<String, _>("started_at")?)?,
            finished_at: finished.as_deref().map(clock::from_db).transpose()?,
            outcome: r.try_get("outcome")?,
            results: results
                .iter()
                .map(result_from_row)
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(out)
}

/// Runs the whole suite in the background (the caller has already moved the state).
pub fn spawn_suite(state: AppState, id: i64, actor: String) {
    spawn_full(state, id, actor, false);
}

/// At start-up, for a connection left Awaiting validation: continues its unfinished run if it
/// has one (results kept, checks with a result not run again), or runs the suite.
pub fn spawn_resumed_suite(state: AppState, id: i64) {
    spawn_full(state, id, "system".into(), true);
}

fn spawn_full(state: AppState, id: i64, actor: String, resume: bool) {
    tokio::spawn(async move {
        let ran = async {
            let earlier = match resume {
                true => match unfinished_run(&state, id).await? {
                    Some(run_id) => Some(resumed(&state, id, run_id).await?),
                    None => None,
                },
                false => None,
            };
            run_from(&state, id, None, earlier).await
        }
        .await;
        if let Err(e) = ran {
            tracing::error!(connection = id, %actor, error = %e, "scan failed to run");
            // Never leave the record Awaiting validation for ever.
            let _ = connections::apply(
                &state,
                id,
                Action::ValidationFailed,
                "system",
                "The scan could not run",
                None,
            )
            .await;
        }
    });
}

/// The health dashboard: each check's latest result (issues first, by severity), the score,
/// and the recent runs.
#[tracing::instrument(skip(state))]
pub async fn health(state: &AppState, id: i64) -> Result<crate::model::HealthView, ServiceError> {
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
    let score = crate::model::health_score(&checks);
    Ok(crate::model::HealthView {
        connection,
        checks,
        score,
        runs: runs(state, id, 10).await?,
    })
}

/// "Rescan" for one check (the dashboard's Validate & Resolve): runs it with what it depends on.
pub async fn rescan_check(
    state: &AppState,
    id: i64,
    check_id: &str,
) -> Result<ScanRunView, ServiceError> {
    if check_spec(check_id).is_none() {
        return Err(ServiceError::NotFound(format!(
            "There is no check \"{check_id}\"."
        )));
    }
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
    run(state, id, Some(check_id)).await
}
