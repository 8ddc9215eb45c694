//! Which access each route needs: one table for the whole server, read by the guard middleware
//! and enumerated by the route-table test. Unknown routes default to the strictest level.
use axum::http::Method;

use app::model::Access;

/// Where a route lives, which decides how a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// JSON: 401/403 with `{code, message}`.
    Api,
    /// Server-rendered pages: a redirect to sign in, or a 403 page.
    Page,
}

pub fn surface(path: &str) -> Surface {
    if path.starts_with("/api/") || path.starts_with("/fn/") || path.starts_with("/inbound/") {
        Surface::Api
    } else {
        Surface::Page
    }
}

/// Server functions by endpoint name (see `app::api`).
pub const SERVER_FNS: &[(&str, Access)] = &[
    ("me", Access::Public),
    ("list_connections", Access::View),
    ("home_overview", Access::View),
    ("get_connection", Access::View),
    ("connection_history", Access::View),
    ("synced_settings", Access::View),
    ("connection_for_url", Access::View),
    ("list_companies", Access::View),
    ("open_registration", Access::View),
    // Sends a fresh registration link: an IDI admin's act, like issuing one.
    ("resend_registration", Access::ManageConnection),
    ("list_audit", Access::View),
    ("save_new_connection", Access::ManageConnection),
    ("save_connection", Access::ManageConnection),
    ("act_on_connection", Access::ManageConnection),
    ("off_board_connection", Access::ManageConnection),
    ("re_register_connection", Access::ManageConnection),
    ("list_invitations", Access::ManageConnection),
    ("issue_invitation", Access::ManageConnection),
    ("list_outbox", Access::ManageConnection),
    ("connection_health", Access::View),
    ("health_dashboard", Access::View),
    ("issue_detail", Access::View),
    // Following is anyone's who may look; the service asks more for the other commands.
    ("act_on_issue", Access::View),
    ("rescan_check", Access::ManageConnection),
    ("connect_to_provider", Access::ManageConnection),
    ("list_users", Access::Administer),
    ("create_user", Access::Administer),
    ("change_user", Access::Administer),
    ("guided_setup", Access::View),
    ("mark_complete", Access::Administer),
    ("verify_connection", Access::ManageConnection),
    ("verify_data", Access::ManageConnection),
    ("start_migration", Access::ManageConnection),
    ("cancel_migration", Access::ManageConnection),
];

pub fn access_for(method: &Method, path: &str) -> Access {
    let safe = method == Method::GET || method == Method::HEAD;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["healthz"] | ["readyz"] | ["login"] | ["setup"] | ["favicon.svg"] => Access::Public,
        // Operators only, by their token (IMPACT_METRICS_TOKEN), which the handler checks: no
        // session is asked for, and none is enough (see `edge::metrics`).
        ["metrics"] => Access::Public,
        ["auth", "login"] | ["auth", "logout"] | ["auth", "setup"] => Access::Public,
        // The provider's callbacks are authenticated by the protocol's signature instead.
        ["inbound", ..] => Access::Public,
        ["api", "auth", "login"] | ["api", "auth", "logout"] | ["api", "auth", "me"] => {
            Access::Public
        }
        // The API's description (what the routes are, no one's data): tools and people read it
        // before they have an account.
        ["api", "openapi.json"] | ["api", "docs"] => Access::Public,
        ["fn", name] => SERVER_FNS
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or(Access::Administer),
        ["api", "users", ..] => Access::Administer,
        ["api", "invitations", ..] | ["api", "outbox", ..] => Access::ManageConnection,
        ["api", "registration", "resend"] => Access::ManageConnection,
        ["api", "guided-setup", _, "complete"] => Access::Administer,
        // Following an issue is anyone's who may look; the service asks the IDI admin's role
        // for the commands that change it for everyone (assign, mute, notes).
        ["api", "connections", _, "issues", _] => Access::View,
        // Looking (the registration link, audit, Guided Setup, …) needs any role; changing
        // (Save, actions, verifications, …) the IDI admin's.
        ["api", ..] if safe => Access::View,
        ["api", ..] => Access::ManageConnection,
        // The provider's redirect back: it starts onboarding.
        ["connections", _, "authorized"] => Access::ManageConnection,
        // Pages.
        ["registrations"] | ["outbox"] => Access::ManageConnection,
        ["users"] => Access::Administer,
        _ if safe => Access::View,
        _ => Access::Administer,
    }
}
