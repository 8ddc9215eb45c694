//! `GET /api/connections/{id}/events`: the connection's live event stream (server-sent events).
//! Subscribes to the live channel first, then sends the stored backlog after the client's last
//! id, then live events in sequence order, skipping any it already sent. A lagging subscriber,
//! or one missing an event that was published late, is caught up from the log. Ends on
//! shutdown. An onboarded connection's stream stays open too: its health checks keep changing
//! Outbound and Inbound.
use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Query, State},
    http::{header, HeaderMap, HeaderName, StatusCode, Version},
    response::{IntoResponse, Response},
    Extension,
};
use bytes::{Bytes, BytesMut};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{
    error::{RecvError, TryRecvError},
    Receiver,
};
use tokio::time::Instant;

use app::{
    model::{ApiError, ConnectionEvent, CurrentUser},
    server::{
        connections,
        events::{self, Published},
        stream_slots::{self, Taken},
        streams::{StreamTicket, TooManyStreams},
        AppState, Db, ServiceError,
    },
};

use super::{auth::SessionKey, json::json_error, path_id::ConnectionPath};

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

/// The frames one wake-up of a subscriber sends: one frame is sent as it is (its memory shared
/// with every other subscriber); several are copied into one chunk, so a subscriber that wakes
/// behind a quick succession of events takes them all with one write instead of one each.
#[derive(Default)]
struct Batch {
    first: Option<Bytes>,
    more: Option<BytesMut>,
}

impl Batch {
    /// A chunk stops growing here (a subscriber far behind is sent its backlog in several).
    const FULL: usize = 16 * 1024;

    fn push(&mut self, frame: &Bytes) {
        match (&mut self.more, self.first.take()) {
            (Some(more), _) => more.extend_from_slice(frame),
            (None, None) => self.first = Some(frame.clone()),
            (None, Some(first)) => {
                let mut more = BytesMut::with_capacity(first.len() + frame.len() * 4);
                more.extend_from_slice(&first);
                more.extend_from_slice(frame);
                self.more = Some(more);
            }
        }
    }

    fn is_full(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.len() >= Self::FULL)
    }

    fn take(&mut self) -> Option<Bytes> {
        self.more
            .take()
            .map(BytesMut::freeze)
            .or_else(|| self.first.take())
    }
}

/// A connection's live events (server-sent events). Each event's `id:` is its per-connection
/// sequence number, its `event:` the kind (`connection`, `scan`, `check`, `onboarding`) and its
/// `data:` one `ConnectionEvent` as JSON. Resumes after `Last-Event-ID` (a reconnecting
/// browser) or `?after=` (a reloaded page).
#[utoipa::path(get, path = "/api/connections/{id}/events", tag = "connections",
    params(
        ("id" = i64, Path, description = "The connection's id"),
        ("after" = Option<i64>, Query, description = "Send the events after this sequence number"),
        ("Last-Event-ID" = Option<i64>, Header, description = "The same, as a reconnecting browser sends it; wins over `after`"),
    ),
    responses(
        (status = 200, description = "The stream: the stored events after the given one, then the live ones", content_type = "text/event-stream", body = String),
        (status = 429, description = "Too many open streams for this user", body = ApiError),
    ))]
#[tracing::instrument(skip(state, headers, q, user, session))]
pub async fn events_stream(
    State(state): State<AppState>,
    id: ConnectionPath,
    Query(q): Query<After>,
    version: Version,
    headers: HeaderMap,
    user: Option<Extension<CurrentUser>>,
    session: Option<Extension<SessionKey>>,
) -> Result<Response, ServiceError> {
    // The guard lets no one without a session this far; refuse rather than serve if it did.
    let (user, session) = signed_in(user, session)?;
    let id = id.get();
    // An unknown connection is a 404 before anything is held for it.
    connections::get(&state.db, id).await?;
    // A reconnecting browser sends Last-Event-ID; a reloaded page sends ?after=.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let rx = state.hub.subscribe(id);
    let backlog = events::since(&state.db, id, after).await?;
    let ticket = match ticket(&state, &user, &session).await? {
        Ok(t) => t,
        Err(refused) => return Ok(refused),
    };
    let stream = follow(
        Some(ticket),
        rx,
        state.db.clone(),
        id,
        after,
        backlog,
        version == Version::HTTP_2,
    );
    Ok(event_stream(Body::from_stream(stream)))
}

/// The signed-in user and session a stream is opened for; refused if the guard let a request
/// without them this far.
fn signed_in(
    user: Option<Extension<CurrentUser>>,
    session: Option<Extension<SessionKey>>,
) -> Result<(CurrentUser, SessionKey), ServiceError> {
    match (user, session) {
        (Some(Extension(user)), Some(Extension(session))) => Ok((user, session)),
        _ => Err(ServiceError::Unauthorized(
            "Sign in first: this needs a session.".into(),
        )),
    }
}

/// Held for as long as a stream is open: counts it against the user's cap (over all replicas,
/// with several), and ends it when the session is signed out or the user changed. The 429 to
/// answer when the user already has as many open as allowed.
async fn ticket(
    state: &AppState,
    user: &CurrentUser,
    session: &SessionKey,
) -> Result<Result<StreamTicket, Response>, ServiceError> {
    let too_many = |n: usize| {
        json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            &format!(
                "You already have {n} live views open. Close one (another tab or window) \
                 and try again."
            ),
        )
    };
    let slot = match stream_slots::take(state, user.id, state.streams.limit()).await? {
        Taken::Full(n) => return Ok(Err(too_many(n))),
        Taken::Slot(slot) => Some(slot),
        Taken::Local => None,
    };
    let ticket = match state.streams.open(user.id, &session.0) {
        Ok(t) => t,
        Err(TooManyStreams(n)) => return Ok(Err(too_many(n))),
    };
    Ok(Ok(match slot {
        Some(slot) => ticket.holding(slot),
        None => ticket,
    }))
}

fn event_stream(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies (nginx) must not buffer the stream.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// Every connection's changes, for the health dashboard: an `event: changed` whose `data:` is
/// the id of a connection with a new event (a status, a scan, a check, onboarding), for any
/// connection, committed on this replica or announced by another. No backlog and no ids: the
/// page reads the dashboard afresh on each (and when it reconnects), so nothing can be missed.
#[utoipa::path(get, path = "/api/health-dashboard/events", tag = "scan",
    responses(
        (status = 200, description = "The stream of changes", content_type = "text/event-stream", body = String),
        (status = 429, description = "Too many open streams for this user", body = ApiError),
    ))]
#[tracing::instrument(skip(state, user, session))]
pub async fn changes_stream(
    State(state): State<AppState>,
    version: Version,
    user: Option<Extension<CurrentUser>>,
    session: Option<Extension<SessionKey>>,
) -> Result<Response, ServiceError> {
    let (user, session) = signed_in(user, session)?;
    let rx = state.hub.subscribe_changes();
    let ticket = match ticket(&state, &user, &session).await? {
        Ok(t) => t,
        Err(refused) => return Ok(refused),
    };
    Ok(event_stream(Body::from_stream(changes(
        ticket,
        rx,
        version == Version::HTTP_2,
    ))))
}

/// The change stream's body: what arrives on `rx`, as it arrives; a lag (more changes than the
/// channel holds) is one `changed` for them all. Ends on shutdown or when `ticket` is revoked.
fn changes(
    mut ticket: StreamTicket,
    mut rx: Receiver<Arc<Published>>,
    http2: bool,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    async_stream::stream! {
        yield Ok::<Bytes, Infallible>(Bytes::from_static(PREAMBLE));
        loop {
            let frame = tokio::select! {
                biased;
                _ = ticket.revoked() => break,
                got = rx.recv() => match got {
                    Ok(p) => p.frame.clone(),
                    Err(RecvError::Lagged(_)) => Bytes::from_static(b"event: changed\ndata: 0\n\n"),
                    Err(RecvError::Closed) => break,
                },
            };
            for piece in pieces(frame, http2) {
                yield Ok(piece);
            }
        }
    }
}

/// The stream's body: `backlog` (the log after `after`), then what arrives on `rx`, each event
/// once, in order. A lag is caught up from the log in `db`; ends when `rx` is closed, or early
/// when `ticket` is revoked (sign-out, a changed user).
pub fn follow(
    mut ticket: Option<StreamTicket>,
    mut rx: Receiver<Arc<Published>>,
    db: Db,
    id: i64,
    after: i64,
    backlog: Vec<ConnectionEvent>,
    http2: bool,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    async_stream::stream! {
        let mut batch = Batch::default();
        batch.push(&Bytes::from_static(PREAMBLE));
        let mut order = InOrder::after(after);
        for e in backlog {
            order.fill(&e, &mut batch);
        }
        // Keep-alives and shutdown arrive on the live channel too. Whatever is already waiting
        // when this subscriber wakes goes out in one chunk.
        let mut open = true;
        loop {
            // A full batch (or the stream's last) is sent before looking further.
            let waiting = if !open || batch.is_full() { Err(TryRecvError::Empty) } else { rx.try_recv() };
            let got = match waiting {
                Ok(p) => Ok(p),
                Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    if let Some(chunk) = batch.take() {
                        for piece in pieces(chunk, http2) {
                            yield Ok::<Bytes, Infallible>(piece);
                        }
                    }
                    if !open {
                        break;
                    }
                    let deadline = order.gap_deadline();
                    let next = async {
                        match deadline {
                            // A gap that does not close in time is filled from the log (below,
                            // as for a lag of nothing).
                            Some(deadline) => tokio::time::timeout_at(deadline, rx.recv())
                                .await
                                .unwrap_or(Err(RecvError::Lagged(0))),
                            None => rx.recv().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        // Signed out, or the user changed: end now, send nothing more.
                        _ = async {
                            match ticket.as_mut() {
                                Some(t) => t.revoked().await,
                                None => std::future::pending().await,
                            }
                        } => break,
                        got = next => got,
                    }
                }
            };
            match got {
                Ok(p) => match p.seq {
                    None => batch.push(&p.frame),
                    Some(seq) => order.offer(seq, &p.frame, &mut batch),
                },
                Err(RecvError::Lagged(skipped)) => {
                    // Too slow to keep up, or a gap that did not close: catch up from the log
                    // rather than drop events.
                    tracing::warn!(connection = id, skipped, after = order.last, "catching up from the log");
                    match events::since(&db, id, order.last).await {
                        Ok(missed) => for e in &missed {
                            order.fill(e, &mut batch);
                        },
                        // End: the client reconnects with Last-Event-ID and resumes.
                        Err(_) => open = false,
                    }
                }
                // Shutdown (the hub closed the channel).
                Err(RecvError::Closed) => open = false,
            }
        }
    }
}

/// How long a subscriber waits for a missing event to arrive live before reading it from the
/// log.
const GAP_WAIT: Duration = Duration::from_millis(200);

/// Puts live events in sequence order. Two writers commit seq N and N+1 in that order (the
/// counter row serialises them), but may publish them the other way round (two futures of one
/// scan, polled in list order); a subscriber that took N+1 as "newer than anything sent" would
/// then drop N for ever. An early event is held until the gap closes, or the log fills it.
struct InOrder {
    /// The last seq sent (or queued in the batch).
    last: i64,
    /// Events that came before the one(s) before them.
    held: BTreeMap<i64, Bytes>,
    /// When the current gap opened (the first event was held).
    gap_since: Option<Instant>,
}

impl InOrder {
    fn after(last: i64) -> Self {
        Self {
            last,
            held: BTreeMap::new(),
            gap_since: None,
        }
    }

    /// Until when to wait for the missing event live: `GAP_WAIT` after the gap opened, however
    /// many other events come meanwhile.
    fn gap_deadline(&self) -> Option<Instant> {
        self.gap_since.map(|t| t + GAP_WAIT)
    }

    /// A live event: queued if it is the next one (with whatever it releases), held if it is
    /// early, skipped if it was sent already.
    fn offer(&mut self, seq: i64, frame: &Bytes, batch: &mut Batch) {
        if seq <= self.last {
            return;
        }
        if seq > self.last + 1 {
            self.held.insert(seq, frame.clone());
            self.gap_since.get_or_insert_with(Instant::now);
            return;
        }
        self.last = seq;
        batch.push(frame);
        self.release(batch);
    }

    /// An event read from the log (in order: the backlog, or a catch-up).
    fn fill(&mut self, e: &ConnectionEvent, batch: &mut Batch) {
        if e.seq > self.last {
            self.last = e.seq;
            batch.push(&events::sse_frame(e));
        }
        self.release(batch);
    }

    /// Queues held events that are now next; forgets those already sent.
    fn release(&mut self, batch: &mut Batch) {
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq > self.last + 1 {
                break;
            }
            let frame = entry.remove();
            if seq == self.last + 1 {
                self.last = seq;
                batch.push(&frame);
            }
        }
        if self.held.is_empty() {
            self.gap_since = None;
        }
    }
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
    fn one_frame_is_sent_as_it_is_and_several_as_one_chunk_in_order() {
        let (a, b, c) = (
            Bytes::from("id: 1\n\n"),
            Bytes::from("id: 2\n\n"),
            Bytes::from("id: 3\n\n"),
        );
        let mut batch = Batch::default();
        assert_eq!(batch.take(), None);
        batch.push(&a);
        let alone = batch.take().expect("one frame");
        assert_eq!(alone.as_ptr(), a.as_ptr(), "shared, not copied");
        assert_eq!(batch.take(), None, "taken once");
        for f in [&a, &b, &c] {
            batch.push(f);
        }
        assert_eq!(
            batch.take().expect("three frames"),
            "id: 1\n\nid: 2\n\nid: 3\n\n"
        );
        assert_eq!(batch.take(), None);
    }

    #[test]
    fn a_batch_is_full_at_sixteen_kilobytes() {
        let frame = Bytes::from(vec![b'x'; 1000]);
        let mut batch = Batch::default();
        for _ in 0..16 {
            assert!(!batch.is_full());
            batch.push(&frame);
        }
        assert!(!batch.is_full(), "16,000 bytes");
        batch.push(&frame);
        assert!(batch.is_full());
        assert_eq!(batch.take().map(|b| b.len()), Some(17_000));
        assert!(!batch.is_full());
    }

    fn frame(seq: i64) -> Bytes {
        Bytes::from(format!("id: {seq}\n\n"))
    }

    fn sent(batch: &mut Batch) -> String {
        batch
            .take()
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace("\n\n", " ")
                    .replace("id: ", "")
            })
            .unwrap_or_default()
    }

    #[test]
    fn an_early_event_waits_for_the_one_before_it_and_repeats_are_skipped() {
        let (mut order, mut batch) = (InOrder::after(4), Batch::default());
        order.offer(5, &frame(5), &mut batch);
        order.offer(7, &frame(7), &mut batch);
        order.offer(8, &frame(8), &mut batch);
        assert!(order.gap_deadline().is_some());
        assert_eq!(sent(&mut batch), "5 ");
        order.offer(6, &frame(6), &mut batch);
        assert!(order.gap_deadline().is_none());
        assert_eq!(sent(&mut batch), "6 7 8 ");
        order.offer(7, &frame(7), &mut batch);
        order.offer(3, &frame(3), &mut batch);
        assert_eq!(batch.take(), None, "nothing sent twice");
        assert_eq!(order.last, 8);
        assert_eq!(order.gap_deadline(), None, "no gap, no deadline");
    }

    #[test]
    fn a_gap_keeps_its_first_deadline_while_other_events_come() {
        let (mut order, mut batch) = (InOrder::after(1), Batch::default());
        let before = Instant::now();
        order.offer(3, &frame(3), &mut batch);
        let deadline = order.gap_deadline().expect("a gap");
        assert!(deadline >= before + GAP_WAIT && deadline <= Instant::now() + GAP_WAIT);
        std::thread::sleep(Duration::from_millis(5));
        order.offer(4, &frame(4), &mut batch);
        assert_eq!(
            order.gap_deadline(),
            Some(deadline),
            "not pushed back by a later event"
        );
        order.offer(2, &frame(2), &mut batch);
        assert_eq!(order.gap_deadline(), None);
        assert_eq!(sent(&mut batch), "2 3 4 ");
    }

    #[test]
    fn a_gap_filled_from_the_log_releases_what_was_held_after_it() {
        let (mut order, mut batch) = (InOrder::after(1), Batch::default());
        order.offer(3, &frame(3), &mut batch);
        order.offer(5, &frame(5), &mut batch);
        assert_eq!(batch.take(), None);
        let logged = |seq| ConnectionEvent {
            connection_id: 1,
            seq,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            body: app::model::EventBody::Onboarding {
                step: "started".into(),
                message: "m".into(),
                failed: false,
            },
        };
        // The log has 2 and 3 (3 was held and is not sent twice); 4 is still missing.
        order.fill(&logged(2), &mut batch);
        order.fill(&logged(3), &mut batch);
        assert_eq!(order.last, 3);
        assert!(order.gap_deadline().is_some(), "5 still waits for 4");
        order.offer(4, &frame(4), &mut batch);
        assert!(order.gap_deadline().is_none());
        let out = String::from_utf8_lossy(&batch.take().expect("sent")).to_string();
        let ids: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("id: ")).collect();
        assert_eq!(ids, ["2", "3", "4", "5"]);
    }

    #[test]
    fn http1_sends_a_frame_whole() {
        let frame = Bytes::from(vec![b'x'; 800]);
        let slices: Vec<Bytes> = pieces(frame.clone(), false).collect();
        assert_eq!(slices, vec![frame]);
    }
}
