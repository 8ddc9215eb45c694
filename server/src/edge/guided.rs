//! The REST handlers of Guided Setup: the section, Mark Complete, the two verifications and the
//! data migration.
//! Routed in `api`; the rules are in `app::model::guided`, the work in `app::server`.
use axum::{
    extract::{Path, State},
    Extension,
};

use super::json::{ApiResult, Json};
use super::path_id::ConnectionPath;
use app::{
    model::{ActivityId, CurrentUser, GuidedSetupView, MigrationView, VerificationView},
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

/// "Start data migration": copies the provider's tables into this instance, page by page, with
/// progress on the connection's event stream (`migration` events).
#[utoipa::path(post, path = "/api/guided-setup/migration", tag = "guided-setup", responses((status = 200, description = "The migration, running", body = MigrationView), (status = 409, description = "Locked, not onboarded, or one is already running"), (status = 502, description = "The provider did not list its tables; nothing was started")))]
#[tracing::instrument(skip(state, user))]
pub(super) async fn start_migration(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<MigrationView> {
    Ok(Json(app::server::migration::start(&state, &user).await?))
}

/// Cancels the running data migration; the records copied so far stay.
#[utoipa::path(post, path = "/api/guided-setup/migration/cancel", tag = "guided-setup", responses((status = 200, description = "The migration, cancelled", body = MigrationView), (status = 409, description = "None is running")))]
#[tracing::instrument(skip(state, user))]
pub(super) async fn cancel_migration(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<MigrationView> {
    Ok(Json(app::server::migration::cancel(&state, &user).await?))
}

/// A connection's latest data migration, with each table's count here once it has ended.
#[utoipa::path(get, path = "/api/connections/{id}/migration", tag = "guided-setup", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "The latest migration", body = MigrationView), (status = 404, description = "No migration for this connection")))]
#[tracing::instrument(skip(state))]
pub(super) async fn latest_migration(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<MigrationView> {
    app::server::connections::get(&state.db, id.get()).await?;
    app::server::migration::latest(&state, id.get())
        .await?
        .map(Json)
        .ok_or_else(|| {
            app::server::ServiceError::NotFound(
                "This connection has no data migration yet: start one in Guided Setup.".into(),
            )
        })
}
