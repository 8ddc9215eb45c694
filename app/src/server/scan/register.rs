//! The registration check's work: exchanging the registration code for credentials (once),
//! keeping them, and recording Register on the connection.
use base64::{engine::general_purpose::STANDARD as B64, Engine};

use super::{
    context::Ctx,
    found::{failed, passed, provider_failure, sentence, unknown, Found},
};
use crate::model::Action;
use crate::server::{
    connections,
    provider::{Credentials, ProviderError},
};

/// Exchanges the registration code for credentials (once), stores them, and records Register.
pub(super) async fn register(ctx: &Ctx<'_>) -> Found {
    if let Some(c) = ctx.creds().await {
        return passed(format!(
            "Registered with the provider as {}.",
            c.consumer_id
        ));
    }
    let Some(code) = ctx.target.private.registration_code.as_deref() else {
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
            &t.private.contact_email,
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
        _ => return unknown("The provider returned an unusable secret.", true),
    };
    let stored =
        connections::store_credentials(ctx.state, t.view.id, &registered.consumer_id, &secret)
            .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "storing credentials failed");
        return unknown("The credentials could not be stored.", true);
    }
    if let Err(e) = connections::apply(
        ctx.state,
        t.view.id,
        Action::Register,
        crate::model::Actor::System.as_str(),
        "Registration code exchanged",
        None,
    )
    .await
    {
        tracing::warn!(error = %e, "recording Register failed");
    }
    ctx.set_creds(Credentials {
        consumer_id: registered.consumer_id.clone(),
        secret,
    })
    .await;
    passed(format!(
        "Registered with the provider as {}.",
        registered.consumer_id
    ))
}
