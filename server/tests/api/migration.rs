//! "Start data migration": the provider's tables copied into this instance's database with live
//! progress, counted at the end; cancel; a provider failing mid-way; refusals. On both backends,
//! against the real simulator over HTTP.
use serde_json::{json, Value};
use sqlx::Row;

use crate::{both_backends, helpers::TestApp, onboarding::onboarded};

/// The simulator's tables (simulator/src/catalog.rs) and their record counts.
const TABLES: [(&str, i64); 3] = [
    ("impact_account", 2400),
    ("impact_success_plan", 1800),
    ("impact_engagement_request", 5600),
];
const RECORDS: i64 = 9800;

/// Onboarded, every Guided Setup activity before the migration complete.
pub async fn ready(app: &TestApp) -> i64 {
    for a in ["learn", "register"] {
        let r = app
            .post(&format!("/api/guided-setup/{a}/complete"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{a}: {:?}", r.body);
    }
    let id = onboarded(app).await;
    let r = app
        .post("/api/guided-setup/establish/complete", json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for v in ["verify-connection", "verify-data"] {
        let r = app.post(&format!("/api/guided-setup/{v}"), json!({})).await;
        assert_eq!(
            (r.status, &r.body["ok"]),
            (200, &json!(true)),
            "{v}: {:?}",
            r.body
        );
    }
    id
}

async fn latest(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/connections/{id}/migration")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Waits for the latest migration to read `state`, and returns it.
async fn wait_state(app: &TestApp, id: i64, state: &str) -> Value {
    let mut last = Value::Null;
    crate::helpers::eventually(&format!("the migration to be {state}"), async || {
        last = latest(app, id).await;
        last["state"] == state
    })
    .await;
    last
}

fn copied(m: &Value) -> i64 {
    m["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| t["copied"].as_i64().unwrap_or(0))
        .sum()
}

/// Records of the connection in the database, by table, counted by the test itself.
async fn records(app: &TestApp, id: i64) -> Vec<(String, i64)> {
    sqlx::query(
        "SELECT tbl, COUNT(*) AS n FROM impact_records WHERE connection_id = $1 GROUP BY tbl ORDER BY tbl",
    )
    .bind(id)
    .fetch_all(&app.state.db.pool)
    .await
    .expect("records")
    .iter()
    .map(|r| (r.get::<String, _>("tbl"), r.get::<i64, _>("n")))
    .collect()
}

async fn total_records(app: &TestApp, id: i64) -> i64 {
    records(app, id).await.iter().map(|(_, n)| n).sum()
}

/// The connection's migration events, in order: (migration id, state, copied per table).
async fn migration_events(app: &TestApp, id: i64) -> Vec<(i64, String, Vec<i64>)> {
    sqlx::query("SELECT body FROM connection_events WHERE connection_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("events")
        .iter()
        .filter_map(|r| {
            let body: Value = serde_json::from_str(&r.get::<String, _>("body")).ok()?;
            (body["type"] == "migration").then(|| {
                (
                    body["migration_id"].as_i64().unwrap_or(0),
                    body["state"].as_str().unwrap_or("").to_string(),
                    body["tables"]
                        .as_array()
                        .map(|t| {
                            t.iter()
                                .map(|t| t["copied"].as_i64().unwrap_or(-1))
                                .collect()
                        })
                        .unwrap_or_default(),
                )
            })
        })
        .collect()
}

fn status_of(setup: &Value, activity: &str) -> String {
    setup["activities"]
        .as_array()
        .expect("activities")
        .iter()
        .find(|a| a["id"] == activity)
        .and_then(|a| a["status"].as_str())
        .unwrap_or("")
        .to_string()
}

both_backends!(
    a_migration_copies_every_table_page_by_page_and_its_counts_match,
    |app: TestApp| async move {
        // Locked until the data connection is verified, with what to do.
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Verify Impact data connection"),
            "{:?}",
            r.body
        );
        let id = ready(&app).await;
        let setup = app.get("/api/guided-setup").await.body;
        assert_eq!(status_of(&setup, "migrate_data"), "not_started");
        assert_eq!(
            app.get(&format!("/api/connections/{id}/migration"))
                .await
                .status,
            404
        );

        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["state"], "running");
        assert_eq!(r.body["started_by"], crate::helpers::ADMIN_EMAIL);
        let first = r.body["id"].as_i64().expect("id");
        let totals: Vec<(String, i64)> = r.body["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap_or("").to_string(),
                    t["total"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        let want: Vec<(String, i64)> = TABLES.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        assert_eq!(totals, want);

        let done = wait_state(&app, id, "completed").await;
        assert_eq!(copied(&done), RECORDS);
        for t in done["tables"].as_array().expect("tables") {
            assert_eq!(t["stored"], t["total"], "{t}");
            assert_eq!(t["done"], true, "{t}");
        }
        assert!(
            done["detail"]
                .as_str()
                .unwrap_or("")
                .contains("every count matches"),
            "{done}"
        );
        // Counted by the test: every record, once.
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(records(&app, id).await, want_sorted);

        // The live stream told every step: started, one event per page (500 records), the end;
        // each table's count only ever grows.
        let events = migration_events(&app, id).await;
        let pages: i64 = TABLES.iter().map(|(_, n)| (n + 499) / 500).sum();
        assert_eq!(events.len() as i64, 1 + pages + 1, "{events:?}");
        assert_eq!(events.first().map(|e| e.1.as_str()), Some("running"));
        assert_eq!(events.last().map(|e| e.1.as_str()), Some("completed"));
        for pair in events.windows(2) {
            for (a, b) in pair[0].2.iter().zip(&pair[1].2) {
                assert!(a <= b, "a count went down: {pair:?}");
            }
            let moved: i64 = pair[1].2.iter().sum::<i64>() - pair[0].2.iter().sum::<i64>();
            assert!(moved <= 500, "more than a page at once: {pair:?}");
        }
        assert!(events.iter().all(|e| e.0 == first));

        // The activity completes by itself, by the person who started it, and is audited.
        let setup = app.get("/api/guided-setup").await.body;
        assert_eq!(status_of(&setup, "migrate_data"), "complete");
        assert_eq!(setup["migration"]["state"], "completed");
        let audit = app.get("/api/audit").await.body.to_string();
        for line in ["Data migration started", "Data migration completed"] {
            assert!(audit.contains(line), "{line} not in the audit log");
        }
        // Mark Complete is not how it completes.
        let r = app
            .post("/api/guided-setup/migrate_data/complete", json!({}))
            .await;
        assert_eq!(r.status, 200, "already complete: accepted, changes nothing");

        // Again: a new migration, the same records (replaced, not added).
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_ne!(r.body["id"].as_i64(), Some(first));
        let again = wait_state(&app, id, "completed").await;
        assert_eq!(copied(&again), RECORDS);
        assert_eq!(total_records(&app, id).await, RECORDS);
    }
);

both_backends!(
    cancel_stops_the_migration_before_its_next_page_and_keeps_what_was_copied,
    |app: TestApp| async move {
        let id = ready(&app).await;
        app.faults(json!({ "data_page_ms": 300 })).await;
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        // A second start while it runs is refused, saying how far it is.
        let r2 = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r2.status, 409, "{:?}", r2.body);
        assert!(r2.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already running"));
        crate::helpers::eventually("two pages copied", async || {
            copied(&latest(&app, id).await) >= 1000
        })
        .await;
        let r = app
            .post("/api/guided-setup/migration/cancel", json!({}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["state"], "cancelled");
        let at_cancel = copied(&r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("cancelled by"),
            "{:?}",
            r.body
        );
        // The page in flight is not recorded: wait out more than a page, nothing moves.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let after = latest(&app, id).await;
        assert_eq!(
            (after["state"].as_str(), copied(&after)),
            (Some("cancelled"), at_cancel)
        );
        let events = migration_events(&app, id).await;
        assert_eq!(
            events.last().map(|e| e.1.as_str()),
            Some("cancelled"),
            "{events:?}"
        );
        // What was copied is in the database, counted the same.
        assert_eq!(total_records(&app, id).await, at_cancel);
        for t in after["tables"].as_array().expect("tables") {
            assert_eq!(t["stored"], t["copied"], "{t}");
        }
        // Nothing to cancel any more; the activity is not complete.
        let r = app
            .post("/api/guided-setup/migration/cancel", json!({}))
            .await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        let setup = app.get("/api/guided-setup").await.body;
        assert_eq!(status_of(&setup, "migrate_data"), "in_progress");
    }
);

both_backends!(
    a_provider_that_stops_mid_migration_fails_it_with_no_page_half_written,
    |app: TestApp| async move {
        let id = ready(&app).await;
        app.faults(json!({ "data_page_ms": 150 })).await;
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        crate::helpers::eventually("three pages copied", async || {
            copied(&latest(&app, id).await) >= 1500
        })
        .await;
        app.faults(json!({ "down": true })).await;
        let failed = wait_state(&app, id, "failed").await;
        let detail = failed["detail"].as_str().unwrap_or("");
        assert!(detail.contains("stopped sending"), "{detail}");
        assert!(detail.contains("Start data migration again"), "{detail}");
        // Whole pages only: the records here are exactly the pages recorded.
        assert_eq!(total_records(&app, id).await, copied(&failed));
        assert_eq!(copied(&failed) % 500, 0, "{failed}");
        let audit = app.get("/api/audit").await.body.to_string();
        assert!(audit.contains("Data migration failed"));

        // Back up: starting again copies everything, and the counts match.
        app.faults(json!({})).await;
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        wait_state(&app, id, "completed").await;
        assert_eq!(total_records(&app, id).await, RECORDS);
    }
);

both_backends!(
    migration_is_refused_to_other_roles_and_when_the_provider_cannot_list_its_tables,
    |app: TestApp| async move {
        let id = ready(&app).await;
        let viewer = app.user_with("viewer@example.com", &["impact_user"]).await;
        for path in [
            "/api/guided-setup/migration",
            "/api/guided-setup/migration/cancel",
        ] {
            let r = viewer
                .post(format!("{}{path}", app.base))
                .json(&json!({}))
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 403, "{path}");
        }
        // Reading is anyone's; a connection that does not exist is 404.
        let r = viewer
            .get(format!("{}/api/connections/{id}/migration", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 404, "no migration yet");
        assert_eq!(
            app.get("/api/connections/987654/migration").await.status,
            404
        );

        // The provider cannot list its tables: 502, and nothing was started.
        app.faults(json!({ "down": true })).await;
        let r = app.post("/api/guided-setup/migration", json!({})).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("Nothing was started"));
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM data_migrations")
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count")
            .get("n");
        assert_eq!(rows, 0);
        assert!(migration_events(&app, id).await.is_empty());
    }
);

both_backends!(
    of_many_concurrent_starts_exactly_one_runs_and_off_boarding_waits_for_it,
    |app: TestApp| async move {
        let id = ready(&app).await;
        app.faults(json!({ "data_page_ms": 200 })).await;
        let starts = (0..8).map(|_| app.post("/api/guided-setup/migration", json!({})));
        let answers = futures::future::join_all(starts).await;
        let ok = answers.iter().filter(|r| r.status == 200).count();
        let refused = answers.iter().filter(|r| r.status == 409).count();
        assert_eq!(
            (ok, refused),
            (1, 7),
            "{:?}",
            answers
                .iter()
                .map(|r| (r.status, &r.body))
                .collect::<Vec<_>>()
        );
        let running: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM data_migrations WHERE state = 'running'")
                .fetch_one(&app.state.db.pool)
                .await
                .expect("count")
                .get("n");
        assert_eq!(running, 1);
        // Off-boarding would erase the credentials the migration copies with: refused meanwhile.
        let version = app.get(&format!("/api/connections/{id}")).await.body["version"].clone();
        let r = app
            .post(
                &format!("/api/connections/{id}/off-board"),
                json!({ "version": version, "confirm": "Delete" }),
            )
            .await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("data migration is running"));
        let r = app
            .post("/api/guided-setup/migration/cancel", json!({}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
);
