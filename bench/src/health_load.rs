//! Load generator for the connection health check (`make bench`, issue 14): onboards N
//! connections through the product's own flow, each at its own simulator instance, then measures
//! on the server process
//! - the share of a core its heartbeats use once all N are onboarded (a steady window), and
//! - for `down` set on a sample of connections at once, the time from the fault to Outbound
//!   Down on the record (the history entry's time), and from clearing it back to Up.
//!
//! The server and the simulator are separate processes (scripts/bench.sh starts them); this one
//! only drives them and reads the clock and `/proc`. All on this machine, over loopback.
use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context};
use bench::{positive, process::cpu_ms, stats::pct};
use futures::{stream, StreamExt, TryStreamExt};
use reqwest::{redirect::Policy, Client, StatusCode};
use serde_json::{json, Value};

/// Onboards many connections through the seed flow, each at its own simulator instance, then
/// measures the server's CPU under steady heartbeats, the time from a fault to Down on the
/// record (and back), and the health dashboard's read.
#[derive(clap::Parser)]
#[command(name = "health-load", version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3190")]
    server: SocketAddr,
    /// The provider simulator the connections point at.
    #[arg(long, default_value = "127.0.0.1:3191")]
    sim: SocketAddr,
    /// The administrator to sign in as.
    #[arg(long, default_value = "bench@example.com")]
    email: String,
    #[arg(long, default_value = "bench password 123")]
    password: String,
    #[arg(long, default_value_t = 1000, value_parser = positive())]
    connections: usize,
    /// The server's `IMPACT_HEALTH_INTERVAL_SECONDS` (for the waits and the report).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// The server's process, for its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The simulator's process, for its CPU time.
    #[arg(long)]
    sim_pid: Option<u32>,
    /// Seconds of steady heartbeats over which the CPU share is measured.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Connections given the fault in each round (at most --connections).
    #[arg(long, default_value_t = 100, value_parser = positive())]
    sample: usize,
    #[arg(long, default_value_t = 3, value_parser = positive())]
    rounds: usize,
    /// Connections onboarded at once.
    #[arg(long, default_value_t = 8, value_parser = positive())]
    concurrency: usize,
    /// The server's SQLite database: when given, a day of history is written into it and the
    /// dashboard read again.
    #[arg(long)]
    history_db: Option<String>,
}

/// The command line; a sample larger than the connections ends here like any other bad
/// argument (clap's message, exit 2).
fn args() -> Args {
    let a = <Args as clap::Parser>::parse();
    if a.sample > a.connections {
        <Args as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--sample must be at most --connections",
            )
            .exit();
    }
    a
}

/// The administrator's side: a signed-in client that does not follow redirects (the callback's
/// 303 is the answer to check).
struct Admin {
    base: String,
    client: Client,
}

impl Admin {
    async fn sign_in(a: &Args) -> anyhow::Result<Self> {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()?;
        let base = format!("http://{}", a.server);
        let r = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": a.email, "password": a.password }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("sign-in answered {}", r.status());
        }
        Ok(Self { base, client })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.with_context(|| path.to_string())?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Polls one connection until `done` holds for it, within `limit`.
    async fn wait_for(
        &self,
        id: i64,
        what: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<()> {
        let until = Instant::now() + limit;
        loop {
            let c = self.get(&format!("/api/connections/{id}")).await?;
            if done(&c) {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("connection {id} was not {what} within {limit:?}: {c}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn instance(n: usize) -> String {
    format!("hb-{n}")
}

/// One connection through the seed flow: registration at its own simulator instance, Save
/// (the scan validates it), Connect, "Allow" on the provider's page as the named contact, the
/// callback, and onboarding to Complete. Returns the connection's id.
async fn onboard(a: &Args, admin: &Admin, provider: &Client, n: usize) -> anyhow::Result<i64> {
    let company = format!("Bench company {n}");
    let email = format!("contact{n}@example.com");
    let invitation = admin
        .post(
            "/api/invitations",
            json!({
                "email": email,
                "company": company,
                "provider_url": format!("http://{}/i/{}", a.sim, instance(n)),
            }),
        )
        .await?;
    let link = invitation["link"]
        .as_str()
        .context("the invitation has no link")?;
    let token = link.split_once("token=").context("no token in the link")?.1;
    let created = admin
        .post(
            "/api/connections",
            json!({ "company": company, "registration_token": token }),
        )
        .await?;
    let id = created["id"].as_i64().context("no connection id")?;
    admin
        .wait_for(id, "Validated", Duration::from_secs(120), |c| {
            c["state"] == "validated"
        })
        .await?;
    let connect = admin
        .post(&format!("/api/connections/{id}/connect"), json!({}))
        .await?;
    let authorize = reqwest::Url::parse(
        connect["authorize_url"]
            .as_str()
            .context("no authorize_url")?,
    )?;
    let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    let page = provider.get(authorize.clone()).send().await?;
    if page.status() != StatusCode::OK {
        bail!("the provider's page answered {}", page.status());
    }
    let mut action = authorize.clone();
    action.set_query(None);
    let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let answer = provider
        .post(action)
        .form(&[
            ("consumer_id", field("consumer_id")),
            ("redirect_uri", field("redirect_uri")),
            ("state", field("state")),
            ("email", email.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await?;
    let back = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("the provider did not send the browser back")?
        .to_string();
    let callback = admin.client.get(back).send().await?;
    if callback.status() != StatusCode::SEE_OTHER {
        bail!("the callback answered {}", callback.status());
    }
    admin
        .wait_for(id, "onboarded", Duration::from_secs(120), |c| {
            c["onboarding"] == "complete" && c["outbound"] == "up" && c["inbound"] == "up"
        })
        .await?;
    Ok(id)
}

/// Sets a simulator instance's faults (a PUT replaces them all).
async fn faults(sim: &Client, a: &Args, n: usize, faults: Value) -> anyhow::Result<()> {
    let r = sim
        .put(format!(
            "http://{}/sim/instances/{}/faults",
            a.sim,
            instance(n)
        ))
        .json(&faults)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("faults for {} answered {}", instance(n), r.status());
    }
    Ok(())
}

/// Every connection's Outbound, by id (one list read).
async fn outbound_by_id(admin: &Admin) -> anyhow::Result<HashMap<i64, String>> {
    let list = admin.get("/api/connections").await?;
    Ok(list
        .as_array()
        .context("the list is not an array")?
        .iter()
        .filter_map(|c| Some((c["id"].as_i64()?, c["outbound"].as_str()?.to_string())))
        .collect())
}

/// When the connection's history first shows `change` (e.g. "Outbound Up → Down") at or after
/// `since`: the time the server recorded it.
async fn recorded_at(
    admin: &Admin,
    id: i64,
    change: &str,
    since: SystemTime,
) -> anyhow::Result<SystemTime> {
    let history = admin.get(&format!("/api/connections/{id}/history")).await?;
    let since = chrono::DateTime::<chrono::Utc>::from(since);
    history
        .as_array()
        .context("the history is not an array")?
        .iter()
        .filter(|h| h["reason"].as_str().is_some_and(|r| r.contains(change)))
        .filter_map(|h| {
            h["at"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        })
        .map(|at| at.with_timezone(&chrono::Utc))
        .filter(|at| *at >= since)
        .min()
        .map(SystemTime::from)
        .with_context(|| format!("connection {id}'s history has no \"{change}\" since the fault"))
}

/// Sets `fault` on every sampled connection, waits until all of them read `until` as Outbound,
/// and returns each one's time from its fault to the recorded change, in microseconds, sorted.
async fn round(
    a: &Args,
    admin: &Admin,
    sim: &Client,
    sample: &[(usize, i64)],
    fault: Value,
    until: &str,
    change: &str,
) -> anyhow::Result<Vec<u64>> {
    let mut set_at = HashMap::new();
    for &(n, id) in sample {
        faults(sim, a, n, fault.clone()).await?;
        set_at.insert(id, SystemTime::now());
    }
    let limit = Duration::from_secs(a.interval * 4 + 30);
    let started = Instant::now();
    loop {
        let now = outbound_by_id(admin).await?;
        if sample
            .iter()
            .all(|(_, id)| now.get(id).is_some_and(|o| o == until))
        {
            break;
        }
        if started.elapsed() > limit {
            let late = sample
                .iter()
                .filter(|(_, id)| now.get(id).is_none_or(|o| o != until))
                .count();
            bail!("{late} connections did not read Outbound {until} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut took: Vec<u64> = stream::iter(sample.iter().map(|&(_, id)| {
        let since = set_at[&id];
        async move {
            let at = recorded_at(admin, id, change, since).await?;
            anyhow::Ok(at.duration_since(since).unwrap_or_default().as_micros() as u64)
        }
    }))
    .buffer_unordered(16)
    .try_collect()
    .await?;
    took.sort_unstable();
    Ok(took)
}

/// The dashboard's read with every connection on it, five times.
struct DashboardRead {
    median_ms: f64,
    slowest_ms: f64,
    /// Heartbeats of the last 24 hours it summed up (every card's).
    heartbeats: i64,
    /// The answer's size as JSON.
    bytes: usize,
}

async fn dashboard_read(admin: &Admin) -> anyhow::Result<DashboardRead> {
    let mut took = Vec::new();
    let mut last = Value::Null;
    for _ in 0..5 {
        let start = Instant::now();
        last = admin.get("/api/health-dashboard").await?;
        took.push(start.elapsed().as_micros() as u64);
    }
    took.sort_unstable();
    let heartbeats = last["cards"].as_array().map_or(0, |cards| {
        cards
            .iter()
            .filter_map(|c| c["heartbeats_24h"].as_i64())
            .sum()
    });
    Ok(DashboardRead {
        median_ms: pct(&took, 0.5),
        slowest_ms: pct(&took, 1.0),
        heartbeats,
        bytes: last.to_string().len(),
    })
}

impl std::fmt::Display for DashboardRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.0} ms, slowest {:.0} ms with {} heartbeats stored ({:.1} MB of JSON)",
            self.median_ms,
            self.slowest_ms,
            self.heartbeats,
            self.bytes as f64 / 1e6
        )
    }
}

fn share(pid: Option<u32>, before: Option<u64>, seconds: f64) -> String {
    match (pid.and_then(cpu_ms), before) {
        (Some(after), Some(before)) => {
            format!("{:.1}%", (after - before) as f64 / 10.0 / seconds)
        }
        _ => "n/a".into(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let admin = Admin::sign_in(&a).await?;
    // The named contact's browser on the provider's page, and the bench steering its simulator.
    let provider = Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .build()?;

    let started = Instant::now();
    let onboarded: Vec<(usize, i64)> = stream::iter((0..a.connections).map(|n| {
        let (a, admin, provider) = (&a, &admin, &provider);
        async move { onboard(a, admin, provider, n).await.map(|id| (n, id)) }
    }))
    .buffer_unordered(a.concurrency)
    .try_collect()
    .await?;
    let onboarding = started.elapsed();
    eprintln!(
        "{} connections onboarded in {onboarding:.1?}",
        onboarded.len()
    );

    // Two intervals so every connection has had heartbeats since the onboarding burst.
    tokio::time::sleep(Duration::from_secs(a.interval * 2)).await;
    let server_before = a.server_pid.and_then(cpu_ms);
    let sim_before = a.sim_pid.and_then(cpu_ms);
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.window)).await;
    let seconds = window.elapsed().as_secs_f64();
    let server_share = share(a.server_pid, server_before, seconds);
    let sim_share = share(a.sim_pid, sim_before, seconds);
    let dash_steady = dashboard_read(&admin).await?;

    let mut sorted = onboarded.clone();
    sorted.sort_unstable();
    let step = sorted.len() / a.sample;
    let sample: Vec<(usize, i64)> = sorted
        .iter()
        .step_by(step.max(1))
        .take(a.sample)
        .copied()
        .collect();
    let (mut down, mut up) = (Vec::new(), Vec::new());
    for r in 0..a.rounds {
        eprintln!("round {}: down on {} connections", r + 1, sample.len());
        down.extend(
            round(
                &a,
                &admin,
                &provider,
                &sample,
                json!({ "down": true }),
                "down",
                "Outbound Up → Down",
            )
            .await?,
        );
        up.extend(
            round(
                &a,
                &admin,
                &provider,
                &sample,
                json!({}),
                "up",
                "Outbound Down → Up",
            )
            .await?,
        );
    }
    down.sort_unstable();
    up.sort_unstable();
    let dash_end = dashboard_read(&admin).await?;
    let dash_day = match &a.history_db {
        Some(db) => {
            let rows = bench::history::seed_day(db, a.interval).await?;
            let read = dashboard_read(&admin).await?;
            format!("; with a day of history written in ({rows} hourly roll-ups more) {read}")
        }
        None => String::new(),
    };

    let interval_ms = a.interval as f64 * 1000.0;
    println!(
        "BENCH connection health, {} onboarded connections at a {} s heartbeat interval, one server process on SQLite: \
         server CPU {server_share} of one core over {seconds:.0} s of steady heartbeats (goal < 25%; the simulator, \
         answering and calling back every heartbeat, used {sim_share}); onboarding all {} took {:.0} s ({} at a time)",
        onboarded.len(),
        a.interval,
        onboarded.len(),
        onboarding.as_secs_f64(),
        a.concurrency,
    );
    println!(
        "BENCH fault to Down on the record ({} faults: `down` on {} connections at once, {} rounds): p50 {:.1} s, \
         p99 {:.1} s, max {:.1} s (goal: p99 within two intervals, {:.0} s); fault cleared to Up: p50 {:.1} s, p99 {:.1} s",
        down.len(),
        sample.len(),
        a.rounds,
        pct(&down, 0.5) / 1000.0,
        pct(&down, 0.99) / 1000.0,
        pct(&down, 1.0) / 1000.0,
        interval_ms * 2.0 / 1000.0,
        pct(&up, 0.5) / 1000.0,
        pct(&up, 0.99) / 1000.0,
    );
    println!(
        "BENCH health dashboard read with {} connections (GET /api/health-dashboard, 5 reads): after the steady window {dash_steady}; \
         at the end {dash_end}{dash_day} (a day at this rate is {} heartbeats)",
        onboarded.len(),
        onboarded.len() as u64 * 86_400 / a.interval.max(1),
    );
    Ok(())
}
