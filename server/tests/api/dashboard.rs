//! The health dashboard across connections: heartbeats recorded and summed up (round trip p50/p95,
//! messages each way over 24 hours), Up / Slow / Down now and in the hour's chart, a Down
//! direction as one open issue whose count grows with each missed heartbeat, a repeated check
//! finding as one issue, the suites with their runs; on both backends, heartbeats every second.
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    both_backends_with,
    helpers::{eventually, TestApp},
    onboarding::onboarded,
};

fn quick(config: &mut server::config::Config) {
    config.settings.health_interval = Duration::from_secs(1);
    config.settings.slow_ms = 1000;
}

async fn dashboard(app: &TestApp) -> Value {
    let r = app.get("/api/health-dashboard").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn card(d: &Value, id: i64) -> Value {
    d["cards"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["connection"]["id"] == id))
        .cloned()
        .unwrap_or(Value::Null)
}

fn issue(d: &Value, id: i64, check: &str) -> Value {
    d["issues"]
        .as_array()
        .and_then(|i| {
            i.iter()
                .find(|i| i["connection_id"] == id && i["check_id"] == check)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

async fn heartbeats_stored(app: &TestApp, id: i64) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM heartbeats WHERE connection_id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count")
        .get("n")
}

async fn watched_connection(app: TestApp) {
    let id = onboarded(&app).await;
    // A few heartbeats: each recorded, summed up on the card.
    eventually("three heartbeats recorded", async || {
        heartbeats_stored(&app, id).await >= 3
    })
    .await;
    let d = dashboard(&app).await;
    let c = card(&d, id);
    assert_eq!(c["health"], "up", "{c}");
    assert!(c["heartbeats_24h"].as_i64().unwrap_or(0) >= 3, "{c}");
    let p50 = c["p50_ms"].as_i64().expect("p50");
    let p95 = c["p95_ms"].as_i64().expect("p95");
    assert!(p50 <= p95, "{c}");
    assert!(c["last_heartbeat"].is_string());
    // Messages each way: heartbeats out, the provider's calls in (onboarding's included).
    assert!(c["outbound"]["messages"].as_i64().unwrap_or(0) >= 3, "{c}");
    assert!(c["inbound"]["messages"].as_i64().unwrap_or(0) >= 3, "{c}");
    assert!(c["inbound"]["last_at"].is_string(), "{c}");
    assert_eq!(
        (d["up"].as_i64(), d["down"].as_i64()),
        (Some(1), Some(0)),
        "{d}"
    );
    let hours = d["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["up"], 1, "this hour: one connection, Up");
    assert!(d["issues"].as_array().is_some_and(Vec::is_empty), "{d}");
    let score_up = d["score"].as_i64().expect("score");

    // The provider goes down: Down now, in this hour's chart, and one open issue per direction
    // whose count grows with each missed heartbeat instead of adding rows.
    app.faults(json!({ "down": true })).await;
    eventually("the dashboard reads Down", async || {
        dashboard(&app).await["down"] == 1
    })
    .await;
    let mut first_seen = Value::Null;
    eventually("the outbound issue seen twice", async || {
        let d = dashboard(&app).await;
        let i = issue(&d, id, "heartbeat:outbound");
        first_seen = i["first_seen"].clone();
        i["times_seen"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    let d = dashboard(&app).await;
    let outbound = issue(&d, id, "heartbeat:outbound");
    assert_eq!(outbound["severity"], "critical");
    assert_eq!(outbound["category"], "Connectivity");
    assert_eq!(
        outbound["first_seen"], first_seen,
        "the first sighting stays"
    );
    assert_ne!(outbound["last_seen"], outbound["first_seen"]);
    let rows = d["issues"].as_array().map(|i| {
        i.iter()
            .filter(|i| i["check_id"] == "heartbeat:outbound")
            .count()
    });
    assert_eq!(rows, Some(1), "one row however often it is seen");
    assert_eq!(card(&d, id)["health"], "down");
    assert_eq!(d["hours"][23]["down"], 1, "{}", d["hours"][23]);
    assert!(d["score"].as_i64().unwrap_or(100) < score_up, "{d}");

    // Back up: the issue is gone, the connection Up again.
    app.faults(json!({})).await;
    eventually("the dashboard reads Up again", async || {
        let d = dashboard(&app).await;
        d["up"] == 1 && issue(&d, id, "heartbeat:outbound").is_null()
    })
    .await;
}

both_backends_with!(
    a_watched_connection_on_the_dashboard,
    quick,
    watched_connection
);

async fn repeated_findings(app: TestApp) {
    // Validation fails on refused credentials; every Rescan finds it again.
    app.faults(json!({ "bad_credentials": true })).await;
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let r = app
        .post(
            "/api/connections",
            json!({ "company": "ServiceNow Impact", "registration_token": token }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_i64().expect("id");
    app.wait_for_state(id, "validation_failed").await;
    for _ in 0..2 {
        let version = app.get(&format!("/api/connections/{id}")).await.body["version"].clone();
        let r = app
            .post(
                &format!("/api/connections/{id}/actions"),
                json!({ "action": "rescan", "version": version }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        app.wait_for_state(id, "validation_failed").await;
    }
    let d = dashboard(&app).await;
    let creds = issue(&d, id, "credentials");
    assert_eq!(creds["times_seen"], 3, "{creds}");
    assert_eq!(creds["category"], "Registration");
    assert_eq!(
        creds["href"],
        format!("/connections/{id}/issues/credentials")
    );
    let rows = d["issues"]
        .as_array()
        .map(|i| i.iter().filter(|i| i["check_id"] == "credentials").count());
    assert_eq!(rows, Some(1));
    // Not onboarded: no health yet; its suites say when they run, three pre-onboarding runs.
    assert!(card(&d, id)["health"].is_null());
    let suites: Vec<&Value> = d["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .filter(|s| s["connection_id"] == id)
        .collect();
    assert_eq!(suites.len(), 2);
    let pre = suites
        .iter()
        .find(|s| s["suite"] == "pre_onboarding")
        .expect("pre-onboarding");
    assert_eq!(pre["runs"].as_array().map(Vec::len), Some(3));
    assert_eq!(pre["runnable"], true);
    assert!(pre["runs"][0]["results"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    let health = suites
        .iter()
        .find(|s| s["suite"] == "connection_health")
        .expect("connection health");
    assert_eq!(health["runnable"], false);
    assert!(health["schedule"]
        .as_str()
        .unwrap_or("")
        .contains("onboarded"));
    // Fixed: the next Rescan passes and the issue is gone.
    app.faults(json!({})).await;
    let version = app.get(&format!("/api/connections/{id}")).await.body["version"].clone();
    let r = app
        .post(
            &format!("/api/connections/{id}/actions"),
            json!({ "action": "rescan", "version": version }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    app.wait_for_state(id, "validated").await;
    let d = dashboard(&app).await;
    assert!(issue(&d, id, "credentials").is_null(), "{d}");
}

both_backends_with!(a_repeated_finding_is_one_issue, quick, repeated_findings);

both_backends_with!(
    the_dashboard_needs_a_session,
    quick,
    |app: TestApp| async move {
        let anonymous = reqwest::Client::new();
        let r = anonymous
            .get(format!("{}/api/health-dashboard", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 401);
        let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
        let r = viewer
            .get(format!("{}/api/health-dashboard", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200);
    }
);

/// Reads the dashboard's change stream until it tells that `id` changed (or a time limit).
async fn wait_changed(r: &mut reqwest::Response, id: i64) {
    crate::sse::read_until(r, &format!("event: changed\ndata: {id}\n\n")).await;
}

/// The dashboard's live stream: every connection's changes as they are committed (a Rescan's,
/// a heartbeat's Down), with no stream of that connection open; a viewer may follow it.
async fn changes_are_live(app: TestApp) {
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let open = async || {
        let r = viewer
            .get(format!("{}/api/health-dashboard/events", app.base))
            .send()
            .await
            .expect("stream");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        r
    };
    let mut r = open().await;
    let id = onboarded(&app).await;
    wait_changed(&mut r, id).await;
    // Onboarded and Up, its heartbeats change nothing: a new stream hears of it again only
    // when a heartbeat finds it Down.
    drop(r);
    let mut r = open().await;
    app.faults(json!({ "down": true })).await;
    eventually("Outbound Down", async || {
        card(&dashboard(&app).await, id)["connection"]["outbound"] == "down"
    })
    .await;
    wait_changed(&mut r, id).await;
    // Signing out ends the stream.
    let out = viewer
        .post(format!("{}/api/auth/logout", app.base))
        .send()
        .await
        .expect("logout");
    assert!(out.status().is_success() || out.status().is_redirection());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = r.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}

both_backends_with!(
    the_dashboards_stream_tells_every_change,
    quick,
    changes_are_live
);
