//! The home page's overview (`/fn/home_overview`): every connection with its state, statuses
//! and open issues as the health dashboard counts them, and Guided Setup's progress; the next
//! step the page shows is the model's rule on this (unit-tested in `model::home`).
use serde_json::{json, Value};

use crate::{both_backends, helpers::TestApp};

async fn overview(app: &TestApp) -> Value {
    let r = app
        .client
        .post(format!("{}/fn/home_overview", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

both_backends!(
    the_overview_counts_each_connections_open_issues,
    |app: TestApp| async move {
        let empty = overview(&app).await;
        assert_eq!(empty["connections"], json!([]));
        assert_eq!(empty["establish_complete"], false);

        // Refused credentials: validation fails with open issues on the dashboard.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.faults(json!({ "bad_credentials": true })).await;
        let id = app.create_from_link(&token).await;
        app.wait_for_state(id, "validation_failed").await;
        let issues = |health: &Value| {
            health["checks"]
                .as_array()
                .expect("checks")
                .iter()
                .filter(|c| c["status"] == "failed" || c["status"] == "error")
                .count()
        };
        let dashboard = app.get(&format!("/api/connections/{id}/health")).await.body;
        assert!(issues(&dashboard) > 0, "{dashboard}");
        let home = overview(&app).await;
        let row = &home["connections"][0];
        assert_eq!(row["connection"]["id"], id, "{home}");
        assert_eq!(row["connection"]["state"], "validation_failed");
        assert_eq!(row["open_issues"], issues(&dashboard), "{home}");

        // Fixed and rescanned: validated, no open issue left.
        app.faults(json!({})).await;
        let r = app.rescan(id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        app.wait_for_state(id, "validated").await;
        let home = overview(&app).await;
        assert_eq!(home["connections"][0]["open_issues"], 0, "{home}");
        assert_eq!(home["connections"][0]["connection"]["state"], "validated");
    }
);
