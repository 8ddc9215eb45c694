use serde_json::{json, Value};

use crate::{
    both_backends,
    helpers::TestApp,
    onboarding::{authorise, validated, wait_onboarding},
};

const ACTIVITIES: [&str; 6] = [
    "learn",
    "register",
    "establish",
    "verify_connection",
    "verify_data",
    "migrate_data",
];

fn statuses(setup: &Value) -> Vec<String> {
    setup["activities"]
        .as_array()
        .expect("activities")
        .iter()
        .map(|a| a["status"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn setup(app: &TestApp) -> Value {
    let r = app.get("/api/guided-setup").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn complete(app: &TestApp, activity: &str) -> crate::helpers::Reply {
    app.post(&format!("/api/guided-setup/{activity}/complete"), json!({}))
        .await
}

/// Learn and Register marked complete: "Establish the connection…" is next.
async fn up_to_establish(app: &TestApp) {
    for a in ["learn", "register"] {
        let r = complete(app, a).await;
        assert_eq!(r.status, 200, "{a}: {:?}", r.body);
    }
}

both_backends!(
    activities_are_listed_in_order_and_unlock_one_by_one,
    |app: TestApp| async move {
        let s = setup(&app).await;
        let ids: Vec<&str> = s["activities"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        assert_eq!(ids, ACTIVITIES);
        assert_eq!(s["activities"][3]["title"], "Verify the connection");
        assert_eq!(
            statuses(&s),
            [
                "not_started",
                "locked",
                "locked",
                "locked",
                "locked",
                "locked"
            ]
        );
        // A locked activity cannot be marked: the reason names what comes first.
        let r = complete(&app, "register").await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Learn about registering your instance"),
            "{:?}",
            r.body
        );
        let r = complete(&app, "learn").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            statuses(&r.body),
            [
                "complete",
                "not_started",
                "locked",
                "locked",
                "locked",
                "locked"
            ]
        );
        assert_eq!(
            r.body["activities"][0]["completed_by"],
            crate::helpers::ADMIN_EMAIL
        );
        assert!(r.body["activities"][0]["completed_at"].is_string());
        // Marking again changes nothing; an unknown activity is 404.
        assert_eq!(complete(&app, "learn").await.status, 200);
        assert_eq!(complete(&app, "nope").await.status, 404);
        // Progress is stored: the same for the next reader.
        let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
        let seen: Value = viewer
            .get(format!("{}/api/guided-setup", app.base))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            statuses(&seen),
            [
                "complete",
                "not_started",
                "locked",
                "locked",
                "locked",
                "locked"
            ]
        );
    }
);

both_backends!(
    mark_complete_before_onboarding_is_refused_with_the_reason,
    |app: TestApp| async move {
        up_to_establish(&app).await;
        // No connection at all yet.
        let r = complete(&app, "establish").await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("no provider connection"),
            "{:?}",
            r.body
        );
        // Validated, but not connected to the provider: the refusal names what is missing.
        let id = validated(&app).await;
        assert_eq!(statuses(&setup(&app).await)[2], "in_progress");
        let r = complete(&app, "establish").await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        let message = r.body["message"].as_str().unwrap_or("");
        assert!(
            message.contains("Outbound status is Not onboarded"),
            "{message}"
        );
        assert!(
            message.contains("Inbound status is Not onboarded"),
            "{message}"
        );
        assert!(message.contains("Provider connection form"), "{message}");
        // Nothing was recorded; "Verify the connection" stays locked.
        let s = setup(&app).await;
        assert_eq!(
            statuses(&s),
            [
                "complete",
                "complete",
                "in_progress",
                "locked",
                "locked",
                "locked"
            ]
        );
        assert_eq!(s["connection"]["id"], id);
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("is locked until"),
            "{:?}",
            r.body
        );
    }
);

both_backends!(
    only_the_right_roles_may_mark_or_verify,
    |app: TestApp| async move {
        let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
        let idi = app.user_with("idi@example.com", &["idi_admin"]).await;
        let post = |c: &reqwest::Client, path: &str| {
            c.post(format!("{}{path}", app.base))
                .json(&json!({}))
                .send()
        };
        assert_eq!(
            viewer
                .get(format!("{}/api/guided-setup", app.base))
                .send()
                .await
                .expect("get")
                .status(),
            200
        );
        for path in [
            "/api/guided-setup/learn/complete",
            "/api/guided-setup/verify-connection",
            "/api/guided-setup/verify-data",
        ] {
            let r = post(&viewer, path).await.expect("post");
            assert_eq!(r.status(), 403, "{path}");
        }
        // Mark Complete is the Impact app admin's, even for an IDI admin.
        let r = post(&idi, "/api/guided-setup/learn/complete")
            .await
            .expect("post");
        assert_eq!(r.status(), 403);
        let r = post(&viewer, "/fn/mark_complete").await.expect("post");
        assert_eq!(r.status(), 403);
        assert_eq!(statuses(&setup(&app).await)[0], "not_started");
    }
);

both_backends!(
    verification_of_a_connection_that_is_not_up_fails_with_what_to_do,
    |app: TestApp| async move {
        up_to_establish(&app).await;
        let id = validated(&app).await;
        // As if "Establish" had been completed and the connection then fell back: the run is
        // stored as a failure that says what is wrong and who can help.
        sqlx::query("INSERT INTO guided_completions (activity, completed_by, completed_at) VALUES ('establish', 'ops@example.com', $1)")
        .bind(app::server::clock::to_db(app::server::clock::now()))
        .execute(&app.state.db.pool)
        .await
        .expect("insert");
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["ok"], false);
        let detail = r.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("Outbound status is Not onboarded"),
            "{detail}"
        );
        assert!(detail.contains("Customer Service Manager"), "{detail}");
        assert!(detail.contains("manual registration"), "{detail}");
        let s = setup(&app).await;
        assert_eq!(statuses(&s)[3], "in_progress");
        assert_eq!(s["connection_check"]["ok"], false);
        assert_eq!(s["connection"]["id"], id);
        // Not a success, so it cannot be marked complete either.
        let r = complete(&app, "verify_connection").await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["message"].as_str().unwrap_or("").contains("failed"),
            "{:?}",
            r.body
        );
    }
);

both_backends!(
    the_whole_section_end_to_end_with_the_simulator,
    |app: TestApp| async move {
        up_to_establish(&app).await;
        let id = validated(&app).await;
        let (status, to) = authorise(&app, id, "ada@example.com").await;
        assert_eq!(
            (status, to.as_str()),
            (303, format!("/connections/{id}").as_str())
        );
        let c = wait_onboarding(&app, id, "complete").await;
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("up"), Some("up"))
        );

        // Step 9: Mark Complete unlocks "Verify the connection".
        let r = complete(&app, "establish").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            statuses(&r.body),
            [
                "complete",
                "complete",
                "complete",
                "not_started",
                "locked",
                "locked"
            ]
        );

        // A real round trip: out to the provider, echoed back to our inbound endpoint.
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["ok"], true, "{:?}", r.body);
        assert_eq!(
            (r.body["outbound"].as_str(), r.body["inbound"].as_str()),
            (Some("up"), Some("up"))
        );
        let latency = r.body["latency_ms"].as_i64().expect("latency");
        assert!((0..2000).contains(&latency), "{latency}");
        let s = setup(&app).await;
        assert_eq!(
            statuses(&s),
            [
                "complete",
                "complete",
                "complete",
                "complete",
                "not_started",
                "locked"
            ]
        );
        assert_eq!(
            s["activities"][3]["completed_by"],
            crate::helpers::ADMIN_EMAIL
        );

        // The data sample: what arrived, per table.
        let r = app.post("/api/guided-setup/verify-data", json!({})).await;
        assert_eq!(
            (r.status, &r.body["ok"]),
            (200, &json!(true)),
            "{:?}",
            r.body
        );
        let tables = r.body["tables"].as_array().expect("tables");
        assert_eq!(tables.len(), 3, "{tables:?}");
        let account = tables
            .iter()
            .find(|t| t["name"] == "impact_account")
            .expect("impact_account");
        assert_eq!(account["count"], 2400);
        assert!(account["newest"].is_string());
        let s = setup(&app).await;
        assert_eq!(
            statuses(&s),
            [
                "complete",
                "complete",
                "complete",
                "complete",
                "complete",
                "not_started"
            ]
        );
        assert_eq!(s["data_check"]["tables"].as_array().map(Vec::len), Some(3));

        // The provider goes down: re-running says so, and the activity list follows.
        app.faults(json!({ "down": true })).await;
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(
            (r.status, &r.body["ok"]),
            (200, &json!(false)),
            "{:?}",
            r.body
        );
        let detail = r.body["detail"].as_str().unwrap_or("");
        assert!(detail.contains("did not reach the provider"), "{detail}");
        assert!(detail.contains("Customer Service Manager"), "{detail}");
        assert_eq!(r.body["outbound"], "down");
        let s = setup(&app).await;
        assert_eq!(
            statuses(&s),
            [
                "complete",
                "complete",
                "complete",
                "in_progress",
                "locked",
                "locked"
            ]
        );

        // Reachable again, but the provider cannot call us back: Inbound is the one that fails.
        app.faults(json!({ "inbound_blocked": true })).await;
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(r.body["ok"], false, "{:?}", r.body);
        assert_eq!(
            (r.body["outbound"].as_str(), r.body["inbound"].as_str()),
            (Some("up"), Some("down"))
        );
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("inbound endpoint"),
            "{:?}",
            r.body
        );

        // Fixed: verification passes again and everything stands complete, first completion kept.
        app.faults(json!({})).await;
        let r = app
            .post("/api/guided-setup/verify-connection", json!({}))
            .await;
        assert_eq!(r.body["ok"], true, "{:?}", r.body);
        let s = setup(&app).await;
        assert_eq!(
            statuses(&s),
            [
                "complete",
                "complete",
                "complete",
                "complete",
                "complete",
                "not_started"
            ]
        );
        // Every attempt is in the audit log.
        let audit = app.get("/api/audit").await.body;
        let runs = audit
            .as_array()
            .expect("audit")
            .iter()
            .filter(|e| {
                e["action"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Verify the connection")
            })
            .count();
        assert_eq!(runs, 4, "{audit}");
    }
);
