//! What a person asks for on a connection: create it from the registration link, save it, act
//! on it from the form's buttons, connect it. Each is composed from the record's owner
//! (`connections`) and the work it starts (`scan`, `onboarding`); none of those call back here.
use super::{connections, error::ServiceError, lease::Work, onboarding, scan, AppState};
use crate::model::{
    transition, Action, ConnectionAction, ConnectionView, CreateConnection, CurrentUser,
    Onboarding, UpdateConnection,
};

/// "Save" on the new record opened from a registration link: creates the connection (the link
/// consumed, all or nothing) and starts validation at once (the domain reference's reading of
/// the procedure).
pub async fn create(
    state: &AppState,
    req: &CreateConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let created = connections::create(state, req, actor).await?;
    revalidate(state, created.id, actor).await
}

/// "Save" on an existing record: its company changes, and validation starts again (a new
/// company needs new checks).
pub async fn save(
    state: &AppState,
    id: i64,
    req: &UpdateConnection,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    connections::set_company(state, id, req, actor).await?;
    revalidate(state, id, actor).await
}

/// Rescan once onboarded: the connection health suite, one run at a time (its lease says whether
/// one runs already, on any replica). The record stays Validated; the run's findings set Outbound
/// and Inbound when it ends.
async fn rescan_onboarded(
    state: &AppState,
    id: i64,
    version: i64,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let Some(lease) = state.work.leases.claim(Work::Scan(id)).await? else {
        return Err(ServiceError::Conflict(
            "A connection health scan is already running; its results appear on this page as they come.".into(),
        ));
    };
    let view = match connections::apply(
        state,
        id,
        Action::Rescan,
        actor,
        "Connection health scan requested",
        Some(version),
    )
    .await
    {
        Ok(view) => view,
        Err(e) => {
            lease.release().await;
            return Err(e);
        }
    };
    scan::start_health(state, id, actor, lease);
    Ok(view)
}

/// "Connect to provider": the address of the provider's authorisation page for the named
/// contact.
pub async fn connect(
    state: &AppState,
    id: i64,
    user: &CurrentUser,
) -> Result<String, ServiceError> {
    onboarding::authorize_url(state, id, user).await
}

/// Starts the pre-onboarding suite if the state allows: Pending → Awaiting validation (after a
/// Save), or a Rescan from Validation failed / Validated.
pub async fn revalidate(
    state: &AppState,
    id: i64,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = connections::get(&state.db, id).await?;
    let action = if transition(current.status(), Action::SubmitForValidation).is_ok() {
        Action::SubmitForValidation
    } else if current.onboarding != Onboarding::Complete
        && transition(current.status(), Action::Rescan).is_ok()
    {
        Action::Rescan
    } else {
        return Ok(current);
    };
    let view = connections::apply(
        state,
        id,
        action,
        actor,
        "Pre-onboarding checks started",
        None,
    )
    .await?;
    scan::start_suite(state, id, actor).await;
    Ok(view)
}

/// A user action from the form's buttons. The state machine decides whether it is allowed now;
/// actions that need the provider are refused until the provider protocol exists.
#[tracing::instrument(skip(state, req), fields(action = ?req.action))]
pub async fn act(
    state: &AppState,
    id: i64,
    req: &ConnectionAction,
    actor: &str,
) -> Result<ConnectionView, ServiceError> {
    let current = connections::at_version(&state.db, id, req.version).await?;
    if req.action == Action::ReRegister {
        return Err(crate::model::FieldError::new(
            "action",
            "Re-register comes with a fresh registration link: open the link, or send {\"version\", \"registration_token\"} with POST on the connection's /re-register.",
        )
        .into());
    }
    if !req.action.is_user_action() {
        return Err(crate::model::FieldError::new(
            "action",
            format!(
                "\"{}\" is recorded by the system and cannot be requested.",
                req.action.label()
            ),
        )
        .into());
    }
    if req.action == Action::Save {
        return Err(crate::model::FieldError::new(
            "action",
            "To save, send the company with PUT on the connection.",
        )
        .into());
    }
    if req.action == Action::OffBoard {
        return Err(crate::model::FieldError::new(
            "action",
            "Off-board needs its typed confirmation: send {\"version\", \"confirm\": \"Delete\"} with POST on the connection's /off-board.",
        )
        .into());
    }
    // Ask the state machine first, so the refusal names what the state requires.
    transition(current.status(), req.action)?;
    match req.action {
        Action::Rescan if current.onboarding == Onboarding::Complete => {
            rescan_onboarded(state, id, req.version, actor).await
        }
        Action::Rescan => {
            let view = connections::apply(state, id, Action::Rescan, actor, "Rescan requested", Some(req.version)).await?;
            scan::start_suite(state, id, actor).await;
            Ok(view)
        }
        Action::ValidateAndActivate => {
            super::activate::validate_and_activate(state, &current, actor).await
        }
        Action::RotateCredentials => {
            super::rotate::rotate(state, &current, actor, super::rotate::Asked::Person).await
        }
        // Authorisation was granted on the first attempt: Retry starts the run again.
        Action::Retry => onboarding::start(state, id, actor).await,
        // "Connect to provider" goes through the provider's authorisation page first.
        _ => Err(ServiceError::Conflict(
            "\"Connect to provider\" sends the named contact to the provider to authorise: use POST /api/connections/{id}/connect and open the authorize_url it returns.".into(),
        )),
    }
}
