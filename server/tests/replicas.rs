//! Several replicas on one PostgreSQL: two real server processes share the database (and the
//! secret key); a browser's event stream on replica B gets, live, what replica A commits, in
//! order, each event once, also when B's listening connection to PostgreSQL is cut mid-run.
//! Background work is leased: a run whose replica is killed is carried on by the other after
//! the lease expires, and one whose replica is stopped is handed over at once; either way the
//! provider sees each step once.
mod process;

use std::{process::Child, time::Duration};

use chrono::{DateTime, Utc};
use process::{
    client, create, free_port, get, invite, provider_counters, set_faults, shared, sse::SseFrames,
    start_with, until, wait_for, Shared, EMAIL,
};
use serde_json::json;
use sqlx::Row;
use tokio::{sync::mpsc, time::Instant};

/// B's `/metrics` token.
const METRICS_TOKEN: &str = "replicas-metrics-token-0123";
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
    replica_with(db, provider, key, &[]).await
}

async fn replica_with(db: &str, provider: &str, key: &str, env: &[(&str, &str)]) -> Replica {
    replica_at(free_port(), db, provider, key, env).await
}

async fn replica_at(
    port: u16,
    db: &str,
    provider: &str,
    key: &str,
    env: &[(&str, &str)],
) -> Replica {
    let mut settings = vec![("IMPACT_SECRET_KEY", key)];
    settings.extend_from_slice(env);
    let process = start_with(db, port, provider, &settings);
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

/// The connection (id 1), made through `on` from a registration link and Validated there.
async fn validated_on(on: &Replica) {
    let token = invite(&on.client, &on.base, "Acme").await;
    create(&on.client, &on.base, "Acme", &token).await;
    wait_for(&on.client, &on.base, "state", "validated").await;
}

/// "Rescan" on connection 1 through `on`, at its current version: the answer's status.
async fn rescan_on(on: &Replica) -> u16 {
    let v = get(&on.client, format!("{}/api/connections/1", on.base)).await;
    on.client
        .post(format!("{}/api/connections/1/actions", on.base))
        .json(&json!({ "action": "rescan", "version": v["version"] }))
        .send()
        .await
        .expect("rescan")
        .status()
        .as_u16()
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
    let b = replica_with(
        &db,
        &provider,
        &key,
        &[("IMPACT_METRICS_TOKEN", METRICS_TOKEN)],
    )
    .await;

    // The connection, made through A and Validated.
    validated_on(&a).await;
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

    let mut relayed = 0;
    for round in 0..ROUNDS {
        let before = newest(&look).await;
        let mut stream = subscribe(&b, before).await;
        assert_eq!(rescan_on(&a).await, 200, "round {round}: rescan on A");
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
        relayed += seqs.len();
    }
    // B's operators see what crossing replicas added, for every event B relayed (at least those
    // its stream got: more when a round's catch-up read some twice).
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", b.base))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("B's metrics")
        .text()
        .await
        .expect("B's metrics text");
    let count: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("impact_relay_lag_seconds_count "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no relay lag on B's /metrics:\n{metrics}"))
        as usize;
    assert!(
        count >= relayed,
        "relay lag counted {count} of {relayed} relayed events"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The health dashboard on B follows every connection: a Rescan committed on A is told on B's
/// change stream, though nobody on B follows that connection's own stream (B hears of it from
/// A's announcement alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dashboard_on_one_replica_hears_of_changes_made_on_the_other() {
    // The simulator is held to the end (it stops when dropped).
    let Shared {
        sim: _sim,
        provider,
        dir,
        db,
        key,
        ..
    } = shared("replicas-dashboard").await;
    let a = replica(&db, &provider, &key).await;
    let b = replica(&db, &provider, &key).await;
    validated_on(&a).await;

    let mut changes = b
        .client
        .get(format!("{}/api/health-dashboard/events", b.base))
        .send()
        .await
        .expect("open the change stream");
    assert_eq!(changes.status(), 200);
    // The preamble says B has subscribed.
    tokio::time::timeout(Duration::from_secs(30), changes.chunk())
        .await
        .expect("the preamble in time")
        .expect("chunk")
        .expect("open stream");
    assert_eq!(rescan_on(&a).await, 200, "rescan on A");
    // B's dashboard hears of it.
    process::sse::read_until(&mut changes, "event: changed\ndata: 1\n\n").await;
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
    validated_on(&a).await;

    // Connect to provider (on A), and the named contact allows on the provider's page. The way
    // back names the replica that asked (no public URL is set); behind a balancer it could reach
    // either, so half the answers go to each.
    let back = connect_and_allow(&a).await;
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

/// "Connect to provider" on `on`, and the named contact selects Allow on the provider's page:
/// the way back (path and query, code and state in it), without going there yet.
async fn connect_and_allow(on: &Replica) -> String {
    let r = on
        .client
        .post(format!("{}/api/connections/1/connect", on.base))
        .json(&json!({}))
        .send()
        .await
        .expect("connect");
    assert_eq!(r.status(), 200, "connect");
    let body: serde_json::Value = r.json().await.expect("json");
    let back = process::provider::allow(body["authorize_url"].as_str().expect("url"), EMAIL)
        .await
        .expect("the provider sends the contact back");
    let back = reqwest::Url::parse(&back).expect("way back");
    format!("{}?{}", back.path(), back.query().unwrap_or(""))
}

/// Connects on `on` (the named contact allows on the provider's page and comes back to `on`)
/// while every provider answer leaves 700 ms after the provider acted, and returns once the
/// run has synced its first group: the run is then mid-way for a few seconds more, and most
/// likely waiting for the answer to a step the provider has already done (the step a replica
/// that goes away now leaves for the other to repeat).
async fn onboarding_mid_sync(on: &Replica, shared: &Shared, instance: &str) {
    set_faults(&shared.sim, instance, json!({ "late_answer_ms": 700 })).await;
    // The way back names the public address; the balancer sends it to `on` this time.
    let back = format!("{}{}", on.base, connect_and_allow(on).await);
    let r = on.client.get(back).send().await.expect("the way back");
    assert_eq!(r.status(), 303, "the answer starts onboarding");
    until("a first \"Synced\" event", || async {
        onboarding_messages(&shared.look)
            .await
            .iter()
            .any(|m| m.starts_with("Synced "))
            .then_some(())
    })
    .await;
}

async fn onboarding_messages(db: &sqlx::AnyPool) -> Vec<String> {
    sqlx::query("SELECT body FROM connection_events WHERE connection_id = 1 ORDER BY seq")
        .fetch_all(db)
        .await
        .expect("events")
        .iter()
        .filter_map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.get::<String, _>("body")).ok()?;
            (body["type"] == "onboarding").then(|| body["message"].as_str().map(str::to_string))?
        })
        .collect()
}

/// The run finished once, as one run: every onboarding message once (one "resumed" where the
/// other replica took over), the events numbered without gap, and the provider did each step
/// once (a step in flight when its replica went away is repeated with its idempotency key and
/// answered from the provider's record).
async fn finished_once(shared: &Shared, instance: &str) {
    let mut problems = Vec::new();
    let messages = onboarding_messages(&shared.look).await;
    for m in messages.iter().collect::<std::collections::BTreeSet<_>>() {
        let n = messages.iter().filter(|x| *x == m).count();
        if n != 1 {
            problems.push(format!("\"{m}\" recorded {n} times"));
        }
    }
    for want in [
        "Provider onboarding started",
        "Onboarding resumed after a restart",
        "Onboarding Complete",
    ] {
        if !messages.iter().any(|m| m == want) {
            problems.push(format!("no \"{want}\""));
        }
    }
    if messages.iter().filter(|m| m.starts_with("Synced ")).count() != 3 {
        problems.push("not three groups synced".into());
    }
    let seqs: Vec<i64> = stored(&shared.look, 0)
        .await
        .iter()
        .map(|(s, _)| *s)
        .collect();
    if seqs != (1..=seqs.len() as i64).collect::<Vec<_>>() {
        problems.push(format!("event seqs are not 1..=n: {seqs:?}"));
    }
    let counters = provider_counters(&shared.sim, instance).await;
    if counters["onboarding_starts"] != 1 {
        problems.push(format!(
            "onboarding started {} times",
            counters["onboarding_starts"]
        ));
    }
    for (group, n) in counters["settings_served"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if n != 1 {
            problems.push(format!("group {group} served {n} times"));
        }
    }
    if counters["settings_served"]
        .as_object()
        .map_or(0, |g| g.len())
        != 3
    {
        problems.push(format!("not every group served: {counters}"));
    }
    let failures: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM connection_history WHERE connection_id = 1 AND action IN ('Onboarding attempt failed', 'Retry')",
    )
    .fetch_one(&shared.look)
    .await
    .expect("history")
    .get("n");
    if failures != 0 {
        problems.push(format!("{failures} failure or retry in the history"));
    }
    assert!(
        problems.is_empty(),
        "{}\nmessages: {messages:?}\nprovider: {counters}",
        problems.join("\n")
    );
}

/// A replica killed (SIGKILL) mid-onboarding: its lease expires and the other replica carries
/// the run on from the last recorded step.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_replica_is_killed_is_carried_on_by_the_other() {
    let shared = shared("replicas_takeover").await;
    // The public address (a balancer's, in production) reaches B, the replica that stays up:
    // the provider's calls to this instance must find a replica after A is gone.
    let port_b = free_port();
    let public = format!("http://127.0.0.1:{port_b}");
    let env = [("IMPACT_PUBLIC_URL", public.as_str())];
    let a = replica_with(&shared.db, &shared.provider, &shared.key, &env).await;
    let b = replica_at(port_b, &shared.db, &shared.provider, &shared.key, &env).await;
    validated_on(&a).await;
    onboarding_mid_sync(&a, &shared, "replicas_takeover").await;

    drop(a); // SIGKILL: no lease handed back; it expires (2 s here).
    set_faults(&shared.sim, "replicas_takeover", json!({})).await;
    let done = wait_for(&b.client, &b.base, "onboarding", "complete").await;
    assert_eq!(
        (done["outbound"].as_str(), done["inbound"].as_str()),
        (Some("up"), Some("up"))
    );
    finished_once(&shared, "replicas_takeover").await;
    drop(b);
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// A replica stopped (SIGTERM) mid-onboarding hands its lease back and exits 0: the other
/// replica carries the run on at once, long before the lease (a minute here) would expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_replica_is_stopped_is_handed_to_the_other_at_once() {
    let shared = shared("replicas_handover").await;
    // As above, the public address reaches B.
    let port_b = free_port();
    let public = format!("http://127.0.0.1:{port_b}");
    let env = [
        ("IMPACT_LEASE_MS", "60000"),
        ("IMPACT_PUBLIC_URL", public.as_str()),
    ];
    let mut a = replica_with(&shared.db, &shared.provider, &shared.key, &env).await;
    let b = replica_at(port_b, &shared.db, &shared.provider, &shared.key, &env).await;
    validated_on(&a).await;
    onboarding_mid_sync(&a, &shared, "replicas_handover").await;

    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &a.process.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = a.process.wait();
        (a, status)
    });
    let (a, status) = tokio::time::timeout(Duration::from_secs(30), exit)
        .await
        .expect("A exits in time")
        .expect("join");
    assert_eq!(status.expect("status").code(), Some(0), "A exits 0");
    set_faults(&shared.sim, "replicas_handover", json!({})).await;
    let t0 = Instant::now();
    let done = wait_for(&b.client, &b.base, "onboarding", "complete").await;
    assert!(
        t0.elapsed() < Duration::from_secs(45),
        "B carried the run on only after {:?}: the lease was not handed back",
        t0.elapsed()
    );
    assert_eq!(done["onboarding"], "complete");
    finished_once(&shared, "replicas_handover").await;
    drop((a, b));
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// Signing out on A ends the session's event stream open on B (and a disabled user's streams
/// end on every replica the same way): the revocation reaches B through PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_on_one_replica_ends_the_sessions_streams_on_the_other() {
    let shared = shared("replicas_revoke").await;
    let a = replica(&shared.db, &shared.provider, &shared.key).await;
    let b = replica(&shared.db, &shared.provider, &shared.key).await;
    validated_on(&a).await;

    // A's signed-in browser (its cookie is sent to B too: same host) opens a stream on B.
    let mut stream = a
        .client
        .get(format!("{}/api/connections/1/events?after=0", b.base))
        .send()
        .await
        .expect("open the stream on B");
    assert_eq!(stream.status(), 200);
    let r = a
        .client
        .post(format!("{}/api/auth/logout", a.base))
        .send()
        .await
        .expect("sign out on A");
    // 303 to the sign-in page when the request did not ask for JSON.
    assert!([200, 303].contains(&r.status().as_u16()), "{}", r.status());
    // The stream on B ends: its body finishes (keep-alives come only every 15 s, so a body
    // still open 10 s after the sign-out was not ended).
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream on B was still open 10 s after signing out on A"
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// The per-user cap on open event streams counts the user's streams on both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_user_stream_cap_counts_both_replicas() {
    let shared = shared("replicas_cap").await;
    let cap = [("IMPACT_MAX_STREAMS_PER_USER", "2")];
    let a = replica_with(&shared.db, &shared.provider, &shared.key, &cap).await;
    let b = replica_with(&shared.db, &shared.provider, &shared.key, &cap).await;
    validated_on(&a).await;
    // One browser (one session: its cookie goes to both replicas).
    let open = |on: &Replica| {
        a.client
            .get(format!("{}/api/connections/1/events?after=0", on.base))
            .send()
    };
    let first = open(&a).await.expect("open on A");
    assert_eq!(first.status(), 200);
    let second = open(&b).await.expect("open on B");
    assert_eq!(second.status(), 200);
    for (name, on) in [("A", &a), ("B", &b)] {
        let third = open(on).await.expect("a third");
        assert_eq!(third.status(), 429, "a third stream on {name} is refused");
    }
    // One closes: its place is given back (a moment later), and a new one opens on B.
    drop(first);
    let reopened = until("a place freed by the closed stream", || async {
        let r = open(&b).await.expect("open on B");
        (r.status() == 200).then_some(r)
    })
    .await;
    drop((second, reopened, a, b));
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// Many streams of one user opened at once on both replicas: exactly the cap is let through,
/// however the requests are batched and interleaved between the replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_opened_at_once_on_both_replicas_stay_within_the_cap() {
    const CAP: usize = 10;
    let shared = shared("replicas_burst").await;
    let limit = CAP.to_string();
    let cap = [("IMPACT_MAX_STREAMS_PER_USER", limit.as_str())];
    let a = replica_with(&shared.db, &shared.provider, &shared.key, &cap).await;
    let b = replica_with(&shared.db, &shared.provider, &shared.key, &cap).await;
    validated_on(&a).await;
    let opened = futures::future::join_all((0..3 * CAP).map(|i| {
        let on = if i % 2 == 0 { &a } else { &b };
        a.client
            .get(format!("{}/api/connections/1/events?after=0", on.base))
            .send()
    }))
    .await;
    let statuses: Vec<u16> = opened
        .iter()
        .map(|r| r.as_ref().map_or(0, |r| r.status().as_u16()))
        .collect();
    assert_eq!(
        (
            statuses.iter().filter(|s| **s == 200).count(),
            statuses.iter().filter(|s| **s == 429).count()
        ),
        (CAP, 2 * CAP),
        "{statuses:?}"
    );
    drop((opened, a, b));
    let _ = std::fs::remove_dir_all(&shared.dir);
}

/// A provider call captured on its way to one replica is a replay to the other, and to the
/// first after a restart: the accepted signatures are kept in the shared database, not in each
/// process. A new call (its own timestamp and signature) is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_call_taken_by_one_replica_is_a_replay_to_the_other_and_after_a_restart() {
    use app::server::{
        sealed::{connection_secret_context, Keyring, SecretKey},
        signing,
    };
    let shared = shared("replicas_replay").await;
    let a = replica(&shared.db, &shared.provider, &shared.key).await;
    let b = replica(&shared.db, &shared.provider, &shared.key).await;
    validated_on(&a).await;
    // The credentials the provider holds (and signs with), from the shared database.
    let row = sqlx::query("SELECT consumer_id, secret FROM connections WHERE id = 1")
        .fetch_one(&shared.look)
        .await
        .expect("the connection's credentials");
    let consumer: String = row.get("consumer_id");
    let keys = Keyring::new(SecretKey::parse(&shared.key).expect("the key"), Vec::new());
    let secret = keys
        .open(
            &connection_secret_context(1),
            &row.get::<String, _>("secret"),
        )
        .expect("the secret opens");
    let path = "/inbound/v1/ping";
    let body = br#"{"nonce":"n-1"}"#.to_vec();
    let signed_at = |ts: i64| signing::sign(&secret, "POST", path, ts, &body);
    let send = |base: String, ts: i64, signature: String| {
        reqwest::Client::new()
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .header(signing::HEADER_CONSUMER, consumer.clone())
            .header(signing::HEADER_TIMESTAMP, ts.to_string())
            .header(signing::HEADER_SIGNATURE, signature)
            .body(body.clone())
            .send()
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        (status, body["code"].as_str().map(str::to_string))
    };
    let ts = Utc::now().timestamp();
    let captured = signed_at(ts);
    let first = send(a.base.clone(), ts, captured.clone())
        .await
        .expect("to A");
    assert_eq!(answer(first).await, (200, None), "A takes the call");
    let replayed = send(b.base.clone(), ts, captured.clone())
        .await
        .expect("to B");
    let replayed = answer(replayed).await;
    assert_eq!(replayed, (401, Some("replayed".into())), "B refuses it");
    // A restarts (a new process on the same database): still a replay there.
    drop(a);
    let a = replica(&shared.db, &shared.provider, &shared.key).await;
    let again = send(a.base.clone(), ts, captured)
        .await
        .expect("to A again");
    assert_eq!(
        answer(again).await,
        replayed,
        "A after a restart refuses it"
    );
    // The provider's next call, signed anew, goes through on either.
    let next = ts + 1;
    let fresh = send(b.base.clone(), next, signed_at(next))
        .await
        .expect("to B");
    assert_eq!(answer(fresh).await, (200, None), "a new call is taken");
    drop((a, b));
    let _ = std::fs::remove_dir_all(&shared.dir);
}
