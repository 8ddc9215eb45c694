//! The textbook baseline for the fan-out benchmark (issue 13): what a Rust developer writes
//! first for "push events to many browsers" — axum's `Sse` over one tokio `broadcast` channel,
//! in one process, with nothing else (no database, no sessions, no replay log, no per-user
//! caps). It answers the few calls `sse-load` makes, in the same shapes as the product:
//! - `GET /api/connections/{id}/events?after=N`: the events after N, then live ones;
//! - `GET /api/connections/{id}`: `{"state", "version"}`;
//! - `POST /api/connections/{id}/actions`: a burst of `--events` events, like a Rescan's.
//!
//! So `sse-load` runs the very same load against it, and the ratio to the product is on record.
//!
//! With `--h2-per-connection ADDR` it also serves the same events over HTTP/2 at ADDR without a
//! task per stream (`per_connection`, an experiment: what that shape of delivery costs).
mod per_connection;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Query, State},
    response::sse::{Event, KeepAlive, Sse},
    routing::{get, post},
    Json, Router,
};
use bytes::Bytes;
use futures::{stream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use per_connection::Frame;

/// One event as the product's stream writes it: `id:` the seq, the data with `seq` and `at`.
#[derive(Clone)]
struct Sent {
    seq: i64,
    data: String,
}

struct Shared {
    tx: broadcast::Sender<Sent>,
    /// The same events as whole SSE frames, for `per_connection`'s streams.
    frames: broadcast::Sender<Frame>,
    /// Every event so far, for `after` (the product reads them from its log).
    log: Mutex<Vec<Sent>>,
    events_per_burst: usize,
    /// Filler in each event's data, so its frame is the size of the product's.
    pad: String,
}

#[derive(serde::Deserialize)]
struct After {
    after: Option<i64>,
}

fn event(sent: &Sent) -> Result<Event, Infallible> {
    Ok(Event::default()
        .id(sent.seq.to_string())
        .event("check")
        .data(sent.data.clone()))
}

async fn events(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<After>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let after = q.after.unwrap_or(0);
    // Subscribe first, then read the log: an event sent in between comes twice and is skipped
    // by its seq, none is missed.
    let rx = shared.tx.subscribe();
    let past = shared.since(after);
    let mut last = past.last().map_or(after, |e| e.seq);
    let live = stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(sent) => return Some((sent, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter(move |e| {
        let new = e.seq > last;
        if new {
            last = e.seq;
        }
        futures::future::ready(new)
    });
    let all = stream::iter(past).chain(live).map(|e| event(&e));
    Sse::new(all).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn connection(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let version = shared.log.lock().map_or(0, |log| log.len());
    Json(json!({ "state": "validated", "version": version }))
}

/// A burst of events, each stamped as it is sent (the product stamps just before commit).
async fn act(State(shared): State<Arc<Shared>>) -> Json<Value> {
    for _ in 0..shared.events_per_burst {
        let Ok(mut log) = shared.log.lock() else {
            break;
        };
        let seq = log.len() as i64 + 1;
        // chrono without its clock feature here: the time from std.
        let at = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let sent = Sent {
            seq,
            data: json!({ "seq": seq, "at": at, "kind": "check", "pad": shared.pad }).to_string(),
        };
        log.push(sent.clone());
        drop(log);
        // No receiver is not an error here: nobody is listening yet.
        let _ = shared.frames.send((seq, frame(&sent)));
        let _ = shared.tx.send(sent);
    }
    Json(json!({ "state": "validated" }))
}

/// An event's frame, as axum's `Sse` writes it.
fn frame(sent: &Sent) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: check\ndata: {}\n\n",
        sent.seq, sent.data
    ))
}

impl Shared {
    /// The events after `seq`, from the log.
    fn since(&self, seq: i64) -> Vec<Sent> {
        self.log
            .lock()
            .map(|log| log.iter().filter(|e| e.seq > seq).cloned().collect())
            .unwrap_or_default()
    }
}

impl per_connection::Source for Shared {
    fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.frames.subscribe()
    }

    fn after(&self, seq: i64) -> Vec<Frame> {
        self.since(seq).iter().map(|e| (e.seq, frame(e))).collect()
    }
}

/// The textbook fan-out: axum's `Sse` over one tokio `broadcast` channel, one process, no
/// sign-in; answers the calls sse-load makes.
#[derive(clap::Parser)]
#[command(name = "sse-baseline", version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3196")]
    listen: SocketAddr,
    /// Events each Rescan publishes.
    #[arg(long, default_value_t = 32)]
    events: usize,
    /// Also serve the event streams over HTTP/2 (prior knowledge) here, one task per TCP
    /// connection instead of one per stream (the experiment in `per_connection`).
    #[arg(long)]
    h2_per_connection: Option<SocketAddr>,
    /// Characters of filler in each event (the product's frames are about 425 bytes, the
    /// baseline's about 90 without it).
    #[arg(long, default_value_t = 0)]
    pad: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        listen,
        events: events_per_burst,
        h2_per_connection,
        pad,
    } = clap::Parser::parse();
    let shared = Arc::new(Shared {
        tx: broadcast::channel(1024).0,
        frames: broadcast::channel(1024).0,
        log: Mutex::new(Vec::new()),
        events_per_burst,
        pad: "x".repeat(pad),
    });
    if let Some(at) = h2_per_connection {
        // Bound before the main listener, so both listen once that one answers.
        let listener = tokio::net::TcpListener::bind(at).await?;
        eprintln!("event streams, one task per HTTP/2 connection, on {at}");
        let source: Arc<dyn per_connection::Source> = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = per_connection::serve(listener, source).await {
                eprintln!("the per-connection listener stopped: {e}");
            }
        });
    }
    let app = Router::new()
        .route("/api/connections/{id}/events", get(events))
        .route("/api/connections/{id}", get(connection))
        .route("/api/connections/{id}/actions", post(act))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("sse-baseline listening on {listen}");
    axum::serve(listener, app).await?;
    Ok(())
}
