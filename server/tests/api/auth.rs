use reqwest::{redirect::Policy, Method, StatusCode};
use serde_json::json;

use app::model::{Access, Role};
use server::policy::{self, Surface};

use crate::helpers::{signed_in, spawn, Backend, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn status_of(
    client: &reqwest::Client,
    app: &TestApp,
    method: &Method,
    path: &str,
) -> (StatusCode, String) {
    let url = format!(
        "{}{}",
        app.base,
        path.replace("{id}", "1").replace(":id", "1")
    );
    let mut req = client.request(method.clone(), url);
    if method != Method::GET {
        req = req.json(&json!({}));
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, location)
}

#[tokio::test]
async fn every_route_refuses_without_a_session_and_for_each_insufficient_role() {
    let app = spawn(Backend::Sqlite).await;
    let paths: Vec<&str> = app.route_table.iter().map(|r| r.path.as_str()).collect();
    // The table really is the router's: the main surfaces are all there.
    for must in [
        "/api/connections/{id}/actions",
        "/connections/{id}",
        "/fn/save_connection",
        "/api/users",
        "/healthz",
    ] {
        assert!(paths.contains(&must), "{must} missing from {paths:?}");
    }
    // Every server function has an explicit access level.
    for r in app
        .route_table
        .iter()
        .filter(|r| r.path.starts_with("/fn/"))
    {
        let name = r.path.trim_start_matches("/fn/");
        assert!(
            policy::SERVER_FNS.iter().any(|(n, _)| *n == name),
            "server fn {name} has no access entry"
        );
    }

    let role_sets: [(&str, &[&str], Vec<Role>); 3] = [
        (
            "viewer@example.com",
            &["impact_user"],
            vec![Role::ImpactUser],
        ),
        ("idi@example.com", &["idi_admin"], vec![Role::IdiAdmin]),
        (
            "appadmin@example.com",
            &["impact_admin"],
            vec![Role::ImpactAdmin],
        ),
    ];
    let mut users = Vec::new();
    for (email, roles, parsed) in &role_sets {
        let client = app.user_with(email, roles).await;
        // Same users, without following redirects.
        let _ = client;
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
        users.push((c, parsed.clone()));
    }

    let mut checked = 0;
    for route in &app.route_table {
        let access = policy::access_for(&route.method, &route.path);
        if access == Access::Public {
            continue;
        }
        let (status, location) = status_of(&anonymous(), &app, &route.method, &route.path).await;
        match policy::surface(&route.path) {
            Surface::Api => assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} without a session",
                route.method,
                route.path
            ),
            Surface::Page => {
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "{} {} without a session",
                    route.method,
                    route.path
                );
                assert!(location.starts_with("/login?next="), "{location}");
            }
        }
        for (client, roles) in &users {
            if !access.allows(roles) {
                let (status, _) = status_of(client, &app, &route.method, &route.path).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {roles:?}",
                    route.method,
                    route.path
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 30, "only {checked} guarded routes checked");
}

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
    let r = anonymous()
        .post(format!("{}/auth/login", app.base))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/"),
        "no open redirect"
    );
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
