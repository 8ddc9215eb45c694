//! Benchmarks, run by `make bench` (release build, `--ignored`): they report numbers, they do not
//! assert timings. Results go to docs/BENCHMARKS.md. The event-stream fan-out is measured by the
//! separate `sse-load` process (scripts/bench.sh), so the server's memory is its own.
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server::{config::Config, startup::Application};
use simulator::Simulator;

struct Bench {
    base: String,
    client: reqwest::Client,
    sim: Simulator,
    state: app::server::AppState,
}

/// `also_allow`: more loopback addresses the scan may call (the outbound allow-list refuses any
/// other before a connection is tried, which would measure the refusal, not the network).
async fn spawn(instance: &str, also_allow: &[std::net::SocketAddr]) -> Bench {
    let dir = std::env::temp_dir().join(format!("impact_bench_{}_{instance}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sim = Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    // The test's simulator is a plain-http, loopback provider allowed, with `also_allow`.
    let allow: Vec<String> = std::iter::once(sim.address())
        .chain(also_allow.iter().copied())
        .map(|a| a.to_string())
        .collect();
    let outbound =
        app::server::outbound::Outbound::new(&allow.join(","), None).expect("allow list");
    let config = Config {
        admin: Some(("bench@example.com".into(), "bench password 123".into())),
        ..Config::on_loopback(
            format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
            sim.instance_url(instance),
            outbound,
        )
    };
    let application = Application::build(config).await.expect("build");
    let base = format!("http://{}", application.address());
    let state = application.state.clone();
    tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "bench@example.com", "password": "bench password 123" }))
        .send()
        .await
        .expect("login");
    Bench {
        base,
        client,
        sim,
        state,
    }
}

impl Bench {
    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("req");
        r.json().await.unwrap_or(Value::Null)
    }

    async fn connection(&self) -> i64 {
        self.json(
            reqwest::Method::POST,
            "/api/invitations",
            json!({ "email": "a@example.com", "company": "Bench" }),
        )
        .await;
        let outbox = self
            .json(reqwest::Method::GET, "/api/outbox", Value::Null)
            .await;
        let link = outbox[0]["link"].as_str().expect("link").to_string();
        let token = link.split_once("token=").expect("token").1.to_string();
        let c = self
            .json(
                reqwest::Method::POST,
                "/api/connections",
                json!({ "company": "Bench", "registration_token": token }),
            )
            .await;
        let id = c["id"].as_i64().expect("id");
        self.wait_settled(id).await;
        id
    }

    async fn wait_settled(&self, id: i64) -> String {
        loop {
            let c = self
                .json(
                    reqwest::Method::GET,
                    &format!("/api/connections/{id}"),
                    Value::Null,
                )
                .await;
            let s = c["state"].as_str().unwrap_or("").to_string();
            if s != "awaiting_validation" && s != "pending" {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn rescan_wall_time(&self, id: i64) -> (Duration, String) {
        let v = self
            .json(
                reqwest::Method::GET,
                &format!("/api/connections/{id}"),
                Value::Null,
            )
            .await["version"]
            .clone();
        let t0 = Instant::now();
        self.json(
            reqwest::Method::POST,
            &format!("/api/connections/{id}/actions"),
            json!({ "action": "rescan", "version": v }),
        )
        .await;
        let s = self.wait_settled(id).await;
        (t0.elapsed(), s)
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with make bench"]
async fn bench_scan_suite() {
    // A refused port (bound, then closed) and an address that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let refused = l.local_addr().expect("addr");
    drop(l);
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent = hole.local_addr().expect("addr");
    let b = spawn("scan", &[refused, silent]).await;
    let id = b.connection().await;
    let mut healthy = Vec::new();
    for _ in 0..10 {
        healthy.push(b.rescan_wall_time(id).await.0.as_secs_f64() * 1000.0);
    }
    healthy.sort_by(f64::total_cmp);
    println!(
        "BENCH scan_healthy_ms p50={:.1} max={:.1} (10 runs, 14 checks)",
        pct(&healthy, 0.5),
        pct(&healthy, 1.0)
    );

    repoint(&b, id, &format!("http://{refused}")).await;
    let (t, s) = b.rescan_wall_time(id).await;
    println!(
        "BENCH scan_refused_ms {:.1} (ended {s}: {})",
        t.as_secs_f64() * 1000.0,
        first_finding(&b, id).await
    );

    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    repoint(&b, id, &format!("http://{silent}")).await;
    let (t, s) = b.rescan_wall_time(id).await;
    println!(
        "BENCH scan_silent_ms {:.1} (check time limit 5000 ms; ended {s}: {})",
        t.as_secs_f64() * 1000.0,
        first_finding(&b, id).await
    );
    let _ = b.sim.address();
}

/// The latest run's first finding (a check that did not pass and was not skipped), so the line
/// says what ended the scan: the network, as intended, not the outbound allow-list.
async fn first_finding(b: &Bench, id: i64) -> String {
    sqlx::query_scalar(
        "SELECT check_id || ' ' || status || ': ' || message FROM scan_results \
         WHERE run_id = (SELECT MAX(id) FROM scan_runs WHERE connection_id = $1) \
         AND status IN ('failed', 'error') ORDER BY id LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&b.state.db.pool)
    .await
    .expect("findings")
    .unwrap_or_else(|| "no finding".into())
}

async fn repoint(b: &Bench, id: i64, url: &str) {
    sqlx::query("UPDATE connections SET url = $1 WHERE id = $2")
        .bind(url)
        .bind(id)
        .execute(&b.state.db.pool)
        .await
        .expect("repoint");
}
