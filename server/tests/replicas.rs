//! Several replicas on one PostgreSQL: two real server processes share the database (and the
//! secret key); a browser's event stream on replica B gets, live, what replica A commits, in
//! order, each event once, also when B's listening connection to PostgreSQL is cut mid-run.
mod process;

use std::{process::Child, time::Duration};

use chrono::{DateTime, Utc};
use process::{
    client, create, free_port, get, invite, shared, sse::SseFrames, start_with, wait_for, Shared,
    EMAIL,
};
use serde_json::json;
use sqlx::Row;
use tokio::{sync::mpsc, time::Instant};

/// Rescans started on A while B's streams listen.
const ROUNDS: usize = 20;
/// Every third round, the relays' listening connections are cut while the run writes.
const CUT_EVERY: usize = 3;

struct Replica {
    base: String,
    client: reqwest::Client,
    process: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn replica(db: &str, provider: &str, key: &str) -> Replica {
    let port = free_port();
    let process = start_with(db, port, provider, &[("IMPACT_SECRET_KEY", key)]);
    let base = format!("http://127.0.0.1:{port}");
    Replica {
        client: client(&base).await,
        base,
        process,
    }
}

/// The connection's stored events after `after`: (seq, when written).
async fn stored(db: &sqlx::AnyPool, after: i64) -> Vec<(i64, DateTime<Utc>)> {
    sqlx::query(
        "SELECT seq, at FROM connection_events WHERE connection_id = 1 AND seq > $1 ORDER BY seq",
    )
    .bind(after)
    .fetch_all(db)
    .await
    .expect("events")
    .iter()
    .map(|r| {
        let at: String = r.get("at");
        (
            r.get::<i64, _>("seq"),
            DateTime::parse_from_rfc3339(&at)
                .expect("stored time")
                .into(),
        )
    })
    .collect()
}

async fn newest(db: &sqlx::AnyPool) -> i64 {
    stored(db, 0).await.last().map_or(0, |(seq, _)| *seq)
}

/// A stream opened on `replica` after `after`, read by its own task: (seq, arrived).
async fn subscribe(replica: &Replica, after: i64) -> mpsc::UnboundedReceiver<(i64, DateTime<Utc>)> {
    let mut r = replica
        .client
        .get(format!(
            "{}/api/connections/1/events?after={after}",
            replica.base
        ))
        .send()
        .await
        .expect("open the stream");
    assert_eq!(r.status(), 200, "the stream opens");
    // The first chunk (the preamble) says the stream is subscribed.
    let first = tokio::time::timeout(Duration::from_secs(30), r.chunk())
        .await
        .expect("the preamble in time")
        .expect("chunk")
        .expect("open stream");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut frames = SseFrames::default();
        let mut chunk = first;
        loop {
            let arrived = Utc::now();
            for (seq, _, _) in frames.push(&chunk) {
                if tx.send((seq, arrived)).is_err() {
                    return;
                }
            }
            chunk = match r.chunk().await {
                Ok(Some(c)) => c,
                _ => return,
            };
        }
    });
    rx
}

/// Cuts every listening connection (the relays of both replicas), as a network failure or a
/// PostgreSQL restart of that connection would.
async fn cut_listeners(db: &sqlx::AnyPool) -> i64 {
    sqlx::query(
        "SELECT COUNT(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(db)
    .await
    .expect("terminate")
    .get::<i64, _>("cut")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replicas_streams_get_what_another_replica_commits() {
    let Shared {
        sim,
        provider,
        dir,
        db,
        look,
        key,
    } = shared("replicas").await;
    let a = replica(&db, &provider, &key).await;
    let b = replica(&db, &provider, &key).await;

    // The connection, made through A and Validated.
    let token = invite(&a.client, &a.base, "Acme").await;
    create(&a.client, &a.base, "Acme", &token).await;
    wait_for(&a.client, &a.base, "state", "validated").await;
    // Each provider answer takes a little while, so a run lasts long enough to see it live.
    let faults = reqwest::Client::new()
        .put(format!(
            "http://{}/sim/instances/replicas/faults",
            sim.address()
        ))
        .json(&json!({ "slow_ms": 40 }))
        .send()
        .await
        .expect("faults");
    assert_eq!(faults.status(), 200);

    for round in 0..ROUNDS {
        let before = newest(&look).await;
        let mut stream = subscribe(&b, before).await;
        let v = get(&a.client, format!("{}/api/connections/1", a.base)).await;
        let r = a
            .client
            .post(format!("{}/api/connections/1/actions", a.base))
            .json(&json!({ "action": "rescan", "version": v["version"] }))
            .send()
            .await
            .expect("rescan");
        assert_eq!(r.status(), 200, "round {round}: rescan on A");
        let cut_round = round % CUT_EVERY == CUT_EVERY - 1;
        if cut_round {
            // Mid-run: once the run has written something, cut the relays' connections.
            let deadline = Instant::now() + Duration::from_secs(20);
            while newest(&look).await == before {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the run wrote nothing"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let cut = cut_listeners(&look).await;
            assert!(cut >= 1, "round {round}: a relay was listening (cut {cut})");
        }
        wait_for(&a.client, &a.base, "state", "validated").await;
        let events = stored(&look, before).await;
        let (last, last_written) = *events.last().expect("the run wrote events");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.last().map(|(seq, _)| *seq) < Some(last) {
            let e = tokio::time::timeout_at(deadline, stream.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("round {round}: B's stream never got event {last}; got {got:?}")
                })
                .expect("B's stream ended");
            got.push(e);
        }
        // Whatever else already arrived (a repeat would show).
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(e) = stream.try_recv() {
            got.push(e);
        }
        let want: Vec<i64> = events.iter().map(|(seq, _)| *seq).collect();
        let seqs: Vec<i64> = got.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs, want,
            "round {round}: every event on B, in order, once"
        );
        // Live: the first event reached B before A wrote the run's last one (not asserted where
        // the relay was cut: what was committed meanwhile reaches B after it listens again).
        assert!(
            cut_round || got[0].1 < last_written,
            "round {round}: the first event arrived on B at {} but the last was written at {last_written}",
            got[0].1
        );
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Exactly once across replicas: the named contact's answer from the provider arrives 50 times
/// at once (tabs, replays), spread over A and B: one run starts, every other answer is told
/// plainly that it was already used, and the run happens once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_answers_spread_over_two_replicas_start_one_run() {
    let Shared {
        sim: _sim,
        provider,
        dir,
        db,
        look,
        key,
    } = shared("replicas_once").await;
    let a = replica(&db, &provider, &key).await;
    let b = replica(&db, &provider, &key).await;
    let token = invite(&a.client, &a.base, "Acme").await;
    create(&a.client, &a.base, "Acme", &token).await;
    wait_for(&a.client, &a.base, "state", "validated").await;

    // Connect to provider (on A), and the named contact allows on the provider's page.
    let r = a
        .client
        .post(format!("{}/api/connections/1/connect", a.base))
        .json(&json!({}))
        .send()
        .await
        .expect("connect");
    assert_eq!(r.status(), 200, "connect");
    let body: serde_json::Value = r.json().await.expect("json");
    let back = process::provider::allow(body["authorize_url"].as_str().expect("url"), EMAIL)
        .await
        .expect("the provider sends the contact back");
    // The way back names the replica that asked (no public URL is set); behind a balancer it
    // could reach either, so half the answers go to each.
    let back = reqwest::Url::parse(&back).expect("way back");
    let back = format!("{}?{}", back.path(), back.query().unwrap_or(""));
    assert!(back.starts_with("/connections/1/authorized?"), "{back}");

    let gets = (0..50)
        .map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b };
            (replica.client.clone(), format!("{}{back}", replica.base))
        })
        .collect();
    let answers = process::provider::race(gets).await;
    let won = answers
        .iter()
        .filter(|(status, location, _)| *status == 303 && location == "/connections/1")
        .count();
    assert_eq!(won, 1, "exactly one answer starts onboarding: {answers:?}");
    for (status, _, body) in answers.iter().filter(|(status, _, _)| *status != 303) {
        assert_eq!(*status, 409, "a losing answer is told plainly: {body}");
        assert!(body.contains("already used"), "{body}");
    }
    wait_for(&b.client, &b.base, "onboarding", "complete").await;
    let count = |sql: &'static str| {
        let look = look.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&look)
                .await
                .expect("count")
                .get::<i64, _>("n")
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM connection_history WHERE connection_id = 1 AND action = 'Connect to provider'").await,
        1,
        "one run in the history"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM connection_events WHERE connection_id = 1 AND body LIKE '%Provider onboarding started%'").await,
        1,
        "\"Provider onboarding started\" once"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
