//! Behind a real load balancer: two server processes on one PostgreSQL, Debian's nginx in front
//! with the configuration in deploy/. Browsers' event streams are spread over both replicas;
//! a replica stopped with SIGTERM (a deploy) exits cleanly, and the streams it served continue
//! on the other one through nginx, resuming with Last-Event-ID: every event of the next Rescan
//! reaches every stream, in order, once.
mod process;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use process::{
    client, create, free_port, get, invite, shared, sse::SseFrames, start_with, wait_for, Shared,
};
use serde_json::json;
use sqlx::Row;
use tokio::{sync::mpsc, time::Instant};

/// Streams opened through nginx (round robin puts some on each replica).
const STREAMS: usize = 4;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running nginx. Stopped with SIGTERM, which its master passes on to its workers (a SIGKILL
/// would leave the workers running, holding the port).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// nginx with deploy/nginx.conf.template, listening on `port`, in front of `replicas`.
fn nginx(prefix: &std::path::Path, port: u16, replicas: &[u16]) -> Nginx {
    let template = include_str!("../../deploy/nginx.conf.template");
    let servers: String = replicas
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"))
        .collect();
    let conf = template
        .replace("@PREFIX@", &prefix.display().to_string())
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace("@SERVERS@", servers.trim_end());
    std::fs::create_dir_all(prefix).expect("nginx prefix");
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Command::new(p).arg("-v").output().is_ok())
        .expect("nginx is not installed: run the tests with `make test`, which installs it");
    Nginx(
        Command::new(nginx)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx"),
    )
}

/// An event stream through nginx that reconnects as a browser's EventSource does: when the
/// stream ends, it opens again with Last-Event-ID. Yields each event's sequence number.
fn follow(base: String, c: reqwest::Client, after: i64) -> mpsc::UnboundedReceiver<i64> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut last = after;
        let mut first = true;
        loop {
            let mut req = c.get(format!("{base}/api/connections/1/events?after={after}"));
            if !first {
                req = req.header("Last-Event-ID", last.to_string());
            }
            first = false;
            if let Ok(mut r) = req.send().await {
                if r.status() == 200 {
                    let mut frames = SseFrames::default();
                    while let Ok(Some(chunk)) = r.chunk().await {
                        for (seq, _, _) in frames.push(&chunk) {
                            last = seq;
                            if tx.send(seq).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            // EventSource waits `retry:` (1 s here) before it reconnects; a little less will do.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    rx
}

async fn newest(db: &sqlx::AnyPool) -> i64 {
    sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM connection_events WHERE connection_id = 1")
        .fetch_one(db)
        .await
        .expect("newest")
        .get::<i64, _>("n")
}

async fn stored_after(db: &sqlx::AnyPool, after: i64) -> Vec<i64> {
    sqlx::query(
        "SELECT seq FROM connection_events WHERE connection_id = 1 AND seq > $1 ORDER BY seq",
    )
    .bind(after)
    .fetch_all(db)
    .await
    .expect("events")
    .iter()
    .map(|r| r.get::<i64, _>("seq"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_continue_on_the_other_replica_when_one_is_stopped() {
    let Shared {
        sim: _sim,
        provider,
        dir,
        db,
        look,
        key,
    } = shared("balancer").await;

    let front = free_port();
    let base = format!("http://127.0.0.1:{front}");
    let ports = [free_port(), free_port()];
    // Every browser reaches the replicas from nginx's one address: the per-address connection
    // cap must allow that.
    let env = [
        ("IMPACT_SECRET_KEY", key.as_str()),
        ("IMPACT_PUBLIC_URL", base.as_str()),
        ("IMPACT_MAX_CONNECTIONS_PER_IP", "10000"),
        ("IMPACT_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let mut a = Running(start_with(&db, ports[0], &provider, &env));
    let _b = Running(start_with(&db, ports[1], &provider, &env));
    // Both up before nginx spreads requests over them.
    client(&format!("http://127.0.0.1:{}", ports[0])).await;
    client(&format!("http://127.0.0.1:{}", ports[1])).await;
    let _nginx = nginx(&dir.join("nginx"), front, &ports);
    let c = client(&base).await;

    // A connection, made through nginx, Validated.
    let token = invite(&c, &base, "Acme").await;
    create(&c, &base, "Acme", &token).await;
    wait_for(&c, &base, "state", "validated").await;

    // Streams through nginx, then a deploy stops replica A.
    let before = newest(&look).await;
    let mut streams: Vec<_> = (0..STREAMS)
        .map(|_| follow(base.clone(), c.clone(), before))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill")
        .args(["-TERM", &a.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = a.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "replica A did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "replica A exits cleanly on SIGTERM: {exit}");

    // A Rescan through nginx (only B is left): every stream gets all of it.
    let v = get(&c, format!("{base}/api/connections/1")).await;
    let r = c
        .post(format!("{base}/api/connections/1/actions"))
        .json(&json!({ "action": "rescan", "version": v["version"] }))
        .send()
        .await
        .expect("rescan");
    assert_eq!(r.status(), 200, "rescan through nginx");
    wait_for(&c, &base, "state", "validated").await;
    let want = stored_after(&look, before).await;
    let last = *want.last().expect("the Rescan wrote events");
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.last() < Some(&last) {
            let seq = tokio::time::timeout_at(deadline, stream.recv())
                .await
                .unwrap_or_else(|_| panic!("stream {i} never got event {last}; got {got:?}"))
                .expect("stream reader");
            got.push(seq);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok(seq) = stream.try_recv() {
            got.push(seq);
        }
        assert_eq!(
            got, want,
            "stream {i}: every event through nginx, in order, once"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
