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

async fn dashboard(app: &TestApp) -> Value {
    let r = app.get("/api/health-dashboard").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Connection `id`'s card on a dashboard answer (Null when not on it).
pub(crate) fn card(d: &Value, id: i64) -> Value {
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
    // Filtered to other companies, the issue is not on the list; the counts still hold it.
    let other = app
        .get("/api/health-dashboard?company=no%20such%20company")
        .await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    assert!(other.body["issues"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(other.body["issue_counts"], d["issue_counts"]);
    assert!(
        d["issue_counts"][0]["count"].as_i64().unwrap_or(0) >= 1,
        "{d}"
    );
    assert_eq!(card(&d, id)["health"], "down");
    // Its checks passed, but Down weighs its score (a quarter), on its card and its own page.
    assert_eq!(card(&d, id)["score"], 25, "{}", card(&d, id));
    let own = app.get(&format!("/api/connections/{id}/health")).await;
    assert_eq!(own.body["score"], 25, "{:?}", own.body["score"]);
    assert_eq!(d["hours"][23]["down"], 1, "{}", d["hours"][23]);
    assert!(d["score"].as_i64().unwrap_or(100) < score_up, "{d}");

    // Back up: the issue is gone, the connection Up again.
    app.faults(json!({})).await;
    eventually("the dashboard reads Up again", async || {
        let d = dashboard(&app).await;
        d["up"] == 1 && issue(&d, id, "heartbeat:outbound").is_null()
    })
    .await;

    // Down again: a new issue, first seen after the recovery, not the old streak carried on.
    app.faults(json!({ "down": true })).await;
    let mut again = Value::Null;
    eventually("the outbound issue open again", async || {
        again = issue(&dashboard(&app).await, id, "heartbeat:outbound");
        !again.is_null()
    })
    .await;
    let (old_last, new_first) = (
        outbound["last_seen"].as_str().expect("last seen"),
        again["first_seen"].as_str().expect("first seen"),
    );
    // Both RFC 3339 UTC with the same width: text order is time order.
    assert!(new_first > old_last, "{again} after {outbound}");
    app.faults(json!({})).await;
}

both_backends_with!(
    a_watched_connection_on_the_dashboard,
    crate::helpers::heartbeat_every_second,
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

both_backends_with!(
    a_repeated_finding_is_one_issue,
    crate::helpers::heartbeat_every_second,
    repeated_findings
);

both_backends_with!(
    the_dashboard_needs_a_session,
    crate::helpers::heartbeat_every_second,
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
    crate::helpers::heartbeat_every_second,
    changes_are_live
);

/// `n` connections from registration links, companies "Paged 01" …, each at its own simulator
/// instance (one connection per provider URL).
async fn many_connections(app: &TestApp, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 1..=n {
        let company = format!("Paged {i:02}");
        let r = app
            .post(
                "/api/invitations",
                json!({
                    "email": format!("contact{i}@example.com"),
                    "company": company,
                    "provider_url": app.sim.instance_url(&format!("{}-{i}", app.instance)),
                }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let token = r.body["link"]
            .as_str()
            .and_then(|l| l.split_once("token="))
            .map(|(_, t)| t.to_string())
            .expect("a link with a token");
        let r = app
            .post(
                "/api/connections",
                json!({ "company": company, "registration_token": token }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(r.body["id"].as_i64().expect("id"));
    }
    // Settled (each one's scan done), so the readings below compare like with like.
    for &id in &ids {
        app.wait_for_state(id, "validated").await;
    }
    ids
}

async fn pages_and_filters(app: TestApp) {
    let page_size = app::model::dashboard_page::PAGE_SIZE;
    let ids = many_connections(&app, page_size + 5).await;
    let total = ids.len() as i64;

    // The first page: page_size cards, their suites only; the summary counts everyone.
    let d = dashboard(&app).await;
    let cards = d["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), page_size);
    let on_page: Vec<i64> = cards
        .iter()
        .filter_map(|c| c["connection"]["id"].as_i64())
        .collect();
    let suites = d["suites"].as_array().expect("suites");
    assert_eq!(suites.len(), 2 * page_size, "two suites a connection");
    assert!(suites
        .iter()
        .all(|s| on_page.contains(&s["connection_id"].as_i64().unwrap_or(-1))));
    // Each validated once: every pre-onboarding suite on the page has that run.
    let pre_runs: Vec<usize> = suites
        .iter()
        .filter(|s| s["suite"] == "pre_onboarding")
        .map(|s| s["runs"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(
        pre_runs,
        vec![1; page_size],
        "runs of each pre-onboarding suite on the page"
    );
    assert_eq!(d["paging"]["total"], total);
    assert_eq!(d["paging"]["matching"], total);
    assert_eq!(
        (d["paging"]["page"].as_i64(), d["paging"]["pages"].as_i64()),
        (Some(1), Some(2))
    );

    // The second page: the rest, none of the first's.
    let r = app.get("/api/health-dashboard?page=2").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let second: Vec<i64> = r.body["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .filter_map(|c| c["connection"]["id"].as_i64())
        .collect();
    assert_eq!(second.len(), 5);
    assert!(second.iter().all(|id| !on_page.contains(id)));
    assert_eq!(r.body["paging"]["first"], page_size as i64 + 1);
    assert_eq!(r.body["paging"]["last"], total);
    // Past the last page: the last page.
    let r = app.get("/api/health-dashboard?page=99").await;
    assert_eq!(r.body["paging"]["page"], 2, "{:?}", r.body["paging"]);

    // By company, any case; by health (none is onboarded, so none is Down).
    let r = app.get("/api/health-dashboard?company=paged%2007").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cards = r.body["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(cards[0]["connection"]["company"], "Paged 07");
    assert_eq!(r.body["paging"]["matching"], 1);
    assert_eq!(r.body["paging"]["total"], total);
    assert_eq!(r.body["query"]["company"], "paged 07");
    let r = app
        .get("/api/health-dashboard?health=down&company=Paged")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["paging"]["matching"], 0);
    assert!(r.body["cards"].as_array().is_some_and(Vec::is_empty));
    assert!(r.body["suites"].as_array().is_some_and(Vec::is_empty));
    // The Resolution center's score, counts and chart are every connection's, whatever the
    // filter; its issues those of the connections it matches.
    for summed in ["hours", "score", "issue_counts", "up", "down"] {
        assert_eq!(r.body[summed], d[summed], "{summed}");
    }
    assert_eq!(r.body["issue_paging"]["matching"], 0);

    // Values that are not valid: 422 like every field the API refuses, saying which and why.
    let long = "x".repeat(app::model::dashboard_page::COMPANY_FILTER_MAX + 1);
    for (query, field) in [
        ("health=purple".to_string(), "health"),
        ("page=0".to_string(), "page"),
        ("page=-3".to_string(), "page"),
        ("page=lots".to_string(), "page"),
        (format!("company={long}"), "company"),
    ] {
        let r = app.get(&format!("/api/health-dashboard?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {:?}", r.body);
        assert_eq!(r.body["field"], field, "{query}: {:?}", r.body);
        assert!(
            r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{:?}",
            r.body
        );
    }
    // The page's own call (the server function): no filter sends nothing at all, and is read as
    // no filter; a bad value is checked the same way.
    let server_fn = |body: &'static str| {
        app.client
            .post(format!("{}/fn/health_dashboard", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = server_fn("").await.expect("server function");
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let r = server_fn("query[page]=0").await.expect("server function");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.contains("page must be a whole number"), "{body}");
}

both_backends_with!(
    the_dashboard_pages_and_filters,
    crate::helpers::heartbeat_every_second,
    pages_and_filters
);
