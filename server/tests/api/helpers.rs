//! Each test gets its own app on port 0 and its own fresh database: a new SQLite file, or a new
//! database on the PostgreSQL server the test script started (TEST_POSTGRES_URL).
use std::sync::atomic::{AtomicU32, Ordering};

use app::server::{key_source::KeySource, sealed::SecretKey};
use serde_json::{json, Value};
use server::{config::Config, startup::Application};

pub struct TestApp {
    pub base: String,
    /// Signed in as the first administrator (every role).
    pub client: reqwest::Client,
    pub state: app::server::AppState,
    pub route_table: Vec<server::edge::routes::RouteSpec>,
    /// The server's admission gate (turns taken, requests waiting).
    pub gate: server::net::admission::Gate,
    /// The one-time first-administrator link, when the app started with no users.
    pub setup_link: Option<String>,
    /// The provider simulator this app talks to, over HTTP on loopback.
    pub sim: std::sync::Arc<simulator::Simulator>,
    /// This test's simulated provider instance (faults are per instance).
    pub provider_url: String,
    pub instance: String,
    /// How to start another app on the same database and provider.
    pub restart: Restart,
    /// Ends serving: see `stop`.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A heartbeat every second; a round trip above 1 s is Slow (a loopback echo takes a few ms,
/// a loaded machine's well under a second).
pub fn heartbeat_every_second(config: &mut Config) {
    config.settings.health_interval = std::time::Duration::from_secs(1);
    config.settings.slow_ms = 1000;
}

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// Every test app serves `/metrics` to this token (IMPACT_METRICS_TOKEN).
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

mod tempdir {
    /// A test's own database, removed when dropped: a SQLite file's folder, or a database on
    /// the shared PostgreSQL server (left behind, hundreds of them slow that server's start).
    pub enum Dir {
        Folder(std::path::PathBuf),
        Postgres { admin_url: String, name: String },
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            match self {
                Dir::Folder(path) => {
                    let _ = std::fs::remove_dir_all(path);
                }
                Dir::Postgres { admin_url, name } => {
                    // Drop runs inside the test's runtime, which cannot be blocked on: a thread
                    // of its own does the dropping. FORCE ends the app's own connections.
                    let (admin_url, name) = (admin_url.clone(), name.clone());
                    let dropped = std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .ok()?;
                        rt.block_on(async {
                            use sqlx::Connection;
                            let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await
                                .ok()
                        })
                    });
                    let _ = dropped.join();
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// The PostgreSQL server URL, required: `make test` starts one. Run only SQLite tests with
/// `cargo test sqlite` when developing without it.
fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the tests with `make test`, which starts PostgreSQL",
    )
}

pub(crate) async fn fresh_database(backend: Backend) -> (String, Option<tempdir::Dir>) {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(unique("impact_test"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}/app.db?mode=rwc", dir.display());
            (url, Some(tempdir::Dir::Folder(dir)))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_url();
            let name = unique("impact_test");
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
                .unwrap_or_else(|| admin.clone());
            (
                format!("{base}/{name}"),
                Some(tempdir::Dir::Postgres {
                    admin_url: admin,
                    name,
                }),
            )
        }
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_configured(backend, None, None, |_| {}).await
}

/// With emails also delivered to this SMTP server (`smtp://host:port`).
pub async fn spawn_with_smtp(backend: Backend, smtp_url: Option<String>) -> TestApp {
    let relay = smtp_url.map(|u| app::server::smtp::SmtpRelay::parse(&u, None).expect("SMTP URL"));
    spawn_with_relay(backend, relay).await
}

/// With emails also delivered through this relay.
pub async fn spawn_with_relay(
    backend: Backend,
    relay: Option<app::server::smtp::SmtpRelay>,
) -> TestApp {
    spawn_configured(backend, None, relay, |_| {}).await
}

/// With the configuration changed by `configure` (edge limits, say) before the app starts.
pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_configured(backend, None, None, configure).await
}

/// With this simulator as the provider, called under this outbound policy.
pub async fn spawn_with_provider(
    backend: Backend,
    sim: simulator::Simulator,
    outbound: app::server::outbound::Outbound,
    relay: Option<app::server::smtp::SmtpRelay>,
) -> TestApp {
    spawn_configured(backend, Some((sim, outbound)), relay, |_| {}).await
}

async fn spawn_configured(
    backend: Backend,
    provider: Option<(simulator::Simulator, app::server::outbound::Outbound)>,
    relay: Option<app::server::smtp::SmtpRelay>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let restart = fresh_with(backend, provider, relay).await;
    start_configured(&restart, KeySource::key(SecretKey::generate()), configure)
        .await
        .expect("build app")
}

/// A fresh database and simulated provider instance, for `start`.
pub async fn fresh(backend: Backend, smtp_url: Option<String>) -> Restart {
    let relay = smtp_url.map(|u| app::server::smtp::SmtpRelay::parse(&u, None).expect("SMTP URL"));
    fresh_with(backend, None, relay).await
}

/// `provider`: the simulator and outbound policy, or a fresh plain-http simulator on loopback,
/// the one provider allowed.
async fn fresh_with(
    backend: Backend,
    provider: Option<(simulator::Simulator, app::server::outbound::Outbound)>,
    smtp_url: Option<app::server::smtp::SmtpRelay>,
) -> Restart {
    server::telemetry::init();
    let (sim, outbound) = match provider {
        Some(p) => p,
        None => {
            let sim = simulator::Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
                .await
                .expect("simulator");
            let outbound = app::server::outbound::Outbound::new(&sim.address().to_string(), None)
                .expect("allow list");
            (sim, outbound)
        }
    };
    let (database_url, dir) = fresh_database(backend).await;
    Restart {
        database_url,
        sim: std::sync::Arc::new(sim),
        outbound,
        instance: unique("inst"),
        smtp_url,
        addr: None,
        _dir: dir.map(std::sync::Arc::new),
    }
}

/// Signs in as the administrator through the sign-in form with this `next`: where the answer
/// (a 303) leads.
pub async fn sign_in_leads_to(client: &reqwest::Client, app: &TestApp, next: &str) -> String {
    let r = client
        .post(format!("{}/auth/login", app.base))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", next),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303, "{next:?}");
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Waits until `condition` holds, checking every 20 ms; fails naming `what` after 30 s (a
/// generous deadline: a loaded machine is slow, a broken promise never gets there).
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What an app needs to start again on the same database and simulated provider.
#[derive(Clone)]
pub struct Restart {
    pub database_url: String,
    pub sim: std::sync::Arc<simulator::Simulator>,
    /// Which provider addresses the app may call (the simulator's, at least).
    pub outbound: app::server::outbound::Outbound,
    pub instance: String,
    pub smtp_url: Option<app::server::smtp::SmtpRelay>,
    /// Where to listen (port 0 when `None`): a restarted app takes its predecessor's address,
    /// which the provider was given at registration.
    pub addr: Option<std::net::SocketAddr>,
    /// The SQLite database's folder, removed when the last app using it is dropped.
    _dir: Option<std::sync::Arc<tempdir::Dir>>,
}

/// Starts an app on `restart`'s database with these secret keys (a restart when the database
/// was used before); the error is the start-up error.
pub async fn start(restart: &Restart, keys: KeySource) -> anyhow::Result<TestApp> {
    start_configured(restart, keys, |_| {}).await
}

/// `start`, with the configuration changed by `configure` first.
pub async fn start_with(
    restart: &Restart,
    keys: KeySource,
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<TestApp> {
    start_configured(restart, keys, configure).await
}

async fn start_configured(
    restart: &Restart,
    keys: KeySource,
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<TestApp> {
    server::telemetry::init();
    let provider_url = restart.sim.instance_url(&restart.instance);
    let mut config = Config {
        admin: Some((ADMIN_EMAIL.into(), ADMIN_PASSWORD.into())),
        secret_keys: keys,
        ..Config::on_loopback(
            restart.database_url.clone(),
            provider_url.clone(),
            restart.outbound.clone(),
        )
    };
    if let Some(addr) = restart.addr {
        config.addr = addr;
    }
    config.settings.provider_timeout = std::time::Duration::from_secs(2);
    config.settings.smtp_url = restart.smtp_url.clone();
    config.metrics_token =
        Some(server::edge::metrics::MetricsToken::from_setting(METRICS_TOKEN).expect("token"));
    configure(&mut config);
    let admin = config.admin.is_some();
    let application = Application::build(config).await?;
    let setup_link = application.setup_link.clone();
    let base = format!("http://{}", application.address());
    let state = application.state.clone();
    let route_table = application.route_table.clone();
    let gate = application.gate.clone();
    let address = application.address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        // Dropped without `stop`: serve until the test's runtime ends.
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    // Without a configured administrator there may be nobody to sign in as.
    let client = if admin {
        signed_in(&base, ADMIN_EMAIL, ADMIN_PASSWORD).await
    } else {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client")
    };
    Ok(TestApp {
        base,
        client,
        state,
        route_table,
        gate,
        setup_link,
        sim: restart.sim.clone(),
        provider_url,
        instance: restart.instance.clone(),
        restart: Restart {
            addr: Some(address),
            ..restart.clone()
        },
        stop: Some(stop),
        server: Some(server),
    })
}

/// A client with its own cookie jar, signed in as this user.
pub async fn signed_in(base: &str, email: &str, password: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let r = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(
        r.status(),
        200,
        "sign in as {email}: {}",
        r.text().await.unwrap_or_default()
    );
    client
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    /// Stops serving, as a process stopping would: no new connections, open ones closed. The
    /// state (and its database pool) stays usable. Returns how to start again at this address.
    pub async fn stop(&mut self) -> Restart {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
            assert!(stopped.is_ok(), "the app did not stop within 10 s");
        }
        self.restart.clone()
    }

    /// Sets this test's simulated provider faults (a partial JSON object; the rest default).
    pub async fn faults(&self, faults: Value) {
        // An https simulator may present a deliberately bad certificate: this is the test
        // steering its simulator, not the app calling a provider.
        let sim_admin = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        let r = sim_admin
            .put(format!(
                "{}/sim/instances/{}/faults",
                self.sim_base(),
                self.instance
            ))
            .json(&faults)
            .send()
            .await
            .expect("set faults");
        assert!(
            r.status().is_success(),
            "faults: {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// The simulator's own address (its `/sim/…` admin API), over http or https.
    pub fn sim_base(&self) -> String {
        self.provider_url
            .split_once("/i/")
            .map(|(base, _)| base.to_string())
            .unwrap_or_default()
    }

    /// Polls the connection until it reads `state` (the scan runs in the background).
    pub async fn wait_for_state(&self, id: i64, state: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let c = self.get(&format!("/api/connections/{id}")).await.body;
            if c["state"] == state {
                return c;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "connection {id} never became {state}: {c}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Creates a user with these roles and returns a client signed in as them.
    pub async fn user_with(&self, email: &str, roles: &[&str]) -> reqwest::Client {
        let password = "a long enough password";
        let r = self
            .post(
                "/api/users",
                json!({ "email": email, "password": password, "roles": roles }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        signed_in(&self.base, email, password).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        Self::reply(r).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Reply {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        Self::reply(r).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// Initiates a registration and returns the token from the welcome email's link.
    pub async fn invite(&self, email: &str, company: &str) -> String {
        let r = self
            .post(
                "/api/invitations",
                json!({ "email": email, "company": company }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let outbox = self.get("/api/outbox").await;
        let link = outbox.body[0]["link"]
            .as_str()
            .expect("welcome email has a link")
            .to_string();
        assert_eq!(outbox.body[0]["to"], email);
        link.split_once("token=")
            .expect("token in link")
            .1
            .to_string()
    }

    /// "Save" on the form opened from a registration link: the new connection's id.
    pub async fn create_from_link(&self, token: &str) -> i64 {
        let r = self
            .post(
                "/api/connections",
                json!({ "company": "ServiceNow Impact", "registration_token": token }),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_i64().expect("id")
    }

    /// Points a connection at another provider URL behind the app's back (as a changed policy
    /// or a tampered record would leave it) and starts a full Rescan.
    pub async fn repoint_and_rescan(&self, id: i64, url: &str) {
        sqlx::query("UPDATE connections SET url = $1 WHERE id = $2")
            .bind(url)
            .bind(id)
            .execute(&self.state.db.pool)
            .await
            .expect("repoint");
        let r = self.rescan(id).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    /// "Rescan" on the connection at its current version, as the form's button sends it.
    pub async fn rescan(&self, id: i64) -> Reply {
        let v = self.get(&format!("/api/connections/{id}")).await.body["version"].clone();
        self.post(
            &format!("/api/connections/{id}/actions"),
            json!({ "action": "rescan", "version": v }),
        )
        .await
    }
}
