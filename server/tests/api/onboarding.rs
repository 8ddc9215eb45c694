use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{json, Value};

use crate::{both_backends, helpers::TestApp, sse::SseFrames};

/// A Validated connection, ready for "Connect to provider".
pub async fn validated(app: &TestApp) -> i64 {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    let r = app
        .post(
            "/api/connections",
            json!({ "company": "ServiceNow Impact", "registration_token": token }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_i64().expect("id");
    app.wait_for_state(id, "validated").await;
    id
}

/// A connection onboarded through the whole flow: validated, authorised, Onboarding Complete.
pub async fn onboarded(app: &TestApp) -> i64 {
    let id = validated(app).await;
    let (status, _) = authorise(app, id, "ada@example.com").await;
    assert_eq!(status, 303);
    wait_onboarding(app, id, "complete").await;
    id
}

/// Follows "Connect to provider" the way a browser would: the provider's page, the named
/// contact's answer, and the redirect back to us. Returns where we finally sent the browser.
pub async fn authorise(app: &TestApp, id: i64, email: &str) -> (u16, String) {
    let back = match allow_on_provider(app, id, email).await {
        Ok(back) => back,
        Err(refused) => return refused,
    };
    // Back on our side with the signed-in user's session.
    let admin = admin_browser(app).await;
    let done = admin.get(back).send().await.expect("callback");
    let to = done
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (done.status().as_u16(), to)
}

/// Selects "Connect to provider" and answers on the provider's page as `email`. Returns the
/// callback URL the provider sent the browser back to (code and state in its query), or the
/// provider page's refusal (status, page).
pub async fn allow_on_provider(
    app: &TestApp,
    id: i64,
    email: &str,
) -> Result<String, (u16, String)> {
    let r = app
        .post(&format!("/api/connections/{id}/connect"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    crate::provider::allow(r.body["authorize_url"].as_str().expect("url"), email).await
}

/// A browser signed in as the first administrator that does not follow redirects.
pub async fn admin_browser(app: &TestApp) -> reqwest::Client {
    let admin = reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let signin = admin
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({ "email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(signin.status(), 200);
    admin
}

pub async fn wait_onboarding(app: &TestApp, id: i64, phase: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = app.get(&format!("/api/connections/{id}")).await.body;
        if c["onboarding"] == phase {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "onboarding never reached {phase}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The newest event's sequence number in the connection's log.
pub(crate) async fn stored_seq(app: &TestApp, id: i64) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT MAX(seq) FROM connection_events WHERE connection_id = $1")
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("max seq")
}

/// Reads an SSE response until `want` events have arrived (or a time limit).
async fn read_events(mut r: reqwest::Response, want: usize) -> Vec<(i64, String, Value)> {
    let mut frames = SseFrames::default();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < want {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("events in time")
            .expect("chunk");
        let Some(bytes) = chunk else { break };
        out.extend(frames.push(&bytes));
    }
    out
}

both_backends!(
    connect_to_provider_onboards_live_and_both_directions_come_up,
    |app: TestApp| async move {
        let id = validated(&app).await;
        // Somebody else at the provider's page is refused there.
        let (status, page) = authorise(&app, id, "mallory@example.com").await;
        assert_eq!(status, 403);
        assert!(page.contains("not the authorised contact"), "{page}");
        assert_eq!(
            app.get(&format!("/api/connections/{id}")).await.body["onboarding"],
            "not_started"
        );
        // The named contact allows it: back to the connection page, onboarding runs.
        let (status, to) = authorise(&app, id, "ada@example.com").await;
        assert_eq!(
            (status, to.as_str()),
            (303, format!("/connections/{id}").as_str())
        );
        let c = wait_onboarding(&app, id, "complete").await;
        assert_eq!(
            (
                c["outbound"].as_str(),
                c["inbound"].as_str(),
                c["state"].as_str()
            ),
            (Some("up"), Some("up"), Some("validated"))
        );

        // The stream replays everything, in order, and names each event.
        let all = app
            .client
            .get(format!("{}/api/connections/{id}/events?after=0", app.base))
            .send()
            .await
            .expect("sse");
        assert_eq!(
            all.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        assert_eq!(
            all.headers()
                .get("x-accel-buffering")
                .and_then(|v| v.to_str().ok()),
            Some("no")
        );
        let stored = stored_seq(&app, id).await;
        let events = read_events(all, stored as usize).await;
        let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            seqs,
            (1..=stored).collect::<Vec<_>>(),
            "no gap, no duplicate"
        );
        let messages: Vec<&str> = events
            .iter()
            .filter(|e| e.1 == "onboarding")
            .filter_map(|e| e.2["body"]["message"].as_str())
            .collect();
        let pos = |m: &str| {
            messages
                .iter()
                .position(|x| *x == m)
                .unwrap_or_else(|| panic!("{m} missing in {messages:?}"))
        };
        assert!(
            pos("Provider onboarding started") < pos("Syncing settings to complete onboarding")
        );
        assert!(pos("Syncing settings to complete onboarding") < pos("Onboarding Complete"));

        // Resume by Last-Event-ID and by ?after=: exactly what comes after.
        let half = stored / 2;
        let r = app
            .client
            .get(format!("{}/api/connections/{id}/events", app.base))
            .header("last-event-id", half.to_string())
            .send()
            .await
            .expect("sse");
        let rest: Vec<i64> = read_events(r, (stored - half) as usize)
            .await
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(rest, ((half + 1)..=stored).collect::<Vec<_>>());
        let r = app
            .client
            .get(format!(
                "{}/api/connections/{id}/events?after={half}",
                app.base
            ))
            .send()
            .await
            .expect("sse");
        let rest: Vec<i64> = read_events(r, (stored - half) as usize)
            .await
            .iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(rest, ((half + 1)..=stored).collect::<Vec<_>>());
        // Onboarded and up to date: the stream stays open, for the health checks' changes.
        let r = app
            .client
            .get(format!(
                "{}/api/connections/{id}/events?after={stored}",
                app.base
            ))
            .send()
            .await
            .expect("sse");
        assert_eq!(r.status(), 200);
        drop(r);
        // Synced settings are kept.
        let groups: i64 = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM synced_settings WHERE connection_id = $1",
        )
        .bind(id)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("count");
        assert!(groups >= 3);
    }
);

both_backends!(
    many_concurrent_starts_make_exactly_one_run,
    |app: TestApp| async move {
        let id = validated(&app).await;
        let starts = (0..50).map(|_| {
            let state = app.state.clone();
            tokio::spawn(async move {
                app::server::onboarding::start(&state, id, "racer")
                    .await
                    .is_ok()
            })
        });
        let won = futures::future::join_all(starts)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(won, 1, "exactly one start wins");
        wait_onboarding(&app, id, "complete").await;
        let started: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM connection_history WHERE connection_id = $1 AND action = 'Connect to provider'",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("count");
        assert_eq!(started, 1);
    }
);

both_backends!(
    inbound_is_up_only_on_a_call_received_not_on_the_providers_word,
    |app: TestApp| async move {
        let id = validated(&app).await;
        // The provider answers "inbound_ok" without ever calling us.
        app.faults(json!({ "inbound_unsent": true })).await;
        let (status, _) = authorise(&app, id, "ada@example.com").await;
        assert_eq!(status, 303);
        let c = wait_onboarding(&app, id, "failed").await;
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("up"), Some("not_onboarded"))
        );
        let history = app
            .get(&format!("/api/connections/{id}/history"))
            .await
            .body;
        assert!(
            history
                .as_array()
                .expect("history")
                .iter()
                .any(|h| h["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no signed call from it arrived")),
            "{history}"
        );
        // A provider that does call back: Retry completes, Inbound Up.
        app.faults(json!({})).await;
        let r = app
            .post(
                &format!("/api/connections/{id}/actions"),
                json!({ "action": "retry", "version": c["version"] }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let c = wait_onboarding(&app, id, "complete").await;
        assert_eq!(c["inbound"], "up");
    }
);

both_backends!(
    a_provider_fault_mid_sync_fails_then_retry_completes,
    |app: TestApp| async move {
        let id = validated(&app).await;
        app.faults(json!({ "fail_settings_group": "entitlements" }))
            .await;
        let (status, _) = authorise(&app, id, "ada@example.com").await;
        assert_eq!(status, 303);
        let c = wait_onboarding(&app, id, "failed").await;
        // Statuses stay true: our calls worked (Outbound Up), the provider never reached us.
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("up"), Some("not_onboarded"))
        );
        let events = sqlx::query_scalar::<_, String>(
            "SELECT body FROM connection_events WHERE connection_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&app.state.db.pool)
        .await
        .expect("events");
        assert!(
            events
                .iter()
                .any(|e| e.contains("Onboarding failed") && e.contains("entitlements")),
            "{events:?}"
        );
        app.faults(json!({})).await;
        let r = app
            .post(
                &format!("/api/connections/{id}/actions"),
                json!({ "action": "retry", "version": c["version"] }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let c = wait_onboarding(&app, id, "complete").await;
        assert_eq!(
            (c["outbound"].as_str(), c["inbound"].as_str()),
            (Some("up"), Some("up"))
        );
    }
);

both_backends!(
    connect_is_refused_until_validated,
    |app: TestApp| async move {
        let token = app.invite("ada@example.com", "ServiceNow Impact").await;
        app.faults(json!({ "down": true })).await;
        let r = app
            .post(
                "/api/connections",
                json!({ "company": "ServiceNow Impact", "registration_token": token }),
            )
            .await;
        let id = r.body["id"].as_i64().expect("id");
        app.wait_for_state(id, "validation_failed").await;
        let r = app
            .post(&format!("/api/connections/{id}/connect"), json!({}))
            .await;
        assert_eq!(r.status, 409);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Validated"),
            "{:?}",
            r.body
        );
    }
);

/// A front proxy may multiplex many browsers' streams over HTTP/2: the stream is the same there.
#[tokio::test]
async fn the_event_stream_is_the_same_over_http2() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await;
    let id = validated(&app).await;
    let login = reqwest::Client::new()
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({ "email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    let addr = app.base.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 with prior knowledge");
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{addr}/api/connections/{id}/events?after=0"))
        .header("cookie", &cookie)
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let res = h2.send_request(req).await.expect("stream");
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let stored = stored_seq(&app, id).await;
    let mut body = res.into_body();
    let mut frames = SseFrames::default();
    let mut seqs = Vec::new();
    // One deadline for all the events (keep-alive comments come in between).
    let mut read_until = async |seqs: &mut Vec<i64>, last: i64| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seqs.last().copied().unwrap_or(0) < last {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("events in time")
                .expect("open stream")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                seqs.extend(frames.push(&data).into_iter().map(|e| e.0));
            }
        }
    };
    read_until(&mut seqs, stored).await;
    assert_eq!(seqs, (1..=stored).collect::<Vec<_>>());
    // Another request on the same connection is answered while the event stream stays open,
    // and a Rescan's events still reach that stream live, in order.
    let req = hyper::Request::get(format!("http://{addr}/api/connections/{id}"))
        .header("cookie", &cookie)
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let res = tokio::time::timeout(Duration::from_secs(30), h2.send_request(req))
        .await
        .expect("answered while the stream is open")
        .expect("a second stream");
    assert_eq!(res.status(), 200);
    let record = res.into_body().collect().await.expect("body").to_bytes();
    let record: serde_json::Value = serde_json::from_slice(&record).expect("json");
    assert_eq!(record["id"], id);
    let r = app.rescan(id).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "awaiting_validation");
    app.wait_for_state(id, "validated").await;
    let now = stored_seq(&app, id).await;
    assert!(now > stored, "the Rescan recorded events");
    read_until(&mut seqs, now).await;
    let last = seqs.last().copied().unwrap_or(0);
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "each once, in order");
}

/// Keep-alives come from the hub to every open stream as SSE comments (the hub sends them every
/// 15 s; here it is asked once).
#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments() {
    let app = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await;
    let id = validated(&app).await;
    let stored = stored_seq(&app, id).await;
    let mut r = app
        .client
        .get(format!(
            "{}/api/connections/{id}/events?after={stored}",
            app.base
        ))
        .send()
        .await
        .expect("sse");
    assert_eq!(r.status(), 200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains("\n:\n\n") {
        if app.state.hub.subscribers(id) > 0 {
            app.state.hub.keep_alive();
        }
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("a keep-alive in time")
            .expect("chunk")
            .expect("open stream");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("retry: 1000\n\n"), "{seen:?}");
    assert!(!seen.contains("id:"), "nothing new was published: {seen:?}");
}

// A subscriber that falls further behind than the live channel holds is caught up from the
// log: every event once, in order, then the stream ends when the channel closes. (Driven on
// the stream itself, with a channel of four, so the lag is certain.)
both_backends!(
    a_lagging_subscriber_is_caught_up_from_the_log_without_a_gap_or_a_repeat,
    |app: TestApp| async move {
        use app::server::events::{self, Hub};
        use futures::StreamExt;

        let id = validated(&app).await;
        let stored = events::since(&app.state.db, id, 0).await.expect("log");
        assert!(stored.len() > 10, "a scan records more than ten events");
        // Subscribed after the fifth event; everything after it is published while the
        // subscriber is not reading.
        let from = stored[4].seq;
        for http2 in [false, true] {
            let hub = Hub::new(4);
            let rx = hub.subscribe(id);
            let stream = server::edge::stream::follow(
                None,
                rx,
                app.state.db.clone(),
                id,
                from,
                Vec::new(),
                http2,
            );
            hub.publish(stored[5..].to_vec());
            // Published again: a live repeat must not reach the subscriber twice.
            hub.publish(stored[stored.len() - 2..].to_vec());
            hub.close();
            let chunks: Vec<bytes::Bytes> = tokio::time::timeout(
                Duration::from_secs(30),
                stream.map(|c| c.expect("infallible")).collect(),
            )
            .await
            .expect("the stream ends once the channel is closed");
            let mut frames = SseFrames::default();
            let seqs: Vec<i64> = chunks
                .iter()
                .flat_map(|c| frames.push(c))
                .map(|e| e.0)
                .collect();
            let want: Vec<i64> = stored[5..].iter().map(|e| e.seq).collect();
            assert_eq!(seqs, want, "http2: {http2}");
            assert_eq!(frames.pending(), 0, "no partial frame left over");
        }
    }
);

// Two writers may publish committed events out of sequence order. The subscriber still gets
// every event once, in order: an early one waits for the one before it, and one that never
// comes live (here: never published) is read from the log.
both_backends!(
    events_published_out_of_order_reach_the_subscriber_in_order,
    |app: TestApp| async move {
        use app::server::events::{self, Hub};
        use futures::StreamExt;

        let id = validated(&app).await;
        let stored = events::since(&app.state.db, id, 0).await.expect("log");
        let from = stored[4].seq;
        let hub = Hub::new(64);
        let rx = hub.subscribe(id);
        let mut stream = Box::pin(server::edge::stream::follow(
            None,
            rx,
            app.state.db.clone(),
            id,
            from,
            Vec::new(),
            false,
        ));
        // 6 before 5 (of those after `from`), and the 8th never published live.
        let mut live = stored[5..].to_vec();
        live.swap(0, 1);
        live.remove(7);
        hub.publish(live);
        let want: Vec<i64> = stored[5..].iter().map(|e| e.seq).collect();
        let mut frames = SseFrames::default();
        let mut seqs = Vec::new();
        while seqs.len() < want.len() {
            let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("events in time")
                .expect("open stream")
                .expect("infallible");
            seqs.extend(frames.push(&chunk).into_iter().map(|e| e.0));
        }
        assert_eq!(seqs, want);
        hub.close();
        let rest: Vec<_> =
            tokio::time::timeout(Duration::from_secs(30), stream.collect::<Vec<_>>())
                .await
                .expect("the stream ends once the channel is closed");
        assert!(rest.is_empty(), "nothing after the last event");
    }
);

/// Two tabs (here ten) return the same authorisation answer at once, then the answer is replayed
/// after onboarding finished: one run, and every other answer a plain 409.
async fn raced_and_replayed_callbacks_start_exactly_one_run(backend: crate::helpers::Backend) {
    let app = crate::helpers::spawn(backend).await;
    let id = validated(&app).await;
    let back = allow_on_provider(&app, id, "ada@example.com")
        .await
        .expect("the named contact allows");
    // One browser, one session, ten tabs.
    let browser = admin_browser(&app).await;
    let tabs = 10;
    let answers =
        crate::provider::race((0..tabs).map(|_| (browser.clone(), back.clone())).collect()).await;
    let home = format!("/connections/{id}");
    let won = answers
        .iter()
        .filter(|(status, location, _)| *status == 303 && *location == home)
        .count();
    assert_eq!(won, 1, "exactly one tab starts onboarding: {answers:?}");
    for (status, location, body) in answers
        .iter()
        .filter(|(status, location, _)| !(*status == 303 && *location == home))
    {
        assert_eq!(
            *status, 409,
            "a losing tab is told plainly, never a 5xx: {location} {body}"
        );
        assert!(body.contains("already used"), "{body}");
    }
    wait_onboarding(&app, id, "complete").await;

    // The same code and state again, after success.
    let replay = browser.get(&back).send().await.expect("replay");
    assert_eq!(replay.status(), 409);
    let page = replay.text().await.expect("page");
    assert!(page.contains("already used"), "{page}");
    assert!(
        page.contains(&format!("href=\"/connections/{id}\"")),
        "{page}"
    );

    let started: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM connection_history WHERE connection_id = $1 AND action = 'Connect to provider'",
    )
    .bind(id)
    .fetch_one(&app.state.db.pool)
    .await
    .expect("count");
    assert_eq!(started, 1, "one Connect in the history");
    let events = sqlx::query_scalar::<_, String>(
        "SELECT body FROM connection_events WHERE connection_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&app.state.db.pool)
    .await
    .expect("events");
    let runs = events
        .iter()
        .filter(|e| e.contains("Provider onboarding started"))
        .count();
    assert_eq!(runs, 1, "one run started: {events:?}");
    let complete = events
        .iter()
        .filter(|e| e.contains("Onboarding Complete"))
        .count();
    assert_eq!(complete, 1, "one run completed: {events:?}");
}

mod raced_and_replayed_callbacks {
    use crate::helpers::Backend;

    // Several worker threads, so the tabs' requests are handled truly in parallel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::raced_and_replayed_callbacks_start_exactly_one_run(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::raced_and_replayed_callbacks_start_exactly_one_run(Backend::Postgres).await
    }
}
