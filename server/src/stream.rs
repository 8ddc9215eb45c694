//! `GET /api/connections/{id}/events`: the connection's live event stream (server-sent events).
//! Subscribes to the live channel first, then sends the stored backlog after the client's last
//! id, then live events, skipping any it already sent. A lagging subscriber is resynced from the
//! log. Ends on shutdown; answers 204 when nothing more can come.
use std::{convert::Infallible, time::Duration};

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderName, StatusCode, Version},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use app::{
    model::Onboarding,
    server::{connections, events, AppState, ServiceError},
};

#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    after: Option<i64>,
}

/// How often idle streams get a comment line, so proxies and browsers keep them open (sent by
/// the hub to every channel at once).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Sent first: the browser's own reconnect delay if it ever falls back on it (the page's
/// client reconnects with its own backoff).
const PREAMBLE: &[u8] = b"retry: 1000\n\n";

/// The h2 crate (0.4) copies a DATA payload shorter than 1 KB into its connection's write
/// buffer (on a transport without vectored writes, which `coalesce::Coalesced` is), but sends a
/// longer one with a flush of its own before it buffers the next frame. Sliced below that (the
/// slices share the frame's memory), the events of all the connection's subscribers go out in
/// one write. Most event frames are 160-800 bytes: one slice.
const H2_PIECE: usize = 1023;

/// The chunks to send for one frame: itself, or on HTTP/2 its slices of at most `H2_PIECE`
/// bytes (each becomes a DATA frame; the client's SSE parser joins them).
fn pieces(frame: Bytes, http2: bool) -> impl Iterator<Item = Bytes> {
    let step = if http2 { H2_PIECE } else { frame.len().max(1) };
    (0..frame.len())
        .step_by(step)
        .map(move |start| frame.slice(start..(start + step).min(frame.len())))
}

#[tracing::instrument(skip(state, headers, q))]
pub async fn events_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<After>,
    version: Version,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    let id: i64 = id.parse().map_err(|_| {
        ServiceError::NotFound(format!("There is no provider connection \"{id}\"."))
    })?;
    let conn = connections::get(&state.db, id).await?;
    // A reconnecting browser sends Last-Event-ID; a reloaded page sends ?after=.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let mut rx = state.hub.subscribe(id);
    let backlog = events::since(&state.db, id, after).await?;
    if backlog.is_empty() && conn.onboarding == Onboarding::Complete {
        // Onboarded and up to date: tell the browser to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // Only what the stream needs: it lives as long as the subscriber, times tens of thousands.
    let db = state.db.clone();
    let http2 = version == Version::HTTP_2;
    let stream = async_stream::stream! {
        yield Ok::<Bytes, Infallible>(Bytes::from_static(PREAMBLE));
        let mut last = after;
        for e in backlog {
            last = e.seq;
            for piece in pieces(events::sse_frame(&e), http2) {
                yield Ok(piece);
            }
        }
        // One wait per delivery: keep-alives and shutdown arrive on the same channel.
        loop {
            match rx.recv().await {
                Ok(p) => match p.seq {
                    None => yield Ok(p.frame.clone()),
                    Some(seq) if seq > last => {
                        last = seq;
                        for piece in pieces(p.frame.clone(), http2) {
                            yield Ok(piece);
                        }
                    }
                    Some(_) => {}
                },
                Err(RecvError::Lagged(skipped)) => {
                    // Too slow to keep up: catch up from the log rather than drop events.
                    tracing::warn!(connection = id, skipped, "subscriber lagged; resyncing from the log");
                    match events::since(&db, id, last).await {
                        Ok(missed) => for e in missed {
                            last = e.seq;
                            for piece in pieces(events::sse_frame(&e), http2) {
                                yield Ok(piece);
                            }
                        },
                        // Close: the client reconnects with Last-Event-ID and resumes.
                        Err(_) => break,
                    }
                }
                // Shutdown (the hub closed the channel).
                Err(RecvError::Closed) => break,
            }
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies (nginx) must not buffer the stream.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_slices_a_frame_below_the_copy_threshold_and_loses_no_byte() {
        let frame = Bytes::from("é".repeat(1200)); // 2400 bytes, slices end inside characters
        let slices: Vec<Bytes> = pieces(frame.clone(), true).collect();
        assert_eq!(slices.len(), 3);
        assert!(slices.iter().all(|s| s.len() <= H2_PIECE && !s.is_empty()));
        assert_eq!(slices.concat(), frame.to_vec());
    }

    #[test]
    fn http1_sends_a_frame_whole() {
        let frame = Bytes::from(vec![b'x'; 800]);
        let slices: Vec<Bytes> = pieces(frame.clone(), false).collect();
        assert_eq!(slices, vec![frame]);
    }
}
