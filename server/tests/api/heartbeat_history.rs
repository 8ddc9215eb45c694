//! The heartbeat history's roll-ups, on both backends: what each heartbeat writes (its hour's
//! counts and round-trip histogram, the latest heartbeat with its Down streaks) is exactly what
//! migration 0019 computes from the heartbeats' own rows (the same rows, two ways: the live
//! path's Rust and the migration's SQL), and the dashboard's card agrees with those rows.

use serde_json::json;
use sqlx::Row;

use crate::{
    both_backends_with,
    dashboard::card,
    helpers::{eventually, TestApp},
    onboarding::onboarded,
};

async fn scalar(app: &TestApp, sql: &str, id: i64) -> i64 {
    sqlx::query(sql)
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect(sql)
        .get::<Option<i64>, _>(0)
        .unwrap_or(0)
}

async fn raw_beats(app: &TestApp, id: i64) -> i64 {
    scalar(
        app,
        "SELECT COUNT(*) FROM heartbeats WHERE connection_id = $1",
        id,
    )
    .await
}

async fn outbound_down_beats(app: &TestApp, id: i64) -> i64 {
    scalar(
        app,
        "SELECT outbound_down_beats FROM heartbeat_latest WHERE connection_id = $1",
        id,
    )
    .await
}

/// Every roll-up column of the connection, as text, row by row.
async fn rollups(app: &TestApp, id: i64) -> Vec<String> {
    let rtt: Vec<String> = (0..app::model::rollup::RTT_BUCKETS)
        .map(app::model::rollup::rtt_column)
        .collect();
    let counts = ["beats", "answered", "up", "slow", "down"];
    let sql = format!(
        "SELECT hour, min_ms, max_ms, {}, {} FROM heartbeat_hours WHERE connection_id = $1 ORDER BY hour",
        counts.join(", "),
        rtt.join(", ")
    );
    let mut out = Vec::new();
    for r in sqlx::query(&sql)
        .bind(id)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("hours")
    {
        let mut row = vec![
            r.get::<String, _>("hour"),
            format!("{:?}", r.get::<Option<i64>, _>("min_ms")),
            format!("{:?}", r.get::<Option<i64>, _>("max_ms")),
        ];
        for column in counts.iter().copied().chain(rtt.iter().map(String::as_str)) {
            row.push(format!("{column}={}", r.get::<i64, _>(column)));
        }
        out.push(row.join(" "));
    }
    let latest = sqlx::query(
        "SELECT at, round_trip_ms, answered_at, outbound_down_since, outbound_down_beats, \
         inbound_down_since, inbound_down_beats FROM heartbeat_latest WHERE connection_id = $1",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("latest");
    out.push(format!(
        "latest at={:?} rtt={:?} answered={:?} out_since={:?} out={} in_since={:?} in={}",
        latest.get::<Option<String>, _>("at"),
        latest.get::<Option<i64>, _>("round_trip_ms"),
        latest.get::<Option<String>, _>("answered_at"),
        latest.get::<Option<String>, _>("outbound_down_since"),
        latest.get::<i64, _>("outbound_down_beats"),
        latest.get::<Option<String>, _>("inbound_down_since"),
        latest.get::<i64, _>("inbound_down_beats"),
    ));
    out
}

/// Migration 0019's statements that fill the roll-ups from the heartbeats' rows.
fn backfill(app: &TestApp) -> Vec<String> {
    let sql = match app.state.db.backend {
        app::server::db::Backend::Sqlite => {
            include_str!("../../../app/migrations/sqlite/0019_heartbeat_rollups.sql")
        }
        app::server::db::Backend::Postgres => {
            include_str!("../../../app/migrations/postgres/0019_heartbeat_rollups.sql")
        }
    };
    sql.split(";\n")
        .map(|statement| {
            statement
                .lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| s.trim_start().starts_with("INSERT"))
        .collect()
}

async fn rollups_agree_with_the_rows(mut app: TestApp) {
    let id = onboarded(&app).await;
    // Answered fast, answered late (another round-trip bucket), then not answered at all.
    eventually("two heartbeats", async || raw_beats(&app, id).await >= 2).await;
    app.faults(json!({ "slow_ms": 60 })).await;
    let before = raw_beats(&app, id).await;
    eventually("two late answers", async || {
        raw_beats(&app, id).await >= before + 2
    })
    .await;
    app.faults(json!({ "down": true })).await;
    eventually("Down three heartbeats in a row", async || {
        outbound_down_beats(&app, id).await >= 3
    })
    .await;

    // The card reads the roll-ups: its count is the rows', its percentiles within theirs.
    let rows_before = raw_beats(&app, id).await;
    let r = app.get("/api/health-dashboard").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows_after = raw_beats(&app, id).await;
    let c = card(&r.body, id);
    let counted = c["heartbeats_24h"].as_i64().expect("count");
    assert!(
        (rows_before..=rows_after).contains(&counted),
        "{counted} not within {rows_before}..={rows_after}"
    );
    let fastest = scalar(
        &app,
        "SELECT MIN(outbound_ms) FROM heartbeats WHERE connection_id = $1",
        id,
    )
    .await;
    let slowest = scalar(
        &app,
        "SELECT MAX(outbound_ms) FROM heartbeats WHERE connection_id = $1",
        id,
    )
    .await;
    assert!(
        slowest >= 60,
        "the late answers took at least 60 ms: {slowest}"
    );
    for p in ["p50_ms", "p95_ms"] {
        let ms = c[p].as_i64().expect(p);
        assert!(
            (fastest..=slowest).contains(&ms),
            "{p} {ms} not within {fastest}..={slowest}"
        );
    }
    let d = &r.body;
    let issue = d["issues"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["check_id"] == "heartbeat:outbound"))
        .cloned()
        .expect("the outbound issue");
    assert!(issue["times_seen"].as_i64().unwrap_or(0) >= 3, "{issue}");
    assert_eq!(issue["last_seen"], c["last_heartbeat"], "{issue} {c}");

    // Stopped (no heartbeat runs), the live roll-ups are what the migration computes anew.
    app.stop().await;
    let live = rollups(&app, id).await;
    assert!(
        live.last()
            .is_some_and(|l| l.contains("out_since=Some") && l.contains("in_since=Some")),
        "{live:?}"
    );
    for table in ["heartbeat_hours", "heartbeat_latest"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&app.state.db.pool)
            .await
            .expect("delete");
    }
    for statement in backfill(&app) {
        sqlx::query(&statement)
            .execute(&app.state.db.pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    assert_eq!(rollups(&app, id).await, live);
}

both_backends_with!(
    the_rollups_agree_with_the_heartbeats_rows,
    crate::helpers::heartbeat_every_second,
    rollups_agree_with_the_rows
);
