//! Load generator for the event stream (`make bench`): opens N subscribers to one connection's
//! `GET /api/connections/{id}/events` from this separate process, triggers a Rescan, and reports
//! how long each event took from its timestamp (taken by the server just before commit) to its
//! receipt by every subscriber, with the server's resident memory.
//!
//! HTTP/1.1 uses one TCP connection per subscriber (hyper's client), spread over several 127.x
//! source addresses so ephemeral ports do not run out; HTTP/2 (prior knowledge, `--http2`)
//! multiplexes up to `STREAMS_PER_CONNECTION` subscribers per TCP connection (`h2`, a minimal
//! client of its own).
mod h2;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, LazyLock, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::bail;
use bench::{
    process::{cpu_ms, rss_mb},
    stats::{pct, rank, tail_by_connection},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use memchr::memmem::Finder;
use tokio::{
    net::{TcpSocket, TcpStream},
    sync::watch,
};

const STREAMS_PER_CONNECTION: usize = 100;

/// Opens many subscribers to one connection's live event stream, triggers a Rescan and reports
/// how long each event took to reach them.
#[derive(clap::Parser)]
#[command(name = "sse-load", version)]
struct Args {
    /// Where the setup calls and the Rescan go.
    #[arg(long, default_value = "127.0.0.1:3190")]
    server: SocketAddr,
    /// Where the subscribers connect, in turn (repeatable; default: the server). Another
    /// replica here measures what cross-replica delivery adds; a balancer spreads them itself.
    #[arg(long)]
    subscribe_to: Vec<SocketAddr>,
    /// A signed-in session's cookie (`name=value`).
    #[arg(long, default_value = "")]
    cookie: String,
    /// The connection whose events are followed.
    #[arg(long, default_value_t = 1)]
    connection: i64,
    #[arg(long, default_value_t = 1000, value_parser = bench::positive())]
    subscribers: usize,
    /// Multiplex the subscribers over HTTP/2 connections (100 each) instead of one HTTP/1.1
    /// connection each.
    #[arg(long)]
    http2: bool,
    /// HTTP/1.1: the loopback source addresses (127.0.0.1, .2, ...) spread over, so more than
    /// one port range's worth of connections can be open.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..))]
    sources: u8,
    /// The server's process, for its CPU time and resident size.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to stay connected and idle before triggering (to inspect the server meanwhile).
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

fn args() -> Args {
    let mut a = <Args as clap::Parser>::parse();
    if a.subscribe_to.is_empty() {
        a.subscribe_to.push(a.server);
    }
    a
}

/// What one subscriber saw: (seq, latency in µs) per event, and whether seqs ran without a gap
/// or a repeat.
#[derive(Default)]
struct Seen {
    events: Vec<(i64, u64)>,
    out_of_order: usize,
    /// Events read together with the first (in the same read from the socket), the first
    /// included: how much a subscriber was sent at its first wake in the burst.
    with_first: usize,
}

struct Shared {
    args: Args,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Reads from the server's sockets and the bytes they brought (HTTP/2 subscribers): how
    /// finely the server's writes arrive.
    reads: AtomicUsize,
    read_bytes: AtomicUsize,
    /// Subscribers stop once they have this seq (set after the Rescan has settled).
    last_seq: watch::Sender<i64>,
    /// What each answered subscriber saw, with the server it subscribed to and the TCP
    /// connection it came on (a number per connection).
    results: Mutex<Vec<(SocketAddr, usize, Seen)>>,
}

fn events_path(a: &Args, after: i64) -> String {
    format!("/api/connections/{}/events?after={after}", a.connection)
}

fn events_request(
    a: &Args,
    target: SocketAddr,
    after: i64,
) -> anyhow::Result<Request<Empty<Bytes>>> {
    Ok(Request::get(events_path(a, after))
        .header(header::HOST, target.to_string())
        .header(header::COOKIE, &a.cookie)
        .header(header::ACCEPT, "text/event-stream")
        .body(Empty::new())?)
}

async fn connect(server: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An HTTP/1.1 connection of its own (its driver runs as a task).
async fn http1<B>(
    server: SocketAddr,
    source: Option<IpAddr>,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = connect(server, source).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

// Built once: building a searcher costs more than the search in one short event.
static BLANK_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
static AT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"at\":\""));

/// A stream's bytes as they arrive, handed out as whole SSE events (up to their blank line).
/// Consumed events are dropped from the front only when more bytes come, not one by one.
#[derive(Default)]
struct Events {
    buf: Vec<u8>,
    start: usize,
}

impl Events {
    fn push(&mut self, chunk: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(chunk);
    }

    fn next_event(&mut self) -> Option<&[u8]> {
        let end = self.start + BLANK_LINE.find(&self.buf[self.start..])? + 2;
        let event = &self.buf[self.start..end];
        self.start = end;
        Some(event)
    }
}

/// One subscriber's stream as it arrives: whole events, checked for gaps and repeats, timed.
struct Follower {
    seen: Seen,
    events: Events,
    expected: i64,
    first_read: Option<SystemTime>,
}

impl Follower {
    fn new(after: i64) -> Self {
        Self {
            seen: Seen::default(),
            events: Events::default(),
            expected: after + 1,
            first_read: None,
        }
    }

    /// Bytes of the stream, received at `now`.
    fn receive(&mut self, chunk: &[u8], now: SystemTime) {
        self.events.push(chunk);
        while let Some(event) = self.events.next_event() {
            let Some((seq, at)) = parse(event) else {
                continue;
            };
            if seq != self.expected {
                self.seen.out_of_order += 1;
            }
            self.expected = seq + 1;
            let latency = now.duration_since(at).unwrap_or(Duration::ZERO).as_micros() as u64;
            self.seen.events.push((seq, latency));
            if *self.first_read.get_or_insert(now) == now {
                self.seen.with_first += 1;
            }
        }
    }

    fn has(&self, last: i64) -> bool {
        self.expected > last
    }
}

/// The last seq, once the Rescan has settled and the main task has set it (`i64::MIN` if it
/// never will). One such wait per stream, polled beside the stream only until it resolves: a
/// new watch future per frame would cost the load generator more than the rest of a delivery.
async fn last_seq(mut stop: watch::Receiver<i64>) -> i64 {
    stop.wait_for(|&last| last != UNKNOWN)
        .await
        .map_or(i64::MIN, |last| *last)
}

/// `Shared::last_seq` until it is known.
const UNKNOWN: i64 = i64::MAX;

/// The next `read`, or None when the last seq became known first (the caller then checks
/// whether it is done). Once the last seq is known, only `read` is awaited: `known` has
/// resolved and must not be polled again.
async fn read_until_known<T>(
    read: impl std::future::Future<Output = T>,
    known: &mut std::pin::Pin<&mut impl std::future::Future<Output = i64>>,
    last: &mut i64,
) -> Option<T> {
    if *last != UNKNOWN {
        return Some(read.await);
    }
    tokio::select! {
        r = read => Some(r),
        l = known.as_mut() => {
            *last = l;
            None
        }
    }
}

/// A subscriber's stream has answered: count it connected, then follow it to the last seq.
async fn follow(
    res: hyper::Response<hyper::body::Incoming>,
    shared: &Shared,
    (target, socket): (SocketAddr, usize),
    after: i64,
) -> anyhow::Result<()> {
    if !res.status().is_success() {
        bail!("stream answered {}", res.status());
    }
    shared.connected.fetch_add(1, Ordering::AcqRel);
    let mut body = res.into_body();
    let mut follower = Follower::new(after);
    let known = last_seq(shared.last_seq.subscribe());
    tokio::pin!(known);
    let mut last = UNKNOWN;
    while !follower.has(last) {
        let Some(frame) = read_until_known(body.frame(), &mut known, &mut last).await else {
            continue;
        };
        let Some(Ok(frame)) = frame else {
            break;
        };
        if let Ok(chunk) = frame.into_data() {
            follower.receive(&chunk, SystemTime::now());
        }
    }
    lock(&shared.results).push((target, socket, follower.seen));
    Ok(())
}

/// The seq (`id:` line) and the event's own timestamp (`"at"` in the data line).
fn parse(event: &[u8]) -> Option<(i64, SystemTime)> {
    let text = std::str::from_utf8(event).ok()?;
    let seq = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))?
        .parse()
        .ok()?;
    let at = &text[AT.find(event)? + AT.needle().len()..];
    let at = chrono::DateTime::parse_from_rfc3339(&at[..at.find('"')?]).ok()?;
    Some((seq, at.into()))
}

async fn subscribe_h1(shared: Arc<Shared>, index: usize, after: i64) -> anyhow::Result<()> {
    let a = &shared.args;
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        1 + (index % a.sources as usize) as u8,
    ));
    let target = a.subscribe_to[index % a.subscribe_to.len()];
    let mut sender = http1(target, Some(source)).await?;
    let res = sender
        .send_request(events_request(a, target, after)?)
        .await?;
    follow(res, &shared, (target, index), after).await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A plain HTTP/1.1 request on its own connection (setup and the trigger, not measured).
async fn call(a: &Args, method: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let mut sender = http1(a.server, None).await?;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, a.server.to_string())
        .header(header::COOKIE, &a.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let bytes = res.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        bail!("{method} {path} answered {status}: {text}");
    }
    Ok(text)
}

/// The newest seq in the log: open a stream from the start and read until it goes quiet.
async fn newest_seq(a: &Args) -> anyhow::Result<i64> {
    let mut sender = http1(a.server, None).await?;
    let res = sender.send_request(events_request(a, a.server, 0)?).await?;
    let mut body = res.into_body();
    let mut newest = 0;
    let mut events = Events::default();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(500), body.frame()).await
    {
        if let Ok(chunk) = frame.into_data() {
            events.push(&chunk);
            while let Some(event) = events.next_event() {
                if let Some((seq, _)) = parse(event) {
                    newest = seq;
                }
            }
        }
    }
    Ok(newest)
}

/// The connection as the API shows it.
async fn connection(a: &Args) -> anyhow::Result<serde_json::Value> {
    let path = format!("/api/connections/{}", a.connection);
    Ok(serde_json::from_str(&call(a, "GET", &path, "").await?)?)
}

/// Waits until the Rescan has settled; returns the state it ended in.
async fn settle(a: &Args) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = connection(a).await?;
        let state = view["state"].as_str().unwrap_or_default().to_string();
        if state != "awaiting_validation" && state != "pending" {
            return Ok(state);
        }
        if Instant::now() > deadline {
            bail!("the Rescan did not finish within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let after = newest_seq(&args).await?;
    let rss_idle = rss_mb(args.server_pid);
    let n = args.subscribers;
    let http2 = args.http2;
    let shared = Arc::new(Shared {
        args,
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        reads: AtomicUsize::new(0),
        read_bytes: AtomicUsize::new(0),
        last_seq: watch::channel(UNKNOWN).0,
        results: Mutex::new(Vec::with_capacity(n)),
    });

    let t0 = Instant::now();
    let mut tasks = Vec::new();
    if http2 {
        let mut left = n;
        let mut socket = 0;
        while left > 0 {
            let count = left.min(STREAMS_PER_CONNECTION);
            left -= count;
            let s = shared.clone();
            let target = s.args.subscribe_to[socket % s.args.subscribe_to.len()];
            let id = socket;
            socket += 1;
            tasks.push(tokio::spawn(async move {
                h2::subscribe(&s, (target, id), count, after).await;
            }));
        }
    } else {
        // Open in batches so the server's accept queue is not flooded.
        for i in 0..n {
            let s = shared.clone();
            tasks.push(tokio::spawn(async move {
                if subscribe_h1(s.clone(), i, after).await.is_err() {
                    s.failed.fetch_add(1, Ordering::AcqRel);
                }
            }));
            if i % 500 == 499 {
                while shared.connected.load(Ordering::Acquire)
                    + shared.failed.load(Ordering::Acquire)
                    < i + 1 - 500
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    while shared.connected.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire) < n
        && t0.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_time = t0.elapsed();
    let connected = shared.connected.load(Ordering::Acquire);
    // Let the last streams' first writes drain, and the memory of the connect burst be given
    // back, before reading the resident size with every stream open (the peak is reported too).
    tokio::time::sleep(Duration::from_secs(3 + shared.args.hold)).await;
    let rss_connected = rss_mb(shared.args.server_pid);

    let a = &shared.args;
    let view = connection(a).await?;
    eprintln!("{connected} subscribers connected; triggering a Rescan");
    let server_cpu_before = a.server_pid.and_then(cpu_ms);
    let own_cpu_before = cpu_ms(std::process::id());
    let reads_before = (
        shared.reads.load(Ordering::Acquire),
        shared.read_bytes.load(Ordering::Acquire),
    );
    call(
        a,
        "POST",
        &format!("/api/connections/{}/actions", a.connection),
        &serde_json::json!({ "action": "rescan", "version": view["version"] }).to_string(),
    )
    .await?;
    let outcome = settle(a).await?;
    let last = newest_seq(a).await?;
    shared.last_seq.send_replace(last);
    // Every subscriber stops at `last`; give the stragglers time, then count what arrived.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lock(&shared.results).len() < connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_after = rss_mb(a.server_pid);
    let server_cpu = a
        .server_pid
        .and_then(cpu_ms)
        .zip(server_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let own_cpu = cpu_ms(std::process::id())
        .zip(own_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let reads = if http2 {
        format!(
            " ({} reads, {} KB)",
            shared.reads.load(Ordering::Acquire) - reads_before.0,
            (shared.read_bytes.load(Ordering::Acquire) - reads_before.1) / 1024
        )
    } else {
        String::new()
    };

    let results = std::mem::take(&mut *lock(&shared.results));
    let label = if a.subscribe_to == [a.server] {
        String::new()
    } else {
        let to: Vec<String> = a.subscribe_to.iter().map(|s| s.to_string()).collect();
        format!(
            " (events via {}, subscribers on {})",
            a.server,
            to.join(" + ")
        )
    };
    let burst = (last - after) as usize;
    let mut first = Vec::with_capacity(results.len());
    let mut all = Vec::with_capacity(results.len() * burst);
    let mut out_of_order = 0;
    let mut complete = 0;
    // The first event per server subscribed to: in one burst, what a replica that did not
    // commit the event adds over the one that did.
    let mut first_on: Vec<(SocketAddr, Vec<u64>)> =
        a.subscribe_to.iter().map(|t| (*t, Vec::new())).collect();
    let mut first_by_socket = Vec::with_capacity(results.len());
    let mut with_first = Vec::with_capacity(results.len());
    for (target, socket, s) in &results {
        out_of_order += s.out_of_order;
        if s.events.len() == burst {
            complete += 1;
        }
        for &(seq, lat) in &s.events {
            if seq == after + 1 {
                first.push(lat);
                first_by_socket.push(((*target, *socket), lat));
                with_first.push((lat, s.with_first));
                if let Some((_, on)) = first_on.iter_mut().find(|(t, _)| t == target) {
                    on.push(lat);
                }
            }
            all.push(lat);
        }
    }
    first.sort_unstable();
    all.sort_unstable();
    let (p50_us, p99_us) = (
        rank(&first, 0.5).unwrap_or(0),
        rank(&first, 0.99).unwrap_or(0),
    );
    // Which connections the first event's p99 tail is on (HTTP/2: 100 subscribers each).
    let tail = if http2 {
        let (late, spreads) = tail_by_connection(&first_by_socket, p99_us);
        let slowest: Vec<String> = spreads
            .iter()
            .take(3)
            .map(|c| {
                format!(
                    "{} {:.1}/{:.1}/{:.1} ms",
                    c.socket.0,
                    c.first as f64 / 1000.0,
                    c.median as f64 / 1000.0,
                    c.last as f64 / 1000.0
                )
            })
            .collect();
        format!(
            " | past the first event's p99: {late} of {} connections; slowest (first/median/last stream): {}",
            spreads.len(),
            slowest.join(", ")
        )
    } else {
        String::new()
    };
    // How many events came with the first: a subscriber woken late in the replica's pass
    // takes the events published meanwhile in the same turn.
    let together = {
        let mean = |keep: &dyn Fn(u64) -> bool| {
            let (sum, n) = with_first
                .iter()
                .filter(|(lat, _)| keep(*lat))
                .fold((0, 0), |(sum, n), (_, read)| (sum + read, n + 1));
            sum as f64 / n.max(1) as f64
        };
        format!(
            " | events read with the first: mean {:.1} up to its p50, {:.1} past its p99",
            mean(&|lat| lat <= p50_us),
            mean(&|lat| lat > p99_us)
        )
    };
    let by_server = if first_on.len() > 1 {
        let each: Vec<String> = first_on
            .iter_mut()
            .map(|(t, lat)| {
                lat.sort_unstable();
                format!(
                    "{t} p50={:.1} ms p99={:.1} ms",
                    pct(lat, 0.5),
                    pct(lat, 0.99)
                )
            })
            .collect();
        format!(" | first event by server: {}", each.join(", "))
    } else {
        String::new()
    };
    println!(
        "BENCH sse_fanout {}{} subscribers={n} connected={connected} (in {:.1} s) complete={complete} \
         out_of_order={out_of_order} events_per_subscriber={burst} rescan={outcome} | \
         first event to every subscriber: p50={:.1} ms p99={:.1} ms last={:.1} ms | \
         all {} deliveries: p50={:.1} ms p99={:.1} ms max={:.1} ms | \
         server RSS MB: idle {rss_idle}, connected {rss_connected}, after {rss_after} | \
         CPU during the Rescan: server {} ms ({:.1} µs per delivery), load generator {} ms{reads}{by_server}{tail}{together}",
        if http2 { "http/2" } else { "http/1.1" },
        label,
        connect_time.as_secs_f64(),
        pct(&first, 0.5),
        pct(&first, 0.99),
        pct(&first, 1.0),
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        pct(&all, 1.0),
        server_cpu.map_or("n/a".into(), |ms| ms.to_string()),
        server_cpu.map_or(f64::NAN, |ms| ms as f64 * 1000.0 / all.len().max(1) as f64),
        own_cpu.map_or("n/a".into(), |ms| ms.to_string()),
    );
    // Leave at once: dropping tens of thousands of streams one by one only slows the exit.
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> String {
        format!("id: {seq}\nevent: check\ndata: {{\"seq\":{seq},\"at\":\"2026-11-25T10:00:00.000001Z\"}}\n\n")
    }

    #[test]
    fn events_split_across_chunks_are_joined_and_gaps_counted() {
        let mut f = Follower::new(4);
        let stream = format!("retry: 1000\n\n{}{}{}", event(5), event(6), event(8));
        let now = SystemTime::now();
        for chunk in stream.as_bytes().chunks(7) {
            f.receive(chunk, now);
        }
        let seqs: Vec<i64> = f.seen.events.iter().map(|e| e.0).collect();
        assert_eq!(seqs, vec![5, 6, 8]);
        assert_eq!(f.seen.out_of_order, 1);
        assert!(f.has(8) && !f.has(9));
    }

    #[test]
    fn the_events_read_with_the_first_are_those_of_the_same_read() {
        let mut f = Follower::new(0);
        let first = SystemTime::now();
        f.receive(
            format!("retry: 1000\n\n{}{}", event(1), event(2)).as_bytes(),
            first,
        );
        // A later read, even of the rest of a frame begun in the first, does not count.
        let third = event(3);
        let (head, rest) = third.split_at(5);
        f.receive(head.as_bytes(), first);
        f.receive(rest.as_bytes(), first + Duration::from_millis(1));
        f.receive(event(4).as_bytes(), first + Duration::from_millis(2));
        assert_eq!(f.seen.events.len(), 4);
        assert_eq!(f.seen.with_first, 2);
    }
}
