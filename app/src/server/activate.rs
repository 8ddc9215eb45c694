//! A cloned instance: the provider refuses requests from an instance other than the one it
//! registered (it compares `signing::HEADER_INSTANCE`), and the heartbeat that hears so turns the
//! connection "Instance changed". "Validate and Activate" asks the provider to register this
//! instance instead, then runs the connection health checks, whose findings set the statuses.
//! The history before the clone stays as it was.
use super::{
    connections, error::ServiceError, lease::Work, provider::ProviderError, scan, AppState,
};
use crate::model::{Action, Actor, ConnectionView};

/// The provider's code for a request from an instance it did not register.
pub const INSTANCE_CHANGED: &str = "instance_changed";

/// Whether a provider's refusal says this instance is not the registered one.
pub fn is_instance_changed(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Status { code, .. } if code == INSTANCE_CHANGED)
}

/// A heartbeat heard that this instance changed: the connection says so (once; a second report
/// finds it already changed and changes nothing).
pub async fn instance_changed(state: &AppState, id: i64, why: &ProviderError) {
    let reason = format!(
        "The provider reports that this instance changed (a clone of the instance?): {}. Select Validate and Activate to re-establish the connection for this instance",
        why.clause()
    );
    match connections::apply(
        state,
        id,
        Action::InstanceChanged,
        Actor::System.as_str(),
        &reason,
        None,
    )
    .await
    {
        Ok(_) => tracing::warn!(connection = id, "the provider reports a changed instance"),
        Err(ServiceError::Refused(_)) => {}
        Err(e) => {
            tracing::warn!(connection = id, error = %e, "recording the changed instance failed")
        }
    }
}

/// "Validate and Activate": the provider registers this instance for the connection, then the
/// connection health checks run. A provider that cannot be reached changes nothing. `current` is
/// the record at the version the person saw, its state allowing this (`commands::act` checks
/// both).
#[tracing::instrument(skip(state, current), fields(connection = current.id))]
pub async fn validate_and_activate(
    state: &AppState,
    current: &ConnectionView,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let id = current.id;
    let Some(lease) = state.work.leases.claim(Work::Scan(id)).await? else {
        return Err(ServiceError::Conflict(
            "A scan of this connection is running; select Validate and Activate once it has finished.".into(),
        ));
    };
    let activated = async {
        let creds = connections::credentials(state, id).await?.ok_or_else(|| {
            ServiceError::Conflict(
                "This connection holds no credentials; re-register it with a fresh registration link.".into(),
            )
        })?;
        let instance = &state.settings.public_url;
        state
            .provider_at(&current.provider_url())
            .activate(&creds, instance)
            .await
            .map_err(|e| {
                ServiceError::Provider(format!(
                    "The provider could not activate this instance ({}). Nothing was changed. Try again later.",
                    e.clause()
                ))
            })?;
        connections::apply(
            state,
            id,
            Action::ValidateAndActivate,
            actor,
            &format!("The provider now knows this instance ({instance}); the connection health checks run"),
            None,
        )
        .await
    }
    .await;
    match activated {
        Ok(view) => {
            scan::start_health(state, id, actor, lease);
            Ok(view)
        }
        Err(e) => {
            lease.release().await;
            Err(e)
        }
    }
}
