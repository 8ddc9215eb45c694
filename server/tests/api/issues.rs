//! The issue workflow: Assign to me, Follow, Mute, notes, each audited and bounded; following is
//! anyone's, the rest the IDI admin's; followers get the Down alert, a muted issue stays quiet;
//! the digest; the diagnostic report with no secret in it. On both backends.
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    both_backends_with,
    helpers::{eventually, TestApp},
    onboarding::onboarded,
};

/// Waits until the connection's record satisfies `ok`.
async fn until_record(app: &TestApp, id: i64, ok: impl Fn(&Value) -> bool) {
    eventually("the record to change", async || {
        ok(&app.get(&format!("/api/connections/{id}")).await.body)
    })
    .await;
}

async fn act(app: &TestApp, id: i64, issue: &str, command: Value) -> crate::helpers::Reply {
    app.post(&format!("/api/connections/{id}/issues/{issue}"), command)
        .await
}

async fn outbox_to(app: &TestApp, to: &str, subject_has: &str) -> usize {
    let r = app.get("/api/outbox").await;
    r.body
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| {
                    m["to"].as_str() == Some(to)
                        && m["subject"].as_str().unwrap_or("").contains(subject_has)
                })
                .count()
        })
        .unwrap_or(0)
}

async fn workflow(app: TestApp) {
    let id = onboarded(&app).await;
    // A check's issue page, before anything was found: resolved, with its fix and article.
    let r = app
        .get(&format!("/api/connections/{id}/issues/credentials"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["open"].is_null());
    assert!(r.body["article"].as_str().unwrap_or("").starts_with("KB-"));
    assert!(!r.body["resolution"].as_array().expect("steps").is_empty());
    // Unknown issues and bad input: 404 and 422, nothing recorded.
    assert_eq!(
        act(&app, id, "nope", json!({"command": "follow"}))
            .await
            .status,
        404
    );
    assert_eq!(
        act(&app, 987654, "credentials", json!({"command": "follow"}))
            .await
            .status,
        404
    );
    let r = act(
        &app,
        id,
        "credentials",
        json!({"command": "mute", "minutes": 0}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("minutes")),
        "{:?}",
        r.body
    );
    let r = act(
        &app,
        id,
        "credentials",
        json!({"command": "note", "text": "  "}),
    )
    .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(
        act(&app, id, "credentials", json!({"command": "delete"}))
            .await
            .status,
        422
    );

    // Assign, note, mute: the IDI admin's; following: anyone's who may look.
    let r = act(
        &app,
        id,
        "heartbeat:outbound",
        json!({"command": "assign_to_me"}),
    )
    .await;
    assert_eq!(
        r.body["assignee"],
        crate::helpers::ADMIN_EMAIL,
        "{:?}",
        r.body
    );
    let r = act(
        &app,
        id,
        "heartbeat:outbound",
        json!({"command": "note", "text": "Provider maintenance tonight"}),
    )
    .await;
    assert_eq!(r.body["notes"][0]["text"], "Provider maintenance tonight");
    assert_eq!(r.body["notes"][0]["author"], crate::helpers::ADMIN_EMAIL);
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let as_viewer = |command: Value| {
        let viewer = viewer.clone();
        let url = format!(
            "{}/api/connections/{id}/issues/heartbeat:outbound",
            app.base
        );
        async move {
            let r = viewer.post(url).json(&command).send().await.expect("post");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = as_viewer(json!({"command": "follow"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["followers"], json!(["viewer@example.com"]));
    for command in [
        json!({"command": "assign_to_me"}),
        json!({"command": "mute", "minutes": 60}),
        json!({"command": "note", "text": "mine"}),
    ] {
        assert_eq!(as_viewer(command.clone()).await.0, 403, "{command}");
    }
    let audit = app.get("/api/audit").await.body.to_string();
    for line in [
        "Issue assigned to themselves",
        "Issue added a note",
        "Issue followed",
    ] {
        assert!(audit.contains(line), "{line}");
    }

    // The provider goes down: the follower gets the alert with the admins, once.
    app.faults(json!({ "down": true })).await;
    eventually("the follower's Down alert", async || {
        outbox_to(&app, "viewer@example.com", "Connection Down").await == 1
    })
    .await;
    assert_eq!(
        outbox_to(&app, crate::helpers::ADMIN_EMAIL, "Connection Down").await,
        1
    );
    // The open issue's page says so; its report downloads with nothing secret in it.
    let r = app
        .get(&format!("/api/connections/{id}/issues/heartbeat:outbound"))
        .await;
    assert!(
        r.body["open"]["times_seen"].as_i64().unwrap_or(0) >= 1,
        "{:?}",
        r.body
    );
    let report = app
        .client
        .get(format!(
            "{}/api/connections/{id}/issues/heartbeat:outbound/report",
            app.base
        ))
        .send()
        .await
        .expect("report");
    assert_eq!(report.status().as_u16(), 200);
    let disposition = report
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"impact-diagnostic-"),
        "{disposition}"
    );
    let text = report.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["connection"]["id"], id);
    assert_eq!(body["secrets"]["credentials"], "held (redacted)");
    assert!(body["heartbeats"].as_array().is_some_and(|b| !b.is_empty()));
    assert!(body["events"].as_array().is_some_and(|e| !e.is_empty()));
    assert_eq!(body["workflow"]["assignee"], crate::helpers::ADMIN_EMAIL);
    let creds = app::server::connections::credentials(&app.state, id)
        .await
        .expect("read")
        .expect("held");
    let secret_b64 =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &creds.secret);
    assert!(!text.contains(&secret_b64), "the report holds the secret");

    // Back up (one recovery alert), then muted: the next Down and recovery stay quiet.
    app.faults(json!({})).await;
    eventually("the recovery alert", async || {
        outbox_to(&app, "viewer@example.com", "Connection recovered").await == 1
    })
    .await;
    let r = act(
        &app,
        id,
        "heartbeat:outbound",
        json!({"command": "mute", "minutes": 60}),
    )
    .await;
    assert!(r.body["muted_until"].is_string(), "{:?}", r.body);
    let r = act(
        &app,
        id,
        "heartbeat:inbound",
        json!({"command": "mute", "minutes": 60}),
    )
    .await;
    assert_eq!(r.status, 200);
    app.faults(json!({ "down": true })).await;
    until_record(&app, id, |c| c["outbound"] == "down").await;
    app.faults(json!({})).await;
    until_record(&app, id, |c| c["outbound"] == "up" && c["inbound"] == "up").await;
    assert_eq!(
        outbox_to(&app, "viewer@example.com", "Connection Down").await,
        1,
        "muted: quiet"
    );
    assert_eq!(
        outbox_to(&app, crate::helpers::ADMIN_EMAIL, "Connection Down").await,
        1
    );
    let r = act(&app, id, "heartbeat:outbound", json!({"command": "unmute"})).await;
    assert!(r.body["muted_until"].is_null(), "{:?}", r.body);
}

both_backends_with!(
    the_issue_workflow,
    crate::helpers::heartbeat_every_second,
    workflow
);

fn digest_every_second(config: &mut server::config::Config) {
    crate::helpers::heartbeat_every_second(config);
    config.settings.digest_every = Duration::from_secs(1);
}

async fn digest(app: TestApp) {
    let id = onboarded(&app).await;
    let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
    let r = viewer
        .post(format!(
            "{}/api/connections/{id}/issues/heartbeat:inbound",
            app.base
        ))
        .json(&json!({"command": "follow"}))
        .send()
        .await
        .expect("follow");
    assert_eq!(r.status().as_u16(), 200);
    // Inbound Down alone: one open issue the viewer follows.
    app.faults(json!({ "inbound_blocked": true })).await;
    until_record(&app, id, |c| c["inbound"] == "down").await;
    eventually("a digest to the follower", async || {
        outbox_to(&app, "viewer@example.com", "Open issues digest").await >= 1
    })
    .await;
    let mail = app.get("/api/outbox").await.body;
    let theirs = mail
        .as_array()
        .and_then(|m| {
            m.iter().find(|m| {
                m["to"] == "viewer@example.com"
                    && m["subject"]
                        .as_str()
                        .unwrap_or("")
                        .contains("Open issues digest")
            })
        })
        .cloned()
        .unwrap_or(Value::Null);
    let text = theirs["body"].as_str().unwrap_or("");
    assert!(
        text.contains("Provider's heartbeat call reaches this instance"),
        "{text}"
    );
    assert!(
        text.contains(&format!("/connections/{id}/issues/heartbeat:inbound")),
        "{text}"
    );
    assert!(outbox_to(&app, crate::helpers::ADMIN_EMAIL, "Open issues digest").await >= 1);
    // Muted: the digest leaves it out, and nobody gets an empty one.
    let r = app
        .post(
            &format!("/api/connections/{id}/issues/heartbeat:inbound"),
            json!({"command": "mute", "minutes": 60}),
        )
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = outbox_to(&app, "viewer@example.com", "Open issues digest").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        outbox_to(&app, "viewer@example.com", "Open issues digest").await,
        before,
        "a muted issue is not in the digest"
    );
}

both_backends_with!(the_digest_of_open_issues, digest_every_second, digest);
