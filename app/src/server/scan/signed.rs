//! The checks made with this connection's credentials: signed requests the provider must accept.
use super::{
    context::Ctx,
    found::{failed, passed, provider_failure, sentence, Found},
};
use crate::server::{provider::ProviderError, verify};

const NO_CREDENTIALS: &str = "This connection has no credentials yet.";

pub(super) async fn credentials(ctx: &Ctx<'_>) -> Found {
    let Some(c) = ctx.creds().await else {
        return failed(NO_CREDENTIALS, false);
    };
    match ctx.client.consumer(&c).await {
        Ok(_) => passed(format!(
            "The provider accepts this connection's signed requests ({}).",
            c.consumer_id
        )),
        Err(e @ ProviderError::Status { status: 401, .. }) if e.code() == "clock_skew" => failed(
            format!("The provider refused our requests because the clocks differ too much ({e})."),
            false,
        ),
        Err(ProviderError::Status {
            status: 401 | 403 | 404,
            message,
            ..
        }) => failed(
            format!(
                "The provider refused this connection's credentials: {}.",
                sentence(&message)
            ),
            false,
        ),
        Err(e) => provider_failure("The credentials could not be checked", &e),
    }
}

pub(super) async fn entitlements(ctx: &Ctx<'_>) -> Found {
    let Some(c) = ctx.creds().await else {
        return failed(NO_CREDENTIALS, false);
    };
    let list = match ctx.client.entitlements(&c).await {
        Ok(list) => list,
        Err(e) => return provider_failure("The entitlements could not be read", &e),
    };
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
        passed(format!(
            "{}, all active.",
            crate::model::counted(list.entitlements.len(), "entitlement", "entitlements")
        ))
    } else {
        failed(
            format!("Entitlements not active: {}.", not_active.join(", ")),
            false,
        )
    }
}

pub(super) async fn entitlement_identity(ctx: &Ctx<'_>) -> Found {
    let Some(c) = ctx.creds().await else {
        return failed(NO_CREDENTIALS, false);
    };
    let list = match ctx.client.entitlements(&c).await {
        Ok(list) => list,
        Err(e) => return provider_failure("The entitlements could not be read", &e),
    };
    let named = |v: &Option<String>| !v.as_deref().unwrap_or("").is_empty();
    let bad: Vec<&str> = list
        .entitlements
        .iter()
        .filter(|e| !named(&e.entity) || !named(&e.identity))
        .map(|e| e.name.as_str())
        .collect();
    if bad.is_empty() {
        passed("Every entitlement names its entity and identity.")
    } else {
        failed(
            format!(
                "Entitlements missing an entity or identity: {}.",
                bad.join(", ")
            ),
            false,
        )
    }
}

pub(super) async fn inbound(ctx: &Ctx<'_>) -> Found {
    let Some(c) = ctx.creds().await else {
        return failed(NO_CREDENTIALS, false);
    };
    match ctx.client.callback_test(&c).await {
        Ok(r) if r.ok => passed(format!(
            "The provider reached this instance in {} ms.",
            r.round_trip_ms.unwrap_or(0)
        )),
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

/// The heartbeat of the connection health suite: the same exchange the scheduled heartbeat makes
/// (out to the provider's echo, its signed call back in), timed against the Slow threshold.
pub(super) async fn heartbeat(ctx: &Ctx<'_>) -> Found {
    let Some(c) = ctx.creds().await else {
        return failed(NO_CREDENTIALS, false);
    };
    let done = verify::exchange(ctx.state, &ctx.target.view, &c).await;
    let beat = done.beat();
    ctx.set_beat(beat);
    let slow_ms = ctx.state.settings.slow_ms;
    match (&done.answer, beat.outbound_ms) {
        (Err(e), _) => provider_failure("The provider did not answer the heartbeat", e),
        (Ok(_), _) if !done.arrived => failed(
            format!(
                "The provider answered the heartbeat, but its call back did not reach this instance within {} ms.",
                ctx.state.settings.provider_timeout.as_millis()
            ),
            true,
        ),
        (Ok(_), Some(ms)) if ms > slow_ms => passed(format!(
            "The provider answered in {ms} ms, above the Slow threshold of {slow_ms} ms, and its call back arrived."
        )),
        (Ok(_), ms) => passed(format!(
            "The provider answered in {} ms and its call back arrived.",
            ms.unwrap_or(0)
        )),
    }
}
