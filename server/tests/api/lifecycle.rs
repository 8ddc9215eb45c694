//! The connection lifecycle (issue 15). Off-boarding: an IDI admin types "Delete", the provider is told, the credentials
//! are revoked and erased, the record stays readable as Off-boarded, and the company can be
//! connected again. A provider that cannot be told leaves everything as it was; other roles,
//! other states and a wrong word are refused with nothing changed.
use serde_json::{json, Value};

use crate::{
    both_backends, both_backends_with,
    helpers::{Reply, TestApp},
    inbound::{send, Call},
    onboarding::{onboarded, stored_seq, validated},
};

/// The connection's history, oldest first.
async fn history(app: &TestApp, id: i64) -> Value {
    let r = app.get(&format!("/api/connections/{id}/history")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Its newest history entry.
async fn last_history(app: &TestApp, id: i64) -> Value {
    history(app, id)
        .await
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("a history entry")
}

async fn version(app: &TestApp, id: i64) -> Value {
    app.get(&format!("/api/connections/{id}")).await.body["version"].clone()
}

/// The version before `v`: what a person acting on an outdated page sends.
fn behind(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0) - 1)
}

async fn off_board(app: &TestApp, id: i64, confirm: &str, without_provider: bool) -> Reply {
    let v = version(app, id).await;
    app.post(
        &format!("/api/connections/{id}/off-board"),
        json!({ "version": v, "confirm": confirm, "without_provider": without_provider }),
    )
    .await
}

/// What the provider has off-boarded so far (the simulator's record).
async fn provider_off_boarded(app: &TestApp) -> Vec<String> {
    let counters: Value =
        reqwest::get(format!("{}/sim/instances/{}", app.sim_base(), app.instance))
            .await
            .expect("counters")
            .json()
            .await
            .expect("json");
    serde_json::from_value(counters["off_boarded"].clone()).expect("off_boarded list")
}

/// The server-only columns off-boarding must erase.
async fn stored_link(app: &TestApp, id: i64) -> [Option<String>; 3] {
    let row: (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT consumer_id, secret, registration_code FROM connections WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("row");
    [row.0, row.1, row.2]
}

fn message(r: &Reply) -> &str {
    r.body["message"].as_str().unwrap_or("")
}

both_backends!(
    an_onboarded_connection_is_off_boarded_then_its_company_connects_again,
    |app: TestApp| async move {
        let id = onboarded(&app).await;
        let creds = app::server::connections::credentials(&app.state, id)
            .await
            .expect("read")
            .expect("onboarded connections hold credentials");
        let before = app.get(&format!("/api/connections/{id}")).await.body;

        // A wrong word, then a stale version: refused, nothing changed, the provider not asked.
        for typed in ["delete", "", "Delete it"] {
            let r = off_board(&app, id, typed, false).await;
            assert_eq!(r.status, 422, "{typed:?}: {:?}", r.body);
            assert_eq!(r.body["field"], "confirm");
            assert!(message(&r).contains("Type Delete"), "{:?}", r.body);
        }
        let stale = app
            .post(
                &format!("/api/connections/{id}/off-board"),
                json!({ "version": 1, "confirm": "Delete" }),
            )
            .await;
        assert_eq!(stale.status, 409, "{:?}", stale.body);
        // Not through the generic actions endpoint either: it needs the typed word.
        let generic = act(&app, id, "off_board", before["version"].clone()).await;
        assert_eq!(generic.status, 422, "{:?}", generic.body);
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body,
            before
        );
        assert!(provider_off_boarded(&app).await.is_empty());

        let seq = stored_seq(&app, id).await;
        let r = off_board(&app, id, "Delete", false).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["state"], "off_boarded");
        assert_eq!(r.body["registered"], false);
        assert_eq!(r.body["onboarding"], "not_started");
        assert_eq!(
            (&r.body["outbound"], &r.body["inbound"]),
            (&json!("blank"), &json!("blank"))
        );
        // The provider was told, once, and forgot this consumer.
        assert_eq!(
            provider_off_boarded(&app).await,
            vec![creds.consumer_id.clone()]
        );
        // The credentials are erased here.
        assert_eq!(stored_link(&app, id).await, [None, None, None]);
        // A call signed with the old credentials is now a stranger's.
        let (status, _) = send(
            &app,
            "/inbound/v1/ping",
            Some(&Call {
                consumer: &creds.consumer_id,
                secret: &creds.secret,
                timestamp: chrono::Utc::now().timestamp(),
            }),
        )
        .await;
        assert_eq!(status, 401);
        // The change is on the live stream, in the history and the audit log.
        assert!(stored_seq(&app, id).await > seq);
        let last = last_history(&app, id).await;
        assert_eq!(last["action"], "Off-board");
        assert_eq!(last["actor"], crate::helpers::ADMIN_EMAIL);
        assert_eq!(
            (&last["from_state"], &last["to_state"]),
            (&json!("validated"), &json!("off_boarded"))
        );
        assert!(
            last["reason"]
                .as_str()
                .unwrap_or("")
                .contains("The provider removed this consumer"),
            "{last}"
        );
        let audit = app.get("/api/audit").await.body;
        assert!(
            audit
                .as_array()
                .expect("audit")
                .iter()
                .any(|e| e["action"] == "Off-board" && e["connection_id"] == id),
            "{audit}"
        );

        // Readable, and nothing more can be done with it.
        assert_eq!(app.get(&format!("/api/connections/{id}")).await.status, 200);
        let rescan = app.rescan(id).await;
        assert_eq!(rescan.status, 409, "{:?}", rescan.body);
        assert!(
            message(&rescan).contains("Off-boarded"),
            "{:?}",
            rescan.body
        );
        let again = off_board(&app, id, "Delete", false).await;
        assert_eq!(again.status, 409, "{:?}", again.body);
        assert!(
            message(&again).contains("already off-boarded"),
            "{:?}",
            again.body
        );
        let save = app
            .put(
                &format!("/api/connections/{id}"),
                json!({ "company": "Another", "version": version(&app, id).await }),
            )
            .await;
        assert_eq!(save.status, 409, "{:?}", save.body);
        let connect = app
            .post(&format!("/api/connections/{id}/connect"), json!({}))
            .await;
        assert_eq!(connect.status, 409, "{:?}", connect.body);

        // The same company, through a fresh registration link to the same provider: a new
        // connection, validated (the one-company check no longer counts the off-boarded one).
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let open = app.get(&format!("/api/registration?token={token}")).await;
        assert_eq!(open.status, 200, "{:?}", open.body);
        let again = app.create_from_link(&token).await;
        assert_ne!(again, id);
        let fresh = app.wait_for_state(again, "validated").await;
        assert_eq!(fresh["url"], before["url"]);
        assert_eq!(fresh["company"], before["company"]);
        let list = app.get("/api/connections").await.body;
        let states: Vec<_> = list
            .as_array()
            .expect("list")
            .iter()
            .map(|c| (c["id"].as_i64().unwrap_or(0), c["state"].clone()))
            .collect();
        assert_eq!(
            states,
            vec![(id, json!("off_boarded")), (again, json!("validated"))]
        );
        // The old record is still as it was left.
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body["state"],
            "off_boarded"
        );
    }
);

both_backends!(
    a_provider_that_cannot_be_told_leaves_everything_as_it_was,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let before = app.get(&format!("/api/connections/{id}")).await.body;
        let link = stored_link(&app, id).await;
        assert!(
            link[0].is_some() && link[1].is_some(),
            "registered: {link:?}"
        );

        app.faults(json!({ "down": true })).await;
        let r = off_board(&app, id, "Delete", false).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert!(message(&r).contains("Nothing was changed"), "{:?}", r.body);
        assert!(message(&r).contains("without telling it"), "{:?}", r.body);
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body,
            before
        );
        assert_eq!(stored_link(&app, id).await, link);

        // The provider is gone for good: the admin off-boards without telling it.
        let r = off_board(&app, id, "Delete", true).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["state"], "off_boarded");
        assert_eq!(stored_link(&app, id).await, [None, None, None]);
        app.faults(json!({})).await;
        assert!(provider_off_boarded(&app).await.is_empty(), "not told");
        let last = last_history(&app, id).await;
        assert!(
            last["reason"]
                .as_str()
                .unwrap_or("")
                .contains("without telling the provider"),
            "{last}"
        );
    }
);

both_backends!(
    off_boarding_is_refused_while_the_checks_run_and_for_other_roles,
    |app: TestApp| async move {
        // The checks held up by a slow provider: Awaiting validation.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.faults(json!({ "slow_ms": 1500 })).await;
        let id = app.create_from_link(&token).await;
        let r = off_board(&app, id, "Delete", false).await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(message(&r).contains("while the checks run"), "{:?}", r.body);
        app.faults(json!({})).await;
        app.wait_for_state(id, "validated").await;

        // An Impact app admin (not an IDI admin) and an Impact app user may not.
        for role in ["impact_admin", "impact_user"] {
            let client = app.user_with(&format!("{role}@example.com"), &[role]).await;
            let r = client
                .post(format!("{}/api/connections/{id}/off-board", app.base))
                .json(&json!({ "version": version(&app, id).await, "confirm": "Delete" }))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 403, "{role}");
        }
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body["state"],
            "validated"
        );
        assert!(provider_off_boarded(&app).await.is_empty());
    }
);

/// An existing database, made by the migrations before off-boarding, upgraded by starting the
/// app: every row is kept, references still hold, and the company and URL are unique among live
/// connections only.
async fn upgrade_keeps_the_data(backend: crate::helpers::Backend) {
    use sqlx::Executor;
    let (url, _dir) = crate::helpers::fresh_database(backend).await;
    let kind = match backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    // The migrations as they were before this one.
    let all =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../app/migrations/{kind}"));
    let before =
        std::env::temp_dir().join(format!("impact_migrations_{}_{kind}", std::process::id()));
    std::fs::create_dir_all(&before).expect("dir");
    for entry in std::fs::read_dir(&all).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.as_str() < "0012" {
            std::fs::copy(&path, before.join(&name)).expect("copy");
        }
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .expect("old migrations")
        .run(&pool)
        .await
        .expect("old schema");
    pool.execute(
        "INSERT INTO companies (id, name, name_key, created_at) VALUES (1, 'Acme', 'acme', 't')",
    )
    .await
    .expect("company");
    pool.execute(
        "INSERT INTO connections (id, company_id, url, contact_email, state, registered, onboarding, \
         outbound, inbound, version, created_at, updated_at, consumer_id, secret, event_seq) VALUES \
         (7, 1, 'http://127.0.0.1:9/i/a', 'ada@example.com', 'validated', 1, 'complete', 'up', 'up', \
         5, 't', 't', 'c-1', 'sealed', 3)",
    )
    .await
    .expect("connection");
    pool.execute(
        "INSERT INTO connection_history (connection_id, at, actor, action, from_state, to_state, reason) \
         VALUES (7, 't', 'ada@example.com', 'Save', 'pending', 'pending', 'kept')",
    )
    .await
    .expect("history");
    pool.close().await;

    let db = app::server::Db::connect(&url).await.expect("upgrade");
    let kept: (i64, String, i64, Option<String>, i64) = sqlx::query_as(
        "SELECT company_id, state, version, consumer_id, event_seq FROM connections WHERE id = 7",
    )
    .fetch_one(&db.pool)
    .await
    .expect("kept row");
    assert_eq!(kept, (1, "validated".into(), 5, Some("c-1".into()), 3));
    let history: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM connection_history WHERE connection_id = 7")
            .fetch_one(&db.pool)
            .await
            .expect("history");
    assert_eq!(history, 1);
    // References still hold: a connection with history cannot be deleted.
    assert!(db
        .pool
        .execute("DELETE FROM connections WHERE id = 7")
        .await
        .is_err());
    let second = "INSERT INTO connections (company_id, url, contact_email, state, registered, onboarding, \
         outbound, inbound, version, created_at, updated_at) VALUES \
         (1, 'http://127.0.0.1:9/i/a', 'ada@example.com', 'pending', 0, 'not_started', 'blank', 'blank', 1, 't', 't')";
    // A second live connection for the company and URL is refused; once the first is
    // off-boarded, it is not.
    assert!(db.pool.execute(second).await.is_err());
    db.pool
        .execute("UPDATE connections SET state = 'off_boarded' WHERE id = 7")
        .await
        .expect("off-board");
    db.pool
        .execute(second)
        .await
        .expect("a new live connection");
    assert!(db.pool.execute(second).await.is_err(), "only one live");
    let _ = std::fs::remove_dir_all(&before);
}

crate::per_backend!(
    an_existing_database_is_upgraded_with_its_data,
    upgrade_keeps_the_data
);

async fn re_register(app: &TestApp, id: i64, token: &str) -> Reply {
    let v = version(app, id).await;
    app.post(
        &format!("/api/connections/{id}/re-register"),
        json!({ "version": v, "registration_token": token }),
    )
    .await
}

both_backends!(
    revoked_credentials_are_repaired_by_re_registering_with_a_fresh_link,
    |app: TestApp| async move {
        let id = onboarded(&app).await;
        let old = app::server::connections::credentials(&app.state, id)
            .await
            .expect("read")
            .expect("credentials");
        // The provider's admin revokes them: the connection health scan finds Outbound Down.
        assert_eq!(sim_admin(&app, "revoke").await["revoked"], 1);
        let r = app.rescan(id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        crate::helpers::eventually("Outbound Down", async || {
            app.get(&format!("/api/connections/{id}")).await.body["outbound"] == "down"
        })
        .await;

        // A fresh link for the same provider re-registers the connection.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let r = re_register(&app, id, &token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["registered"], false);
        assert_eq!(r.body["onboarding"], "not_started");
        let c = app.wait_for_state(id, "validated").await;
        assert_eq!(c["registered"], true);
        let new = app::server::connections::credentials(&app.state, id)
            .await
            .expect("read")
            .expect("new credentials");
        assert_ne!(new.consumer_id, old.consumer_id);
        let history = history(&app, id).await;
        let entry = history
            .as_array()
            .expect("history")
            .iter()
            .find(|h| h["action"] == "Re-register")
            .cloned()
            .expect("a Re-register entry");
        assert!(
            entry["reason"]
                .as_str()
                .unwrap_or("")
                .contains("the provider did not retire the old credentials"),
            "{entry}"
        );
        // New credentials are a new consumer: onboarded again, both directions Up.
        let (status, _) = crate::onboarding::authorise(&app, id, "ada@example.com").await;
        assert_eq!(status, 303);
        let done = crate::onboarding::wait_onboarding(&app, id, "complete").await;
        assert_eq!(
            (&done["outbound"], &done["inbound"]),
            (&json!("up"), &json!("up"))
        );
        // The link was used.
        let again = re_register(&app, id, &token).await;
        assert_eq!(again.status, 410, "{:?}", again.body);
    }
);

both_backends!(
    re_registering_retires_the_old_credentials_and_refuses_a_link_for_another_provider,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let old = stored_link(&app, id).await[0].clone().expect("consumer id");
        let before = app.get(&format!("/api/connections/{id}")).await.body;

        // A link for another provider instance cannot re-register this connection.
        let other_url = format!("{}/i/elsewhere", app.sim_base());
        let r = app
            .post(
                "/api/invitations",
                json!({ "email": "bob@example.com", "company": "Elsewhere", "provider_url": other_url }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let other = app.get("/api/outbox").await.body[0]["link"]
            .as_str()
            .and_then(|l| l.split_once("token="))
            .map(|(_, t)| t.to_string())
            .expect("token");
        let refused = re_register(&app, id, &other).await;
        assert_eq!(refused.status, 422, "{:?}", refused.body);
        assert_eq!(refused.body["field"], "registration_token");
        assert!(
            message(&refused).contains("not this connection's provider"),
            "{:?}",
            refused.body
        );
        // Nor a stale version, nor an empty token.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        let stale = app
            .post(
                &format!("/api/connections/{id}/re-register"),
                json!({ "version": 1, "registration_token": token }),
            )
            .await;
        assert_eq!(stale.status, 409, "{:?}", stale.body);
        assert_eq!(re_register(&app, id, " ").await.status, 422);
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body,
            before
        );
        assert!(provider_off_boarded(&app).await.is_empty());

        let r = re_register(&app, id, &token).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        app.wait_for_state(id, "validated").await;
        // The provider retired the old consumer; the new one is another.
        assert_eq!(provider_off_boarded(&app).await, vec![old.clone()]);
        let new = stored_link(&app, id).await[0]
            .clone()
            .expect("new consumer id");
        assert_ne!(new, old);
    }
);

/// The old secret is honoured for 2 s after a rotation.
fn short_grace(config: &mut server::config::Config) {
    config.settings.rotation_grace = std::time::Duration::from_secs(2);
}

/// A heartbeat every second, so the provider's request to rotate is heard quickly.
fn quick_heartbeat(config: &mut server::config::Config) {
    config.settings.health_interval = std::time::Duration::from_secs(1);
}

async fn credentials(app: &TestApp, id: i64) -> app::server::provider::Credentials {
    app::server::connections::credentials(&app.state, id)
        .await
        .expect("read")
        .expect("credentials")
}

/// A signed call to the provider with these credentials (its consumer record): the provider's
/// answer says whether it still honours them.
async fn provider_accepts(app: &TestApp, creds: &app::server::provider::Credentials) -> bool {
    let url = app::model::ProviderUrl::parse(&app.provider_url).expect("url");
    app.state.provider(&url).consumer(creds).await.is_ok()
}

async fn inbound_accepts(app: &TestApp, creds: &app::server::provider::Credentials) -> bool {
    let (status, _) = send(
        app,
        "/inbound/v1/ping",
        Some(&Call {
            consumer: &creds.consumer_id,
            secret: &creds.secret,
            timestamp: chrono::Utc::now().timestamp(),
        }),
    )
    .await;
    status == 200
}

/// One of the form's actions, at `version`.
async fn act(app: &TestApp, id: i64, action: &str, version: Value) -> Reply {
    app.post(
        &format!("/api/connections/{id}/actions"),
        json!({ "action": action, "version": version }),
    )
    .await
}

async fn rotate(app: &TestApp, id: i64) -> Reply {
    act(app, id, "rotate_credentials", version(app, id).await).await
}

/// The provider's administrator acts on the instance's consumers (`revoke`, `ask-rotation`);
/// the answer says how many it touched.
async fn sim_admin(app: &TestApp, verb: &str) -> Value {
    reqwest::Client::new()
        .post(format!(
            "{}/sim/instances/{}/{verb}",
            app.sim_base(),
            app.instance
        ))
        .send()
        .await
        .expect(verb)
        .json()
        .await
        .expect("json")
}

/// The provider asks the instance's one consumer for new credentials, on its next heartbeat
/// answers until it gets them.
async fn ask_rotation(app: &TestApp) {
    assert_eq!(sim_admin(app, "ask-rotation").await["asked"], 1);
}

/// What the provider counted for the instance (echoes, rotations, activations…).
async fn sim_counters(app: &TestApp) -> Value {
    reqwest::get(format!("{}/sim/instances/{}", app.sim_base(), app.instance))
        .await
        .expect("counters")
        .json()
        .await
        .expect("json")
}

both_backends_with!(
    rotated_credentials_keep_the_link_and_the_old_secret_works_until_its_grace_ends,
    short_grace,
    |app: TestApp| async move {
        let id = onboarded(&app).await;
        let before = app.get(&format!("/api/connections/{id}")).await.body;
        let old = credentials(&app, id).await;

        // A stale version is refused before the provider is asked: nothing rotates.
        let v = version(&app, id).await;
        let stale = act(&app, id, "rotate_credentials", behind(&v)).await;
        assert_eq!(stale.status, 409, "{:?}", stale.body);
        assert_eq!(
            credentials(&app, id).await.secret,
            old.secret,
            "nothing rotated"
        );

        let r = rotate(&app, id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        // The link is as it was: same state and statuses, a new secret under the same consumer.
        for field in ["state", "registered", "onboarding", "outbound", "inbound"] {
            assert_eq!(r.body[field], before[field], "{field}");
        }
        let new = credentials(&app, id).await;
        assert_eq!(new.consumer_id, old.consumer_id);
        assert_ne!(new.secret, old.secret);
        let last = last_history(&app, id).await;
        assert_eq!(last["action"], "Rotate credentials");
        assert!(
            last["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("Credentials rotated on request; the old secret is honoured until"),
            "{last}"
        );
        // Both sides honour both secrets during the grace…
        assert!(provider_accepts(&app, &new).await);
        assert!(provider_accepts(&app, &old).await);
        assert!(inbound_accepts(&app, &old).await);
        // …and only the new one after it.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert!(provider_accepts(&app, &new).await);
        assert!(!provider_accepts(&app, &old).await);
        assert!(!inbound_accepts(&app, &old).await);
        assert!(inbound_accepts(&app, &new).await);
        // The sweep retires the stored old secret.
        app::server::sweep::once(&app.state).await.expect("sweep");
        let kept: Option<String> =
            sqlx::query_scalar("SELECT previous_secret FROM connections WHERE id = $1")
                .bind(id)
                .fetch_one(&app.state.db.pool)
                .await
                .expect("row");
        assert_eq!(kept, None);
        // A Rescan with the new credentials passes: the link never dropped.
        let r = app.rescan(id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
);

both_backends_with!(
    the_provider_asking_for_new_credentials_rotates_them_once,
    quick_heartbeat,
    |app: TestApp| async move {
        let id = onboarded(&app).await;
        let old = credentials(&app, id).await;
        ask_rotation(&app).await;
        crate::helpers::eventually("the credentials rotated", async || {
            credentials(&app, id).await.secret != old.secret
        })
        .await;
        let history = history(&app, id).await;
        let rotations: Vec<_> = history
            .as_array()
            .expect("history")
            .iter()
            .filter(|h| h["action"] == "Rotate credentials")
            .collect();
        assert_eq!(rotations.len(), 1, "{history}");
        assert_eq!(rotations[0]["actor"], "system");
        assert!(
            rotations[0]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("as the provider asked"),
            "{history}"
        );
        // Asked once, rotated once: the next heartbeats do not rotate again.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert_eq!(sim_counters(&app).await["rotations"], 1);
        let c = app.get(&format!("/api/connections/{id}")).await.body;
        assert_eq!(
            (&c["outbound"], &c["inbound"]),
            (&json!("up"), &json!("up"))
        );
    }
);

both_backends_with!(
    the_provider_asking_while_the_instance_changed_rotates_nothing_until_it_is_re_activated,
    quick_heartbeat,
    |app: TestApp| async move {
        let id = onboarded(&app).await;
        let old = credentials(&app, id).await;
        // The provider refuses this instance as another one: the heartbeat records it.
        app.faults(json!({ "instance_changed": true })).await;
        app.wait_for_state(id, "instance_changed").await;
        // It asks for new credentials and takes the instance back without a re-activation: its
        // heartbeat answers ask for a rotation the connection's state refuses (only Validate
        // and Activate leads out of "Instance changed").
        ask_rotation(&app).await;
        app.faults(json!({})).await;
        let echoes = sim_counters(&app).await["echoes"].as_i64().unwrap_or(0);
        crate::helpers::eventually("two heartbeats answered with the ask", async || {
            sim_counters(&app).await["echoes"].as_i64().unwrap_or(0) >= echoes + 2
        })
        .await;
        // The background rotation that answer starts is refused before the provider is called.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(sim_counters(&app).await["rotations"], 0);
        assert_eq!(credentials(&app, id).await.secret, old.secret);
        let c = app.get(&format!("/api/connections/{id}")).await.body;
        assert_eq!(c["state"], "instance_changed", "{c}");
        let entries = history(&app, id).await;
        assert!(
            !entries
                .as_array()
                .expect("history")
                .iter()
                .any(|h| h["action"] == "Rotate credentials"),
            "{entries}"
        );
        // Re-activated, the next heartbeat's ask is honoured, once.
        let r = act(&app, id, "validate_and_activate", version(&app, id).await).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        crate::helpers::eventually("the credentials rotated", async || {
            credentials(&app, id).await.secret != old.secret
        })
        .await;
        assert_eq!(sim_counters(&app).await["rotations"], 1);
    }
);

both_backends!(
    rotation_is_refused_without_credentials_and_changes_nothing_when_the_provider_fails,
    |app: TestApp| async move {
        // Never registered: the provider was down when the checks ran.
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.faults(json!({ "down": true })).await;
        let unregistered = app.create_from_link(&token).await;
        app.wait_for_state(unregistered, "validation_failed").await;
        let r = rotate(&app, unregistered).await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert!(message(&r).contains("needs credentials"), "{:?}", r.body);
        app.faults(json!({})).await;

        let r = app.rescan(unregistered).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        app.wait_for_state(unregistered, "validated").await;
        let old = credentials(&app, unregistered).await;
        app.faults(json!({ "down": true })).await;
        let r = rotate(&app, unregistered).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert!(message(&r).contains("Nothing was changed"), "{:?}", r.body);
        assert_eq!(credentials(&app, unregistered).await.secret, old.secret);
        app.faults(json!({})).await;
        assert!(provider_accepts(&app, &old).await);
    }
);

/// A cloned instance: the same database served under another base URL. The provider refuses it
/// as another instance; the heartbeat turns the connection "Instance changed"; "Validate and
/// Activate" re-establishes it for the new instance, its history before the clone kept.
async fn a_cloned_instance_is_re_activated(backend: crate::helpers::Backend) {
    use app::server::{key_source::KeySource, sealed::SecretKey};
    let restart = crate::helpers::fresh(backend, None).await;
    let key = SecretKey::generate();
    let mut original =
        crate::helpers::start_with(&restart, KeySource::key(key.clone()), quick_heartbeat)
            .await
            .expect("the original instance");
    let id = onboarded(&original).await;
    let history_before = history(&original, id).await;
    let restart = original.stop().await;
    let port = restart.addr.expect("the original's address").port();
    // The clone: the same data, another identity (a name for the same loopback address).
    let clone_url = format!("http://localhost:{port}");
    let clone = crate::helpers::start_with(&restart, KeySource::key(key), |c| {
        quick_heartbeat(c);
        c.settings.public_url = clone_url.clone();
    })
    .await
    .expect("the clone");
    let c = clone.wait_for_state(id, "instance_changed").await;
    assert_eq!(
        (&c["outbound"], &c["inbound"]),
        (&json!("down"), &json!("down"))
    );
    let entries = history(&clone, id).await;
    let entries = entries.as_array().expect("history");
    let last = entries.last().expect("an entry");
    assert_eq!(last["action"], "The provider reports this instance changed");
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or("")
            .contains("Validate and Activate"),
        "{last}"
    );
    // Nothing else until it is re-activated.
    let rescan = clone.rescan(id).await;
    assert_eq!(rescan.status, 409, "{:?}", rescan.body);
    assert!(
        message(&rescan).contains("Validate and Activate"),
        "{:?}",
        rescan.body
    );

    let v = version(&clone, id).await;
    // A stale version is refused before the provider is asked (its count of activations, below,
    // stays at the one that follows).
    let stale = act(&clone, id, "validate_and_activate", behind(&v)).await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    let r = act(&clone, id, "validate_and_activate", v).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "validated");
    crate::helpers::eventually("both directions Up for the clone", async || {
        let c = clone.get(&format!("/api/connections/{id}")).await.body;
        c["outbound"] == "up" && c["inbound"] == "up"
    })
    .await;
    let counters: Value = reqwest::get(format!(
        "{}/sim/instances/{}",
        clone.sim_base(),
        clone.instance
    ))
    .await
    .expect("counters")
    .json()
    .await
    .expect("json");
    assert_eq!(counters["activations"], 1);
    // The history before the clone is all still there, first.
    let after = history(&clone, id).await;
    let before = history_before.as_array().expect("before");
    assert_eq!(
        &after.as_array().expect("after")[..before.len()],
        &before[..]
    );
    // The heartbeats that follow find the clone the registered instance: it stays Validated.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let c = clone.get(&format!("/api/connections/{id}")).await.body;
    assert_eq!(c["state"], "validated", "{c}");
}

crate::per_backend!(
    a_cloned_instance_is_re_activated_for_its_new_identity,
    a_cloned_instance_is_re_activated
);

both_backends!(
    the_settings_onboarding_pulled_can_be_reviewed,
    |app: TestApp| async move {
        let id = validated(&app).await;
        // Nothing synced before onboarding; an unknown connection is not an empty list.
        let none = app.get(&format!("/api/connections/{id}/settings")).await;
        assert_eq!((none.status, none.body.clone()), (200, json!([])));
        assert_eq!(app.get("/api/connections/999/settings").await.status, 404);
        let (status, _) = crate::onboarding::authorise(&app, id, "ada@example.com").await;
        assert_eq!(status, 303);
        crate::onboarding::wait_onboarding(&app, id, "complete").await;
        let r = app.get(&format!("/api/connections/{id}/settings")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let groups = r.body.as_array().expect("groups");
        let names: Vec<_> = groups
            .iter()
            .map(|g| g["group"].as_str().unwrap_or(""))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["entitlements", "exchange_settings", "sync_definitions"]
        );
        let exchange = groups
            .iter()
            .find(|g| g["group"] == "exchange_settings")
            .expect("exchange settings");
        assert_eq!(exchange["title"], "Exchange settings");
        assert!(
            exchange["rows"]
                .as_array()
                .expect("rows")
                .contains(&json!({ "name": "Max authorised users", "value": "25" })),
            "{exchange}"
        );
        let definitions = groups
            .iter()
            .find(|g| g["group"] == "sync_definitions")
            .expect("sync definitions");
        assert_eq!(
            definitions["rows"].as_array().map(Vec::len),
            Some(3),
            "{definitions}"
        );
    }
);
