//! Crash safety: the server process is killed with SIGKILL in the middle of an onboarding run
//! (and of a scan, a connection health run, a data migration); started again on the same database, it resumes the run from its last
//! completed step and finishes it, without doing or announcing any step twice. On SQLite and on
//! PostgreSQL (a fresh database on the server at TEST_POSTGRES_URL).
mod process;

use std::{
    collections::BTreeMap,
    process::{Child, Command},
    time::{Duration, Instant},
};

use process::{
    client, create, free_port, fresh_database, invite, pool, provider_counters, set_faults, start,
    until, wait_for, Backend, EMAIL,
};
use serde_json::{json, Value};
use simulator::Simulator;
use sqlx::Row;

/// Connection 1's stored events, in sequence order: (seq, body).
async fn stored_events(db: &sqlx::AnyPool) -> Vec<(i64, Value)> {
    sqlx::query("SELECT seq, body FROM connection_events WHERE connection_id = 1 ORDER BY seq")
        .fetch_all(db)
        .await
        .expect("events")
        .iter()
        .map(|r| {
            let body: String = r.get("body");
            (
                r.get::<i64, _>("seq"),
                serde_json::from_str(&body).expect("event body"),
            )
        })
        .collect()
}

/// Connection 1's history, oldest first: the actions as history shows them.
async fn history(db: &sqlx::AnyPool) -> Vec<String> {
    sqlx::query("SELECT action FROM connection_history WHERE connection_id = 1 ORDER BY id")
        .fetch_all(db)
        .await
        .expect("history")
        .iter()
        .map(|r| r.get::<String, _>("action"))
        .collect()
}

/// Adds to `problems` each history action not recorded exactly the number of times wanted.
async fn history_has(db: &sqlx::AnyPool, want: &[(&str, usize)], problems: &mut Vec<String>) {
    let actions = history(db).await;
    for (action, want) in want {
        let n = count(&actions, &action.to_string());
        if n != *want {
            problems.push(format!(
                "history has {n} \"{action}\", not {want}: {actions:?}"
            ));
        }
    }
}

fn count<T: PartialEq>(items: &[T], item: &T) -> usize {
    items.iter().filter(|x| *x == item).count()
}

/// A real server process on a fresh database, talking to a simulated provider instance, with one
/// connection saved (and, from `validated`, Validated).
struct Running {
    sim: Simulator,
    provider: String,
    dir: std::path::PathBuf,
    db: String,
    port: u16,
    base: String,
    server: Child,
    client: reqwest::Client,
}

/// The simulator's admin address for an instance.
/// Saves a connection; with `slow_ms`, every provider answer takes that long from just before
/// the save, so the scan it starts runs for several seconds.
async fn saved(backend: Backend, instance: &str, company: &str, slow_ms: Option<u64>) -> Running {
    let sim = Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let provider = sim.instance_url(instance);
    let dir = std::env::temp_dir().join(format!("impact_{instance}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = fresh_database(backend, &dir).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start(&db, port, &provider);
    let c = client(&base).await;
    let token = invite(&c, &base, company).await;
    if let Some(ms) = slow_ms {
        set_faults(&sim, instance, json!({ "slow_ms": ms })).await;
    }
    create(&c, &base, company, &token).await;
    Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        client: c,
    }
}

async fn validated(backend: Backend, instance: &str, company: &str) -> Running {
    let running = saved(backend, instance, company, None).await;
    wait_for(&running.client, &running.base, "state", "validated").await;
    running
}

fn kill(server: &mut Child) {
    server.kill().expect("SIGKILL");
    let _ = server.wait();
}

/// The settings groups the simulator serves (server/src/simulator/catalog.rs), as the product
/// words them in its "Synced …" events.
const GROUPS: [(&str, &str); 3] = [
    ("exchange_settings", "Synced exchange settings"),
    ("entitlements", "Synced entitlements"),
    ("sync_definitions", "Synced sync definitions"),
];

fn onboarding_messages(events: &[(i64, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(_, b)| b["type"] == "onboarding")
        .filter_map(|(_, b)| b["message"].as_str().map(str::to_string))
        .collect()
}

/// Sequence numbers are 1..=N: none missing, none repeated.
fn contiguous(events: &[(i64, Value)], problems: &mut Vec<String>) {
    let seqs: Vec<i64> = events.iter().map(|(s, _)| *s).collect();
    let want: Vec<i64> = (1..=seqs.len() as i64).collect();
    if seqs != want {
        problems.push(format!("event seqs are not 1..={}: {seqs:?}", seqs.len()));
    }
}

async fn killed_mid_sync(backend: Backend, instance: &str) {
    let Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        client: c,
    } = validated(backend, instance, "Crash Co").await;
    let mut server = server;
    let store = pool(&db).await;

    // Every provider answer now takes 700 ms: the run is mid-sync for a few seconds.
    set_faults(&sim, instance, json!({ "slow_ms": 700 })).await;
    let auth: Value = c
        .post(format!("{base}/api/connections/1/connect"))
        .send()
        .await
        .expect("connect")
        .json()
        .await
        .expect("json");
    let back = process::provider::allow(auth["authorize_url"].as_str().expect("url"), EMAIL)
        .await
        .expect("the provider sends the contact back");
    c.get(back).send().await.expect("callback");

    // Killed once at least one group is synced (its event stored) and before the run completes.
    until("a first \"Synced\" event", || async {
        let messages = onboarding_messages(&stored_events(&store).await);
        messages
            .iter()
            .any(|m| m.starts_with("Synced "))
            .then_some(())
    })
    .await;
    kill(&mut server);
    let before = onboarding_messages(&stored_events(&store).await);
    let synced_before = before.iter().filter(|m| m.starts_with("Synced ")).count();
    assert!(
        synced_before < GROUPS.len() && !before.iter().any(|m| m == "Onboarding Complete"),
        "the kill came too late to test a resume (the run had finished syncing): {before:?}"
    );
    set_faults(&sim, instance, json!({})).await;

    let mut server = start(&db, port, &provider);
    let c = client(&base).await;
    let done = wait_for(&c, &base, "onboarding", "complete").await;
    assert_eq!(
        (done["outbound"].as_str(), done["inbound"].as_str()),
        (Some("up"), Some("up"))
    );
    let r = c
        .get(format!("{base}/api/connections/1/events?after=0"))
        .send()
        .await
        .expect("events");
    let mut body = String::new();
    let mut r = r;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !body.contains("Onboarding Complete") {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Ok(Ok(Some(b))) => body.push_str(&String::from_utf8_lossy(&b)),
            _ => break,
        }
    }
    assert!(
        body.contains("Onboarding resumed after a restart"),
        "{body}"
    );
    assert!(body.contains("Onboarding Complete"));

    // Everything below is collected, then asserted at once, so a failure lists every broken
    // promise.
    let mut problems = Vec::new();
    let events = stored_events(&store).await;
    contiguous(&events, &mut problems);
    let messages = onboarding_messages(&events);
    for (_, synced) in GROUPS {
        let n = messages.iter().filter(|m| m.starts_with(synced)).count();
        if n != 1 {
            problems.push(format!("\"{synced}\" recorded {n} times, not once"));
        }
    }
    // No onboarding message at all is repeated (started, syncing, each group, resumed, complete).
    for m in messages.iter().collect::<std::collections::BTreeSet<_>>() {
        if count(&messages, m) != 1 {
            problems.push(format!(
                "event \"{m}\" recorded {} times",
                count(&messages, m)
            ));
        }
    }
    // What the provider did (its counters, docs/PROVIDER_PROTOCOL.md): each step of the run
    // once. The kill can land while a step's request is in flight (answered by the provider,
    // never stored here); the resumed run repeats that step with the same idempotency key, and
    // the provider answers it from its record instead of doing it again. Starting onboarding
    // twice would also make the provider forget the groups already read.
    let counters = provider_counters(&sim, instance).await;
    if counters["onboarding_starts"] != 1 {
        problems.push(format!(
            "the provider's onboarding was started {} times, not once",
            counters["onboarding_starts"]
        ));
    }
    let served: BTreeMap<String, u64> =
        serde_json::from_value(counters["settings_served"].clone()).expect("settings_served");
    for (group, _) in GROUPS {
        let n = served.get(group).copied().unwrap_or(0);
        if n != 1 {
            problems.push(format!("group {group} served {n} times, not once"));
        }
    }
    if counters["replayed"].as_u64().unwrap_or(99) > 1 {
        problems.push(format!(
            "more than the one step in flight at the kill was repeated: {counters}"
        ));
    }
    // History: one start, one switch to syncing, one completion, no failure or retry.
    history_has(
        &store,
        &[
            ("Connect to provider", 1),
            ("Onboarding began syncing settings", 1),
            ("Onboarding completed", 1),
            ("Onboarding attempt failed", 0),
            ("Retry", 0),
        ],
        &mut problems,
    )
    .await;
    assert!(
        problems.is_empty(),
        "killed after {synced_before} synced group(s):\n{}\nevents: {messages:?}",
        problems.join("\n")
    );
    store.close().await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_run_killed_mid_sync_resumes_after_restart_sqlite() {
    killed_mid_sync(Backend::Sqlite, "crash_sqlite").await;
}

#[tokio::test]
async fn a_run_killed_mid_sync_resumes_after_restart_postgres() {
    killed_mid_sync(Backend::Postgres, "crash_postgres").await;
}

/// Check events of connection 1: (check id, whether it carries a result).
fn check_events(events: &[(i64, Value)]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter(|(_, b)| b["type"] == "check")
        .map(|(_, b)| {
            (
                b["check_id"].as_str().unwrap_or("").to_string(),
                !b["result"].is_null(),
            )
        })
        .collect()
}

async fn killed_mid_scan(backend: Backend, instance: &str) {
    // Each provider answer takes 700 ms: the checks that call the provider come in several
    // rounds of that, while those that need no provider have their results at once.
    let Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        ..
    } = saved(backend, instance, "Scan Crash Co", Some(700)).await;
    let mut server = server;
    let store = pool(&db).await;
    until("a first check result", || async {
        let checks = check_events(&stored_events(&store).await);
        checks.iter().any(|(_, result)| *result).then_some(())
    })
    .await;
    kill(&mut server);
    let before = stored_events(&store).await;
    let results_before = check_events(&before).iter().filter(|(_, r)| *r).count();
    assert!(
        !before
            .iter()
            .any(|(_, b)| b["type"] == "scan" && !b["outcome"].is_null()),
        "the kill came too late to test a resume (the scan had finished)"
    );
    set_faults(&sim, instance, json!({})).await;

    let mut server = start(&db, port, &provider);
    let c = client(&base).await;
    wait_for(&c, &base, "state", "validated").await;

    let mut problems = Vec::new();
    let events = stored_events(&store).await;
    contiguous(&events, &mut problems);
    // One run, resumed: one "scan started" and one "scan finished" event, one run stored.
    let scans: Vec<bool> = events
        .iter()
        .filter(|(_, b)| b["type"] == "scan")
        .map(|(_, b)| !b["outcome"].is_null())
        .collect();
    if scans != [false, true] {
        problems.push(format!(
            "scan events (finished?) are {scans:?}, not one start then one finish"
        ));
    }
    let runs: Vec<(i64, Option<String>)> =
        sqlx::query("SELECT id, outcome FROM scan_runs WHERE connection_id = 1 ORDER BY id")
            .fetch_all(&store)
            .await
            .expect("runs")
            .iter()
            .map(|r| (r.get("id"), r.get("outcome")))
            .collect();
    if runs.len() != 1 || runs[0].1.as_deref() != Some("passed") {
        problems.push(format!("scan runs are {runs:?}, not one passed run"));
    }
    // Each check: one stored result, one result event, at most one "started" event.
    let results: Vec<String> =
        sqlx::query("SELECT check_id FROM scan_results WHERE connection_id = 1")
            .fetch_all(&store)
            .await
            .expect("results")
            .iter()
            .map(|r| r.get("check_id"))
            .collect();
    let checks = check_events(&events);
    let distinct: std::collections::BTreeSet<&String> = results.iter().collect();
    for id in distinct {
        let stored = count(&results, id);
        let finished = count(&checks, &(id.clone(), true));
        let started = count(&checks, &(id.clone(), false));
        if stored != 1 || finished != 1 || started > 1 {
            problems.push(format!(
                "check {id}: {stored} stored results, {finished} result events, {started} start events"
            ));
        }
    }
    if results.len() <= results_before {
        problems.push(format!(
            "{} results after the restart, {results_before} before: the scan did not go on",
            results.len()
        ));
    }
    // History: submitted once, passed once, nothing failed.
    history_has(
        &store,
        &[
            ("Submitted for validation", 1),
            ("Validation checks passed", 1),
            ("Validation checks failed", 0),
        ],
        &mut problems,
    )
    .await;
    assert!(
        problems.is_empty(),
        "killed after {results_before} check result(s):\n{}",
        problems.join("\n")
    );
    store.close().await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_scan_killed_mid_run_resumes_after_restart_sqlite() {
    killed_mid_scan(Backend::Sqlite, "scan_crash_sqlite").await;
}

#[tokio::test]
async fn a_scan_killed_mid_run_resumes_after_restart_postgres() {
    killed_mid_scan(Backend::Postgres, "scan_crash_postgres").await;
}

/// A Rescan once onboarded (the connection health suite) killed mid-run: after the restart the
/// same run is carried on and finished, its checks recorded once, and its ending recorded on
/// the statuses; no run is left "running".
async fn killed_mid_health_scan(backend: Backend, instance: &str) {
    let Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        client: c,
    } = validated(backend, instance, "Health Crash Co").await;
    let mut server = server;
    let store = pool(&db).await;
    let auth: Value = c
        .post(format!("{base}/api/connections/1/connect"))
        .send()
        .await
        .expect("connect")
        .json()
        .await
        .expect("json");
    let back = process::provider::allow(auth["authorize_url"].as_str().expect("url"), EMAIL)
        .await
        .expect("the provider sends the contact back");
    c.get(back).send().await.expect("callback");
    let onboarded = wait_for(&c, &base, "onboarding", "complete").await;

    // Every provider answer now takes 700 ms: the health run lasts a few seconds.
    set_faults(&sim, instance, json!({ "slow_ms": 700 })).await;
    let r = c
        .post(format!("{base}/api/connections/1/actions"))
        .json(&json!({ "action": "rescan", "version": onboarded["version"] }))
        .send()
        .await
        .expect("rescan");
    assert_eq!(r.status(), 200);
    let health_results = |store: sqlx::AnyPool| async move {
        sqlx::query(
            "SELECT COUNT(*) AS n FROM scan_results s JOIN scan_runs r ON r.id = s.run_id \
             WHERE r.suite = 'connection_health'",
        )
        .fetch_one(&store)
        .await
        .map(|r| r.get::<i64, _>("n"))
        .unwrap_or(0)
    };
    until("a first health check result", || async {
        (health_results(store.clone()).await > 0).then_some(())
    })
    .await;
    kill(&mut server);
    let runs = |store: sqlx::AnyPool| async move {
        sqlx::query(
            "SELECT id, outcome FROM scan_runs WHERE suite = 'connection_health' ORDER BY id",
        )
        .fetch_all(&store)
        .await
        .expect("runs")
        .iter()
        .map(|r| (r.get::<i64, _>("id"), r.get::<Option<String>, _>("outcome")))
        .collect::<Vec<_>>()
    };
    let before = runs(store.clone()).await;
    assert!(
        before.len() == 1 && before[0].1.is_none(),
        "the kill came too late to test a resume (the health run had finished): {before:?}"
    );
    let results_before = health_results(store.clone()).await;
    set_faults(&sim, instance, json!({})).await;

    let mut server = start(&db, port, &provider);
    let _c = client(&base).await;
    until("the health run finished", || async {
        runs(store.clone())
            .await
            .first()
            .and_then(|(_, outcome)| outcome.clone())
            .map(|_| ())
    })
    .await;
    let mut problems = Vec::new();
    let after = runs(store.clone()).await;
    if after.len() != 1 || after[0].0 != before[0].0 || after[0].1.as_deref() != Some("passed") {
        problems.push(format!(
            "health runs are {after:?}: not the one run {} carried on and passed",
            before[0].0
        ));
    }
    let per_check: Vec<(String, i64)> = sqlx::query(
        "SELECT check_id, COUNT(*) AS n FROM scan_results WHERE run_id = $1 GROUP BY check_id",
    )
    .bind(before[0].0)
    .fetch_all(&store)
    .await
    .expect("results")
    .iter()
    .map(|r| (r.get("check_id"), r.get("n")))
    .collect();
    if per_check.iter().any(|(_, n)| *n != 1) {
        problems.push(format!("a check recorded more than once: {per_check:?}"));
    }
    if (per_check.len() as i64) <= results_before {
        problems.push(format!(
            "{} results after the restart, {results_before} before: the run did not go on",
            per_check.len()
        ));
    }
    let events = stored_events(&store).await;
    contiguous(&events, &mut problems);
    history_has(&store, &[("Rescan", 1)], &mut problems).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    store.close().await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_health_scan_killed_mid_run_resumes_after_restart_sqlite() {
    killed_mid_health_scan(Backend::Sqlite, "health_crash_sqlite").await;
}

#[tokio::test]
async fn a_health_scan_killed_mid_run_resumes_after_restart_postgres() {
    killed_mid_health_scan(Backend::Postgres, "health_crash_postgres").await;
}

#[tokio::test]
async fn sigterm_ends_open_event_streams_and_the_server_exits() {
    let Running {
        sim: _sim,
        dir,
        base,
        mut server,
        client: c,
        ..
    } = validated(Backend::Sqlite, "shutdown", "Stop Co").await;
    // A live stream stays open while onboarding has not happened.
    let mut stream = c
        .get(format!("{base}/api/connections/1/events?after=0"))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let _ = stream.chunk().await;

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    // The stream ends (no hang), and the process exits on its own.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream did not end on shutdown");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = server.try_wait().expect("wait") {
            assert!(code.success(), "graceful exit: {code:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The simulator's tables (simulator/src/catalog.rs): name and record count.
const DATA_TABLES: [(&str, i64); 3] = [
    ("impact_account", 2400),
    ("impact_success_plan", 1800),
    ("impact_engagement_request", 5600),
];

/// Each migration event's copied count per table, in order (from the stored log).
fn migration_progress(events: &[(i64, Value)]) -> Vec<(String, Vec<i64>)> {
    events
        .iter()
        .filter(|(_, b)| b["type"] == "migration")
        .map(|(_, b)| {
            let copied = b["tables"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| t["copied"].as_i64().unwrap_or(-1))
                        .collect()
                })
                .unwrap_or_default();
            (b["message"].as_str().unwrap_or("").to_string(), copied)
        })
        .collect()
}

/// Onboarded through the provider's page, every Guided Setup activity before the migration
/// complete, then a migration started with each page taking 250 ms; killed with SIGKILL once two
/// pages are stored. Started again, the server carries the migration on from the last stored
/// page: every record ends up here once, no page is recorded twice, the counts match.
async fn killed_mid_migration(backend: Backend, instance: &str) {
    let Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        client: c,
    } = validated(backend, instance, "Migrate Co").await;
    let mut server = server;
    let store = pool(&db).await;
    let auth: Value = c
        .post(format!("{base}/api/connections/1/connect"))
        .send()
        .await
        .expect("connect")
        .json()
        .await
        .expect("json");
    let back = process::provider::allow(auth["authorize_url"].as_str().expect("url"), EMAIL)
        .await
        .expect("the provider sends the contact back");
    c.get(back).send().await.expect("callback");
    wait_for(&c, &base, "onboarding", "complete").await;
    for step in [
        "learn/complete",
        "register/complete",
        "establish/complete",
        "verify-connection",
        "verify-data",
    ] {
        let r = c
            .post(format!("{base}/api/guided-setup/{step}"))
            .json(&json!({}))
            .send()
            .await
            .expect("step");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success() && body["ok"] != false,
            "{step}: {status} {body}"
        );
    }
    set_faults(&sim, instance, json!({ "data_page_ms": 250 })).await;
    let r = c
        .post(format!("{base}/api/guided-setup/migration"))
        .json(&json!({}))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status().as_u16(), 200);
    until("two pages stored", || async {
        let progress = migration_progress(&stored_events(&store).await);
        progress
            .last()
            .is_some_and(|(_, c)| c.iter().sum::<i64>() >= 1000)
            .then_some(())
    })
    .await;
    kill(&mut server);
    let copied_before: i64 =
        sqlx::query("SELECT CAST(SUM(copied) AS BIGINT) AS n FROM data_migration_tables")
            .fetch_one(&store)
            .await
            .expect("copied")
            .get("n");
    assert!(
        copied_before < 9800,
        "the kill came too late to test a resume: {copied_before}"
    );
    set_faults(&sim, instance, json!({})).await;

    let mut server = start(&db, port, &provider);
    let c = client(&base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let m = process::get(&c, format!("{base}/api/connections/1/migration")).await;
        if m["state"] != "running" {
            break m;
        }
        assert!(Instant::now() < deadline, "the migration never ended: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut problems = Vec::new();
    if done["state"] != "completed" {
        problems.push(format!(
            "it ended {}, not completed: {}",
            done["state"], done["detail"]
        ));
    }
    for (table, rows) in DATA_TABLES {
        let here: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM impact_records WHERE connection_id = 1 AND tbl = $1",
        )
        .bind(table)
        .fetch_one(&store)
        .await
        .expect("count")
        .get("n");
        if here != rows {
            problems.push(format!(
                "{table}: {here} records here, the provider has {rows}"
            ));
        }
    }
    let events = stored_events(&store).await;
    contiguous(&events, &mut problems);
    let progress = migration_progress(&events);
    let resumed = progress
        .iter()
        .filter(|(m, _)| m.starts_with("Data migration carried on after a restart"))
        .count();
    if resumed != 1 {
        problems.push(format!("carried on {resumed} times, not once"));
    }
    // Every page recorded once: no two page events show the same progress.
    let pages: Vec<&Vec<i64>> = progress
        .iter()
        .filter(|(m, _)| m.starts_with("Copying "))
        .map(|(_, c)| c)
        .collect();
    let distinct: std::collections::BTreeSet<&Vec<i64>> = pages.iter().copied().collect();
    if distinct.len() != pages.len() || pages.len() != 21 {
        problems.push(format!(
            "{} page events, {} distinct, not 21: {pages:?}",
            pages.len(),
            distinct.len()
        ));
    }
    // The provider was asked for each page once, and for the one in flight at the kill again.
    let counters = provider_counters(&sim, instance).await;
    let asked = counters["data_pages"].as_u64().unwrap_or(0);
    if !(21..=22).contains(&asked) {
        problems.push(format!(
            "the provider served {asked} pages, not 21 (or 22): {counters}"
        ));
    }
    let activity: Value = process::get(&c, format!("{base}/api/guided-setup")).await;
    let status = activity["activities"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "migrate_data"))
        .map(|a| a["status"].clone());
    if status != Some(json!("complete")) {
        problems.push(format!("the activity reads {status:?}"));
    }
    assert!(
        problems.is_empty(),
        "killed after {copied_before} records:\n{}",
        problems.join("\n")
    );
    store.close().await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_data_migration_killed_mid_way_carries_on_after_restart_sqlite() {
    killed_mid_migration(Backend::Sqlite, "migrate_sqlite").await;
}

#[tokio::test]
async fn a_data_migration_killed_mid_way_carries_on_after_restart_postgres() {
    killed_mid_migration(Backend::Postgres, "migrate_postgres").await;
}
