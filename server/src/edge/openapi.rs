//! The REST API's OpenAPI 3.1 document, made from the handlers' own `#[utoipa::path]`
//! annotations and the shared DTOs' `ToSchema` derives, and the two routes that serve it: the
//! JSON document and a reference page rendered from it (`api_reference`). Who may call each
//! operation is not written in the annotations: it is read from the policy table, the same one
//! the guard enforces, so the document cannot promise another access than the server applies.
use axum::{
    http::{header, HeaderValue, Method},
    response::{Html, IntoResponse, Response},
};
use utoipa::{
    openapi::{
        path::Operation,
        security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme},
        Content, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi,
};

use app::model::{Access, ApiError, ConnectionEvent};

use super::{api, api_reference, auth, dashboard, guided, issues, lifecycle, policy, stream};

/// The document's own address (and the reference page's), both public.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
pub const REFERENCE_PATH: &str = "/api/docs";

/// The name of the session-cookie security scheme in the document.
const SESSION: &str = "session_cookie";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Impact Connect API",
        description = "The JSON API of Impact Connect: provider connections, registrations, \
            the pre-onboarding scan, Guided Setup, users and the audit log. Sign in with \
            `POST /api/auth/login`; the answer sets the `impact_session` cookie, which every \
            guarded operation needs. Writes from a browser must come from the app's own origin \
            (`Origin` header). Every error answers with the same JSON body, `ApiError`."
    ),
    paths(
        auth::login_json,
        auth::logout,
        auth::me,
        api::list_connections,
        api::create_connection,
        api::get_connection,
        api::update_connection,
        api::act_on_connection,
        lifecycle::off_board_connection,
        lifecycle::re_register_connection,
        lifecycle::synced_settings,
        api::connection_history,
        api::connection_health,
        api::rescan_check,
        api::connect_to_provider,
        stream::events_stream,
        stream::changes_stream,
        api::list_companies,
        api::create_company,
        api::list_invitations,
        api::issue_invitation,
        api::open_registration,
        api::resend_registration,
        api::list_outbox,
        api::list_users,
        api::create_user,
        api::change_user,
        api::list_audit,
        guided::guided_setup,
        guided::mark_complete,
        guided::verify_connection,
        guided::verify_data,
        guided::start_migration,
        guided::cancel_migration,
        guided::latest_migration,
        dashboard::health_dashboard,
        issues::issue_detail,
        issues::act_on_issue,
        issues::issue_report,
        document,
        reference,
    ),
    // Schemas no operation names as its body: the error body and the stream's events.
    components(schemas(ApiError, ConnectionEvent)),
    modifiers(&Guarded),
    tags(
        (name = "auth", description = "Signing in and out"),
        (name = "connections", description = "Provider connections and their state machine"),
        (name = "scan", description = "The pre-onboarding checks and the health dashboard"),
        (name = "companies", description = "Companies"),
        (name = "registration", description = "Initiated registrations and their links"),
        (name = "outbox", description = "Emails sent"),
        (name = "users", description = "Users and roles"),
        (name = "audit", description = "Audit log"),
        (name = "guided-setup", description = "Guided Setup and the verifications"),
        (name = "reference", description = "This document"),
    )
)]
struct ApiDoc;

/// The document, built once per process (it never changes while the process runs).
pub fn document_value() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// Adds what every operation shares: the error answers, and, for the guarded ones (by the
/// policy table), the session cookie and the 401/403 answers with the role needed.
struct Guarded;

impl Modify for Guarded {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::COOKIE,
                "The session cookie `POST /api/auth/login` sets (HttpOnly, SameSite=Lax).",
            ))),
        );
        for (name, description) in [
            (
                "ClientError",
                "A client mistake: the request, a value or the record's state.",
            ),
            (
                "ServerError",
                "The server or the provider failed; the message says what to do.",
            ),
            ("Unauthorized", "No session, or it ended: sign in first."),
            ("Forbidden", "The session's roles do not allow this."),
        ] {
            components.responses.insert(
                name.to_string(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("ApiError"))),
                        )
                        .build(),
                ),
            );
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
            ];
            for (method, op) in operations {
                if let Some(op) = op {
                    describe_access(op, policy::access_for(&method, path));
                }
            }
        }
    }
}

fn describe_access(op: &mut Operation, access: Access) {
    let answer = |name: &str| RefOr::Ref(Ref::from_response_name(name));
    let responses = &mut op.responses.responses;
    responses.insert("4XX".into(), answer("ClientError"));
    responses.insert("5XX".into(), answer("ServerError"));
    let needs = match access {
        Access::Public => return,
        Access::View => "any role (impact_user, idi_admin or impact_admin)",
        Access::ManageConnection => "the idi_admin role",
        Access::Administer => "the impact_admin role",
    };
    responses.insert("401".into(), answer("Unauthorized"));
    responses.insert("403".into(), answer("Forbidden"));
    op.security = Some(vec![SecurityRequirement::new(
        SESSION,
        Vec::<String>::new(),
    )]);
    let said = op.description.take().unwrap_or_default();
    let sep = if said.is_empty() { "" } else { "\n\n" };
    op.description = Some(format!("{said}{sep}Needs a session with {needs}."));
}

/// This document, as JSON. Public: it describes the routes, not anyone's data.
#[utoipa::path(get, path = "/api/openapi.json", tag = "reference",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> Response {
    axum::Json(document_value()).into_response()
}

/// This document as a reference page for people (no scripts: rendered on the server).
#[utoipa::path(get, path = "/api/docs", tag = "reference",
    responses((status = 200, description = "The reference page", content_type = "text/html")))]
pub async fn reference() -> Response {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let page = PAGE.get_or_init(|| api_reference::render(document_value()));
    let mut res = Html(page.as_str()).into_response();
    // The page runs no script and loads nothing but the app's stylesheet, so it gets a policy
    // stricter than the app's (`security_headers` keeps a policy a handler has set).
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'",
        ),
    );
    res
}
