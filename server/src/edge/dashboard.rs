//! The REST handler of the health dashboard across connections (`app::server::dashboard`).
use axum::extract::{Query, State};
use serde::Deserialize;

use super::json::{ApiResult, Json};
use app::{
    model::{dashboard::DashboardView, dashboard_page::DashboardQuery, ApiError},
    server::{error::ServiceError, AppState},
};

/// The address's values as they came; `DashboardQuery::parse` says what is wrong with them.
#[derive(Debug, Deserialize)]
pub(super) struct RawQuery {
    health: Option<String>,
    company: Option<String>,
    page: Option<String>,
}

/// The health dashboard: score, Up / Slow / Down now and over 24 hours, the open issues (one per
/// finding, with how often it was seen), and one page of the connections the filter matches,
/// each with its card and its suites.
#[utoipa::path(
    get,
    path = "/api/health-dashboard",
    tag = "scan",
    params(
        ("health" = Option<String>, Query, description = "Only connections of this health: down, slow or up"),
        ("company" = Option<String>, Query, description = "Only connections whose company contains this, any case (at most 100 characters)"),
        ("page" = Option<u32>, Query, description = "The page of connections, from 1 (25 a page; past the last reads the last)"),
    ),
    responses(
        (status = 200, description = "The dashboard", body = DashboardView),
        (status = 422, description = "A filter value that is not valid: which, and why", body = ApiError),
    )
)]
#[tracing::instrument(skip(state))]
pub(super) async fn health_dashboard(
    State(state): State<AppState>,
    Query(raw): Query<RawQuery>,
) -> ApiResult<DashboardView> {
    let query = DashboardQuery::parse(
        raw.health.as_deref(),
        raw.company.as_deref(),
        raw.page.as_deref(),
    )
    .map_err(ServiceError::from)?;
    Ok(Json(app::server::dashboard::view(&state, &query).await?))
}
