//! Server functions the UI calls. Each is a thin wrapper over the same service layer as the REST
//! API, so the rules are enforced in one place; during SSR they run in-process.
use leptos::prelude::*;
use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

use crate::model::{
    ApiError, CompanyView, ConnectionAction, ConnectionView, CreateConnection, HistoryEntry,
    InvitationView, OutboxMessage, RegistrationLinkView, UpdateConnection,
};

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError {
            code: "transport".into(),
            message: format!("Could not reach the server ({value}). Check your connection and try again."),
            field: None,
        }
    }
}

#[cfg(feature = "ssr")]
fn state() -> Result<crate::server::AppState, ApiError> {
    use_context::<crate::server::AppState>().ok_or_else(|| ApiError {
        code: "unexpected".into(),
        message: "The server is not ready.".into(),
        field: None,
    })
}

#[cfg(feature = "ssr")]
const ACTOR: &str = "administrator";

#[cfg(feature = "ssr")]
use crate::server::error::to_user;

#[server(prefix = "/fn")]
pub async fn list_connections() -> Result<Vec<ConnectionView>, ApiError> {
    crate::server::connections::list(&state()?.db).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn get_connection(id: i64) -> Result<ConnectionView, ApiError> {
    crate::server::connections::get(&state()?.db, id).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn connection_history(id: i64) -> Result<Vec<HistoryEntry>, ApiError> {
    crate::server::connections::history(&state()?.db, id).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn save_new_connection(req: CreateConnection) -> Result<ConnectionView, ApiError> {
    crate::server::connections::create(&state()?, &req, ACTOR).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn save_connection(id: i64, req: UpdateConnection) -> Result<ConnectionView, ApiError> {
    crate::server::connections::update(&state()?, id, &req, ACTOR).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn act_on_connection(id: i64, req: ConnectionAction) -> Result<ConnectionView, ApiError> {
    crate::server::connections::act(&state()?, id, &req, ACTOR).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn list_companies() -> Result<Vec<CompanyView>, ApiError> {
    crate::server::companies::list(&state()?.db).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn list_invitations() -> Result<Vec<InvitationView>, ApiError> {
    crate::server::invitations::list(&state()?).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn issue_invitation(email: String, company: String) -> Result<InvitationView, ApiError> {
    crate::server::invitations::issue(&state()?, &email, &company).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn open_registration(token: String) -> Result<RegistrationLinkView, ApiError> {
    crate::server::invitations::open(&state()?, &token).await.map_err(to_user)
}

/// The connection already made to a provider URL, if any: the link then resumes it.
#[server(prefix = "/fn")]
pub async fn connection_for_url(url: String) -> Result<Option<ConnectionView>, ApiError> {
    crate::server::connections::find_by_url(&state()?.db, &url).await.map_err(to_user)
}

#[server(prefix = "/fn")]
pub async fn resend_registration(email: String) -> Result<String, ApiError> {
    crate::server::invitations::resend(&state()?, &email).await.map_err(to_user)?;
    Ok("If this address has a registration, a fresh link is on its way to it.".into())
}

#[server(prefix = "/fn")]
pub async fn list_outbox() -> Result<Vec<OutboxMessage>, ApiError> {
    crate::server::outbox::list(&state()?.db).await.map_err(to_user)
}
