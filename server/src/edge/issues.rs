//! The REST handlers of the issue workflow and the diagnostic report (`app::server::issues`).
use axum::{
    extract::{Path, State},
    http::header,
    response::{IntoResponse, Response},
    Extension,
};

use super::json::{ApiResult, Json};
use super::path_id::ConnectionPath;
use app::{
    model::{CurrentUser, IssueCommand, IssueDetail, IssueWork},
    server::AppState,
};

/// An issue of a connection: what it is, whether it is open now, how to fix it, its workflow.
#[utoipa::path(get, path = "/api/connections/{id}/issues/{issue}", tag = "scan", params(("id" = i64, Path, description = "The connection's id"), ("issue" = String, Path, description = "A check's id, or heartbeat:outbound / heartbeat:inbound")), responses((status = 200, description = "The issue", body = IssueDetail)))]
#[tracing::instrument(skip(state))]
pub(super) async fn issue_detail(
    State(state): State<AppState>,
    id: ConnectionPath,
    Path((_, issue)): Path<(String, String)>,
) -> ApiResult<IssueDetail> {
    Ok(Json(
        app::server::issues::detail(&state, id.get(), &issue).await?,
    ))
}

/// Assign to me, Unassign, Follow, Unfollow, Mute for a time, Unmute, or a note. Following is
/// anyone's who may look; the rest needs the IDI admin's role.
#[utoipa::path(post, path = "/api/connections/{id}/issues/{issue}", tag = "scan", params(("id" = i64, Path, description = "The connection's id"), ("issue" = String, Path, description = "The issue's id")), request_body = IssueCommand, responses((status = 200, description = "The issue's workflow after it", body = IssueWork)))]
#[tracing::instrument(skip(state, user, command))]
pub(super) async fn act_on_issue(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Path((_, issue)): Path<(String, String)>,
    Json(command): Json<IssueCommand>,
) -> ApiResult<IssueWork> {
    Ok(Json(
        app::server::issues::act(&state, id.get(), &issue, command, &user).await?,
    ))
}

/// The issue's diagnostic report, as a JSON file to download: the connection, its recent checks,
/// heartbeats and events, the workflow; secrets redacted.
#[utoipa::path(get, path = "/api/connections/{id}/issues/{issue}/report", tag = "scan", params(("id" = i64, Path, description = "The connection's id"), ("issue" = String, Path, description = "The issue's id")), responses((status = 200, description = "The report (a JSON attachment)")))]
#[tracing::instrument(skip(state))]
pub(super) async fn issue_report(
    State(state): State<AppState>,
    id: ConnectionPath,
    Path((_, issue)): Path<(String, String)>,
) -> Result<Response, app::server::ServiceError> {
    let report = app::server::issues::report(&state, id.get(), &issue).await?;
    let body = serde_json::to_vec_pretty(&report).map_err(anyhow::Error::from)?;
    // The issue id passed `valid_issue_id`: lowercase letters, digits, _ and :.
    let file = format!(
        "impact-diagnostic-{}-{}.json",
        id.get(),
        issue.replace(':', "-")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}
