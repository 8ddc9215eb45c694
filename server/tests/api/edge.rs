//! The edge under slow and abusive clients (time limits, caps, the sign-in throttle), sessions
//! and their event streams, headers, redirects after sign-in, and junk sent to server functions.
use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use reqwest::redirect::Policy;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::{
    both_backends,
    helpers::{
        eventually, sign_in_leads_to, signed_in, spawn, spawn_with, Backend, TestApp, ADMIN_EMAIL,
        ADMIN_PASSWORD,
    },
};

fn address(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("app address")
}

/// A TCP connection to `to` from this loopback address (each address is its own client).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Reads (and drops) what the server sends until it closes the connection: true, or until
/// `within` has passed with the connection still open: false.
async fn closed_by_server(conn: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// `GET path` over a fresh connection from `from`: the status, or None if the server closed it
/// without an answer.
async fn raw_get(from: [u8; 4], to: SocketAddr, path: &str) -> Option<u16> {
    let mut conn = connect_from(from, to).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.ok()?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut got))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn hundreds_of_slow_clients_neither_stop_sign_in_nor_stay_open() {
    // Long enough that the sign-in below, on a loaded machine, is answered well before the slow
    // clients' time is up: the check is that it is answered while they are all still open.
    let limit = Duration::from_secs(4);
    let app = spawn_with(Backend::Sqlite, |c| {
        // Fewer turns than trickled bodies: without the body read before the gate they would
        // hold them all.
        c.max_in_flight = 100;
        c.limits.header_read = limit;
        c.limits.body_read = limit;
    })
    .await;
    let to = address(&app);
    // 300 clients on three loopback addresses (under the per-address cap): half trickle a
    // request header, half a request body, a byte every 200 ms.
    let mut slow = Vec::new();
    for n in 0..300u32 {
        let from = [127, 0, 0, 2 + (n % 3) as u8];
        let mut conn = connect_from(from, to).await.expect("connect");
        let start: &[u8] = if n % 2 == 0 {
            b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"
        } else {
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a"
        };
        conn.write_all(start).await.expect("write");
        let opened = Instant::now();
        slow.push(tokio::spawn(async move {
            let (mut r, mut w) = conn.into_split();
            let trickle = async move {
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if w.write_all(b"a").await.is_err() {
                        break;
                    }
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                closed = closed_by_server(&mut r, Duration::from_secs(30)) => (closed, opened.elapsed()),
                _ = trickle => (false, opened.elapsed()),
            }
        }));
    }
    // No wait needed before asking: the server accepts in arrival order, so the connection
    // below is taken after all 300 slow ones.

    // While they are all open, the sign-in page and a sign-in are answered.
    let client = anonymous();
    let page = tokio::time::timeout(
        Duration::from_secs(30),
        client.get(format!("{}/login", app.base)).send(),
    )
    .await
    .expect("GET /login answered while the slow clients are open")
    .expect("GET /login");
    assert_eq!(page.status(), 200);
    let sign_in = tokio::time::timeout(
        Duration::from_secs(30),
        client
            .post(format!("{}/auth/login", app.base))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
            .send(),
    )
    .await
    .expect("sign-in answered while the slow clients are open")
    .expect("sign in");
    assert_eq!(sign_in.status(), 303);
    assert!(sign_in.headers().get("set-cookie").is_some());
    // Answered before any slow client was let go: a server that served them only after
    // closing the slow ones would find some of these finished.
    let still_open = slow.iter().filter(|t| !t.is_finished()).count();
    assert_eq!(
        still_open, 300,
        "sign-in was answered only after slow clients were closed"
    );

    // And the server closes every slow connection once its time is up, not before.
    for task in slow {
        let (closed, after) = task.await.expect("slow client");
        assert!(closed, "a slow client was still connected after {after:?}");
        assert!(
            after >= limit - Duration::from_millis(100),
            "closed after {after:?}"
        );
    }
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_connections() {
    let app = spawn_with(Backend::Sqlite, |c| c.limits.max_connections_per_ip = 4).await;
    let to = address(&app);
    let from = [127, 0, 0, 5];
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(from, to).await.expect("connect"));
    }
    // Accepted in arrival order, so the four above hold their places before this one comes.
    let mut extra = connect_from(from, to).await.expect("connect");
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(30)).await,
        "a fifth connection from the same address is closed"
    );
    assert_eq!(raw_get(from, to, "/healthz").await, None);
    assert_eq!(raw_get([127, 0, 0, 6], to, "/healthz").await, Some(200));
    // A closed connection gives its place back once the server has seen it close.
    drop(held.pop());
    eventually("a place was freed", async || {
        raw_get(from, to, "/healthz").await == Some(200)
    })
    .await;
}

#[tokio::test]
async fn beyond_the_queue_bound_requests_are_told_to_retry() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.max_in_flight = 1;
        c.limits.max_queued = 1;
        c.settings.provider_timeout = Duration::from_secs(30);
    })
    .await;
    let id = new_connection(&app).await;
    app.wait_for_state(id, "validated").await;
    // The provider answers after 6 s, so the rescan below holds the one turn that long: ample
    // time for the two steps below on a loaded machine.
    app.faults(json!({ "slow_ms": 6_000 })).await;
    let rescan = {
        let (c, url) = (
            app.client.clone(),
            format!("{}/api/connections/{id}/checks/reachable/rescan", app.base),
        );
        tokio::spawn(async move { c.post(url).json(&json!({})).send().await })
    };
    eventually("the rescan holds the only turn", async || {
        app.gate.available() == 0
    })
    .await;
    // This one waits for the turn (the one place in the queue) …
    let queued = {
        let (c, url) = (app.client.clone(), format!("{}/api/connections", app.base));
        tokio::spawn(async move { c.get(url).send().await })
    };
    eventually("a request waits in the queue", async || {
        app.gate.waiting() == 1
    })
    .await;
    // … so this one is told to retry at once, while the rescan still holds the turn.
    let r = app
        .client
        .get(format!("{}/api/connections", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 503);
    assert!(
        !rescan.is_finished(),
        "answered 503 only after the turn was free"
    );
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "busy");
    // Once the provider answers, the turn passes on and the queued request is served.
    assert!(rescan.await.expect("task").is_ok());
    assert_eq!(queued.await.expect("task").expect("queued").status(), 200);
}

/// A connection whose live stream stays open (validated, not onboarded).
async fn new_connection(app: &TestApp) -> i64 {
    let token = app.invite("ada@example.com", "ServiceNow Impact").await;
    app.create_from_link(&token).await
}

async fn open_stream(client: &reqwest::Client, app: &TestApp, id: i64) -> reqwest::Response {
    client
        .get(format!("{}/api/connections/{id}/events", app.base))
        .send()
        .await
        .expect("stream")
}

/// Reads the stream until it ends: true if it did within `within`.
async fn ends_within(mut stream: reqwest::Response, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) => return true,
        }
    }
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.get("/api/users")
        .await
        .body
        .as_array()
        .and_then(|u| {
            u.iter()
                .find(|u| u["email"] == email)
                .and_then(|u| u["id"].as_i64())
        })
        .expect("user id")
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_open_streams() {
    let app = spawn_with(Backend::Sqlite, |c| c.limits.max_streams_per_user = 2).await;
    let id = new_connection(&app).await;
    let first = open_stream(&app.client, &app, id).await;
    let second = open_stream(&app.client, &app, id).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open_stream(&app.client, &app, id).await;
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.expect("json");
    assert_eq!(body["code"], "too_many_streams");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("2 live views"),
        "{body}"
    );
    // Someone else has places of their own.
    let other = app.user_with("look@example.com", &["impact_user"]).await;
    assert_eq!(open_stream(&other, &app, id).await.status(), 200);
    // A closed stream gives its place back.
    drop(first);
    let admin = user_id(&app, ADMIN_EMAIL).await;
    eventually("the closed stream's place is given back", async || {
        app.state.streams.open_for(admin) < 2
    })
    .await;
    assert_eq!(open_stream(&app.client, &app, id).await.status(), 200);
    drop(second);
}

/// Many of one user's streams ending at once (a closed browser with many tabs, a balancer's
/// reset) give every place back, on PostgreSQL in the replicas' shared count too: the count is
/// neither left high (the user locked out) nor run below zero (the cap not held).
mod many_streams_ending_together_give_every_place_back {
    use super::*;

    const CAP: usize = 40;

    async fn check(app: TestApp) {
        let id = new_connection(&app).await;
        let admin = user_id(&app, ADMIN_EMAIL).await;
        let open_all = || async {
            let opened =
                futures::future::join_all((0..CAP).map(|_| open_stream(&app.client, &app, id)))
                    .await;
            assert!(
                opened.iter().all(|r| r.status() == 200),
                "{:?}",
                opened.iter().map(|r| r.status()).collect::<Vec<_>>()
            );
            assert_eq!(
                open_stream(&app.client, &app, id).await.status(),
                429,
                "one more than the cap"
            );
            opened
        };
        // Twice: what is given back while an earlier give-back is being written counts too.
        for _ in 0..2 {
            let opened = open_all().await;
            drop(opened);
            eventually("every ended stream's place is given back", async || {
                app.state.streams.open_for(admin) == 0 && shared_count(&app, admin).await == 0
            })
            .await;
        }
        // The same number again, and not one more.
        let again = open_all().await;
        assert_eq!(shared_count(&app, admin).await, shared_expected(&app, CAP));
        drop(again);
    }

    /// The user's streams in the replicas' shared count (PostgreSQL; SQLite counts in memory).
    async fn shared_count(app: &TestApp, user: i64) -> i64 {
        if app.state.db.backend != app::server::db::Backend::Postgres {
            return 0;
        }
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(open), 0) AS BIGINT) FROM replica_streams WHERE user_id = $1",
        )
        .bind(user)
        .fetch_one(&app.state.db.pool)
        .await
        .expect("the shared count")
    }

    fn shared_expected(app: &TestApp, n: usize) -> i64 {
        if app.state.db.backend == app::server::db::Backend::Postgres {
            n as i64
        } else {
            0
        }
    }

    #[tokio::test]
    async fn sqlite() {
        check(spawn_with(Backend::Sqlite, |c| c.limits.max_streams_per_user = CAP).await).await
    }

    #[tokio::test]
    async fn postgres() {
        check(spawn_with(Backend::Postgres, |c| c.limits.max_streams_per_user = CAP).await).await
    }
}

both_backends!(
    signing_out_ends_the_sessions_open_streams,
    |app: TestApp| async move {
        let id = new_connection(&app).await;
        let client = app.user_with("idi@example.com", &["idi_admin"]).await;
        let other_session = signed_in(&app.base, "idi@example.com", "a long enough password").await;
        let stream = open_stream(&client, &app, id).await;
        assert_eq!(stream.status(), 200);
        let kept = open_stream(&other_session, &app, id).await;
        let r = client
            .post(format!("{}/api/auth/logout", app.base))
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), 200);
        assert!(
            ends_within(stream, Duration::from_secs(30)).await,
            "the signed-out stream still runs"
        );
        assert!(
            !ends_within(kept, Duration::from_millis(300)).await,
            "another session's stream is not ended"
        );
    }
);

both_backends!(
    changing_or_disabling_a_user_ends_their_streams,
    |app: TestApp| async move {
        let id = new_connection(&app).await;
        let client = app.user_with("idi@example.com", &["idi_admin"]).await;
        let user = user_id(&app, "idi@example.com").await;
        let stream = open_stream(&client, &app, id).await;
        assert_eq!(stream.status(), 200);
        let r = app
            .put(
                &format!("/api/users/{user}"),
                json!({ "roles": ["impact_user"], "disabled": false }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(
            ends_within(stream, Duration::from_secs(30)).await,
            "stream kept its old roles"
        );
        // Reconnecting is authorised afresh (an impact user may watch).
        let stream = open_stream(&client, &app, id).await;
        assert_eq!(stream.status(), 200);
        let r = app
            .put(
                &format!("/api/users/{user}"),
                json!({ "roles": ["impact_user"], "disabled": true }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(
            ends_within(stream, Duration::from_secs(30)).await,
            "a disabled user's stream runs on"
        );
        assert_eq!(open_stream(&client, &app, id).await.status(), 401);
    }
);

#[tokio::test]
async fn api_answers_are_not_stored_and_https_gets_hsts() {
    let app = spawn(Backend::Sqlite).await;
    let r = app
        .client
        .get(format!("{}/api/connections", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "not over http"
    );
    let https = spawn_with(Backend::Sqlite, |c| {
        c.settings.public_url = "https://impact.example".into()
    })
    .await;
    for path in ["/login", "/healthz"] {
        let r = anonymous()
            .get(format!("{}{path}", https.base))
            .send()
            .await
            .expect("get");
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_origin_is_checked_against_the_public_url_not_the_host() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.settings.public_url = "http://impact.example:8080/".into()
    })
    .await;
    let post = |origin: &str| {
        app.client
            .post(format!("{}/api/invitations", app.base))
            .header("origin", origin)
            .json(&json!({ "email": "a@example.com", "company": "Acme" }))
            .send()
    };
    // The browser came through a proxy at the public URL: Host differs, Origin is ours.
    assert_eq!(
        post("http://Impact.Example:8080")
            .await
            .expect("post")
            .status(),
        201
    );
    // The Host header's own origin is not the site's.
    let r = post(&app.base).await.expect("post");
    assert_eq!(r.status(), 403);
    for other in [
        "null",
        "http://impact.example",
        "https://impact.example:8080",
        "junk",
    ] {
        assert_eq!(post(other).await.expect("post").status(), 403, "{other}");
    }
}

#[tokio::test]
async fn parallel_wrong_passwords_get_no_more_than_the_free_attempts() {
    let app = spawn(Backend::Sqlite).await;
    let c = anonymous();
    let attempts = (0..20).map(|_| {
        c.post(format!("{}/api/auth/login", app.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": "wrong password!" }))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("login").status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, throttled), (5, 15), "{statuses:?}");
}

#[tokio::test]
async fn failures_from_another_address_do_not_lock_the_admin_out() {
    let app = spawn(Backend::Sqlite).await;
    let attacker = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 7]))
        .build()
        .expect("client");
    let login = |c: &reqwest::Client, password: &str| {
        c.post(format!("{}/api/auth/login", app.base))
            .json(&json!({ "email": ADMIN_EMAIL, "password": password }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            login(&attacker, "wrong password!")
                .await
                .expect("login")
                .status(),
            401
        );
    }
    assert_eq!(
        login(&attacker, "wrong password!")
            .await
            .expect("login")
            .status(),
        429
    );
    // The admin, from their own address, signs in.
    assert_eq!(
        login(&anonymous(), ADMIN_PASSWORD)
            .await
            .expect("login")
            .status(),
        200
    );
}

/// Sign-in attempts as they arrive through a proxy: from `via`, saying the browser is `client`.
async fn login_via(
    via: &reqwest::Client,
    app: &TestApp,
    client: &str,
    email: &str,
    password: &str,
) -> u16 {
    via.post(format!("{}/api/auth/login", app.base))
        .header("X-Forwarded-For", client)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

/// Behind a trusted proxy (IMPACT_TRUSTED_PROXIES) each browser is counted by the address the
/// proxy saw: one client's failed sign-ins throttle that client, not every browser behind it.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_counted_apart() {
    let app = spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1])];
    })
    .await;
    let proxy = anonymous();
    // Twenty failures from one client (different accounts, so the address is what counts).
    for i in 0..20 {
        let email = format!("nobody{i}@example.com");
        let status = login_via(&proxy, &app, "127.0.0.2", &email, "wrong password!").await;
        assert_eq!(status, 401, "failure {i}");
    }
    let status = login_via(
        &proxy,
        &app,
        "127.0.0.2",
        "x@example.com",
        "wrong password!",
    )
    .await;
    assert_eq!(status, 429, "that client is throttled");
    // Another browser behind the same proxy signs in.
    let status = login_via(&proxy, &app, "127.0.0.3", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "another client is not");
}

/// Without trusted proxies (the default) X-Forwarded-For is ignored: a client cannot leave the
/// throttle behind by writing another address in it each time.
#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_is_ignored() {
    let app = spawn(Backend::Sqlite).await;
    let attacker = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 8]))
        .build()
        .expect("client");
    for i in 0..20 {
        let (claimed, email) = (format!("127.0.1.{i}"), format!("nobody{i}@example.com"));
        let status = login_via(&attacker, &app, &claimed, &email, "wrong password!").await;
        assert_eq!(status, 401, "failure {i}");
    }
    let status = login_via(
        &attacker,
        &app,
        "127.0.2.1",
        "y@example.com",
        "wrong password!",
    )
    .await;
    assert_eq!(status, 429, "a new claimed address does not help");
}

#[tokio::test]
async fn sign_in_follows_only_a_same_site_next() {
    let app = spawn(Backend::Sqlite).await;
    let cases = [
        ("/connections/1?tab=history", "/connections/1?tab=history"),
        ("/%09/evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("/\\evil.example", "/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/%5C%5Cevil.example", "/"),
    ];
    for (next, want) in cases {
        assert_eq!(
            sign_in_leads_to(&anonymous(), &app, next).await,
            want,
            "{next:?}"
        );
    }
}

#[tokio::test]
async fn junk_sent_to_server_functions_is_a_client_error() {
    let app = spawn(Backend::Sqlite).await;
    let huge = format!("id={}", "9".repeat(100_000));
    let long = format!("id={}", "x".repeat(10_000));
    let cases: Vec<(&str, String)> = vec![
        ("/fn/create_user", String::new()),
        ("/fn/create_user", "new=oops".into()),
        ("/fn/change_user", "id=abc".into()),
        ("/fn/get_connection", "id=not-a-number".into()),
        ("/fn/get_connection", long),
        ("/fn/get_connection", huge),
        ("/fn/connection_history", "%%%=\u{1}".into()),
        ("/fn/issue_invitation", "email[]=1&company[x]=2".into()),
    ];
    for (path, body) in cases {
        let r = app
            .client
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert!(
            (400..500).contains(&status),
            "{path} {:.40}: {status} {text:.200}",
            body
        );
        assert!(text.contains("message"), "{path}: {text:.200}");
    }
}
