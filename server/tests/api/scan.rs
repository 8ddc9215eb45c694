use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{both_backends, helpers::TestApp};

/// Creates a connection with these provider faults in place when Save starts the checks.
async fn create_with_faults(app: &TestApp, faults: Value) -> i64 {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    app.faults(faults).await;
    app.create_from_link(&token).await
}

fn failing(health: &Value) -> Vec<String> {
    health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "failed" || c["status"] == "error")
        .filter_map(|c| c["check_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn each_injected_fault_fails_validation_naming_the_right_check_in_time() {
    let cases = [
        (json!({ "down": true }), "reachable"),
        // Far beyond the checks' 2 s limit: without the limit the scan would wait a minute.
        (json!({ "slow_ms": 60_000 }), "reachable"),
        (json!({ "http_5xx": true }), "credentials"),
        (json!({ "malformed_json": true }), "protocol"),
        (json!({ "protocol_version": 2 }), "protocol"),
        (json!({ "bad_credentials": true }), "credentials"),
        (json!({ "entitlement": "pending" }), "entitlements"),
        (json!({ "entitlement": "missing" }), "entitlements"),
        (json!({ "inbound_blocked": true }), "inbound"),
        (json!({ "clock_skew_secs": 120 }), "clock"),
    ];
    for (faults, check) in cases {
        let app = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await;
        let started = Instant::now();
        let id = create_with_faults(&app, faults.clone()).await;
        let c = app.wait_for_state(id, "validation_failed").await;
        // The check time limit here is 2 s; the deadline is generous for a loaded machine and
        // still far short of the slowest fault's minute.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{faults}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("blank"), Some("blank"))
        );
        let health = app.get(&format!("/api/connections/{id}/health")).await.body;
        let failed = failing(&health);
        assert!(
            failed.contains(&check.to_string()),
            "{faults}: expected {check} to fail, got {failed:?}"
        );
        let issue = health["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check_id"] == check)
            .expect("check");
        assert!(!issue["message"].as_str().unwrap_or("").is_empty());
        assert!(!issue["resolution"].as_array().expect("steps").is_empty());
        assert!(issue["article"].as_str().unwrap_or("").starts_with("KB-"));
        // Nothing lost from the history.
        let history = app
            .get(&format!("/api/connections/{id}/history"))
            .await
            .body;
        let last = history.as_array().and_then(|h| h.last()).expect("history");
        assert_eq!(last["to_state"], "validation_failed", "{faults}");
    }
}

#[tokio::test]
async fn a_dead_or_refusing_provider_is_reported_by_kind() {
    // Every port of 127.0.0.1 is allowed here (as an operator may allow a host), so that the
    // closed port below is called and its refusal reported, not refused by the address policy.
    let sim = simulator::Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let outbound = app::server::outbound::Outbound::new("127.0.0.1", None).expect("allow");
    let app =
        crate::helpers::spawn_with_provider(crate::helpers::Backend::Sqlite, sim, outbound, None)
            .await;
    let id = create_with_faults(&app, json!({})).await;
    app.wait_for_state(id, "validated").await;
    // Point the connection at a closed port: "refused", not "check your credentials".
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    app.repoint_and_rescan(id, &format!("http://127.0.0.1:{port}"))
        .await;
    app.wait_for_state(id, "validation_failed").await;
    let health = app.get(&format!("/api/connections/{id}/health")).await.body;
    let reach = health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check_id"] == "reachable")
        .expect("reachable");
    assert!(
        reach["message"]
            .as_str()
            .unwrap_or("")
            .contains("refused the connection"),
        "{reach}"
    );
    assert_eq!(reach["retryable"], true);
    let creds = health["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check_id"] == "credentials")
        .expect("c");
    assert_eq!(
        creds["status"], "skipped",
        "dependants are skipped, not blamed"
    );
}

both_backends!(
    fixing_the_fault_and_rescanning_validates,
    |app: TestApp| async move {
        let id = create_with_faults(&app, json!({ "bad_credentials": true })).await;
        let c = app.wait_for_state(id, "validation_failed").await;
        // One check re-run while the fault is still there: still detected.
        let r = app
            .post(
                &format!("/api/connections/{id}/checks/credentials/rescan"),
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (200, Some("failed")),
            "{:?}",
            r.body
        );
        app.faults(json!({})).await;
        // Re-running just that check resolves the last open issue: the connection is Validated.
        let r = app
            .post(
                &format!("/api/connections/{id}/checks/credentials/rescan"),
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (200, Some("passed")),
            "{:?}",
            r.body
        );
        let v = app.wait_for_state(id, "validated").await;
        assert!(v["version"].as_i64() > c["version"].as_i64());
        // The whole suite again, from Validated: still Validated; every run is kept.
        let r = app
            .post(
                &format!("/api/connections/{id}/actions"),
                json!({ "action": "rescan", "version": v["version"] }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        app.wait_for_state(id, "validated").await;
        let health = app.get(&format!("/api/connections/{id}/health")).await.body;
        assert!(failing(&health).is_empty());
        assert_eq!(health["score"], 100);
        assert!(health["runs"].as_array().map(Vec::len).unwrap_or(0) >= 3);
    }
);

both_backends!(an_unknown_check_is_404, |app: TestApp| async move {
    let id = create_with_faults(&app, json!({})).await;
    app.wait_for_state(id, "validated").await;
    let r = app
        .post(
            &format!("/api/connections/{id}/checks/nope/rescan"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
});
