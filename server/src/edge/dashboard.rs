//! The REST handler of the health dashboard across connections (`app::server::dashboard`).
use axum::extract::State;

use super::json::{ApiResult, Json};
use app::{model::dashboard::DashboardView, server::AppState};

/// The health dashboard: score, Up / Slow / Down now and over 24 hours, the open issues (one per
/// finding, with how often it was seen), a card per connection, and each connection's suites.
#[utoipa::path(get, path = "/api/health-dashboard", tag = "scan", responses((status = 200, description = "The dashboard", body = DashboardView)))]
#[tracing::instrument(skip(state))]
pub(super) async fn health_dashboard(State(state): State<AppState>) -> ApiResult<DashboardView> {
    Ok(Json(app::server::dashboard::view(&state).await?))
}
