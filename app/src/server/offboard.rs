//! "Off-board": an IDI admin ends a connection after typing "Delete". The provider is told
//! first, so a provider that cannot be reached leaves everything as it was; then the record turns
//! Off-boarded with its credentials erased, in one transaction. The record and its history stay
//! to read, and the company and provider URL are free for a new connection.
use super::{connections, error::ServiceError, lease::Work, provider::ProviderError, AppState};
use crate::model::{
    check_off_board_confirmation, transition, Action, ConnectionView, OffBoardConnection,
};

#[tracing::instrument(skip(state, req), fields(without_provider = req.without_provider))]
pub async fn off_board(
    state: &AppState,
    id: i64,
    req: &OffBoardConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = connections::at_version(&state.db, id, req.version).await?;
    // The state first: the refusal names what it requires, whatever was typed.
    transition(current.status(), Action::OffBoard)?;
    check_off_board_confirmation(&req.confirm)?;
    // A migration copies with the credentials off-boarding erases: it is cancelled first.
    if super::migration::is_running(state, id).await? {
        return Err(ServiceError::Conflict(
            "A data migration is running for this connection; cancel it in Guided Setup (\"Start data migration\") or wait for it to finish, then off-board. Nothing was changed.".into(),
        ));
    }
    // A connection health scan's findings must not land on an off-boarded record: wait for it.
    let Some(lease) = state.work.leases.claim(Work::Scan(id)).await? else {
        return Err(ServiceError::Conflict(
            "A connection health scan is running; off-board once it has finished (its results appear on the form). Nothing was changed.".into(),
        ));
    };
    let done = async {
        let told = tell_provider(state, &current, req.without_provider).await?;
        connections::off_board(state, id, actor, &told).await
    }
    .await;
    lease.release().await;
    if done.is_ok() {
        tracing::info!(connection = id, "connection off-boarded");
    }
    done
}

/// Asks the provider to forget this consumer; the history's reason says how that went.
async fn tell_provider(
    state: &AppState,
    conn: &ConnectionView,
    without_provider: bool,
) -> Result<String, ServiceError> {
    let Some(creds) = connections::credentials(state, conn.id).await? else {
        return Ok(
            "Off-boarded; it held no provider credentials, so the provider had nothing to forget"
                .into(),
        );
    };
    if without_provider {
        return Ok("Off-boarded without telling the provider, as the IDI admin chose; the credentials were erased here".into());
    }
    match state
        .provider_at(&conn.provider_url())
        .off_board(&creds)
        .await
    {
        Ok(_) => Ok("The provider removed this consumer; its credentials were revoked and erased here".into()),
        // Already gone on the provider's side (removed there, or an instance reset): nothing is
        // left to revoke, and these credentials can do nothing more.
        Err(ProviderError::Status { code, .. })
            if code == "unknown_consumer" || code == "bad_signature" =>
        {
            Ok("The provider no longer accepted these credentials; they were erased here".into())
        }
        Err(e) => Err(ServiceError::Provider(format!(
            "The provider could not be told to off-board this connection ({}). Nothing was changed. Try again later; if the provider is gone for good, off-board without telling it.",
            e.clause()
        ))),
    }
}
