use reqwest::{redirect::Policy, Method, StatusCode};
use serde_json::json;

use app::model::Access;
use server::edge::policy;

use crate::both_backends;
use crate::helpers::{
    sign_in_leads_to, signed_in, spawn, Backend, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};

fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Who may use a route, as the product promises it (issue 18): written out here by hand, not
/// read from `server::edge::policy`, so a route reclassified there fails this test.
#[derive(Clone, Copy, Debug)]
enum Allowed {
    /// No session needed.
    Public,
    /// Any of these roles.
    Roles(&'static [&'static str]),
    /// Operators, by the metrics token: 401 without it, whatever session is sent.
    Operator,
}

const VIEW: Allowed = Allowed::Roles(&["impact_user", "idi_admin", "impact_admin"]);
/// Changing connections and registrations.
const IDI: Allowed = Allowed::Roles(&["idi_admin"]);
/// Users and Mark Complete.
const ADMIN: Allowed = Allowed::Roles(&["impact_admin"]);
const PUBLIC: Allowed = Allowed::Public;
const OPERATOR: Allowed = Allowed::Operator;

/// (method, path pattern as the router names it, who may use it). Path parameters are written
/// `{id}` here whether the router says `{id}` or `:id`.
const ACCESS: &[(&str, &str, Allowed)] = &[
    // Operations and signing in.
    ("GET", "/healthz", PUBLIC),
    ("GET", "/readyz", PUBLIC),
    // Prometheus metrics: the operators' token (IMPACT_METRICS_TOKEN), not a session.
    ("GET", "/metrics", OPERATOR),
    ("POST", "/auth/login", PUBLIC),
    ("POST", "/auth/logout", PUBLIC),
    ("POST", "/auth/setup", PUBLIC),
    ("POST", "/api/auth/login", PUBLIC),
    ("POST", "/api/auth/logout", PUBLIC),
    ("GET", "/api/auth/me", PUBLIC),
    // The API's description: no one's data, readable before signing in.
    ("GET", "/api/openapi.json", PUBLIC),
    ("GET", "/api/docs", PUBLIC),
    // The provider's calls: authenticated by their signature (see inbound.rs), not a session.
    ("POST", "/inbound/v1/ping", PUBLIC),
    ("POST", "/inbound/v1/onboarded", PUBLIC),
    ("POST", "/inbound/v1/echo", PUBLIC),
    // The live stream of a connection's events.
    ("GET", "/api/connections/{id}/events", VIEW),
    // Every connection's changes, for the health dashboard.
    ("GET", "/api/health-dashboard/events", VIEW),
    // The provider's redirect back: it starts onboarding.
    ("GET", "/connections/{id}/authorized", IDI),
    // JSON API.
    ("GET", "/api/connections", VIEW),
    ("POST", "/api/connections", IDI),
    ("GET", "/api/connections/{id}", VIEW),
    ("PUT", "/api/connections/{id}", IDI),
    ("POST", "/api/connections/{id}/actions", IDI),
    ("POST", "/api/connections/{id}/off-board", IDI),
    ("POST", "/api/connections/{id}/re-register", IDI),
    ("GET", "/api/connections/{id}/history", VIEW),
    ("GET", "/api/connections/{id}/settings", VIEW),
    ("GET", "/api/companies", VIEW),
    ("POST", "/api/companies", IDI),
    ("GET", "/api/invitations", IDI),
    ("POST", "/api/invitations", IDI),
    ("GET", "/api/registration", VIEW),
    ("POST", "/api/registration/resend", IDI),
    ("GET", "/api/outbox", IDI),
    ("GET", "/api/users", ADMIN),
    ("POST", "/api/users", ADMIN),
    ("PUT", "/api/users/{id}", ADMIN),
    ("GET", "/api/audit", VIEW),
    ("GET", "/api/connections/{id}/health", VIEW),
    ("POST", "/api/connections/{id}/checks/{check}/rescan", IDI),
    ("POST", "/api/connections/{id}/connect", IDI),
    ("GET", "/api/guided-setup", VIEW),
    ("POST", "/api/guided-setup/{activity}/complete", ADMIN),
    ("POST", "/api/guided-setup/verify-connection", IDI),
    ("POST", "/api/guided-setup/verify-data", IDI),
    ("POST", "/api/guided-setup/migration", IDI),
    ("POST", "/api/guided-setup/migration/cancel", IDI),
    ("GET", "/api/connections/{id}/migration", VIEW),
    ("GET", "/api/health-dashboard", VIEW),
    ("GET", "/api/connections/{id}/issues/{issue}", VIEW),
    ("POST", "/api/connections/{id}/issues/{issue}", VIEW),
    ("GET", "/api/connections/{id}/issues/{issue}/report", VIEW),
    // Pages.
    ("GET", "/", VIEW),
    ("GET", "/connections", VIEW),
    ("GET", "/connections/{id}", VIEW),
    ("GET", "/connections/{id}/health", VIEW),
    ("GET", "/connect", VIEW),
    ("GET", "/registrations", IDI),
    ("GET", "/outbox", IDI),
    ("GET", "/login", PUBLIC),
    ("GET", "/setup", PUBLIC),
    ("GET", "/users", ADMIN),
    ("GET", "/audit", VIEW),
    ("GET", "/guided-setup", VIEW),
    ("GET", "/health", VIEW),
    ("GET", "/connections/{id}/issues/{issue}", VIEW),
    ("GET", "/help/{article}", VIEW),
    // Server functions.
    ("POST", "/fn/me", PUBLIC),
    ("POST", "/fn/list_connections", VIEW),
    ("POST", "/fn/home_overview", VIEW),
    ("POST", "/fn/get_connection", VIEW),
    ("POST", "/fn/connection_history", VIEW),
    ("POST", "/fn/synced_settings", VIEW),
    ("POST", "/fn/connection_for_url", VIEW),
    ("POST", "/fn/list_companies", VIEW),
    ("POST", "/fn/open_registration", VIEW),
    ("POST", "/fn/resend_registration", IDI),
    ("POST", "/fn/list_audit", VIEW),
    ("POST", "/fn/save_new_connection", IDI),
    ("POST", "/fn/save_connection", IDI),
    ("POST", "/fn/act_on_connection", IDI),
    ("POST", "/fn/off_board_connection", IDI),
    ("POST", "/fn/re_register_connection", IDI),
    ("POST", "/fn/list_invitations", IDI),
    ("POST", "/fn/issue_invitation", IDI),
    ("POST", "/fn/list_outbox", IDI),
    ("POST", "/fn/connection_health", VIEW),
    ("POST", "/fn/health_dashboard", VIEW),
    ("POST", "/fn/issue_detail", VIEW),
    ("POST", "/fn/act_on_issue", VIEW),
    ("POST", "/fn/rescan_check", IDI),
    ("POST", "/fn/connect_to_provider", IDI),
    ("POST", "/fn/list_users", ADMIN),
    ("POST", "/fn/create_user", ADMIN),
    ("POST", "/fn/change_user", ADMIN),
    ("POST", "/fn/guided_setup", VIEW),
    ("POST", "/fn/mark_complete", ADMIN),
    ("POST", "/fn/verify_connection", IDI),
    ("POST", "/fn/verify_data", IDI),
    ("POST", "/fn/start_migration", IDI),
    ("POST", "/fn/cancel_migration", IDI),
];

const ROLES: [&str; 3] = ["impact_user", "idi_admin", "impact_admin"];

fn pattern(path: &str) -> String {
    path.replace(":id", "{id}")
}

/// A concrete URL path for a pattern. The ids name nothing that exists: the allowed role may get
/// a 404 (or 400/422 for the empty body), which still proves the guard let the request through.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", "424242")
        .replace("{check}", "url")
        .replace("{activity}", "learn")
        .replace("{issue}", "credentials")
        .replace("{article}", "KB-IC-1001")
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

async fn answer(client: &reqwest::Client, app: &TestApp, method: &str, path: &str) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method.clone(), format!("{}{}", app.base, concrete(path)));
    if method != Method::GET {
        req = req.json(&json!({}));
    }
    // A route that never answers is a finding, not a hung suite.
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), req.send())
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 20 s"))
        .expect("request");
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // A live stream that was let in stays open: its status is the answer.
    let streaming = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = if streaming {
        String::new()
    } else {
        tokio::time::timeout(std::time::Duration::from_secs(20), r.text())
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: the body did not end within 20 s"))
            .unwrap_or_default()
    };
    Answer {
        status,
        location,
        body,
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/fn/") || path.starts_with("/inbound/")
}

/// The guard's answer to a request without a session: 401 `unauthorized` for the API, a redirect
/// to sign in for a page.
fn sign_in_demanded(path: &str, a: &Answer) -> bool {
    if is_api(path) {
        // The guard's own words: a handler may answer 401 too (`/api/auth/me`: "Not signed in").
        a.status == StatusCode::UNAUTHORIZED
            && a.body.contains("\"code\":\"unauthorized\"")
            && a.body.contains("Sign in first")
    } else {
        a.status.is_redirection() && a.location.starts_with("/login?next=")
    }
}

both_backends!(
    every_route_answers_as_the_hand_written_access_table_says,
    |app: TestApp| async move {
        // Every route the router serves has a row, and every row is a route it serves.
        let served: std::collections::BTreeSet<(String, String)> = app
            .route_table
            .iter()
            .map(|r| (r.method.to_string(), pattern(&r.path)))
            .collect();
        let written: std::collections::BTreeSet<(String, String)> = ACCESS
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        let missing: Vec<_> = served.difference(&written).collect();
        assert!(
            missing.is_empty(),
            "routes without a row in the access table (add one, with who may use it): {missing:?}"
        );
        let stale: Vec<_> = written.difference(&served).collect();
        assert!(
            stale.is_empty(),
            "rows for routes the router does not serve: {stale:?}"
        );

        let mut users = Vec::new();
        for role in ROLES {
            let email = format!("{role}@example.com");
            app.user_with(&email, &[role]).await;
            let c = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client");
            let r = c
                .post(format!("{}/api/auth/login", app.base))
                .json(&json!({ "email": email, "password": "a long enough password" }))
                .send()
                .await
                .expect("login");
            assert_eq!(r.status(), 200);
            users.push((role, c));
        }

        let (mut refusals, mut admissions) = (0, 0);
        for (method, path, allowed) in ACCESS {
            let anon = answer(&anonymous(), &app, method, path).await;
            match allowed {
                Allowed::Public => {
                    // Public: the guard asks for nobody (the handler may still refuse, as the
                    // inbound calls do for a missing signature, with their own code).
                    assert!(
                        !sign_in_demanded(path, &anon) && anon.status != StatusCode::FORBIDDEN,
                        "{method} {path} is public, but without a session: {} {} {}",
                        anon.status,
                        anon.location,
                        anon.body
                    );
                    admissions += 1;
                }
                Allowed::Operator => {
                    // No role's session opens it: each is asked for the token.
                    for (role, client) in std::iter::once(("nobody", &anonymous()))
                        .chain(users.iter().map(|(r, c)| (*r, c)))
                    {
                        let a = answer(client, &app, method, path).await;
                        assert!(
                            a.status == StatusCode::UNAUTHORIZED
                                && a.body.contains("\"code\":\"unauthorized\"")
                                && a.body.contains("metrics token"),
                            "{method} {path} as {role}: {} {}",
                            a.status,
                            a.body
                        );
                        refusals += 1;
                    }
                }
                Allowed::Roles(roles) => {
                    assert!(
                        sign_in_demanded(path, &anon),
                        "{method} {path} without a session: {} {} {}",
                        anon.status,
                        anon.location,
                        anon.body
                    );
                    refusals += 1;
                    for (role, client) in &users {
                        let a = answer(client, &app, method, path).await;
                        if roles.contains(role) {
                            assert!(
                                a.status != StatusCode::UNAUTHORIZED
                                    && a.status != StatusCode::FORBIDDEN
                                    && !a.location.starts_with("/login"),
                                "{method} {path} as {role} (allowed): {} {} {}",
                                a.status,
                                a.location,
                                a.body
                            );
                            admissions += 1;
                        } else {
                            assert_eq!(
                                a.status,
                                StatusCode::FORBIDDEN,
                                "{method} {path} as {role} (not allowed): {} {}",
                                a.location,
                                a.body
                            );
                            refusals += 1;
                        }
                    }
                }
            }
        }
        assert!(
            refusals > 100 && admissions > 80,
            "only {refusals} refusals and {admissions} admissions checked"
        );
    }
);

#[tokio::test]
async fn the_policy_matches_the_roles_the_product_requires() {
    let post = Method::POST;
    let get = Method::GET;
    assert_eq!(policy::access_for(&get, "/api/connections"), Access::View);
    assert_eq!(policy::access_for(&get, "/connections/3"), Access::View);
    assert_eq!(
        policy::access_for(&post, "/api/connections/3/actions"),
        Access::ManageConnection
    );
    assert_eq!(
        policy::access_for(&Method::PUT, "/api/connections/3"),
        Access::ManageConnection
    );
    assert_eq!(
        policy::access_for(&post, "/api/invitations"),
        Access::ManageConnection
    );
    assert_eq!(
        policy::access_for(&post, "/fn/act_on_connection"),
        Access::ManageConnection
    );
    assert_eq!(policy::access_for(&get, "/users"), Access::Administer);
    assert_eq!(policy::access_for(&post, "/api/users"), Access::Administer);
    assert_eq!(
        policy::access_for(&post, "/fn/not_a_known_function"),
        Access::Administer
    );
    assert_eq!(
        policy::access_for(&post, "/inbound/v1/ping"),
        Access::Public
    );
    assert_eq!(
        policy::access_for(&post, "/api/registration/resend"),
        Access::ManageConnection
    );
    assert_eq!(
        policy::access_for(&post, "/fn/resend_registration"),
        Access::ManageConnection
    );
}

// A path no route serves is refused like the strictest route when it would change something,
// so a route added later without a policy row starts closed.
#[tokio::test]
async fn unknown_paths_that_would_change_something_need_the_strictest_role() {
    let app = spawn(Backend::Sqlite).await;
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let idi = app.user_with("idi@example.com", &["idi_admin"]).await;
    for client in [&viewer, &idi] {
        for path in ["/connections/1", "/no-such-page"] {
            let r = client
                .post(format!("{}{path}", app.base))
                .json(&json!({}))
                .send()
                .await
                .expect("post");
            assert_eq!(r.status(), 403, "POST {path}");
        }
    }
    // Looking at an unknown page needs only a role: it is simply not there.
    let r = viewer
        .get(format!("{}/no-such-page", app.base))
        .send()
        .await
        .expect("get");
    assert_ne!(r.status(), 403);
    // The administrator passes the guard and finds nothing to change there.
    let r = app
        .client
        .post(format!("{}/no-such-page", app.base))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert!(
        r.status() == 404 || r.status() == 405,
        "{}: an administrator is let through to the router, which has no such route",
        r.status()
    );
}

#[tokio::test]
async fn an_impact_user_can_look_but_not_change() {
    let app = spawn(Backend::Sqlite).await;
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let r = app
        .post(
            "/api/connections",
            json!({ "company": "ServiceNow Impact", "registration_token": token }),
        )
        .await;
    let id = r.body["id"].as_i64().expect("id");
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let r = viewer
        .get(format!("{}/api/connections/{id}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let r = viewer
        .post(format!("{}/api/connections/{id}/actions", app.base))
        .json(&json!({ "action": "register", "version": 1 }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["message"].as_str().unwrap_or("").contains("IDI admin"),
        "{body}"
    );
}

#[tokio::test]
async fn a_cross_origin_post_is_refused() {
    let app = spawn(Backend::Sqlite).await;
    let r = app
        .client
        .post(format!("{}/api/invitations", app.base))
        .header("origin", "http://evil.example")
        .json(&json!({ "email": "a@example.com", "company": "Acme" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["code"], "cross_origin");
    assert_eq!(app.get("/api/invitations").await.body, json!([]));
    let same = app.base.clone();
    let r = app
        .client
        .post(format!("{}/api/invitations", app.base))
        .header("origin", same)
        .json(&json!({ "email": "a@example.com", "company": "Acme" }))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn repeated_bad_logins_are_slowed() {
    let app = spawn(Backend::Sqlite).await;
    let c = anonymous();
    let login = |password: &'static str| {
        c.post(format!("{}/api/auth/login", app.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": password }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(login("wrong password!").await.expect("login").status(), 401);
    }
    let r = login("wrong password!").await.expect("login");
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Even the right password waits: a guesser learns nothing while throttled.
    assert_eq!(login(ADMIN_PASSWORD).await.expect("login").status(), 429);
}

#[tokio::test]
async fn a_disabled_users_session_stops_working() {
    let app = spawn(Backend::Sqlite).await;
    let user = app.user_with("idi@example.com", &["idi_admin"]).await;
    assert_eq!(
        user.get(format!("{}/api/connections", app.base))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    let users = app.get("/api/users").await.body;
    let id = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["email"] == "idi@example.com"))
        .expect("user")["id"]
        .as_i64()
        .expect("id");
    let r = app
        .put(
            &format!("/api/users/{id}"),
            json!({ "roles": ["idi_admin"], "disabled": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        user.get(format!("{}/api/connections", app.base))
            .send()
            .await
            .expect("get")
            .status(),
        401
    );
    let r = anonymous()
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({ "email": "idi@example.com", "password": "a long enough password" }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn sessions_are_http_only_and_new_at_every_sign_in() {
    let app = spawn(Backend::Sqlite).await;
    let mut cookies = Vec::new();
    for _ in 0..2 {
        let r = anonymous()
            .post(format!("{}/api/auth/login", app.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login");
        let c = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
        cookies.push(c);
    }
    assert_ne!(cookies[0], cookies[1]);
    // Signing out ends the session on the server.
    let c = signed_in(&app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        c.post(format!("{}/api/auth/logout", app.base))
            .send()
            .await
            .expect("logout")
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{}/api/connections", app.base))
            .send()
            .await
            .expect("get")
            .status(),
        401
    );
}

#[tokio::test]
async fn pages_and_api_carry_security_headers() {
    let app = spawn(Backend::Sqlite).await;
    for path in ["/", "/api/connections", "/login"] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        let h = r.headers();
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let html = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        html.contains("script-src 'self' 'nonce-"),
        "the page declares a nonce-based CSP"
    );
}

#[tokio::test]
async fn a_page_without_a_session_sends_you_to_sign_in_and_back() {
    let app = spawn(Backend::Sqlite).await;
    let r = anonymous()
        .get(format!("{}/connections/1", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/login?next=/connections/1")
    );
    assert_eq!(
        sign_in_leads_to(&anonymous(), &app, "//evil.example/").await,
        "/",
        "no open redirect"
    );
    // … and back: a same-site `next` is where signing in leads, and that page is served.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    assert_eq!(
        sign_in_leads_to(&client, &app, "/registrations").await,
        "/registrations"
    );
    let page = client
        .get(format!("{}/registrations", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("Instance registration"));
}

// Sending a fresh registration link is an IDI admin's act (issue 12): an Impact app user who
// may look at everything may not make the app email a new link, by REST or server function.
#[tokio::test]
async fn resending_a_registration_link_needs_the_idi_admin_role() {
    let app = spawn(Backend::Sqlite).await;
    app.invite("ada@example.com", "ServiceNow Impact").await;
    async fn outbox_len(app: &TestApp) -> Option<usize> {
        app.get("/api/outbox").await.body.as_array().map(Vec::len)
    }
    assert_eq!(outbox_len(&app).await, Some(1));
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let idi = app.user_with("idi@example.com", &["idi_admin"]).await;
    let rest = |client: &reqwest::Client| {
        client
            .post(format!("{}/api/registration/resend", app.base))
            .json(&json!({ "email": "ada@example.com" }))
            .send()
    };
    let server_fn = |client: &reqwest::Client| {
        client
            .post(format!("{}/fn/resend_registration", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=ada%40example.com")
            .send()
    };

    let r = rest(&viewer).await.expect("request");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["message"].as_str().unwrap_or("").contains("IDI admin"),
        "{body}"
    );
    let r = server_fn(&viewer).await.expect("request");
    assert_eq!(r.status(), 403);
    assert_eq!(outbox_len(&app).await, Some(1), "no email was sent");

    let r = rest(&idi).await.expect("request");
    assert_eq!(r.status(), 202);
    let r = server_fn(&idi).await.expect("request");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(outbox_len(&app).await, Some(3), "two fresh links were sent");
}
