use crate::helpers::{spawn, Backend};

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = spawn(Backend::Sqlite).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status, 200);
    let r = app.get("/readyz").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn(Backend::Sqlite).await;
    app.state.db.pool.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["status"], "unavailable");
}

#[tokio::test]
async fn the_start_page_is_server_rendered() {
    let app = spawn(Backend::Sqlite).await;
    let r = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("body");
    assert!(html.contains("Connect with Impact IDI"), "{html}");
    assert!(
        html.contains("/pkg/impact-connect.js"),
        "hydration script is referenced"
    );
}

#[tokio::test]
async fn an_unknown_page_is_404() {
    let app = spawn(Backend::Sqlite).await;
    let r = app
        .client
        .get(format!("{}/no/such/page", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let r = app.get("/api/no-such-endpoint").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn bundle_files_are_served_without_a_session_lookup() {
    let app = spawn(Backend::Sqlite).await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // Outside the guard: a missing file is a plain 404, never a redirect to sign in or a 401.
    let r = anonymous
        .get(format!("{}/pkg/no-such-file.js", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
}
