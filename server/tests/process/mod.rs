//! Real server processes for the tests that need them (crash resume, replicas): a fresh
//! database on either backend, the `impact-connect` binary started on it, a signed-in client.
// Each test crate uses part of this.
#![allow(dead_code)]
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub mod provider;
pub mod sse;

use reqwest::redirect::Policy;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test: a new SQLite file under `dir`, or a new PostgreSQL database
/// (as server/tests/api/helpers.rs makes them).
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/app.db?mode=rwc", dir.display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = std::env::var("TEST_POSTGRES_URL").expect(
                "TEST_POSTGRES_URL is not set: run the tests with `make test`, which starts PostgreSQL",
            );
            let name = format!(
                "impact_crash_{}_{}",
                std::process::id(),
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("x")
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

/// The test's own look at the database the server writes (the server may be dead meanwhile).
pub async fn pool(db: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(db)
        .await
        .expect("open the database")
}

/// Polls `probe` until it gives Some, with a generous deadline.
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = probe().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "crash test password";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

pub fn start(db: &str, port: u16, provider: &str) -> Child {
    start_with(db, port, provider, &[])
}

/// Where a started server's log goes: read it when a test says a server did not come up.
pub fn log_path(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("impact-server-{port}.log"))
}

fn log_file(port: u16) -> Stdio {
    std::fs::File::create(log_path(port)).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// `start` with more settings (`env`).
pub fn start_with(db: &str, port: u16, provider: &str, env: &[(&str, &str)]) -> Child {
    // The test's simulator (plain http on loopback) is the provider the server may call.
    let allow = reqwest::Url::parse(provider)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port()?)))
        .expect("provider URL with a port");
    Command::new(env!("CARGO_BIN_EXE_impact-connect"))
        .env("DATABASE_URL", db)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("IMPACT_PROVIDER_URL", provider)
        .env("IMPACT_ALLOW_PROVIDER_HOSTS", allow)
        .env("IMPACT_ADMIN_EMAIL", EMAIL)
        .env("IMPACT_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        // A dead server's work is taken over within about this long (the default is 10 s).
        .env("IMPACT_LEASE_MS", "2000")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log_file(port))
        .spawn()
        .expect("start the server binary")
}

pub async fn client(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = c
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": EMAIL, "password": PASSWORD }))
            .send()
            .await
        {
            if r.status() == 200 {
                return c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server at {base} did not come up (its log: {})",
            base.rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .map_or_else(|| "?".into(), |p| log_path(p).display().to_string())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get(c: &reqwest::Client, url: String) -> Value {
    c.get(url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// Connection 1's record as `c` reads it at `base`, once `field` reads `value`.
pub async fn wait_for(c: &reqwest::Client, base: &str, field: &str, value: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = get(c, format!("{base}/api/connections/1")).await;
        if v[field] == value {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{field} never became {value}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers the instance for `company` with the administrator as named contact: the welcome
/// email's registration token, read from the outbox.
pub async fn invite(c: &reqwest::Client, base: &str, company: &str) -> String {
    let r = c
        .post(format!("{base}/api/invitations"))
        .json(&json!({ "email": EMAIL, "company": company }))
        .send()
        .await
        .expect("invite");
    assert!(r.status().is_success(), "invite: {}", r.status());
    let outbox = get(c, format!("{base}/api/outbox")).await;
    let link = outbox[0]["link"].as_str().expect("link").to_string();
    link.split_once("token=").expect("token").1.to_string()
}

/// Saves the Provider connection form opened from the registration link (connection 1).
pub async fn create(c: &reqwest::Client, base: &str, company: &str, token: &str) {
    let r = c
        .post(format!("{base}/api/connections"))
        .json(&json!({ "company": company, "registration_token": token }))
        .send()
        .await
        .expect("create");
    assert!(r.status().is_success(), "create: {}", r.status());
}

/// What replicas share, made fresh for one test: a simulated provider instance, a PostgreSQL
/// database (and the test's own pool on it), the secret key, and a folder.
pub struct Shared {
    pub sim: simulator::Simulator,
    pub provider: String,
    pub dir: std::path::PathBuf,
    pub db: String,
    pub look: sqlx::AnyPool,
    /// IMPACT_SECRET_KEY for every replica: one replica must open what another sealed.
    pub key: String,
}

pub async fn shared(name: &str) -> Shared {
    let sim = simulator::Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let provider = sim.instance_url(name);
    let dir = std::env::temp_dir().join(format!("impact_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = fresh_database(Backend::Postgres, &dir).await;
    let look = pool(&db).await;
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
    Shared {
        sim,
        provider,
        dir,
        db,
        look,
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The simulator's administration address for `instance` (docs/PROVIDER_PROTOCOL.md).
pub fn sim_admin(sim: &simulator::Simulator, instance: &str) -> String {
    format!("http://{}/sim/instances/{instance}", sim.address())
}

pub async fn set_faults(sim: &simulator::Simulator, instance: &str, faults: Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/faults", sim_admin(sim, instance)))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    assert_eq!(r.status(), 200, "faults {faults} refused");
}

/// What the provider has done so far: its counters (docs/PROVIDER_PROTOCOL.md).
pub async fn provider_counters(sim: &simulator::Simulator, instance: &str) -> Value {
    reqwest::get(sim_admin(sim, instance))
        .await
        .expect("counters")
        .json()
        .await
        .expect("json")
}
