use serde_json::{json, Value};

use crate::{both_backends, helpers::TestApp};

async fn create(app: &TestApp, company: &str) -> Value {
    let token = app.invite("ada@example.com", company).await;
    let r = app
        .post(
            "/api/connections",
            json!({ "company": company, "registration_token": token }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

both_backends!(
    save_creates_the_connection_and_starts_validation,
    |app: TestApp| async move {
        let c = create(&app, "ServiceNow Impact").await;
        // Save creates the record and starts the checks at once.
        assert_eq!(c["state"], "awaiting_validation");
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("blank"), Some("blank"))
        );
        assert_eq!(c["url"], app.provider_url.as_str());
        let id = c["id"].as_i64().expect("id");
        let validated = app.wait_for_state(id, "validated").await;
        assert_eq!(
            (
                validated["outbound"].as_str(),
                validated["inbound"].as_str()
            ),
            (Some("not_onboarded"), Some("not_onboarded"))
        );
        assert_eq!(app.get("/api/connections").await.body, json!([validated]));
        let history = app
            .get(&format!("/api/connections/{id}/history"))
            .await
            .body;
        let steps: Vec<&str> = history
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|h| h["action"].as_str())
            .collect();
        assert_eq!(
            steps,
            [
                "Created",
                "Submitted for validation",
                "Registered with the provider",
                "Validation checks passed"
            ]
        );
        assert_eq!(history[0]["actor"], crate::helpers::ADMIN_EMAIL);
        assert_eq!(history[3]["to_state"], "validated");
    }
);

both_backends!(unknown_ids_are_404, |app: TestApp| async move {
    for path in [
        "/api/connections/999",
        "/api/connections/abc",
        "/api/connections/999/history",
    ] {
        let r = app.get(path).await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
});

both_backends!(
    a_stale_save_is_409_and_overwrites_nothing,
    |app: TestApp| async move {
        let c = create(&app, "ServiceNow Impact").await;
        let id = c["id"].as_i64().expect("id");
        let v = app.wait_for_state(id, "validated").await["version"]
            .as_i64()
            .expect("version");
        let r = app
            .put(
                &format!("/api/connections/{id}"),
                json!({ "company": "Acme", "version": v }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["company"].as_str(), Some("Acme"));
        // A new company is validated again.
        let after = app.wait_for_state(id, "validated").await;
        let r = app
            .put(
                &format!("/api/connections/{id}"),
                json!({ "company": "Globex", "version": v }),
            )
            .await;
        assert_eq!((r.status, r.body["code"].as_str()), (409, Some("conflict")));
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("changed by someone else"));
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body,
            after,
            "nothing overwritten"
        );
        let history = app
            .get(&format!("/api/connections/{id}/history"))
            .await
            .body;
        assert!(history
            .as_array()
            .expect("list")
            .iter()
            .all(|h| h["reason"] != "Company set to Globex"));
    }
);

both_backends!(
    one_connection_per_company_and_per_provider,
    |app: TestApp| async move {
        let c = create(&app, "ServiceNow Impact").await;
        let id = c["id"].as_i64().expect("id");
        let c = app.wait_for_state(id, "validated").await;
        // A second link for the same provider: the existing connection is to be resumed.
        let token = app.invite("bob@example.com", "Other Co").await;
        let r = app
            .post(
                "/api/connections",
                json!({ "company": "Other Co", "registration_token": token }),
            )
            .await;
        assert_eq!((r.status, r.body["code"].as_str()), (409, Some("conflict")));
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"));
        // A link for another provider, saved with a company that already has a connection.
        let token = app.invite("bob@example.com", "Other Co").await;
        sqlx::query("UPDATE invitations SET provider_url = $1 WHERE status = 'pending'")
            .bind(format!("{}-second", app.provider_url))
            .execute(&app.state.db.pool)
            .await
            .expect("move the invitation to another provider instance");
        let r = app
            .post(
                "/api/connections",
                json!({ "company": "servicenow  IMPACT", "registration_token": token }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (409, Some("conflict")),
            "{:?}",
            r.body
        );
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already has a provider connection"));
        // Nothing half-written: the link is still usable, no extra company or connection.
        assert_eq!(app.get("/api/connections").await.body, json!([c]));
        let r = app
            .post(
                "/api/connections",
                json!({ "company": "Other Co", "registration_token": token }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
);

both_backends!(bad_input_gets_a_clear_4xx, |app: TestApp| async move {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let r = app
        .post(
            "/api/connections",
            json!({ "company": "", "registration_token": token }),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("company")));
    let r = app
        .post("/api/connections", json!({ "company": "Acme" }))
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (422, Some("registration_token"))
    );
    let r = app
        .post("/api/connections", json!({ "registration_token": token }))
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (422, Some("invalid")));
    let raw = app
        .client
        .post(format!("{}/api/connections", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 400);
    let raw = app
        .client
        .post(format!("{}/api/connections", app.base))
        .body("x")
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), 415);
    let huge = "x".repeat(100_000);
    let r = app
        .post(
            "/api/connections",
            json!({ "company": huge, "registration_token": token }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // None of that created anything, and the link still works.
    assert_eq!(app.get("/api/connections").await.body, json!([]));
    assert_eq!(
        app.get(&format!("/api/registration?token={token}"))
            .await
            .status,
        200
    );
});

/// A 409 refusal whose message names `what` the state requires or is.
fn assert_refused(r: &crate::helpers::Reply, what: &str) {
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("refused")),
        "{:?}",
        r.body
    );
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(message.contains(what), "{:?}", r.body);
}

both_backends!(
    actions_follow_the_state_machine,
    |app: TestApp| async move {
        // Every provider answer takes 1.8 s (under the 2 s limit), so the scan's waves keep the
        // checks running for several seconds: the rescan below surely comes while they run.
        app.faults(json!({ "slow_ms": 1800 })).await;
        let c = create(&app, "ServiceNow Impact").await;
        let id = c["id"].as_i64().expect("id");
        let path = format!("/api/connections/{id}/actions");
        // While the checks run, a rescan is refused with the reason.
        let r = app
            .post(
                &path,
                json!({ "action": "rescan", "version": c["version"] }),
            )
            .await;
        assert_refused(&r, "Awaiting validation");
        let c = app.wait_for_state(id, "validated").await;
        app.faults(json!({})).await;
        let v = c["version"].as_i64().expect("version");
        // Retry only after a failed onboarding: the refusal says what the state requires.
        let r = app
            .post(&path, json!({ "action": "retry", "version": v }))
            .await;
        assert_refused(&r, "Validated");
        // System events cannot be requested.
        let r = app
            .post(
                &path,
                json!({ "action": "validation_passed", "version": v }),
            )
            .await;
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some("action")));
        // A stale version is refused before anything else.
        let r = app
            .post(&path, json!({ "action": "rescan", "version": 999 }))
            .await;
        assert_eq!(r.status, 409);
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("changed by someone else"));
        let r = app
            .post(&path, json!({ "action": "no_such_action", "version": v }))
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(app.get(&format!("/api/connections/{id}")).await.body, c);
    }
);

// The page's server functions refuse with the same statuses as the REST API (never a 500 for
// a request that is merely wrong), with the message the page shows.
both_backends!(
    server_functions_refuse_with_a_4xx_and_a_message,
    |app: TestApp| async move {
        let form = |path: &str, body: String| {
            app.client
                .post(format!("{}{path}", app.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let r = form("/fn/get_connection", "id=999".into())
            .await
            .expect("request");
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.expect("json error");
        assert_eq!(body["code"], "not_found");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("999")));

        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let r = form(
            "/fn/save_new_connection",
            format!("req[company]=&req[registration_token]={token}"),
        )
        .await
        .expect("request");
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.expect("json error");
        assert_eq!(body["field"], "company");
        assert_eq!(app.get("/api/connections").await.body, json!([]));
    }
);
