//! Running one check of the catalogue: `run` matches on `CheckId` (so a check added to the
//! catalogue without its code here does not compile), one small function per check. The checks
//! made with this connection's credentials are in `signed`, registration in `register`.

use super::{
    context::Ctx,
    found::{failed, not_applicable, passed, provider_failure, unknown, Found},
    register::register,
    signed,
};
use crate::model::CheckId;
use crate::server::{
    clock, connections,
    provider::{ProviderError, PROTOCOL_VERSION},
};

/// Clocks further apart than this fail the clock check (signed requests fail at 300 s).
const MAX_CLOCK_DRIFT_SECS: i64 = 60;

/// What the check `id` finds for this run's connection.
pub(super) async fn run(ctx: &Ctx<'_>, id: CheckId) -> Found {
    match id {
        CheckId::Url => url(ctx).await,
        CheckId::BaseUrl => base_url(ctx),
        CheckId::KeyManagement => key_management(ctx).await,
        CheckId::CompanyUnique => company_unique(ctx).await,
        CheckId::Reachable => reachable(ctx).await,
        CheckId::Tls => tls(ctx).await,
        CheckId::Protocol => protocol(ctx).await,
        CheckId::Clock => clock_drift(ctx).await,
        CheckId::AppVersions => app_versions(ctx).await,
        CheckId::Registration => register(ctx).await,
        CheckId::Credentials => signed::credentials(ctx).await,
        CheckId::Entitlements => signed::entitlements(ctx).await,
        CheckId::EntitlementIdentity => signed::entitlement_identity(ctx).await,
        CheckId::Inbound => signed::inbound(ctx).await,
        CheckId::Heartbeat => signed::heartbeat(ctx).await,
        CheckId::TlsExpiry => tls_expiry(ctx).await,
    }
}

// This instance and its records.

async fn url(ctx: &Ctx<'_>) -> Found {
    let url = &ctx.target.view.url;
    match &ctx.target.url {
        // The address policy may have changed since the URL was entered.
        Ok(u) => match ctx.state.settings.outbound.check(u).await {
            Err(e) if e.is_policy() => {
                failed(format!("The provider URL {url} is refused: {e}."), false)
            }
            _ => passed(format!("{url} is a valid provider URL.")),
        },
        Err(e) => failed(
            format!("The provider URL {url:?} is not usable: {}", e.message),
            false,
        ),
    }
}

fn base_url(ctx: &Ctx<'_>) -> Found {
    let public_url = &ctx.state.settings.public_url;
    match reqwest::Url::parse(public_url) {
        Ok(u) if u.host().is_some() && matches!(u.scheme(), "http" | "https") => {
            passed(format!("This instance's base URL is {public_url}."))
        }
        _ => failed(
            "This instance's base URL is not set to an http(s) address the provider can call.",
            false,
        ),
    }
}

async fn key_management(ctx: &Ctx<'_>) -> Found {
    if ctx.state.signer.key_len() < 32 {
        return failed("The signing key is shorter than 32 bytes.", false);
    }
    match ctx.creds().await {
        Some(c) if c.secret.len() < 32 => failed(
            "This connection's stored secret is damaged (shorter than 32 bytes).",
            false,
        ),
        _ => passed("Signing keys are present and usable."),
    }
}

async fn company_unique(ctx: &Ctx<'_>) -> Found {
    let counted =
        connections::count_for_company(&ctx.state.db, ctx.target.private.company_id).await;
    let company = &ctx.target.view.company;
    match counted {
        Ok(1) => passed(format!("{company} has only this connection.")),
        Ok(n) => failed(
            format!("{company} has {n} connections; each instance needs its own company."),
            false,
        ),
        Err(e) => unknown(format!("Could not count connections: {e}"), true),
    }
}

// The provider's information endpoint (asked once per run).

async fn reachable(ctx: &Ctx<'_>) -> Found {
    match ctx.info().await {
        Ok((_, ms)) => passed(format!("The provider answered in {ms} ms.")),
        Err(ProviderError::Malformed(_)) => {
            passed("The provider answered (its answer is checked by the protocol check).")
        }
        Err(e) => provider_failure("The provider could not be reached", e),
    }
}

async fn tls(ctx: &Ctx<'_>) -> Found {
    if ctx.target.view.url.starts_with("http://") {
        return not_applicable("Not applicable: the provider is called over plain http, which the operator allows for this host only.");
    }
    match ctx.info().await {
        Err(ProviderError::Tls(problem)) => failed(
            format!("The TLS connection to the provider failed: {problem}."),
            false,
        ),
        // Any answer over https, even an error or one we cannot read, means the certificate
        // was verified and the handshake completed.
        Ok(_)
        | Err(
            ProviderError::Status { .. }
            | ProviderError::Malformed(_)
            | ProviderError::TooLarge(_)
            | ProviderError::Redirected(_),
        ) => passed(
            "The provider's certificate is valid for its host name and issued by a trusted authority.",
        ),
        Err(e) => provider_failure("The TLS connection could not be tried", e),
    }
}

/// The provider's certificate's end date, ahead of time: within `TLS_EXPIRY_WARN_DAYS` it is
/// reported, with the date, while there is still time to renew it.
async fn tls_expiry(ctx: &Ctx<'_>) -> Found {
    if ctx.target.view.url.starts_with("http://") {
        return not_applicable("Not applicable: the provider is called over plain http.");
    }
    match ctx.client.certificate_expiry().await {
        Ok(Some(not_after)) => {
            let left = not_after - crate::server::clock::now();
            let date = not_after.format("%Y-%m-%d %H:%M UTC");
            if left.num_days() < crate::model::TLS_EXPIRY_WARN_DAYS {
                failed(
                    format!(
                        "The provider's TLS certificate expires on {date}, in {}: renew it before then, or every call to the provider fails.",
                        crate::model::counted(left.num_days().max(0), "day", "days")
                    ),
                    false,
                )
            } else {
                passed(format!(
                    "The provider's TLS certificate is valid until {date} ({} days).",
                    left.num_days()
                ))
            }
        }
        Ok(None) => unknown(
            "The provider's certificate could not be read from the connection.",
            false,
        ),
        Err(e) => provider_failure("The certificate's date could not be read", &e),
    }
}

async fn protocol(ctx: &Ctx<'_>) -> Found {
    match ctx.info().await {
        Ok((info, _)) if info.protocol_version == PROTOCOL_VERSION => passed(format!(
            "The provider speaks protocol version {}.",
            info.protocol_version
        )),
        Ok((info, _)) => failed(
            format!(
                "The provider speaks protocol version {}; this app speaks version {PROTOCOL_VERSION}.",
                info.protocol_version
            ),
            false,
        ),
        Err(e @ ProviderError::Malformed(_)) => failed(
            format!("The provider's information endpoint did not answer with valid JSON ({e})."),
            false,
        ),
        Err(e) => provider_failure("The provider's information endpoint failed", e),
    }
}

async fn clock_drift(ctx: &Ctx<'_>) -> Found {
    match ctx.info().await {
        Ok((info, _)) => {
            let drift = (info.server_time - clock::now()).num_seconds();
            if drift.abs() <= MAX_CLOCK_DRIFT_SECS {
                passed(format!("Clocks agree within {} s.", drift.abs()))
            } else {
                failed(
                    format!("The provider's clock is {drift:+} s from ours (more than {MAX_CLOCK_DRIFT_SECS} s)."),
                    false,
                )
            }
        }
        Err(e) => provider_failure("The provider's time could not be read", e),
    }
}

async fn app_versions(ctx: &Ctx<'_>) -> Found {
    let info = match ctx.info().await {
        Ok((info, _)) => info,
        Err(e) => return provider_failure("The provider's applications could not be read", e),
    };
    let need = [("impact_core", 3), ("service_exchange", 2)];
    let mut problems = Vec::new();
    for (app, major) in need {
        match info.applications.get(app) {
            Some(v)
                if v.split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok())
                    .is_some_and(|m| m >= major) => {}
            Some(v) => problems.push(format!("{app} is {v}, needs {major}.0 or later")),
            None => problems.push(format!("{app} is not installed")),
        }
    }
    if problems.is_empty() {
        passed("Dependent applications are at compatible versions.")
    } else {
        failed(
            format!(
                "Incompatible applications on the provider: {}.",
                problems.join("; ")
            ),
            false,
        )
    }
}
