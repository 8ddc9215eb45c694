//! `GET /api/connections/{id}/events`: the connection's live event stream (server-sent events).
//! Subscribes to the live channel first, then sends the stored backlog after the client's last
//! id, then live events, skipping any it already sent. A lagging subscriber is resynced from the
//! log. Ends on shutdown; answers 204 when nothing more can come.
use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use serde::Deserialize;
use tokio::sync::{broadcast::error::RecvError, watch};

use app::{
    model::{ConnectionEvent, Onboarding},
    server::{connections, events, AppState, ServiceError},
};

#[derive(Clone)]
pub struct Streams {
    pub state: AppState,
    /// Flips to true when the server is shutting down: every stream then ends.
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    after: Option<i64>,
}

fn to_sse(e: &ConnectionEvent) -> Event {
    Event::default()
        .id(e.seq.to_string())
        .event(e.body.name())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
}

#[tracing::instrument(skip(streams, headers, q))]
pub async fn events_stream(
    State(streams): State<Streams>,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    let id: i64 = id.parse().map_err(|_| {
        ServiceError::NotFound(format!("There is no provider connection \"{id}\"."))
    })?;
    let state = streams.state.clone();
    let conn = connections::get(&state.db, id).await?;
    // A reconnecting browser sends Last-Event-ID; a reloaded page sends ?after=.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let mut rx = state.hub.subscribe();
    let backlog = events::since(&state.db, id, after).await?;
    if backlog.is_empty() && conn.onboarding == Onboarding::Complete {
        // Onboarded and up to date: tell the browser to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut shutdown = streams.shutdown.clone();
    let stream = async_stream::stream! {
        let mut last = after;
        for e in &backlog {
            last = e.seq;
            yield Ok::<Event, Infallible>(to_sse(e));
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                msg = rx.recv() => match msg {
                    Ok(e) if e.connection_id == id && e.seq > last => {
                        last = e.seq;
                        yield Ok(to_sse(&e));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        // Too slow to keep up: catch up from the log rather than drop events.
                        tracing::warn!(connection = id, skipped, "subscriber lagged; resyncing from the log");
                        match events::since(&state.db, id, last).await {
                            Ok(missed) => for e in missed {
                                last = e.seq;
                                yield Ok(to_sse(&e));
                            },
                            // Close: the client reconnects with Last-Event-ID and resumes.
                            Err(_) => break,
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }
    };
    let mut res = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(res)
}
