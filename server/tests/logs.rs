//! The server's logs as an operator reads them, from the real binary: with IMPACT_LOG_FORMAT=json
//! every line on stderr is one JSON object, a request's lines carry its id (the client's
//! `X-Request-Id`, echoed in the answer), one access line per request names the route template,
//! and the provider calls a request causes, in it or in the background work it starts, carry the
//! same id (the simulator remembers the ids it saw).
mod process;

use std::time::Duration;

use process::{client, free_port, fresh_database, log_path, provider_counters};
use serde_json::Value;

/// Every line the server wrote to stderr so far, each parsed (a line that is not JSON fails).
fn json_lines(port: u16) -> Vec<Value> {
    let text = std::fs::read_to_string(log_path(port)).expect("the server's log");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

/// The request id of the span a line was written in (a request's, or background work's), if any.
fn request_id_of(line: &Value) -> Option<&str> {
    line["spans"]
        .as_array()?
        .iter()
        .find_map(|s| s["request_id"].as_str())
}

#[tokio::test]
async fn json_logs_carry_the_request_id_which_the_answer_and_provider_calls_repeat() {
    let dir = std::env::temp_dir().join(format!("impact_logs_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = fresh_database(process::Backend::Sqlite, &dir).await;
    let sim = simulator::Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let instance = "logs";
    let port = free_port();
    let mut server = process::start_with(
        &db,
        port,
        &sim.instance_url(instance),
        &[("IMPACT_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    );
    let base = format!("http://127.0.0.1:{port}");
    let c = client(&base).await;
    let r = c
        .post(format!("{base}/api/auth/login"))
        .header("X-Request-Id", "test-login-1")
        .json(&serde_json::json!({ "email": process::EMAIL, "password": process::PASSWORD }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200);

    // A request with the client's id: answered with it, logged with it.
    let r = c
        .get(format!("{base}/api/connections/424242"))
        .header("X-Request-Id", "test-req-123")
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("test-req-123")
    );
    // An id that is not plain (too long): replaced, and the new one is returned.
    let r = c
        .get(format!("{base}/healthz"))
        .header("X-Request-Id", "x".repeat(65))
        .send()
        .await
        .expect("request");
    let made = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id is made when the client's is refused")
        .to_string();
    assert!(
        !made.is_empty() && made.len() <= 64 && made != "x".repeat(65),
        "{made}"
    );

    // Provider calls: made while the request is handled (the invitation asks the provider for
    // a registration) and by the scan that Save starts in the background.
    let token = {
        let r = c
            .post(format!("{base}/api/invitations"))
            .header("X-Request-Id", "test-invite-1")
            .json(&serde_json::json!({ "email": process::EMAIL, "company": "Logs Co" }))
            .send()
            .await
            .expect("invite");
        assert!(r.status().is_success(), "invite: {}", r.status());
        let outbox = process::get(&c, format!("{base}/api/outbox")).await;
        let link = outbox[0]["link"].as_str().expect("link").to_string();
        link.split_once("token=").expect("token").1.to_string()
    };
    let saved = c
        .post(format!("{base}/api/connections"))
        .header("X-Request-Id", "test-save-1")
        .json(&serde_json::json!({ "company": "Logs Co", "registration_token": token }))
        .send()
        .await
        .expect("save");
    assert!(saved.status().is_success(), "save: {}", saved.status());
    process::wait_for(&c, &base, "state", "validated").await;
    let seen = provider_counters(&sim, instance).await["request_ids"].clone();
    let seen: Vec<&str> = seen
        .as_array()
        .expect("request_ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        seen.contains(&"test-invite-1"),
        "the invitation's provider call lacks its request id: {seen:?}"
    );
    assert!(
        seen.contains(&"test-save-1"),
        "the scan Save started does not carry Save's request id: {seen:?}"
    );

    // The log, once the lines are written: every line JSON; the request's lines carry its id;
    // one access line for it, with the route's template (not the id in its path).
    let lines = process::until("the access line of test-req-123", || {
        let lines = json_lines(port);
        let found = lines
            .iter()
            .any(|l| l["target"] == "access" && request_id_of(l) == Some("test-req-123"));
        std::future::ready(found.then_some(lines))
    })
    .await;
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "access" && l["request_id"] == "test-req-123")
        .collect();
    assert_eq!(access.len(), 1, "one access line per request: {access:?}");
    let line = access[0];
    assert_eq!(line["method"], "GET", "{line}");
    assert_eq!(line["route"], "/api/connections/{id}", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(request_id_of(line), Some("test-req-123"), "{line}");
    assert!(
        !lines.iter().any(|l| l.to_string().contains("424242")),
        "a path with an id was logged"
    );
    // Lines written inside the handlers carry the request's id too, not only the access line.
    let signed_in = lines
        .iter()
        .find(|l| l["message"] == "signed in" && request_id_of(l) == Some("test-login-1"));
    assert!(
        signed_in.is_some(),
        "the handler's own line lacks the request id"
    );
    // The sign-in password and the session cookie are not in the log.
    let all = std::fs::read_to_string(log_path(port)).unwrap_or_default();
    assert!(!all.contains(process::PASSWORD));

    let _ = server.kill();
    let _ = server.wait();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _ = std::fs::remove_dir_all(dir);
}
