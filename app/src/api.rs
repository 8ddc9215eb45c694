//! Server functions the UI calls. Each is a thin wrapper over the same service layer as the REST
//! API, so the rules are enforced in one place; during SSR they run in-process.
use leptos::prelude::*;
use leptos::server_fn::{
    codec::Post,
    error::{FromServerFnError, ServerFnErrorErr},
    Bytes, ContentType, Decodes, Encodes, Format, FormatType,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::model::{
    ApiError, AuditEntry, CompanyView, ConnectionAction, ConnectionView, CreateConnection,
    CurrentUser, HistoryEntry, InvitationView, NewUser, OutboxMessage, RegistrationLinkView,
    UpdateConnection, UserChange, UserView,
};

/// The error code of a server function call whose arguments could not be read.
pub const BAD_ARGUMENTS: &str = "bad_arguments";

/// Server function results (and errors) as JSON, the same bytes and content type as server_fn's
/// `Json`, but read from text with `serde_json::from_str`, as Leptos reads the resources the server
/// put in the page. server_fn's own `Json` reads bytes (`from_slice`), which gave the bundle a
/// second copy of every `Deserialize` impl, one per reader.
pub struct JsonText;

pub type PostJsonText = Post<JsonText>;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde::de::Error::custom)?;
        serde_json::from_str(text)
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonText;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // Arguments the server could not read are the caller's mistake (the server answers 400
        // for this code), not a network failure.
        if let ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) = value {
            return ApiError {
                code: BAD_ARGUMENTS.into(),
                message: format!("The request's arguments could not be read ({value})."),
                field: None,
            };
        }
        ApiError {
            code: "transport".into(),
            message: format!(
                "Could not reach the server ({value}). Check your connection and try again."
            ),
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

/// The signed-in user, put on the request by the server's guard.
#[cfg(feature = "ssr")]
fn user() -> Result<CurrentUser, ApiError> {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<CurrentUser>().cloned())
        .ok_or_else(|| ApiError {
            code: "unauthorized".into(),
            message: "Sign in first.".into(),
            field: None,
        })
}

/// Who the history and audit record as having acted.
#[cfg(feature = "ssr")]
fn actor() -> Result<String, ApiError> {
    user().map(|u| u.email)
}

#[cfg(feature = "ssr")]
use crate::server::error::to_user;

#[server(prefix = "/fn", endpoint = "list_connections", output = PostJsonText)]
pub async fn list_connections() -> Result<Vec<ConnectionView>, ApiError> {
    crate::server::connections::list(&state()?.db)
        .await
        .map_err(to_user)
}

/// The home page's overview: each connection with its open issues, and Guided Setup's progress.
#[server(prefix = "/fn", endpoint = "home_overview", output = PostJsonText)]
pub async fn home_overview() -> Result<crate::model::HomeView, ApiError> {
    crate::server::overview::home(&state()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "get_connection", output = PostJsonText)]
pub async fn get_connection(id: i64) -> Result<ConnectionView, ApiError> {
    crate::server::connections::get(&state()?.db, id)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "connection_history", output = PostJsonText)]
pub async fn connection_history(id: i64) -> Result<Vec<HistoryEntry>, ApiError> {
    crate::server::connections::history(&state()?.db, id)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "save_new_connection", output = PostJsonText)]
pub async fn save_new_connection(req: CreateConnection) -> Result<ConnectionView, ApiError> {
    crate::server::commands::create(&state()?, &req, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "save_connection", output = PostJsonText)]
pub async fn save_connection(id: i64, req: UpdateConnection) -> Result<ConnectionView, ApiError> {
    crate::server::commands::save(&state()?, id, &req, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "act_on_connection", output = PostJsonText)]
pub async fn act_on_connection(id: i64, req: ConnectionAction) -> Result<ConnectionView, ApiError> {
    crate::server::commands::act(&state()?, id, &req, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "off_board_connection", output = PostJsonText)]
pub async fn off_board_connection(
    id: i64,
    req: crate::model::OffBoardConnection,
) -> Result<ConnectionView, ApiError> {
    crate::server::offboard::off_board(&state()?, id, &req, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "re_register_connection", output = PostJsonText)]
pub async fn re_register_connection(
    id: i64,
    req: crate::model::ReRegisterConnection,
) -> Result<ConnectionView, ApiError> {
    crate::server::reregister::re_register(&state()?, id, &req, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "synced_settings", output = PostJsonText)]
pub async fn synced_settings(id: i64) -> Result<Vec<crate::model::SyncedGroup>, ApiError> {
    crate::server::synced::list(&state()?, id)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "list_companies", output = PostJsonText)]
pub async fn list_companies() -> Result<Vec<CompanyView>, ApiError> {
    crate::server::companies::list(&state()?.db)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "list_invitations", output = PostJsonText)]
pub async fn list_invitations() -> Result<Vec<InvitationView>, ApiError> {
    crate::server::invitations::list(&state()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "issue_invitation", output = PostJsonText)]
pub async fn issue_invitation(
    email: String,
    company: String,
    provider_url: Option<String>,
) -> Result<InvitationView, ApiError> {
    crate::server::invitations::issue(
        &state()?,
        &email,
        &company,
        provider_url.as_deref(),
        &actor()?,
    )
    .await
    .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "open_registration", output = PostJsonText)]
pub async fn open_registration(token: String) -> Result<RegistrationLinkView, ApiError> {
    crate::server::invitations::open(&state()?, &token)
        .await
        .map_err(to_user)
}

/// The connection already made to a provider URL, if any: the link then resumes it.
#[server(prefix = "/fn", endpoint = "connection_for_url", output = PostJsonText)]
pub async fn connection_for_url(url: String) -> Result<Option<ConnectionView>, ApiError> {
    crate::server::connections::find_by_url(&state()?.db, &url)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "resend_registration", output = PostJsonText)]
pub async fn resend_registration(email: String) -> Result<String, ApiError> {
    crate::server::invitations::resend(&state()?, &email)
        .await
        .map_err(to_user)?;
    Ok("If this address has a registration, a fresh link is on its way to it.".into())
}

#[server(prefix = "/fn", endpoint = "list_outbox", output = PostJsonText)]
pub async fn list_outbox() -> Result<Vec<OutboxMessage>, ApiError> {
    crate::server::outbox::list(&state()?.db)
        .await
        .map_err(to_user)
}

/// The signed-in user, or None.
#[server(prefix = "/fn", endpoint = "me", output = PostJsonText)]
pub async fn me() -> Result<Option<CurrentUser>, ApiError> {
    Ok(user().ok())
}

#[server(prefix = "/fn", endpoint = "list_audit", output = PostJsonText)]
pub async fn list_audit() -> Result<Vec<AuditEntry>, ApiError> {
    crate::server::audit::list(&state()?.db, 500)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "list_users", output = PostJsonText)]
pub async fn list_users() -> Result<Vec<UserView>, ApiError> {
    crate::server::accounts::list_users(&state()?.db)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "create_user", output = PostJsonText)]
pub async fn create_user(new: NewUser) -> Result<UserView, ApiError> {
    crate::server::accounts::create_user(&state()?.db, &new, &actor()?)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "change_user", output = PostJsonText)]
pub async fn change_user(id: i64, change: UserChange) -> Result<UserView, ApiError> {
    crate::server::accounts::change_user_and_streams(&state()?, id, &change, &user()?)
        .await
        .map_err(to_user)
}

// ---- Health and onboarding ----

/// An issue's detail page.
#[server(prefix = "/fn", endpoint = "issue_detail", output = PostJsonText)]
pub async fn issue_detail(id: i64, issue: String) -> Result<crate::model::IssueDetail, ApiError> {
    crate::server::issues::detail(&state()?, id, &issue)
        .await
        .map_err(to_user)
}

/// Assign to me, Follow, Mute, a note… on an issue.
#[server(prefix = "/fn", endpoint = "act_on_issue", output = PostJsonText)]
pub async fn act_on_issue(
    id: i64,
    issue: String,
    command: crate::model::IssueCommand,
) -> Result<crate::model::IssueWork, ApiError> {
    crate::server::issues::act(&state()?, id, &issue, command, &user()?)
        .await
        .map_err(to_user)
}

/// The health dashboard across connections, the tabs' connections filtered and paged by `query`.
#[server(prefix = "/fn", endpoint = "health_dashboard", output = PostJsonText)]
pub async fn health_dashboard(
    // No filter and the first page send nothing at all: absent is the default.
    #[server(default)] query: crate::model::dashboard_page::DashboardQuery,
) -> Result<crate::model::dashboard::DashboardView, ApiError> {
    crate::server::dashboard::view(&state()?, &query)
        .await
        .map_err(to_user)
}

#[server(prefix = "/fn", endpoint = "connection_health", output = PostJsonText)]
pub async fn connection_health(id: i64) -> Result<crate::model::HealthView, ApiError> {
    crate::server::scan::health(&state()?, id)
        .await
        .map_err(to_user)
}

/// Validate & Resolve: re-runs one check now.
#[server(prefix = "/fn", endpoint = "rescan_check", output = PostJsonText)]
pub async fn rescan_check(
    id: i64,
    check_id: String,
) -> Result<crate::model::ScanRunView, ApiError> {
    crate::server::scan::rescan_check(&state()?, id, &check_id)
        .await
        .map_err(to_user)
}

/// "Connect to provider": the provider's authorisation page to send the named contact to.
#[server(prefix = "/fn", endpoint = "connect_to_provider", output = PostJsonText)]
pub async fn connect_to_provider(id: i64) -> Result<String, ApiError> {
    crate::server::commands::connect(&state()?, id, &user()?)
        .await
        .map_err(to_user)
}

// ---- Guided Setup ----

#[server(prefix = "/fn", endpoint = "guided_setup", output = PostJsonText)]
pub async fn guided_setup() -> Result<crate::model::GuidedSetupView, ApiError> {
    crate::server::guided::view(&state()?)
        .await
        .map_err(to_user)
}

/// "Mark Complete" on one activity (Impact app admins; refused with the reason when not ready).
#[server(prefix = "/fn", endpoint = "mark_complete", output = PostJsonText)]
pub async fn mark_complete(activity: String) -> Result<crate::model::GuidedSetupView, ApiError> {
    crate::server::guided::mark_complete(&state()?, &activity, &user()?)
        .await
        .map_err(to_user)
}

/// "Verify the connection": a real round trip; a failed run is a result, not an error.
#[server(prefix = "/fn", endpoint = "verify_connection", output = PostJsonText)]
pub async fn verify_connection() -> Result<crate::model::VerificationView, ApiError> {
    crate::server::verify::verify_connection(&state()?, &user()?)
        .await
        .map_err(to_user)
}

/// "Verify Impact data connection": the provider's data sample.
#[server(prefix = "/fn", endpoint = "verify_data", output = PostJsonText)]
pub async fn verify_data() -> Result<crate::model::VerificationView, ApiError> {
    crate::server::verify::verify_data(&state()?, &user()?)
        .await
        .map_err(to_user)
}

// ---- Data migration ----

/// "Start data migration": copies the provider's tables into this instance (IDI admins).
#[server(prefix = "/fn", endpoint = "start_migration", output = PostJsonText)]
pub async fn start_migration() -> Result<crate::model::MigrationView, ApiError> {
    crate::server::migration::start(&state()?, &user()?)
        .await
        .map_err(to_user)
}

/// Cancels the running data migration (IDI admins); the records copied so far stay.
#[server(prefix = "/fn", endpoint = "cancel_migration", output = PostJsonText)]
pub async fn cancel_migration() -> Result<crate::model::MigrationView, ApiError> {
    crate::server::migration::cancel(&state()?, &user()?)
        .await
        .map_err(to_user)
}
