//! The REST handlers of Guided Setup: the section, Mark Complete and the two verifications.
//! Routed in `api`; the rules are in `app::model::guided`, the work in `app::server`.
use axum::{
    extract::{Path, State},
    Extension,
};

use super::json::{ApiResult, Json};
use app::{
    model::{ActivityId, CurrentUser, GuidedSetupView, VerificationView},
    server::AppState,
};

/// The Guided Setup section: activities, the connection it follows, the latest verifications.
#[utoipa::path(get, path = "/api/guided-setup", tag = "guided-setup", responses((status = 200, description = "The section", body = GuidedSetupView)))]
#[tracing::instrument(skip(state))]
pub(super) async fn guided_setup(State(state): State<AppState>) -> ApiResult<GuidedSetupView> {
    Ok(Json(app::server::guided::view(&state).await?))
}

/// "Mark Complete" on an activity.
#[utoipa::path(post, path = "/api/guided-setup/{activity}/complete", tag = "guided-setup", params(("activity" = ActivityId, Path, description = "The activity")), responses((status = 200, description = "The section after it", body = GuidedSetupView)))]
#[tracing::instrument(skip(state, user))]
pub(super) async fn mark_complete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(activity): Path<String>,
) -> ApiResult<GuidedSetupView> {
    Ok(Json(
        app::server::guided::mark_complete(&state, &activity, &user).await?,
    ))
}

/// "Verify the connection": a round trip through the provider and back.
///
/// A failed verification is a stored result: 200 with `ok: false` and what to do.
#[utoipa::path(post, path = "/api/guided-setup/verify-connection", tag = "guided-setup", responses((status = 200, description = "The stored result (`ok` false when it failed)", body = VerificationView)))]
#[tracing::instrument(skip(state, user))]
pub(super) async fn verify_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<VerificationView> {
    Ok(Json(
        app::server::verify::verify_connection(&state, &user).await?,
    ))
}

/// "Verify Impact data connection": asks the provider for a sample of the data it received.
#[utoipa::path(post, path = "/api/guided-setup/verify-data", tag = "guided-setup", responses((status = 200, description = "The stored result (`ok` false when it failed)", body = VerificationView)))]
#[tracing::instrument(skip(state, user))]
pub(super) async fn verify_data(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<VerificationView> {
    Ok(Json(app::server::verify::verify_data(&state, &user).await?))
}
