//! The REST handlers of a connection's later life: off-board, re-register, and the settings
//! onboarding pulled. Routed in `api`; the work is in `app::server::{offboard, reregister,
//! synced}`.
use axum::{extract::State, Extension};

use super::{
    json::{ApiResult, Json},
    path_id::ConnectionPath,
};
use app::{
    model::{
        ApiError, ConnectionView, CurrentUser, OffBoardConnection, ReRegisterConnection,
        SyncedGroup,
    },
    server::AppState,
};

/// "Off-board" after the typed confirmation ("Delete"): the provider is told, the credentials
/// revoked and erased, the record kept as Off-boarded. IDI admins only.
#[utoipa::path(post, path = "/api/connections/{id}/off-board", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), request_body = OffBoardConnection, responses((status = 200, description = "The record, Off-boarded", body = ConnectionView), (status = 422, description = "The confirmation is not \"Delete\"", body = ApiError), (status = 409, description = "Not allowed in this state, or changed since", body = ApiError), (status = 502, description = "The provider could not be told; nothing was changed", body = ApiError)))]
#[tracing::instrument(skip(state, req))]
pub(super) async fn off_board_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<OffBoardConnection>,
) -> ApiResult<ConnectionView> {
    Ok(Json(
        app::server::offboard::off_board(&state, id.get(), &req, &user.email).await?,
    ))
}

/// "Re-register this connection" with a fresh registration link for its provider: the link's new
/// code replaces the old one and the credentials, and the checks run again. IDI admins only.
#[utoipa::path(post, path = "/api/connections/{id}/re-register", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), request_body = ReRegisterConnection, responses((status = 200, description = "The record, Awaiting validation", body = ConnectionView), (status = 410, description = "The link cannot be used (expired, used, superseded)", body = ApiError), (status = 422, description = "The link is for another provider", body = ApiError), (status = 409, description = "Not allowed in this state, or changed since", body = ApiError)))]
#[tracing::instrument(skip(state, req))]
pub(super) async fn re_register_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<ReRegisterConnection>,
) -> ApiResult<ConnectionView> {
    Ok(Json(
        app::server::reregister::re_register(&state, id.get(), &req, &user.email).await?,
    ))
}

/// "Review synced settings": the settings groups onboarding pulled from the provider, each as
/// rows (a setting's name in words, its value), oldest sync first.
#[utoipa::path(get, path = "/api/connections/{id}/settings", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "The synced groups", body = Vec<SyncedGroup>)))]
#[tracing::instrument(skip(state))]
pub(super) async fn synced_settings(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<Vec<SyncedGroup>> {
    Ok(Json(app::server::synced::list(&state, id.get()).await?))
}
