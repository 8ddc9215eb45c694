//! "Rotate credentials" without dropping the link: the provider issues a new secret and honours
//! the old one for `IMPACT_ROTATION_GRACE_SECONDS`; this instance signs with the new one at once,
//! accepts the provider's calls signed with the old one until the same time, then the sweep
//! retires it. On demand (the form's button), or when the provider asks (a heartbeat's answer).
//! A provider that cannot be reached changes nothing: the current credentials stay in use.
use base64::{engine::general_purpose::STANDARD as B64, Engine};

use super::{
    clock, connections, error::ServiceError, lease::Work, provider::ProviderError, AppState,
};
use crate::model::{transition, Action, Actor, ConnectionView};

/// Who asked for the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A person, from the form (`commands::act` checked the version they saw).
    Person,
    /// The provider, on a heartbeat's answer.
    Provider,
}

/// Rotates `current`'s credentials. The caller has read the record and asked the state machine
/// (`commands::act` for a person, `on_provider_request` for the provider).
#[tracing::instrument(skip(state, current), fields(connection = current.id))]
pub async fn rotate(
    state: &AppState,
    current: &ConnectionView,
    actor: &str,
    asked: Asked,
) -> Result<ConnectionView, ServiceError> {
    let id = current.id;
    // One rotation at a time: a second one would sign its call with a secret being replaced.
    let Some(lease) = state.work.leases.claim(Work::Rotation(id)).await? else {
        return Err(ServiceError::Conflict(
            "The credentials are being rotated already; the history shows it once done.".into(),
        ));
    };
    let done = rotate_held(state, current, actor, asked).await;
    lease.release().await;
    done
}

async fn rotate_held(
    state: &AppState,
    current: &ConnectionView,
    actor: &str,
    asked: Asked,
) -> Result<ConnectionView, ServiceError> {
    let id = current.id;
    let Some(old) = connections::credentials(state, id).await? else {
        return Err(ServiceError::Conflict(
            "This connection holds no credentials to rotate; it gets them when it registers with the provider.".into(),
        ));
    };
    let grace = state.settings.rotation_grace.as_secs();
    let rotated = state
        .provider_at(&current.provider_url())
        .rotate(&old, grace)
        .await
        .map_err(refused)?;
    let fresh = match B64.decode(&rotated.secret) {
        Ok(s) if s.len() >= 32 => s,
        _ => {
            return Err(ServiceError::Provider(
                "The provider's new secret is not usable (it must be at least 32 bytes, base64). Nothing was changed; the current credentials stay in use. Ask your Impact Squad to check the provider.".into(),
            ))
        }
    };
    // Our own clock decides when we stop honouring the old secret: never later than the
    // provider's, never later than the grace we asked for.
    let ours = clock::now()
        + chrono::Duration::from_std(state.settings.rotation_grace)
            .unwrap_or_else(|_| chrono::Duration::seconds(300));
    let until = ours.min(rotated.grace_until);
    let who = match asked {
        Asked::Person => "on request",
        Asked::Provider => "as the provider asked",
    };
    let reason = format!(
        "Credentials rotated {who}; the old secret is honoured until {} UTC, then retired",
        until.format("%Y-%m-%d %H:%M:%S")
    );
    let keys = state.keys.clone();
    connections::apply_rotation(state, id, actor, &reason, &|tx| {
        let (keys, fresh, old) = (keys.clone(), fresh.clone(), old.secret.clone());
        Box::pin(async move {
            Ok(connections::store_rotated(tx, &keys, id, &fresh, &old, until).await?)
        })
    })
    .await
}

fn refused(e: ProviderError) -> ServiceError {
    ServiceError::Provider(format!(
        "The provider could not rotate the credentials ({}). Nothing was changed; the current credentials stay in use. Try again later.",
        e.clause()
    ))
}

/// A heartbeat's answer asked for new credentials: rotates them in the background, as the
/// system. A failure is logged; the next heartbeat's answer asks again.
pub fn on_provider_request(state: &AppState, id: i64) {
    let state = state.clone();
    tokio::spawn(async move {
        let rotated = async {
            let current = connections::get(&state.db, id).await?;
            transition(current.status(), Action::RotateCredentials)?;
            rotate(&state, &current, Actor::System.as_str(), Asked::Provider).await
        };
        match rotated.await {
            Ok(_) => tracing::info!(connection = id, "credentials rotated as the provider asked"),
            Err(e) => {
                tracing::warn!(connection = id, error = %e, "rotating the credentials the provider asked for failed")
            }
        }
    });
}
