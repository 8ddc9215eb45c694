//! An experiment beside the textbook baseline (issue 13): HTTP/2 event streams delivered without
//! a task per stream. hyper's server (the product's and the baseline's) spawns a task for each
//! stream and polls its body there, so an event wakes as many tasks as there are subscribers.
//! Here one task serves a whole TCP connection over the `h2` crate: it holds every stream the
//! connection opened and, on an event, queues the event's frame (encoded once) on each of them,
//! so an event wakes one task per connection. No sign-in, no log on disk, no caps, no flow
//! control beyond h2's own buffering: what that shape of delivery alone costs, measured with the
//! same `sse-load` (`--subscribe-to` this listener, `--server` the baseline's control port).
use std::sync::Arc;

use axum::http::{Response, StatusCode, Uri};
use bytes::{Bytes, BytesMut};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
};

/// One event as every subscriber is sent it: its seq and its whole SSE frame.
pub type Frame = (i64, Bytes);

/// The log the backlogs are read from (every event so far) and the live channel.
pub trait Source: Send + Sync + 'static {
    fn subscribe(&self) -> broadcast::Receiver<Frame>;
    fn after(&self, seq: i64) -> Vec<Frame>;
}

/// `/api/connections/{id}/events?after=N` (any id, as the baseline): N, or 0.
fn events_after(uri: &Uri) -> Option<i64> {
    let path = uri.path();
    if !(path.starts_with("/api/connections/") && path.ends_with("/events")) {
        return None;
    }
    Some(
        uri.query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("after=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

struct Stream {
    send: h2::SendStream<Bytes>,
    last: i64,
}

impl Stream {
    /// Queues one live event unless this stream has it; false once the stream is gone.
    fn offer(&mut self, (seq, frame): &Frame) -> bool {
        if *seq <= self.last {
            return true;
        }
        self.last = *seq;
        self.send.send_data(frame.clone(), false).is_ok()
    }

    /// Queues, as one chunk, what of `frames` (in seq order) is newer than what it has.
    fn catch_up(&mut self, frames: &[Frame]) -> bool {
        let mut chunk = BytesMut::new();
        for (seq, frame) in frames {
            if *seq > self.last {
                self.last = *seq;
                chunk.extend_from_slice(frame);
            }
        }
        chunk.is_empty() || self.send.send_data(chunk.freeze(), false).is_ok()
    }
}

/// Fills from the log what the live channel dropped (more events than it holds came at once).
/// The log is read once for the connection, from its furthest-behind stream; each stream takes
/// what of it is newer than what it has.
fn catch_up(streams: &mut Vec<Stream>, source: &dyn Source) {
    let Some(from) = streams.iter().map(|s| s.last).min() else {
        return;
    };
    let missed = source.after(from);
    streams.retain_mut(|s| s.catch_up(&missed));
}

/// Serves one TCP connection: its requests and every stream it opened, in this one task.
async fn connection(socket: TcpStream, source: Arc<dyn Source>) -> anyhow::Result<()> {
    socket.set_nodelay(true)?;
    let mut conn = h2::server::Builder::new()
        .max_concurrent_streams(10_000)
        .handshake::<_, Bytes>(socket)
        .await?;
    // Before any backlog is read, so nothing falls between the two (repeats are skipped by seq).
    let mut rx = source.subscribe();
    let mut streams: Vec<Stream> = Vec::new();
    loop {
        tokio::select! {
            // First, so the connection's writes progress on every turn.
            biased;
            request = conn.accept() => {
                let Some(request) = request else { return Ok(()) };
                let (request, mut respond) = request?;
                let Some(after) = events_after(request.uri()) else {
                    let refused = Response::builder().status(StatusCode::NOT_FOUND).body(())?;
                    respond.send_response(refused, true)?;
                    continue;
                };
                let ok = Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(())?;
                let mut send = respond.send_response(ok, false)?;
                send.send_data(Bytes::from_static(b"retry: 1000\n\n"), false)?;
                let mut stream = Stream { send, last: after };
                if stream.catch_up(&source.after(after)) {
                    streams.push(stream);
                }
            }
            got = rx.recv() => match got {
                Ok(frame) => {
                    // Whatever else is already waiting goes out with it, one chunk per stream
                    // (as the product's streams batch what they find when woken).
                    let mut frames = vec![frame];
                    let lagged = loop {
                        match rx.try_recv() {
                            Ok(more) => frames.push(more),
                            Err(TryRecvError::Lagged(_)) => break true,
                            Err(_) => break false,
                        }
                    };
                    match frames.as_slice() {
                        [one] => streams.retain_mut(|s| s.offer(one)),
                        many => streams.retain_mut(|s| s.catch_up(many)),
                    }
                    if lagged {
                        catch_up(&mut streams, source.as_ref());
                    }
                }
                Err(RecvError::Lagged(_)) => catch_up(&mut streams, source.as_ref()),
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Accepts HTTP/2 (prior knowledge) connections on `listener` for ever (bound by the caller,
/// so it listens before the caller says it is ready).
pub async fn serve(listener: TcpListener, source: Arc<dyn Source>) -> anyhow::Result<()> {
    loop {
        let (socket, _) = listener.accept().await?;
        let source = source.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(socket, source).await {
                eprintln!("an HTTP/2 connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_path_gives_its_after_and_nothing_else_does() {
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        assert_eq!(
            events_after(&uri("/api/connections/1/events?after=7")),
            Some(7)
        );
        assert_eq!(events_after(&uri("/api/connections/1/events")), Some(0));
        assert_eq!(events_after(&uri("/api/connections/1")), None);
    }
}
