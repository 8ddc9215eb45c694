//! The connection health check after onboarding: heartbeats on a schedule turn Outbound and
//! Inbound Up / Slow / Down as the provider behaves (simulator faults), each change recorded in
//! the history (and so the audit log) and sent on the live stream, and recovery turns them back.
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    both_backends_with,
    helpers::{eventually, fresh, start_with, Backend, TestApp},
    onboarding::onboarded,
    per_backend,
};
use app::server::key_source::KeySource;
use app::server::sealed::SecretKey;

async fn links(app: &TestApp, id: i64) -> (String, String) {
    let c = app.get(&format!("/api/connections/{id}")).await.body;
    (
        c["outbound"].as_str().unwrap_or("").to_string(),
        c["inbound"].as_str().unwrap_or("").to_string(),
    )
}

async fn wait_links(app: &TestApp, id: i64, outbound: &str, inbound: &str) {
    eventually(
        &format!("Outbound {outbound}, Inbound {inbound}"),
        async || links(app, id).await == (outbound.to_string(), inbound.to_string()),
    )
    .await;
}

async fn history(app: &TestApp, id: i64) -> Vec<Value> {
    let r = app.get(&format!("/api/connections/{id}/history")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().cloned().unwrap_or_default()
}

async fn health_entries(app: &TestApp, id: i64) -> Vec<String> {
    history(app, id)
        .await
        .iter()
        .filter(|h| h["action"] == "Connection health check")
        .map(|h| h["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn provider_down_then_back(app: TestApp) {
    let id = onboarded(&app).await;
    assert_eq!(links(&app, id).await, ("up".into(), "up".into()));
    let seq_before = crate::onboarding::stored_seq(&app, id).await;

    app.faults(json!({ "down": true })).await;
    wait_links(&app, id, "down", "down").await;
    let entries = health_entries(&app, id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].contains("Outbound Up → Down (the provider did not answer the heartbeat)")
            && entries[0].contains("Inbound Up → Down"),
        "{entries:?}"
    );
    // The change is on the live stream (a connection snapshot after onboarding's last event).
    assert!(crate::onboarding::stored_seq(&app, id).await > seq_before);
    // And in the audit log, which shows every connection transition.
    let audit = app.get("/api/audit").await.body;
    assert!(
        audit.to_string().contains("Connection health check"),
        "{audit}"
    );
    // Still Validated and onboarded: only the statuses moved.
    let c = app.get(&format!("/api/connections/{id}")).await.body;
    assert_eq!(
        (c["state"].as_str(), c["onboarding"].as_str()),
        (Some("validated"), Some("complete"))
    );

    app.faults(json!({})).await;
    wait_links(&app, id, "up", "up").await;
    let entries = health_entries(&app, id).await;
    assert_eq!(
        entries.len(),
        2,
        "one entry per change, none per unchanged heartbeat: {entries:?}"
    );
}

async fn late_answers_are_slow(app: TestApp) {
    let id = onboarded(&app).await;
    app.faults(json!({ "slow_ms": 1500 })).await;
    wait_links(&app, id, "slow", "up").await;
    app.faults(json!({})).await;
    wait_links(&app, id, "up", "up").await;
}

async fn blocked_way_back_is_inbound_down_only(app: TestApp) {
    let id = onboarded(&app).await;
    app.faults(json!({ "inbound_blocked": true })).await;
    wait_links(&app, id, "up", "down").await;
    let entries = health_entries(&app, id).await;
    assert_eq!(
        entries,
        ["Inbound Up → Down (no heartbeat call from the provider reached this instance)"]
    );
}

async fn echoes(app: &TestApp) -> u64 {
    let r = reqwest::get(format!("{}/sim/instances/{}", app.sim_base(), app.instance))
        .await
        .expect("counters");
    r.json::<Value>().await.expect("json")["echoes"]
        .as_u64()
        .unwrap_or(0)
}

/// Two apps on one database (two replicas) beat each connection once per interval between
/// them, not once each; and after both stop and one starts again, the overdue heartbeat runs.
async fn once_per_interval_over_two_replicas(backend: Backend) {
    let restart = fresh(backend, None).await;
    let key = SecretKey::generate();
    let a = start_with(
        &restart,
        KeySource::key(key.clone()),
        crate::helpers::heartbeat_every_second,
    )
    .await
    .expect("A");
    let id = onboarded(&a).await;
    let b = start_with(
        &restart,
        KeySource::key(key.clone()),
        crate::helpers::heartbeat_every_second,
    )
    .await
    .expect("B");
    // Wait for the first heartbeat (one interval after onboarding), then count over a window.
    eventually("the first heartbeat", async || echoes(&a).await > 0).await;
    let start = echoes(&a).await;
    let window = Duration::from_secs(6);
    tokio::time::sleep(window).await;
    let beats = echoes(&a).await - start;
    // One per second between them (ticks are a quarter interval apart, so a beat may run up to
    // a quarter late; a loaded machine runs fewer, never more). Both running each would be ~12.
    assert!(
        beats <= 8,
        "{beats} heartbeats in {window:?} at one per second over two replicas"
    );
    assert!(beats >= 1, "no heartbeat in {window:?}");
    assert_eq!(links(&a, id).await, ("up".into(), "up".into()));
    drop(b);
}

both_backends_with!(
    provider_down_then_back,
    crate::helpers::heartbeat_every_second,
    provider_down_then_back
);

both_backends_with!(
    late_answers_are_slow,
    crate::helpers::heartbeat_every_second,
    late_answers_are_slow
);

both_backends_with!(
    blocked_way_back_is_inbound_down_only,
    crate::helpers::heartbeat_every_second,
    blocked_way_back_is_inbound_down_only
);

per_backend!(
    once_per_interval_over_two_replicas,
    once_per_interval_over_two_replicas
);

/// Two replicas finding the same heartbeat due at the same moment: exactly one runs it. (The
/// schedule is an hour here, so only the calls below run heartbeats.)
async fn a_due_heartbeat_is_claimed_once(backend: Backend) {
    let restart = fresh(backend, None).await;
    let key = SecretKey::generate();
    let hourly =
        |c: &mut server::config::Config| c.settings.health_interval = Duration::from_secs(3600);
    let a = start_with(&restart, KeySource::key(key.clone()), hourly)
        .await
        .expect("A");
    let id = onboarded(&a).await;
    let b = start_with(&restart, KeySource::key(key.clone()), hourly)
        .await
        .expect("B");
    let before = echoes(&a).await;
    for round in 0..10 {
        sqlx::query(
            "UPDATE connections SET health_due_at = '2000-01-01T00:00:00.000000Z' WHERE id = $1",
        )
        .bind(id)
        .execute(&a.state.db.pool)
        .await
        .expect("make due");
        let (ran_a, ran_b) = tokio::join!(
            app::server::heartbeat::run_due(&a.state),
            app::server::heartbeat::run_due(&b.state)
        );
        let ran = ran_a.expect("A's run") + ran_b.expect("B's run");
        assert_eq!(ran, 1, "round {round}: the heartbeat ran {ran} times");
    }
    assert_eq!(
        echoes(&a).await - before,
        10,
        "the provider saw one heartbeat per round"
    );
    drop(b);
}

per_backend!(
    a_due_heartbeat_is_claimed_once,
    a_due_heartbeat_is_claimed_once
);

/// Rescan once onboarded (an hourly schedule here, so only the Rescan beats).
fn hourly(config: &mut server::config::Config) {
    config.settings.health_interval = Duration::from_secs(3600);
    config.settings.slow_ms = 1000;
}

/// The latest finished connection health run on the dashboard.
async fn finished_health_run(app: &TestApp, id: i64, after: i64) -> Value {
    let mut found = Value::Null;
    eventually("a finished connection health scan", async || {
        let h = app.get(&format!("/api/connections/{id}/health")).await.body;
        found = h["runs"]
            .as_array()
            .and_then(|runs| {
                runs.iter()
                    .find(|r| {
                        r["suite"] == "connection_health"
                            && r["id"].as_i64().unwrap_or(0) > after
                            && !r["outcome"].is_null()
                    })
                    .cloned()
            })
            .unwrap_or(Value::Null);
        !found.is_null()
    })
    .await;
    found
}

/// Rescan of an onboarded connection runs the connection health suite: the link checks and a
/// heartbeat, never registration again; the record stays Validated and onboarded, Up both ways.
async fn rescan_once_onboarded_runs_the_connection_health_suite(app: TestApp) {
    let id = onboarded(&app).await;
    let echoes_before = echoes(&app).await;
    let r = app.rescan(id).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["onboarding"].as_str()),
        (Some("validated"), Some("complete"))
    );
    let run = finished_health_run(&app, id, 0).await;
    assert_eq!(run["outcome"], "passed", "{run}");
    let checks: Vec<&str> = run["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["check_id"].as_str().unwrap_or(""))
        .collect();
    assert!(checks.contains(&"heartbeat"), "{checks:?}");
    assert!(checks.contains(&"credentials"), "{checks:?}");
    assert!(!checks.contains(&"registration"), "{checks:?}");
    assert!(!checks.contains(&"company_unique"), "{checks:?}");
    assert_eq!(echoes(&app).await, echoes_before + 1, "one heartbeat");
    assert_eq!(links(&app, id).await, ("up".into(), "up".into()));
    // The dashboard's heartbeat result is this run's; the Rescan is in the history.
    let h = app.get(&format!("/api/connections/{id}/health")).await.body;
    assert!(
        h["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .any(|c| c["check_id"] == "heartbeat" && c["status"] == "passed"),
        "{h}"
    );
    assert!(history(&app, id)
        .await
        .iter()
        .any(|e| e["reason"] == "Connection health scan requested"));
}

/// A health Rescan that finds the credentials refused turns Outbound Down (an alert goes out);
/// the reason names the check; a later Rescan after the fix brings it back Up.
async fn a_health_rescan_that_fails_turns_the_link_down_and_a_fixed_one_back_up(app: TestApp) {
    let id = onboarded(&app).await;
    app.faults(json!({ "bad_credentials": true })).await;
    assert_eq!(app.rescan(id).await.status, 200);
    let run = finished_health_run(&app, id, 0).await;
    assert_eq!(run["outcome"], "failed", "{run}");
    // The statuses follow the run's end.
    eventually("Outbound Down", async || links(&app, id).await.0 == "down").await;
    let entries = health_entries(&app, id).await;
    assert!(
        entries
            .iter()
            .any(|e| e.starts_with("Connection health scan (did not pass: ")
                && e.contains("Connection credentials are accepted")
                && e.contains("Outbound Up → Down")),
        "{entries:?}"
    );
    let outbox = app.get("/api/outbox").await.body.to_string();
    assert!(outbox.contains("Connection Down"), "{outbox}");
    // Fixed: the next Rescan's findings bring it back.
    app.faults(json!({})).await;
    let before = run["id"].as_i64().expect("run id");
    assert_eq!(app.rescan(id).await.status, 200);
    let again = finished_health_run(&app, id, before).await;
    assert_eq!(again["outcome"], "passed", "{again}");
    wait_links(&app, id, "up", "up").await;
}

/// One health scan at a time: a second Rescan while one runs is refused with the reason, and
/// nothing is recorded for it.
async fn a_second_health_rescan_while_one_runs_is_refused(app: TestApp) {
    let id = onboarded(&app).await;
    // Every provider answer takes 1.5 s: the first scan surely runs when the second asks.
    app.faults(json!({ "slow_ms": 1500 })).await;
    assert_eq!(app.rescan(id).await.status, 200);
    let r = app.rescan(id).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already running"),
        "{:?}",
        r.body
    );
    let requested = history(&app, id)
        .await
        .iter()
        .filter(|e| e["reason"] == "Connection health scan requested")
        .count();
    assert_eq!(requested, 1);
    let run = finished_health_run(&app, id, 0).await;
    app.faults(json!({})).await;
    // The slow answers were Slow, not Down: the heartbeat answered.
    assert_eq!(run["outcome"], "passed", "{run}");
    eventually("Outbound Slow", async || links(&app, id).await.0 == "slow").await;
}

both_backends_with!(
    rescan_once_onboarded_runs_the_connection_health_suite,
    hourly,
    rescan_once_onboarded_runs_the_connection_health_suite
);

both_backends_with!(
    a_health_rescan_that_fails_turns_the_link_down_and_a_fixed_one_back_up,
    hourly,
    a_health_rescan_that_fails_turns_the_link_down_and_a_fixed_one_back_up
);

both_backends_with!(
    a_second_health_rescan_while_one_runs_is_refused,
    hourly,
    a_second_health_rescan_while_one_runs_is_refused
);
