//! Secrets at rest (issue 12): the provider secret and the link signing key are stored sealed;
//! a copy of the database reveals neither; a restart needs the same key (or the previous one
//! while rotating), and a wrong key stops the start with an error that says which key is needed.
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::json;
use sqlx::{Column, Row};

use app::server::{
    key_source::KeySource,
    sealed::{self, SecretKey},
};

use crate::{
    helpers::{fresh, start, Backend, Restart, TestApp},
    onboarding::validated,
};

/// Runs a test against SQLite and PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    };
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What must never be readable in the database: the provider secret and the link key.
struct Plain {
    secret: Vec<u8>,
    link_key: Vec<u8>,
}

async fn plain(app: &TestApp, id: i64) -> Plain {
    let secret = app::server::connections::credentials(&app.state, id)
        .await
        .expect("credentials")
        .expect("registered")
        .secret;
    let stored = stored(app, id).await;
    let link_key = app::server::opened(
        &app.state.keys,
        sealed::LINK_KEY_CONTEXT,
        &stored.1,
        "the link key",
    )
    .expect("the link key opens");
    assert_eq!(secret.len(), 32);
    assert_eq!(link_key.len(), 32);
    Plain { secret, link_key }
}

/// The stored (sealed) provider secret of `id` and link key.
async fn stored(app: &TestApp, id: i64) -> (String, String) {
    let secret: String = sqlx::query_scalar("SELECT secret FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("secret");
    let key: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'link_key'")
        .fetch_one(&app.state.db.pool)
        .await
        .expect("link key");
    (secret, key)
}

/// Every text value of every row of the tables that hold secrets, and for SQLite the database
/// files' bytes when `files`: none holds a secret, raw, base64 or hex.
async fn assert_unreadable(app: &TestApp, backend: Backend, p: &Plain, files: bool) {
    let needles: Vec<Vec<u8>> = [&p.secret, &p.link_key]
        .iter()
        .flat_map(|s| {
            [
                s.to_vec(),
                B64.encode(s).into_bytes(),
                hex(s).into_bytes(),
                // A prefix long enough to be unique, in case of other spellings (padding, URL-safe).
                B64.encode(s).into_bytes()[..40].to_vec(),
            ]
        })
        .collect();
    let mut texts = Vec::new();
    for table in ["connections", "settings"] {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&app.state.db.pool)
            .await
            .expect("rows");
        assert!(!rows.is_empty(), "{table} has rows");
        for row in &rows {
            for c in row.columns() {
                if let Ok(Some(v)) = row.try_get::<Option<String>, _>(c.ordinal()) {
                    texts.push(v);
                }
            }
        }
    }
    let mut haystacks: Vec<(String, Vec<u8>)> = texts
        .into_iter()
        .map(|t| ("a row".to_string(), t.into_bytes()))
        .collect();
    if let (Backend::Sqlite, true) = (backend, files) {
        let path = app
            .restart
            .database_url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                haystacks.push((file, bytes));
            }
        }
        assert!(haystacks.iter().any(|(f, _)| *f == path), "read {path}");
    }
    for (where_, hay) in &haystacks {
        for n in &needles {
            assert!(
                !hay.windows(n.len()).any(|w| w == n.as_slice()),
                "a secret is readable in {where_}"
            );
        }
    }
}

/// The signed calls both ways work: the credentials check (our signed call to the provider)
/// and the inbound check (the provider's signed call to us) pass.
async fn signed_calls_work(app: &TestApp, id: i64) {
    for check in ["credentials", "inbound"] {
        let r = app
            .post(
                &format!("/api/connections/{id}/checks/{check}/rescan"),
                json!({}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["outcome"].as_str()),
            (200, Some("passed")),
            "{check}: {:?}",
            r.body
        );
    }
}

/// A link issued before a restart still opens after it (the link key survived).
async fn link_opens(app: &TestApp, token: &str) {
    let r = app.get(&format!("/api/registration?token={token}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A validated connection, a spare link, and what is stored, under `key`.
async fn set_up(restart: &Restart, key: &SecretKey) -> (TestApp, i64, String, Plain) {
    let app = start(restart, KeySource::key(key.clone()))
        .await
        .expect("start");
    let id = validated(&app).await;
    let spare = app.invite("bob@example.com", "Other Company").await;
    let p = plain(&app, id).await;
    (app, id, spare, p)
}

async fn sealed_at_rest_and_a_restart_needs_the_same_key(backend: Backend) {
    let restart = fresh(backend, None).await;
    let a = SecretKey::generate();
    let (mut app, id, spare, p) = set_up(&restart, &a).await;
    let (secret, key) = stored(&app, id).await;
    for v in [&secret, &key] {
        assert!(v.starts_with(&format!("v1:{}:", a.id())), "{v}");
    }
    assert_unreadable(&app, backend, &p, true).await;
    let restart = app.stop().await;

    // Same key: everything works, nothing was re-sealed.
    let mut again = start(&restart, KeySource::key(a.clone()))
        .await
        .expect("restart with the same key");
    assert_eq!(stored(&again, id).await, (secret.clone(), key.clone()));
    signed_calls_work(&again, id).await;
    link_opens(&again, &spare).await;
    let restart = again.stop().await;

    // Another key: a clear start-up error naming the key id needed, and nothing changed.
    let other = SecretKey::generate();
    let e = start(&restart, KeySource::key(other.clone()))
        .await
        .err()
        .expect("a wrong key is refused");
    let message = format!("{e:#}");
    assert!(
        message.contains(&format!("sealed under key id {}", a.id()))
            && message.contains(other.id())
            && message.contains("IMPACT_SECRET_KEY_PREVIOUS"),
        "{message}"
    );
    assert!(!message.contains(&*a.to_base64()) && !message.contains(&*other.to_base64()));
    assert_eq!(stored(&again, id).await, (secret, key));
}
on_both!(sealed_at_rest_and_a_restart_needs_the_same_key);

async fn rotating_the_key_reseals_everything_under_the_new_one(backend: Backend) {
    let restart = fresh(backend, None).await;
    let a = SecretKey::generate();
    let (mut app, id, spare, p) = set_up(&restart, &a).await;
    let before = stored(&app, id).await;
    let restart = app.stop().await;

    let b = SecretKey::generate();
    let mut rotated = start(
        &restart,
        KeySource {
            key: Some(b.clone()),
            previous: vec![a.clone()],
            file: None,
        },
    )
    .await
    .expect("restart rotating from A to B");
    let after = stored(&rotated, id).await;
    for v in [&after.0, &after.1] {
        assert!(v.starts_with(&format!("v1:{}:", b.id())), "{v}");
    }
    assert_ne!(after, before);
    assert_eq!(plain(&rotated, id).await.secret, p.secret);
    assert_eq!(plain(&rotated, id).await.link_key, p.link_key);
    assert_unreadable(&rotated, backend, &p, true).await;
    signed_calls_work(&rotated, id).await;
    link_opens(&rotated, &spare).await;
    let restart = rotated.stop().await;

    // The old key is no longer needed, and no longer enough.
    let mut b_only = start(&restart, KeySource::key(b.clone()))
        .await
        .expect("B alone");
    signed_calls_work(&b_only, id).await;
    let restart = b_only.stop().await;
    let e = start(&restart, KeySource::key(a.clone()))
        .await
        .err()
        .expect("A alone is refused after rotation");
    assert!(format!("{e:#}").contains(b.id()), "{e:#}");
}
on_both!(rotating_the_key_reseals_everything_under_the_new_one);

async fn plain_values_of_an_older_database_are_sealed_at_start(backend: Backend) {
    let restart = fresh(backend, None).await;
    let a = SecretKey::generate();
    let (mut app, id, spare, p) = set_up(&restart, &a).await;
    // As an older version stored them: plain base64.
    sqlx::query("UPDATE connections SET secret = $1 WHERE id = $2")
        .bind(B64.encode(&p.secret))
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .expect("downgrade secret");
    sqlx::query("UPDATE settings SET value = $1 WHERE key = 'link_key'")
        .bind(B64.encode(&p.link_key))
        .execute(&app.state.db.pool)
        .await
        .expect("downgrade link key");
    let restart = app.stop().await;

    let again = start(&restart, KeySource::key(a.clone()))
        .await
        .expect("restart seals the plain values");
    let (secret, key) = stored(&again, id).await;
    for v in [&secret, &key] {
        assert!(v.starts_with(&format!("v1:{}:", a.id())), "{v}");
    }
    // Rows only: the plain values this test wrote itself may linger in SQLite's free pages.
    assert_unreadable(&again, backend, &p, false).await;
    signed_calls_work(&again, id).await;
    link_opens(&again, &spare).await;
}
on_both!(plain_values_of_an_older_database_are_sealed_at_start);
