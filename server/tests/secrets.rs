//! No secret reaches the logs: a whole flow runs with every log line captured at debug level,
//! then the capture is searched for passwords, session tokens, link tokens and keys.
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use serde_json::{json, Value};
use server::{config::Config, startup::Application};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_appears_in_the_logs_during_a_full_flow() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        // cookie_store is the test's own HTTP client keeping its cookie jar, not the server.
        .with_env_filter("debug,cookie_store=off")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = std::env::temp_dir().join(format!("impact_secrets_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let admin_password = "very secret admin password 42";
    let sim = simulator::Simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let secret_key = app::server::sealed::SecretKey::generate();
    // The test's simulator is the one plain-http, loopback provider allowed.
    let outbound =
        app::server::outbound::Outbound::new(&sim.address().to_string(), None).expect("allow list");
    let mut config = Config {
        admin: Some(("admin@example.com".into(), admin_password.into())),
        secret_keys: app::server::key_source::KeySource::key(secret_key.clone()),
        ..Config::on_loopback(
            format!("sqlite://{}/app.db?mode=rwc", dir.display()),
            sim.instance_url("secrets"),
            outbound,
        )
    };
    config.settings.provider_timeout = std::time::Duration::from_secs(2);
    let application = Application::build(config).await.expect("build");
    let base = format!("http://{}", application.address());
    let state = application.state.clone();
    tokio::spawn(application.run_until_stopped());

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let r = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "admin@example.com", "password": admin_password }))
        .send()
        .await
        .expect("login");
    let session_cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("session cookie");
    // A failed sign-in with a different password must not log it either.
    let _ = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "admin@example.com", "password": "wrong but secret 123" }))
        .send()
        .await;
    let _ = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "email": "admin@example.com", "password": admin_password }))
        .send()
        .await;
    let user_password = "another user secret 77";
    client
        .post(format!("{base}/api/users"))
        .json(
            &json!({ "email": "u@example.com", "password": user_password, "roles": ["idi_admin"] }),
        )
        .send()
        .await
        .expect("user");
    client
        .post(format!("{base}/api/invitations"))
        .json(&json!({ "email": "ada@example.com", "company": "Acme" }))
        .send()
        .await
        .expect("invite");
    let outbox: Value = client
        .get(format!("{base}/api/outbox"))
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("json");
    let link = outbox[0]["link"].as_str().expect("link").to_string();
    let token = link.split_once("token=").expect("token").1.to_string();
    client
        .get(format!("{base}/api/registration?token={token}"))
        .send()
        .await
        .expect("open");
    client
        .post(format!("{base}/api/connections"))
        .json(&json!({ "company": "Acme", "registration_token": token }))
        .send()
        .await
        .expect("create");
    client
        .get(format!("{base}/connections/1"))
        .send()
        .await
        .expect("page");
    // Let the background scan register with the provider (its secret is searched for too).
    let mut secret = None;
    for _ in 0..100 {
        secret =
            sqlx::query_scalar::<_, Option<String>>("SELECT secret FROM connections WHERE id = 1")
                .fetch_one(&state.db.pool)
                .await
                .ok()
                .flatten();
        if secret.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let provider_secret = secret.expect("the scan registered and stored a secret");
    // Stored sealed: what it opens to is searched for too, as base64 and as hex.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let provider_secret_plain = app::server::opened(
        &state.keys,
        &app::server::sealed::connection_secret_context(1),
        &provider_secret,
        "the provider secret",
    )
    .expect("the stored secret opens");

    let key: String =
        sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = 'link_key'")
            .fetch_one(&state.db.pool)
            .await
            .expect("key");
    let key_plain = app::server::opened(
        &state.keys,
        app::server::sealed::LINK_KEY_CONTEXT,
        &key,
        "the link key",
    )
    .expect("the stored link key opens");
    let hashes: Vec<String> = sqlx::query_scalar::<_, String>("SELECT password_hash FROM users")
        .fetch_all(&state.db.pool)
        .await
        .expect("hashes");

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("lock")).to_string();
    assert!(logs.contains("signed in"), "the capture works: {logs}");
    let mut secrets = vec![
        admin_password.to_string(),
        "wrong but secret 123".to_string(),
        user_password.to_string(),
        session_cookie,
        token.clone(),
        key,
    ];
    // The signature part of the link on its own too.
    secrets.push(
        token
            .split_once('.')
            .map(|(_, s)| s.to_string())
            .unwrap_or_default(),
    );
    secrets.extend(hashes);
    secrets.push(provider_secret);
    for plain in [&provider_secret_plain, &key_plain] {
        secrets.push(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            plain,
        ));
        secrets.push(hex(plain));
    }
    // The key that seals them, as base64 and as hex.
    secrets.push(secret_key.to_base64().to_string());
    let key_bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        secret_key.to_base64().as_str(),
    )
    .expect("base64");
    secrets.push(hex(&key_bytes));
    for s in secrets {
        assert!(!s.is_empty());
        if let Some(at) = logs.find(&s) {
            let start = logs[..at].rfind('\n').unwrap_or(0);
            panic!(
                "a secret ({}…) appears in the logs: {}",
                &s[..4.min(s.len())],
                &logs[start..(at + 20).min(logs.len())]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
