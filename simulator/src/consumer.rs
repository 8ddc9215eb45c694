//! The signed endpoints under `/idi/v1/consumers/{id}`. Each takes a `Signed` request, which has
//! already passed the faults and the signature check.
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    callback::Callback,
    catalog,
    error::SimError,
    extract::parse_json,
    faults::Faults,
    signed::Signed,
    state::{Consumer, ConsumerStatus, Counters, Instance, Onboarding, SimState},
};

type JsonResult = Result<Json<Value>, SimError>;

/// What a handler sees of its instance: the faults, the provider's clock and its consumer.
struct Ctx<'a> {
    faults: &'a Faults,
    now: DateTime<Utc>,
    id: &'a str,
    consumer: &'a mut Consumer,
    counters: &'a mut Counters,
}

/// Runs `f` on the signed request's consumer, under the state lock.
fn with_consumer<R>(
    state: &SimState,
    signed: &Signed,
    f: impl FnOnce(Ctx<'_>) -> Result<R, SimError>,
) -> Result<R, SimError> {
    state.with(&signed.instance, |i| {
        let now = i.now();
        let Instance {
            faults,
            consumers,
            counters,
            ..
        } = i;
        // Checked by `Signed` already; gone only if the instance was reset in between.
        let consumer = consumers
            .get_mut(&signed.consumer_id)
            .ok_or_else(|| SimError::UnknownConsumer(signed.consumer_id.clone()))?;
        f(Ctx {
            faults,
            now,
            id: &signed.consumer_id,
            consumer,
            counters,
        })
    })
}

#[tracing::instrument(skip(state))]
pub async fn get(State(state): State<SimState>, signed: Signed) -> JsonResult {
    with_consumer(&state, &signed, |ctx| {
        let c = ctx.consumer;
        Ok(Json(json!({
            "consumer_id": ctx.id,
            "company": c.company,
            "contact_email": c.contact_email,
            "status": c.status,
        })))
    })
}

#[tracing::instrument(skip(state))]
pub async fn entitlements(State(state): State<SimState>, signed: Signed) -> JsonResult {
    with_consumer(&state, &signed, |ctx| {
        let list = catalog::entitlements(
            ctx.faults.entitlement.status(),
            &ctx.consumer.company,
            ctx.id,
        );
        Ok(Json(json!({ "entitlements": list })))
    })
}

#[tracing::instrument(skip(state))]
pub async fn callback_test(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let callback = Callback::load(&state, &signed.instance, &signed.consumer_id)?;
    let outcome = callback.call(&state.client, "ping", &json!({})).await;
    Ok(Json(json!(outcome)))
}

#[derive(Debug, Deserialize)]
struct CodeBody {
    code: String,
}

/// Exchanges the code the authorisation page handed out: once, within 10 minutes.
#[tracing::instrument(skip(state))]
pub async fn authorizations(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let CodeBody { code } = parse_json(&signed.body)?;
    with_consumer(&state, &signed, |ctx| {
        let c = ctx.consumer;
        let grant = c.auth_codes.get_mut(code.trim()).ok_or_else(|| {
            SimError::BadRequest("This authorisation code is unknown for this consumer.".into())
        })?;
        if grant.used {
            return Err(SimError::BadRequest(
                "This authorisation code has already been used. Authorise the connection again."
                    .into(),
            ));
        }
        if ctx.now.timestamp() > grant.expires_at {
            return Err(SimError::BadRequest(
                "This authorisation code has expired (codes last 10 minutes). Authorise the connection again."
                    .into(),
            ));
        }
        grant.used = true;
        if c.status == ConsumerStatus::Registered {
            c.status = ConsumerStatus::Authorised;
        }
        Ok(Json(
            json!({ "granted": true, "scopes": catalog::scopes() }),
        ))
    })
}

/// The answer recorded for this request's idempotency key, if it repeats a step (counted as a
/// replay, not as the step).
fn replayed(
    ctx: &mut Ctx<'_>,
    signed: &Signed,
    endpoint: &'static str,
) -> Result<Option<Value>, SimError> {
    let Some(key) = &signed.key else {
        return Ok(None);
    };
    let answer = ctx.consumer.answers.replay(key, endpoint)?;
    if answer.is_some() {
        ctx.counters.replayed += 1;
    }
    Ok(answer)
}

/// Keeps a step's answer under its idempotency key, if it had one.
fn remember(consumer: &mut Consumer, signed: &Signed, endpoint: &'static str, answer: &Value) {
    if let Some(key) = &signed.key {
        consumer
            .answers
            .remember(key.clone(), endpoint, answer.clone());
    }
}

/// Starts onboarding; starting again forgets which groups were synced, nothing else. A repeat
/// with the same idempotency key is not a new start.
#[tracing::instrument(skip(state))]
pub async fn start_onboarding(State(state): State<SimState>, signed: Signed) -> JsonResult {
    with_consumer(&state, &signed, |mut ctx| {
        if let Some(answer) = replayed(&mut ctx, &signed, "start onboarding")? {
            return Ok(Json(answer));
        }
        ctx.consumer.onboarding = Onboarding {
            started: true,
            ..Onboarding::default()
        };
        ctx.counters.onboarding_starts += 1;
        let answer = json!({ "groups": catalog::SETTINGS_GROUPS });
        remember(ctx.consumer, &signed, "start onboarding", &answer);
        Ok(Json(answer))
    })
}

#[tracing::instrument(skip(state))]
pub async fn settings(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let group = signed.params.get("group");
    with_consumer(&state, &signed, |mut ctx| {
        if let Some(answer) = replayed(&mut ctx, &signed, "a settings group")? {
            return Ok(Json(answer));
        }
        let failing = ctx.faults.fail_settings_group.as_deref() == Some(group.as_str());
        let c = ctx.consumer;
        let entitlements =
            catalog::entitlements(ctx.faults.entitlement.status(), &c.company, ctx.id);
        let settings = catalog::settings(&group, entitlements).ok_or_else(|| {
            SimError::NotFound(format!(
                "There is no settings group \"{group}\"; the groups are {}.",
                catalog::SETTINGS_GROUPS.join(", ")
            ))
        })?;
        if failing {
            return Err(SimError::Internal(format!(
                "The settings group \"{group}\" failed to sync (simulated HTTP 500)."
            )));
        }
        c.onboarding.synced_groups.insert(group.clone());
        *ctx.counters
            .settings_served
            .entry(group.clone())
            .or_default() += 1;
        let answer = json!({ "group": group, "settings": settings });
        remember(c, &signed, "a settings group", &answer);
        Ok(Json(answer))
    })
}

/// Marks the consumer onboarded, then tells it so on its inbound endpoint.
#[tracing::instrument(skip(state))]
pub async fn complete_onboarding(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let repeat = with_consumer(&state, &signed, |mut ctx| {
        replayed(&mut ctx, &signed, "complete onboarding")
    })?;
    if let Some(answer) = repeat {
        return Ok(Json(answer));
    }
    with_consumer(&state, &signed, |ctx| {
        let c = ctx.consumer;
        if !c.onboarding.started
            || c.onboarding.synced_groups.len() < catalog::SETTINGS_GROUPS.len()
        {
            // The protocol does not forbid it; worth a trace when a consumer skips steps.
            tracing::info!(
                started = c.onboarding.started,
                synced = ?c.onboarding.synced_groups,
                "onboarding completed before every group was read"
            );
        }
        c.status = ConsumerStatus::Onboarded;
        Ok(())
    })?;
    if state.faults(&signed.instance).inbound_unsent {
        return Ok(Json(json!({ "inbound_ok": true })));
    }
    let callback = Callback::load(&state, &signed.instance, &signed.consumer_id)?;
    let outcome = callback.call(&state.client, "onboarded", &json!({})).await;
    let mut body = json!({ "inbound_ok": outcome.ok });
    if let Some(error) = &outcome.error {
        body["error"] = json!(error);
    }
    // A callback that failed is tried again on a repeat; one that reached the consumer is not.
    if outcome.ok {
        with_consumer(&state, &signed, |ctx| {
            remember(ctx.consumer, &signed, "complete onboarding", &body);
            Ok(())
        })?;
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
struct EchoBody {
    nonce: String,
}

#[tracing::instrument(skip(state))]
pub async fn echo(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let EchoBody { nonce } = parse_json(&signed.body)?;
    let rotate = with_consumer(&state, &signed, |ctx| {
        ctx.counters.echoes += 1;
        Ok(ctx.consumer.rotation_asked)
    })?;
    let callback = Callback::load(&state, &signed.instance, &signed.consumer_id)?;
    let outcome = callback
        .call(&state.client, "echo", &json!({ "nonce": nonce }))
        .await;
    let mut body = json!(outcome);
    // The provider asks for new credentials on the heartbeat's answer.
    if rotate {
        body["rotate"] = json!(true);
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
struct ActivateBody {
    consumer_url: String,
}

/// Re-activates the consumer for the instance that sends it (after a clone): its base URL
/// becomes the registered one, and the instance-changed fault is cleared.
#[tracing::instrument(skip(state))]
pub async fn activate(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let ActivateBody { consumer_url } = parse_json(&signed.body)?;
    let url = super::registration::parse_consumer_url(&consumer_url)?;
    state.with(&signed.instance, |i| i.faults.instance_changed = false);
    with_consumer(&state, &signed, |ctx| {
        ctx.consumer.consumer_url = url;
        ctx.counters.activations += 1;
        Ok(Json(json!({
            "consumer_id": ctx.id,
            "consumer_url": ctx.consumer.consumer_url,
        })))
    })
}

/// The longest grace a consumer may ask for the old secret (a day).
const MAX_GRACE_SECONDS: i64 = 86_400;

#[derive(Debug, Deserialize)]
struct RotateBody {
    #[serde(default = "default_grace")]
    grace_seconds: i64,
}

fn default_grace() -> i64 {
    300
}

/// Rotates the consumer's credentials: a new secret from now on, the old one honoured for the
/// grace period asked for (at most a day), then refused.
#[tracing::instrument(skip(state))]
pub async fn rotate(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let RotateBody { grace_seconds } = parse_json(&signed.body)?;
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(SimError::BadRequest(format!(
            "grace_seconds must be between 0 and {MAX_GRACE_SECONDS}."
        )));
    }
    with_consumer(&state, &signed, |ctx| {
        let c = ctx.consumer;
        let fresh = super::state::secret();
        let until = ctx.now + chrono::Duration::seconds(grace_seconds);
        c.previous = Some(super::state::Previous {
            secret: std::mem::replace(&mut c.secret, fresh.clone()),
            until: until.timestamp(),
        });
        c.rotation_asked = false;
        ctx.counters.rotations += 1;
        use base64::Engine;
        Ok(Json(json!({
            "secret": base64::engine::general_purpose::STANDARD.encode(&fresh),
            "grace_until": until.to_rfc3339(),
        })))
    })
}

/// Off-boarding: the consumer is forgotten with its credentials, so anything signed with them
/// from now on is refused as a stranger's (`unknown_consumer`).
#[tracing::instrument(skip(state))]
pub async fn off_board(State(state): State<SimState>, signed: Signed) -> JsonResult {
    state.with(&signed.instance, |i| {
        i.consumers
            .remove(&signed.consumer_id)
            .ok_or_else(|| SimError::UnknownConsumer(signed.consumer_id.clone()))?;
        i.counters.off_boarded.push(signed.consumer_id.clone());
        Ok(Json(
            json!({ "consumer_id": signed.consumer_id, "status": "off_boarded" }),
        ))
    })
}

#[tracing::instrument(skip(state))]
pub async fn data_sample(State(state): State<SimState>, signed: Signed) -> JsonResult {
    with_consumer(&state, &signed, |ctx| {
        Ok(Json(catalog::data_sample(ctx.now)))
    })
}

/// What a migration may copy: the tables and their record counts.
#[tracing::instrument(skip(state))]
pub async fn data_tables(State(state): State<SimState>, signed: Signed) -> JsonResult {
    with_consumer(&state, &signed, |_ctx| Ok(Json(catalog::data_tables())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageAsk {
    #[serde(default)]
    after: Option<String>,
    limit: u64,
}

/// One page of a table's records, after the cursor the last page gave. Slowed by the
/// `data_page_ms` fault (after the signature check, before the answer).
#[tracing::instrument(skip(state))]
pub async fn data_page(State(state): State<SimState>, signed: Signed) -> JsonResult {
    let table = signed.params.get("table");
    let PageAsk { after, limit } = parse_json(&signed.body)?;
    let wait = state.faults(&signed.instance).data_page_ms;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    with_consumer(&state, &signed, |ctx| {
        let names: Vec<&str> = catalog::TABLES.iter().map(|(n, _, _)| *n).collect();
        if !names.contains(&table.as_str()) {
            return Err(SimError::NotFound(format!(
                "There is no table \"{table}\"; the tables are {}.",
                names.join(", ")
            )));
        }
        let (records, next) = catalog::data_page(&table, after.as_deref(), limit, ctx.now)
            .ok_or_else(|| {
                SimError::BadRequest(
                    "This cursor is not one this provider gave for the table.".into(),
                )
            })?;
        ctx.counters.data_pages += 1;
        ctx.counters.data_records += records.len() as u64;
        Ok(Json(json!({ "records": records, "next": next })))
    })
}
