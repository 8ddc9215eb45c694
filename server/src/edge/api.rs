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

use super::json::Json;
use super::path_id::ConnectionPath;
use super::routes::{Recorder, RouteSpec};
use app::{
    model::{
        ApiError, ConnectionAction, CreateCompany, CreateConnection, CurrentUser,
        InvitationRequest, NewUser, UpdateConnection, UserChange,
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
        .route("/guided-setup", &[M::GET], get(guided_setup))
        .route(
            "/guided-setup/{activity}/complete",
            &[M::POST],
            post(mark_complete),
        )
        .route(
            "/guided-setup/verify-connection",
            &[M::POST],
            post(verify_connection),
        )
        .route("/guided-setup/verify-data", &[M::POST], post(verify_data));
    let router = r
        .router
        .fallback(api_not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    (router, r.table)
}

type ApiResult<T> = Result<Json<T>, ServiceError>;

async fn api_not_found() -> Response {
    let body = ApiError {
        code: "not_found".into(),
        message: "There is no API endpoint at this address.".into(),
        field: None,
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

#[tracing::instrument(skip(state))]
async fn list_connections(
    State(state): State<AppState>,
) -> ApiResult<Vec<app::model::ConnectionView>> {
    Ok(Json(connections::list(&state.db).await?))
}

#[tracing::instrument(skip(state))]
async fn get_connection(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<app::model::ConnectionView> {
    Ok(Json(connections::get(&state.db, id.get()).await?))
}

#[tracing::instrument(skip(state, req))]
async fn create_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<CreateConnection>,
) -> Result<(StatusCode, Json<app::model::ConnectionView>), ServiceError> {
    let created = commands::create(&state, &req, &user.email).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[tracing::instrument(skip(state, req))]
async fn update_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<UpdateConnection>,
) -> ApiResult<app::model::ConnectionView> {
    Ok(Json(
        commands::save(&state, id.get(), &req, &user.email).await?,
    ))
}

#[tracing::instrument(skip(state, req))]
async fn act_on_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    id: ConnectionPath,
    Json(req): Json<ConnectionAction>,
) -> ApiResult<app::model::ConnectionView> {
    Ok(Json(
        commands::act(&state, id.get(), &req, &user.email).await?,
    ))
}

#[tracing::instrument(skip(state))]
async fn connection_history(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<Vec<app::model::HistoryEntry>> {
    Ok(Json(connections::history(&state.db, id.get()).await?))
}

#[tracing::instrument(skip(state))]
async fn list_companies(State(state): State<AppState>) -> ApiResult<Vec<app::model::CompanyView>> {
    Ok(Json(companies::list(&state.db).await?))
}

#[tracing::instrument(skip(state, req))]
async fn create_company(
    State(state): State<AppState>,
    Json(req): Json<CreateCompany>,
) -> Result<(StatusCode, Json<app::model::CompanyView>), ServiceError> {
    Ok((
        StatusCode::CREATED,
        Json(companies::create(&state.db, &req.name).await?),
    ))
}

#[tracing::instrument(skip(state))]
async fn list_invitations(
    State(state): State<AppState>,
) -> ApiResult<Vec<app::model::InvitationView>> {
    Ok(Json(invitations::list(&state).await?))
}

#[tracing::instrument(skip(state, req))]
async fn issue_invitation(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(req): Json<InvitationRequest>,
) -> Result<(StatusCode, Json<app::model::InvitationView>), ServiceError> {
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

#[tracing::instrument(skip_all)]
async fn open_registration(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<app::model::RegistrationLinkView> {
    Ok(Json(invitations::open(&state, &q.token).await?))
}

#[derive(Deserialize)]
struct ResendRequest {
    email: String,
}

#[derive(Serialize)]
struct Accepted {
    message: String,
}

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

#[tracing::instrument(skip(state))]
async fn list_outbox(State(state): State<AppState>) -> ApiResult<Vec<app::model::OutboxMessage>> {
    Ok(Json(outbox::list(&state.db).await?))
}

#[tracing::instrument(skip(state))]
async fn list_users(State(state): State<AppState>) -> ApiResult<Vec<app::model::UserView>> {
    Ok(Json(accounts::list_users(&state.db).await?))
}

#[tracing::instrument(skip(state, new), fields(email = %new.email))]
async fn create_user(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<app::model::UserView>), ServiceError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create_user(&state.db, &new, &user.email).await?),
    ))
}

#[tracing::instrument(skip(state, change))]
async fn change_user(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    Json(change): Json<UserChange>,
) -> ApiResult<app::model::UserView> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ServiceError::NotFound(format!("There is no user \"{id}\".")))?;
    Ok(Json(
        accounts::change_user_and_streams(&state, id, &change, &user).await?,
    ))
}

#[tracing::instrument(skip(state))]
async fn list_audit(State(state): State<AppState>) -> ApiResult<Vec<app::model::AuditEntry>> {
    Ok(Json(audit::list(&state.db, 500).await?))
}

#[tracing::instrument(skip(state))]
async fn connection_health(
    State(state): State<AppState>,
    id: ConnectionPath,
) -> ApiResult<app::model::HealthView> {
    Ok(Json(app::server::scan::health(&state, id.get()).await?))
}

#[tracing::instrument(skip(state))]
async fn rescan_check(
    State(state): State<AppState>,
    id: ConnectionPath,
    Path((_, check)): Path<(String, String)>,
) -> ApiResult<app::model::ScanRunView> {
    Ok(Json(
        app::server::scan::rescan_check(&state, id.get(), &check).await?,
    ))
}

#[derive(Serialize)]
struct AuthorizeUrl {
    authorize_url: String,
}

/// "Connect to provider": where to send the named contact to authorise.
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

// ---- Guided Setup ----

#[tracing::instrument(skip(state))]
async fn guided_setup(State(state): State<AppState>) -> ApiResult<app::model::GuidedSetupView> {
    Ok(Json(app::server::guided::view(&state).await?))
}

#[tracing::instrument(skip(state, user))]
async fn mark_complete(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    Path(activity): Path<String>,
) -> ApiResult<app::model::GuidedSetupView> {
    Ok(Json(
        app::server::guided::mark_complete(&state, &activity, &user).await?,
    ))
}

/// A failed verification is a stored result: 200 with `ok: false` and what to do.
#[tracing::instrument(skip(state, user))]
async fn verify_connection(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<app::model::VerificationView> {
    Ok(Json(
        app::server::verify::verify_connection(&state, &user).await?,
    ))
}

#[tracing::instrument(skip(state, user))]
async fn verify_data(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> ApiResult<app::model::VerificationView> {
    Ok(Json(app::server::verify::verify_data(&state, &user).await?))
}
