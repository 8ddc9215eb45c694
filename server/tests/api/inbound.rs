//! The provider's inbound calls (issue 12): only a request signed with the connection's secret,
//! within the clock window and never seen before is accepted; every other one is refused with
//! 401 and changes nothing. An unknown consumer gets the bad-signature answer, word for word.
use serde_json::{json, Value};

use app::server::signing;

use crate::{both_backends, helpers::TestApp, onboarding::validated};

const ENDPOINTS: [&str; 3] = [
    "/inbound/v1/ping",
    "/inbound/v1/onboarded",
    "/inbound/v1/echo",
];

pub(crate) struct Call<'a> {
    pub consumer: &'a str,
    pub secret: &'a [u8],
    pub timestamp: i64,
}

pub(crate) async fn send(app: &TestApp, path: &str, call: Option<&Call<'_>>) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({ "nonce": "n-1" })).expect("body");
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.clone());
    if let Some(c) = call {
        req = req
            .header(signing::HEADER_CONSUMER, c.consumer)
            .header(signing::HEADER_TIMESTAMP, c.timestamp.to_string())
            .header(
                signing::HEADER_SIGNATURE,
                signing::sign(c.secret, "POST", path, c.timestamp, &body),
            );
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What an inbound call could change: the connection as the API shows it, its history, and the
/// time of the last inbound call.
async fn snapshot(app: &TestApp, id: i64) -> (Value, Value, Option<String>) {
    let seen: Option<String> =
        sqlx::query_scalar("SELECT inbound_seen_at FROM connections WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("inbound_seen_at");
    (
        app.get(&format!("/api/connections/{id}")).await.body,
        app.get(&format!("/api/connections/{id}/history"))
            .await
            .body,
        seen,
    )
}

async fn forget_inbound(app: &TestApp, id: i64) {
    sqlx::query("UPDATE connections SET inbound_seen_at = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.state.db.pool)
        .await
        .expect("reset");
}

both_backends!(
    unauthenticated_inbound_calls_are_refused_and_change_nothing,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let creds = app::server::connections::credentials(&app.state, id)
            .await
            .expect("credentials")
            .expect("registered");
        let consumer = creds.consumer_id.as_str();
        let now = chrono::Utc::now().timestamp();
        let wrong_key = [7u8; 32];
        forget_inbound(&app, id).await;
        let before = snapshot(&app, id).await;
        for path in ENDPOINTS {
            let unsigned = send(&app, path, None).await;
            assert_eq!(unsigned.0, 401, "{path} unsigned: {:?}", unsigned.1);
            let wrong = send(
                &app,
                path,
                Some(&Call {
                    consumer,
                    secret: &wrong_key,
                    timestamp: now,
                }),
            )
            .await;
            assert_eq!(
                (wrong.0, wrong.1["code"].as_str()),
                (401, Some("bad_signature")),
                "{path} wrong key"
            );
            let expired = send(
                &app,
                path,
                Some(&Call {
                    consumer,
                    secret: &creds.secret,
                    timestamp: now - signing::MAX_SKEW_SECS - 60,
                }),
            )
            .await;
            assert_eq!(
                (expired.0, expired.1["code"].as_str()),
                (401, Some("clock_skew")),
                "{path} expired"
            );
            // Signed with a real secret, for a consumer id that does not exist: the very answer
            // a wrong signature gets, so consumer ids cannot be probed.
            for unknown in ["no-such-consumer", ""] {
                let r = send(
                    &app,
                    path,
                    Some(&Call {
                        consumer: unknown,
                        secret: &creds.secret,
                        timestamp: now,
                    }),
                )
                .await;
                assert_eq!(r, wrong, "{path} unknown consumer {unknown:?}");
            }
        }
        assert_eq!(
            snapshot(&app, id).await,
            before,
            "refused calls changed something"
        );

        // A well-signed call is accepted once; the same request again is refused.
        for path in ENDPOINTS {
            let call = Call {
                consumer,
                secret: &creds.secret,
                timestamp: now,
            };
            let first = send(&app, path, Some(&call)).await;
            assert_eq!(first, (200, json!({ "ok": true })), "{path}");
            forget_inbound(&app, id).await;
            let before = snapshot(&app, id).await;
            let replayed = send(&app, path, Some(&call)).await;
            assert_eq!(
                (replayed.0, replayed.1["code"].as_str()),
                (401, Some("replayed")),
                "{path} replayed"
            );
            assert_eq!(
                snapshot(&app, id).await,
                before,
                "{path}: a replay changed something"
            );
        }
        // Sanity: an accepted `onboarded` call does record the inbound call.
        let fresh = Call {
            consumer,
            secret: &creds.secret,
            timestamp: now + 1,
        };
        assert_eq!(
            send(&app, "/inbound/v1/onboarded", Some(&fresh)).await.0,
            200
        );
        assert!(snapshot(&app, id).await.2.is_some());
    }
);

both_backends!(
    a_connection_without_a_secret_refuses_every_inbound_call,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let creds = app::server::connections::credentials(&app.state, id)
            .await
            .expect("credentials")
            .expect("registered");
        sqlx::query("UPDATE connections SET secret = NULL, inbound_seen_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&app.state.db.pool)
            .await
            .expect("drop secret");
        let before = snapshot(&app, id).await;
        let now = chrono::Utc::now().timestamp();
        let wrong = send(
            &app,
            "/inbound/v1/ping",
            Some(&Call {
                consumer: "no-such-consumer",
                secret: &[1u8; 32],
                timestamp: now,
            }),
        )
        .await;
        for path in ENDPOINTS {
            // Signed with an empty key (what a missing secret used to verify against), or with
            // the secret the connection had: both refused, like any bad signature.
            for secret in [&b""[..], &creds.secret[..]] {
                let r = send(
                    &app,
                    path,
                    Some(&Call {
                        consumer: &creds.consumer_id,
                        secret,
                        timestamp: now,
                    }),
                )
                .await;
                assert_eq!(r, wrong, "{path}");
            }
        }
        assert_eq!(snapshot(&app, id).await, before);
    }
);

// Two connections cannot share a consumer id: inbound calls are matched to one secret by it.
both_backends!(
    a_consumer_id_names_one_connection,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let consumer: String =
            sqlx::query_scalar("SELECT consumer_id FROM connections WHERE id = $1")
                .bind(id)
                .fetch_one(&app.state.db.pool)
                .await
                .expect("consumer id");
        let pool = &app.state.db.pool;
        let company: i64 = sqlx::query_scalar(
        "INSERT INTO companies (name, name_key, created_at) VALUES ('Other', 'other', '2026-01-01T00:00:00Z') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("company");
        // Another connection, with a consumer id of its own: fine.
        let other: i64 = sqlx::query_scalar(
        "INSERT INTO connections (company_id, url, contact_email, state, registered, onboarding, outbound, inbound, version, created_at, updated_at, consumer_id) \
         VALUES ($1, 'http://127.0.0.1:9/i/other', 'bob@example.com', 'validated', 1, 'not_started', 'blank', 'blank', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'con_other') RETURNING id",
    )
    .bind(company)
    .fetch_one(pool)
    .await
    .expect("another connection");
        let dup = sqlx::query("UPDATE connections SET consumer_id = $1 WHERE id = $2")
            .bind(&consumer)
            .bind(other)
            .execute(pool)
            .await;
        assert!(
            dup.is_err(),
            "a second connection took consumer id {consumer}"
        );
    }
);

both_backends!(
    an_accepted_signature_is_kept_for_its_window_and_then_forgotten,
    |app: TestApp| async move {
        use app::server::replay::{prune, take};
        let id = validated(&app).await;
        let db = &app.state.db;
        let inbound = || async {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(SUM(messages) AS BIGINT) FROM link_traffic \
                 WHERE connection_id = $1 AND direction = 'inbound'",
            )
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .expect("inbound count");
            n.unwrap_or(0)
        };
        let counted = inbound().await;
        let now = chrono::Utc::now().timestamp();
        let window = signing::MAX_SKEW_SECS;
        assert!(take(db, id, "AB01", now + window, now)
            .await
            .expect("taken"));
        assert!(
            !take(db, id, "ab01", now + window, now + 10)
                .await
                .expect("read"),
            "the same signature in either case, still in its window"
        );
        assert_eq!(
            inbound().await,
            counted + 1,
            "a taken call counted, a replay not"
        );
        // One whose window passed may be taken again (the clock check refuses its call anyway).
        assert!(take(db, id, "cd02", now - 1, now - window - 1)
            .await
            .expect("taken"));
        assert!(take(db, id, "cd02", now + window, now)
            .await
            .expect("taken again"));
        // The sweep forgets what is past its window and keeps the rest.
        assert!(take(db, id, "ef03", now - 5, now - window - 5)
            .await
            .expect("taken"));
        assert_eq!(inbound().await, counted + 4);
        app::server::sweep::once(&app.state).await.expect("a sweep");
        // (Validation's own inbound check left a real signature too, still in its window.)
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT signature FROM inbound_signatures \
             WHERE signature IN ('ab01', 'cd02', 'ef03') ORDER BY signature",
        )
        .fetch_all(&db.pool)
        .await
        .expect("signatures");
        assert_eq!(kept, ["ab01", "cd02"]);
        let everything_later = now + window + 1;
        assert!(prune(db, everything_later).await.expect("pruned") >= 2);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_signatures")
            .fetch_one(&db.pool)
            .await
            .expect("count");
        assert_eq!(left, 0, "every window passed: nothing kept");
    }
);
