//! The JSON REST API under `/api`: thin handlers over the service layer, using the shared DTOs.
//! Every client mistake is a 4xx `{code, message, field?}`.
use axum::Extension;
use axum::{
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde::{Deserialize, Serialize};

use super::json::{ApiResult, Json};
use super::path_id::ConnectionPath;
use super::routes::{Recorder, RouteSpec};
use super::{dashboard, guided, issues, lifecycle};
use app::{
    model::{
        ApiError, AuditEntry, CompanyView, ConnectionAction, ConnectionView, CreateCompany,
        CreateConnection, CurrentUser, HealthView, HistoryEntry, InvitationRequest, InvitationView,
        NewUser, OutboxMessage, RegistrationLinkView, ScanRunView, UpdateConnection, UserChange,
        UserView,
    },
    server::{
        accounts, audit, commands, companies, connections, invitations, outbox, AppState,
        ServiceError,
    },
};

pub use super::json::MAX_BODY_BYTES;

/// The API router and its route table.
pub fn routes<S: Clone + Send + Sync + 'static>(state: AppState) -> (Router<S>, Vec<RouteSpec>) {
    use axum::http::Method as M;
    let r = Recorder::<AppState>::new("/api")
        .route(
            "/connections",
            &[M::GET, M::POST],
            get(list_connections).post(create_connection),
        )
        .route(
            "/connections/{id}",
            &[M::GET, M::PUT],
            get(get_connection).put(update_connection),
        )
        .route(
            "/connections/{id}/actions",
            &[M::POST],
            post(act_on_connection),
        )
        .route(
            "/connections/{id}/off-board",
            &[M::POST],
            post(lifecycle::off_board_connection),
        )
        .route(
            "/connections/{id}/re-register",
            &[M::POST],
            post(lifecycle::re_register_connection),
        )
        .route(
            "/connections/{id}/settings",
            &[M::GET],
            get(lifecycle::synced_settings),
        )
        .route(
            "/connections/{id}/history",
            &[M::GET],
            get(connection_history),
        )
        .route(
            "/companies",
            &[M::GET, M::POST],
            get(list_companies).post(create_company),
        )
        .route(
            "/invitations",
            &[M::GET, M::POST],
            get(list_invitations).post(issue_invitation),
        )
        .route("/registration", &[M::GET], get(open_registration))
        .route(
            "/registration/resend",
            &[M::POST],
            post(resend_registration),
        )
        .route("/outbox", &[M::GET], get(list_outbox))
        .route(
            "/users",
            &[M::GET, M::POST],
            get(list_users).post(create_user),
        )
        .route("/users/{id}", &[M::PUT], axum::routing::put(change_user))
        .route("/audit", &[M::GET], get(list_audit))
        .route(
            "/connections/{id}/health",
            &[M::GET],
            get(connection_health),
        )
        .route(
            "/connections/{id}/checks/{check}/rescan",
            &[M::POST],
            post(rescan_check),
        )
        .route(
            "/connections/{id}/connect",
            &[M::POST],
            post(connect_to_provider),
        )
        .route("/guided-setup", &[M::GET], get(guided::guided_setup))
        .route(
            "/guided-setup/{activity}/complete",
            &[M::POST],
            post(guided::mark_complete),
        )
        .route(
            "/guided-setup/verify-connection",
            &[M::POST],
            post(guided::verify_connection),
        )
        .route(
            "/guided-setup/verify-data",
            &[M::POST],
            post(guided::verify_data),
        )
        .route(
            "/guided-setup/migration",
            &[M::POST],
            post(guided::start_migration),
        )
        .route(
            "/guided-setup/migration/cancel",
            &[M::POST],
            post(guided::cancel_migration),
        )
        .route(
            "/connections/{id}/migration",
            &[M::GET],
            get(guided::latest_migration),
        )
        .route(
            "/health-dashboard",
            &[M::GET],
            get(dashboard::health_dashboard),
        )
        .route(
            "/connections/{id}/issues/{issue}",
            &[M::GET, M::POST],
            get(issues::issue_detail).post(issues::act_on_issue),
        )
        .route(
            "/connections/{id}/issues/{issue}/report",
            &[M::GET],
            get(issues::issue_report),
        );
    let router = r
        .router
        .fallback(api_not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    (router, r.table)
}

async fn api_not_found() -> Response {
    let body = ApiError {
        code: "not_found".into(),
        message: "There is no API endpoint at this address.".into(),
        field: None,
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Every provider connection.
#[utoipa::path(get, path = "/api/connections", tag = "connections", responses((status = 200, description = "The connections", body = Vec<ConnectionView>)))]
#[tracing::instrument(skip(state))]
async fn list_connections(State(state): State<AppState>) -> ApiResult<Vec<ConnectionView>> {
    Ok(Json(connections::list(&state.db).await?))
}

/// One provider connection.
#[utoipa::path(get, path = "/api/connections/{id}", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "The connection", body = ConnectionView)))]
#[tracing::instrument(skip(state))]
async fn get_connection(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<ConnectionView> {
    Ok(Json(connections::get(&state.db, id.get()).await?))
}

/// Creates a connection from a registration link's token.
#[utoipa::path(post, path = "/api/connections", tag = "connections", request_body = CreateConnection, responses((status = 201, description = "Created", body = ConnectionView)))]
#[tracing::instrument(skip(state, req))]
async fn create_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ServiceError> {
    let created = commands::create(&state, &req, &user.email).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Saves the company ("Save"); `version` must be the record's current one.
#[utoipa::path(put, path = "/api/connections/{id}", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), request_body = UpdateConnection, responses((status = 200, description = "Saved", body = ConnectionView)))]
#[tracing::instrument(skip(state, req))]
async fn update_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<UpdateConnection>,
) -> ApiResult<ConnectionView> {
    Ok(Json(
        commands::save(&state, id.get(), &req, &user.email).await?,
    ))
}

/// Applies a state-machine action ("Submit for validation", "Rescan", ...).
#[utoipa::path(post, path = "/api/connections/{id}/actions", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), request_body = ConnectionAction, responses((status = 200, description = "The record after the action", body = ConnectionView)))]
#[tracing::instrument(skip(state, req))]
async fn act_on_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<ConnectionAction>,
) -> ApiResult<ConnectionView> {
    Ok(Json(
        commands::act(&state, id.get(), &req, &user.email).await?,
    ))
}

/// A connection's timeline: who did what, and where it left the connection.
#[utoipa::path(get, path = "/api/connections/{id}/history", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "The timeline, oldest first", body = Vec<HistoryEntry>)))]
#[tracing::instrument(skip(state))]
async fn connection_history(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<Vec<HistoryEntry>> {
    Ok(Json(connections::history(&state.db, id.get()).await?))
}

/// Every company.
#[utoipa::path(get, path = "/api/companies", tag = "companies", responses((status = 200, description = "The companies", body = Vec<CompanyView>)))]
#[tracing::instrument(skip(state))]
async fn list_companies(State(state): State<AppState>) -> ApiResult<Vec<CompanyView>> {
    Ok(Json(companies::list(&state.db).await?))
}

/// Adds a company.
#[utoipa::path(post, path = "/api/companies", tag = "companies", request_body = CreateCompany, responses((status = 201, description = "Created", body = CompanyView)))]
#[tracing::instrument(skip(state, req))]
async fn create_company(
    State(state): State<AppState>,
    Json(req): Json<CreateCompany>,
) -> Result<(StatusCode, Json<CompanyView>), ServiceError> {
    Ok((
        StatusCode::CREATED,
        Json(companies::create(&state.db, &req.name).await?),
    ))
}

/// The initiated registrations (provider side).
#[utoipa::path(get, path = "/api/invitations", tag = "registration", responses((status = 200, description = "The registrations", body = Vec<InvitationView>)))]
#[tracing::instrument(skip(state))]
async fn list_invitations(State(state): State<AppState>) -> ApiResult<Vec<InvitationView>> {
    Ok(Json(invitations::list(&state).await?))
}

/// Initiates a registration: the named contact is sent a "Connect with Impact IDI" link.
#[utoipa::path(post, path = "/api/invitations", tag = "registration", request_body = InvitationRequest, responses((status = 201, description = "Initiated", body = InvitationView)))]
#[tracing::instrument(skip(state, req))]
async fn issue_invitation(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationView>), ServiceError> {
    Ok((
        StatusCode::CREATED,
        Json(
            invitations::issue(
                &state,
                &req.email,
                &req.company,
                req.provider_url.as_deref(),
                &user.email,
            )
            .await?,
        ),
    ))
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// What a registration link opens: the connection form's pre-populated values.
#[utoipa::path(get, path = "/api/registration", tag = "registration", params(("token" = String, Query, description = "The token of the registration link")), responses((status = 200, description = "The link's values", body = RegistrationLinkView)))]
#[tracing::instrument(skip_all)]
async fn open_registration(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<RegistrationLinkView> {
    Ok(Json(invitations::open(&state, &q.token).await?))
}

/// Ask for a fresh registration link.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResendRequest {
    email: String,
}

/// A request taken; what happens next is in `message`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    message: String,
}

/// Sends a fresh registration link to an address that has a registration.
#[utoipa::path(post, path = "/api/registration/resend", tag = "registration", request_body = ResendRequest, responses((status = 202, description = "Accepted (the same answer whether or not the address has one)", body = Accepted)))]
#[tracing::instrument(skip_all)]
async fn resend_registration(
    State(state): State<AppState>,
    Json(req): Json<ResendRequest>,
) -> Result<(StatusCode, Json<Accepted>), ServiceError> {
    invitations::resend(&state, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message: "If this address has a registration, a fresh link is on its way to it.".into(),
        }),
    ))
}

/// The emails the app sent (or would have sent without a relay).
#[utoipa::path(get, path = "/api/outbox", tag = "outbox", responses((status = 200, description = "The messages, newest first", body = Vec<OutboxMessage>)))]
#[tracing::instrument(skip(state))]
async fn list_outbox(State(state): State<AppState>) -> ApiResult<Vec<OutboxMessage>> {
    Ok(Json(outbox::list(&state.db).await?))
}

/// Every user.
#[utoipa::path(get, path = "/api/users", tag = "users", responses((status = 200, description = "The users", body = Vec<UserView>)))]
#[tracing::instrument(skip(state))]
async fn list_users(State(state): State<AppState>) -> ApiResult<Vec<UserView>> {
    Ok(Json(accounts::list_users(&state.db).await?))
}

/// Adds a user with roles.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser, responses((status = 201, description = "Created", body = UserView)))]
#[tracing::instrument(skip(state, new), fields(email = %new.email))]
async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ServiceError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create_user(&state.db, &new, &user.email).await?),
    ))
}

/// Changes a user's roles or disables them (their sessions and streams end).
#[utoipa::path(put, path = "/api/users/{id}", tag = "users", params(("id" = i64, Path, description = "The user's id")), request_body = UserChange, responses((status = 200, description = "Changed", body = UserView)))]
#[tracing::instrument(skip(state, change))]
async fn change_user(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    Json(change): Json<UserChange>,
) -> ApiResult<UserView> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ServiceError::NotFound(format!("There is no user \"{id}\".")))?;
    Ok(Json(
        accounts::change_user_and_streams(&state, id, &change, &user).await?,
    ))
}

/// The audit log, newest first (500 entries at most).
#[utoipa::path(get, path = "/api/audit", tag = "audit", responses((status = 200, description = "The entries", body = Vec<AuditEntry>)))]
#[tracing::instrument(skip(state))]
async fn list_audit(State(state): State<AppState>) -> ApiResult<Vec<AuditEntry>> {
    Ok(Json(audit::list(&state.db, 500).await?))
}

/// The health dashboard of a connection: latest result of each check, score, runs.
#[utoipa::path(get, path = "/api/connections/{id}/health", tag = "scan", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "The dashboard", body = HealthView)))]
#[tracing::instrument(skip(state))]
async fn connection_health(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<HealthView> {
    Ok(Json(app::server::scan::health(&state, id.get()).await?))
}

/// Runs one check of the pre-onboarding scan again.
#[utoipa::path(post, path = "/api/connections/{id}/checks/{check}/rescan", tag = "scan", params(("id" = i64, Path, description = "The connection's id"), ("check" = String, Path, description = "The check's id, as `CheckResult.check_id` names it")), responses((status = 200, description = "The run", body = ScanRunView)))]
#[tracing::instrument(skip(state))]
async fn rescan_check(
    State(state): State<AppState>,
    id: ConnectionPath,
    Path((_, check)): Path<(String, String)>,
) -> ApiResult<ScanRunView> {
    Ok(Json(
        app::server::scan::rescan_check(&state, id.get(), &check).await?,
    ))
}

/// Where to send the named contact to authorise the connection at the provider.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthorizeUrl {
    authorize_url: String,
}

/// "Connect to provider": where to send the named contact to authorise.
#[utoipa::path(post, path = "/api/connections/{id}/connect", tag = "connections", params(("id" = i64, Path, description = "The connection's id")), responses((status = 200, description = "Where to send the named contact", body = AuthorizeUrl)))]
#[tracing::instrument(skip(state, user))]
async fn connect_to_provider(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
) -> ApiResult<AuthorizeUrl> {
    let url = app::server::commands::connect(&state, id.get(), &user).await?;
    Ok(Json(AuthorizeUrl { authorize_url: url }))
}

#[derive(Deserialize)]
pub struct AuthorizedQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    state: String,
}

/// The provider's redirect back after the named contact allowed (or denied) access.
#[tracing::instrument(skip(state, user, q))]
pub async fn authorized(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: Result<ConnectionPath, ServiceError>,
    Query(q): Query<AuthorizedQuery>,
) -> axum::response::Response {
    let Ok(id) = id.map(|id| id.get()) else {
        return axum::response::Redirect::to("/connections").into_response();
    };
    let outcome = app::server::onboarding::authorized(
        &state,
        id,
        q.code.as_deref(),
        q.error.as_deref(),
        &q.state,
        &user.email,
    )
    .await;
    match outcome {
        Ok(_) => axum::response::Redirect::to(&format!("/connections/{id}")).into_response(),
        // A refused answer (a second tab, a replay, a denial) is a plain page with its own
        // status, never a redirect that looks like success.
        Err(e) => refused_page(e.status(), &e.to_api().message, id),
    }
}

fn refused_page(
    status: axum::http::StatusCode,
    message: &str,
    id: i64,
) -> axum::response::Response {
    let escaped: String = message
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect();
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorisation not accepted</title>\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body><main><section class=\"card\">\
         <h1>Authorisation not accepted</h1><p>{escaped}</p><p><a href=\"/connections/{id}\">Back to the connection</a></p>\
         </section></main></body></html>",
        css = app::STYLESHEET,
    );
    (status, axum::response::Html(body)).into_response()
}
