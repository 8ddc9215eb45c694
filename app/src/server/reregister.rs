//! "Re-register this connection": a fresh registration link for a provider that already has a
//! live connection repairs that connection instead of dead-ending. The link is consumed, its new
//! registration code replaces the old one and the old credentials (the provider is asked to
//! retire them, best effort: revoked ones cannot be), and the pre-onboarding checks run again,
//! registering first. All or nothing: a refused link or a changed record leaves it as it was.
use super::{connections, error::ServiceError, invitations, lease::Work, scan, AppState};
use crate::model::{
    transition, Action, ConnectionView, FieldError, ProviderUrl, ReRegisterConnection,
};

#[tracing::instrument(skip(state, req))]
pub async fn re_register(
    state: &AppState,
    id: i64,
    req: &ReRegisterConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = connections::at_version(&state.db, id, req.version).await?;
    transition(current.status(), Action::ReRegister)?;
    let token = req.registration_token.trim();
    if token.is_empty() {
        return Err(FieldError::new(
            ReRegisterConnection::TOKEN_FIELD,
            "Re-registering needs a fresh registration link: open \"Connect with Impact IDI\" in the newest welcome email.",
        )
        .into());
    }
    let inv = invitations::check(state, token).await?;
    let same_provider = ProviderUrl::parse(&inv.provider_url)
        .ok()
        .zip(current.provider_url().ok())
        .is_some_and(|(link, ours)| link == ours);
    if !same_provider {
        return Err(FieldError::new(
            ReRegisterConnection::TOKEN_FIELD,
            format!(
                "This registration link is for {}, not this connection's provider ({}): it cannot re-register it.",
                inv.provider_url, current.url
            ),
        )
        .into());
    }
    let Some(lease) = state.work.leases.claim(Work::Scan(id)).await? else {
        return Err(ServiceError::Conflict(
            "A health scan of this connection is running; re-register once it has finished. Nothing was changed.".into(),
        ));
    };
    let retired = retire_old_credentials(state, &current).await;
    let reason = format!("Re-registered from a fresh registration link; {retired}");
    let written = connections::re_register(state, id, &inv, actor, &reason).await;
    lease.release().await;
    let view = written?;
    scan::start_suite(state, id, actor).await;
    Ok(view)
}

/// Asks the provider to forget the consumer the old credentials name; says how that went.
async fn retire_old_credentials(state: &AppState, conn: &ConnectionView) -> String {
    let creds = match connections::credentials(state, conn.id).await {
        Ok(Some(creds)) => creds,
        Ok(None) => return "it held no credentials to retire".into(),
        Err(e) => {
            tracing::warn!(connection = conn.id, error = %e, "the old credentials could not be read");
            return "its old credentials could not be read; they were erased".into();
        }
    };
    match state
        .provider_at(&conn.provider_url())
        .off_board(&creds)
        .await
    {
        Ok(_) => "the provider retired the old credentials".into(),
        Err(e) => {
            tracing::info!(connection = conn.id, error = %e, "the provider did not retire the old credentials");
            format!(
                "the provider did not retire the old credentials ({}); they were erased here",
                e.clause()
            )
        }
    }
}
