//! Crash safety: the server process is killed with SIGKILL in the middle of an onboarding run;
//! started again on the same database, it resumes the run from the record and finishes it.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::redirect::Policy;
use serde_json::{json, Value};
use server::simulator::Simulator;

const EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "crash test password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start(db: &str, port: u16, provider: &str) -> Child {
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary")
}

async fn client(base: &str) -> reqwest::Client {
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
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(c: &reqwest::Client, url: String) -> Value {
    c.get(url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

async fn wait_for(c: &reqwest::Client, base: &str, field: &str, value: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
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

/// A real server process on a fresh SQLite file, talking to a simulated provider instance,
/// with one connection saved and Validated.
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

async fn validated(instance: &str, company: &str) -> Running {
    let sim = Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let provider = sim.instance_url(instance);
    let dir = std::env::temp_dir().join(format!("impact_{instance}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = format!("sqlite://{}/app.db?mode=rwc", dir.display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start(&db, port, &provider);
    let c = client(&base).await;
    c.post(format!("{base}/api/invitations"))
        .json(&json!({ "email": EMAIL, "company": company }))
        .send()
        .await
        .expect("invite");
    let outbox = get(&c, format!("{base}/api/outbox")).await;
    let link = outbox[0]["link"].as_str().expect("link").to_string();
    let token = link.split_once("token=").expect("token").1;
    c.post(format!("{base}/api/connections"))
        .json(&json!({ "company": company, "registration_token": token }))
        .send()
        .await
        .expect("create");
    wait_for(&c, &base, "state", "validated").await;
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

#[tokio::test]
async fn a_run_killed_mid_sync_resumes_after_restart() {
    let Running {
        sim,
        provider,
        dir,
        db,
        port,
        base,
        server,
        client: c,
    } = validated("crash", "Crash Co").await;
    let mut server = server;

    // Every provider answer now takes 700 ms: the run is mid-sync for a few seconds.
    let faults = format!("http://{}/sim/instances/crash/faults", sim.address());
    reqwest::Client::new()
        .put(&faults)
        .json(&json!({ "slow_ms": 700 }))
        .send()
        .await
        .expect("faults");
    let auth: Value = c
        .post(format!("{base}/api/connections/1/connect"))
        .send()
        .await
        .expect("connect")
        .json()
        .await
        .expect("json");
    let url = reqwest::Url::parse(auth["authorize_url"].as_str().expect("url")).expect("parse");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let mut action = url.clone();
    action.set_query(None);
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let answer = browser
        .post(action)
        .form(&[
            ("consumer_id", q["consumer_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("state", q["state"].as_str()),
            ("email", EMAIL),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("allow");
    let back = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("redirect")
        .to_string();
    c.get(back).send().await.expect("callback");
    wait_for(&c, &base, "onboarding", "syncing").await;

    server.kill().expect("SIGKILL");
    let _ = server.wait();
    reqwest::Client::new()
        .put(&faults)
        .json(&json!({}))
        .send()
        .await
        .expect("faults");

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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
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
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
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
    } = validated("shutdown", "Stop Co").await;
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
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream did not end on shutdown");
    let deadline = Instant::now() + Duration::from_secs(10);
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
