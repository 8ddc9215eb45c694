//! The OpenAPI document against the router's own route table, and the reference page.
use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{spawn, Backend, TestApp};

async fn anonymous_get(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request")
}

/// Every `$ref` in `v` (recursively).
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_api_route_the_router_serves() {
    let app = spawn(Backend::Sqlite).await;
    let r = anonymous_get(&app, "/api/openapi.json").await;
    assert_eq!(r.status(), 200, "the document is public");
    let doc: Value = r.json().await.expect("the document is JSON");

    // OpenAPI 3.1, and it reads as one (the typed model of the spec accepts it).
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1."), "openapi: {version:?}");
    serde_json::from_value::<utoipa::openapi::OpenApi>(doc.clone())
        .expect("the document parses as an OpenAPI 3.1 document");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // Method + path of every operation. Both the router and OpenAPI write a path parameter
    // `{name}`; an axum `:name` would be translated here.
    let described: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.keys()
                .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let served: BTreeSet<(String, String)> = app
        .route_table
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| {
            let path = r
                .path
                .split('/')
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            (r.method.to_string(), path)
        })
        .collect();
    assert!(served.len() > 25, "the route table: {served:?}");
    let missing: Vec<_> = served.difference(&described).collect();
    assert!(
        missing.is_empty(),
        "/api routes the document does not describe (add #[utoipa::path] and list the \
         handler in edge/openapi.rs): {missing:?}"
    );
    let stale: Vec<_> = described.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "operations in the document the router does not serve: {stale:?}"
    );

    // Each path parameter is declared, and every reference resolves.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for name in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = name.trim_end_matches('}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(
                    declared,
                    "{method} {path}: parameter {name} is not declared"
                );
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 30, "references: {all:?}");
    for r in all {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(&doc, |v, key| &v[key]))
            .unwrap_or(&Value::Null);
        assert!(!target.is_null(), "{r} does not resolve");
    }

    // The shared DTOs' schemas, with the values serde sends.
    let schemas = &doc["components"]["schemas"];
    let view = &schemas["ConnectionView"];
    for field in ["id", "company", "url", "state", "version", "created_at"] {
        assert!(
            view["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "ConnectionView.{field}: {view}"
        );
    }
    let states = schemas["ConnectionState"]["enum"].to_string();
    assert!(states.contains("\"awaiting_validation\""), "{states}");
    assert!(schemas["ApiError"]["properties"]["code"].is_object());
    assert_eq!(
        doc["paths"]["/api/connections/{id}"]["put"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/UpdateConnection"
    );

    // The session cookie, required by the guarded operations only (read from the policy).
    let scheme = &doc["components"]["securitySchemes"]["session_cookie"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["in"].as_str()),
        (Some("apiKey"), Some("cookie"))
    );
    assert_eq!(scheme["name"], "impact_session");
    let guarded = &doc["paths"]["/api/users"]["post"];
    assert_eq!(
        guarded["security"][0]["session_cookie"],
        serde_json::json!([])
    );
    assert!(guarded["responses"]["403"].is_object());
    assert!(
        guarded["description"]
            .as_str()
            .is_some_and(|d| d.contains("impact_admin")),
        "{guarded}"
    );
    let login = &doc["paths"]["/api/auth/login"]["post"];
    assert!(login["security"].is_null(), "signing in needs no session");
    assert!(
        login["responses"]["4XX"].is_object(),
        "the error body: {login}"
    );
}

#[tokio::test]
async fn the_reference_page_is_served_from_the_app_alone() {
    let app = spawn(Backend::Sqlite).await;
    let r = anonymous_get(&app, "/api/docs").await;
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = r.text().await.expect("body");
    assert!(!html.contains("<script"), "the page runs no script");
    // Nothing is loaded from elsewhere: every src and href is a path of this app or an anchor.
    for attr in ["src=\"", "href=\""] {
        for value in html.split(attr).skip(1) {
            let value = value.split('"').next().unwrap_or("");
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "{attr}{value}\" points outside the app"
            );
        }
    }
    for text in [
        "POST /api/connections/{id}/actions",
        "GET /api/guided-setup",
        "id=\"schema-ConnectionView\"",
        "Needs the session cookie",
    ] {
        assert!(html.contains(text), "the page lacks {text:?}");
    }
    // The stylesheet it links is the app's own, served to anyone.
    let css = anonymous_get(&app, app::STYLESHEET).await;
    assert!(
        html.contains(app::STYLESHEET) && css.status() != 401,
        "{}",
        css.status()
    );
}
