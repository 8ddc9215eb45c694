//! An HTTP/2 connection's event streams run inside the connection's own task, not in a tokio
//! task each. One published event wakes every subscriber's stream: with a task per stream that
//! is 25,000 tasks through tokio's run queues per replica at 50,000 subscribers over two, far
//! more than a worker's own queue holds, so most of the pass overflows to the shared queue, and
//! the streams already served, woken again by the next event, run ahead of those still waiting
//! for the first (docs/BENCHMARKS.md, issue 13). Here an event stream's wake reaches its
//! connection's task: a pass is one task per connection (the queues hold them in order), and the
//! task polls its woken streams in the order they were woken, then writes what they queued at
//! once.
//!
//! Only event streams (a request that asks for `text/event-stream`) run here. Every other
//! request is spawned as before, so one connection's JSON requests still run on both workers
//! side by side: run here too, an HTTP/2 JSON read over one connection fell by a third
//! (BENCHMARKS, eighteenth session). hyper calls the service for a request and hands the
//! future it returned to the executor straight after, in the connection's poll; `Marking` tells
//! the executor which kind the next one is. A hint only: were the order ever different, a
//! stream would be spawned or a JSON request run here, each still served.
use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex, MutexGuard,
    },
    task::{Context, Poll, Wake, Waker},
};

use axum::http::{header, Request, Version};
use futures::{future::BoxFuture, task::AtomicWaker, FutureExt};

/// How many times one turn of the connection's task goes round (its streams, then the
/// connection) while something it polled woke another part of it. A stream's DATA waits for the
/// connection to assign it capacity and the connection's write for the streams' DATA: without
/// these rounds each hand-over would be a trip to the back of the run queue, behind every other
/// connection's turn (measured in the eighteenth session: first-event p99 470-867 ms instead of
/// 132-264 at 50,000). The bound keeps one busy connection from holding its thread.
const ROUNDS: usize = 8;

/// The executor hyper is given for one connection: event streams go to that connection's task
/// (`drive`), everything else to tokio.
#[derive(Clone, Default)]
pub struct ConnectionStreams {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    started: Mutex<Vec<BoxFuture<'static, ()>>>,
    /// The streams woken since their last poll, by place in `Streams`, in the order woken.
    ready: Mutex<Vec<usize>>,
    /// The next future hyper hands over is an event stream's (set by `Marking`).
    next_here: AtomicBool,
    /// A stream was woken (or started) since the round began: the turn goes round again.
    woken: AtomicBool,
    /// The connection was woken during its own poll (by itself, or by a spawned request's
    /// task on another thread). Without event streams the task goes to the back of the run
    /// queue, as tokio does with a task woken during its poll: going round for these kept a
    /// connection that carries only JSON requests polling (and writing) up to eight times a
    /// turn.
    conn_woken: AtomicBool,
    /// The task is inside its turn: a wake only sets `woken` or `conn_woken`, and the end of
    /// the round decides whether the turn goes round again.
    polling: AtomicBool,
    /// The connection's task, woken when something is woken outside its turn.
    task: AtomicWaker,
}

/// Pushes and drains only: a poisoned list is still whole.
fn lock<T>(list: &Mutex<T>) -> MutexGuard<'_, T> {
    list.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn started(&self) -> MutexGuard<'_, Vec<BoxFuture<'static, ()>>> {
        lock(&self.started)
    }

    /// A stream is woken or started. With `drive`'s stores and loads, all SeqCst: either the
    /// turn sees `woken`, or this sees the turn has ended and wakes the task.
    fn wake_streams(&self) {
        self.woken.store(true, SeqCst);
        if !self.polling.load(SeqCst) {
            self.task.wake();
        }
    }
}

/// One stream's waker: queues the stream (once until it is polled) and wakes the connection.
struct StreamWake {
    place: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for StreamWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, SeqCst) {
            lock(&self.shared.ready).push(self.place);
        }
        self.shared.wake_streams();
    }
}

/// One open stream: its future, its waker, and the waker's queued flag.
type Stream = (BoxFuture<'static, ()>, Waker, Arc<StreamWake>);

/// The connection's event streams. Not `FuturesUnordered`: that ends its poll (and asks to be
/// polled again) once two of its futures have woken themselves, and a stream wakes itself
/// whenever the connection gives it send capacity at once, so each round polled two or three of
/// a connection's 100 streams, and one event took a connection 16 rounds in two turns of the
/// run queue (measured: 8 rounds in nearly every turn during a burst). Here a round polls every
/// stream woken before it, once.
struct Streams {
    shared: Arc<Shared>,
    places: Vec<Option<Stream>>,
    free: Vec<usize>,
}

impl Streams {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            places: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Takes the streams started since the last round; each is polled in this one.
    fn start(&mut self) {
        let started = std::mem::take(&mut *self.shared.started());
        for future in started {
            let place = self.free.pop().unwrap_or(self.places.len());
            // Queued already: polled in this round, like any stream woken before it.
            let wake = Arc::new(StreamWake {
                place,
                queued: AtomicBool::new(true),
                shared: self.shared.clone(),
            });
            lock(&self.shared.ready).push(place);
            let entry = Some((future, Waker::from(wake.clone()), wake));
            match self.places.get_mut(place) {
                Some(slot) => *slot = entry,
                None => self.places.push(entry),
            }
        }
    }

    /// Whether the connection has event streams open.
    fn any(&self) -> bool {
        self.free.len() < self.places.len()
    }

    /// Polls every stream woken before this call, once each, in the order woken; drops those
    /// that end. A stream woken while this runs (itself included) waits for the next round.
    fn poll_woken(&mut self) {
        let woken = std::mem::take(&mut *lock(&self.shared.ready));
        for place in woken {
            let Some(Some((future, waker, wake))) = self.places.get_mut(place) else {
                continue;
            };
            // Cleared first: a wake during the poll queues it for the next round.
            wake.queued.store(false, SeqCst);
            if future
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
            {
                if let Some(slot) = self.places.get_mut(place) {
                    *slot = None;
                }
                self.free.push(place);
            }
        }
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// The connection's waker (what hyper and h2 wake it with).
    fn wake_by_ref(self: &Arc<Self>) {
        // As in `wake_streams`, with `conn_woken`.
        self.conn_woken.store(true, SeqCst);
        if !self.polling.load(SeqCst) {
            self.task.wake();
        }
    }
}

impl<F> hyper::rt::Executor<F> for ConnectionStreams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        if !self.shared.next_here.swap(false, SeqCst) {
            tokio::spawn(future);
            return;
        }
        // tokio would end only the panicking stream's task; so does this, not the connection.
        // A combinator, not an `async` block: one that moves `future` in and awaits it keeps
        // room for it twice (392 bytes each here; this is the size of `future` alone).
        let stream = AssertUnwindSafe(future).catch_unwind().map(|ended| {
            if ended.is_err() {
                tracing::error!("an event stream panicked and was dropped");
            }
        });
        // The connection's own work (its streams, the whole pass) is bounded by the stream
        // count, so each stream is polled outside tokio's per-task budget: a budget spent
        // part-way through would split the pass over two turns of the run queue.
        self.shared
            .started()
            .push(Box::pin(tokio::task::coop::unconstrained(stream)));
        self.shared.wake_streams();
    }
}

/// Whether a request is an event stream: an HTTP/2 request that asks for `text/event-stream`
/// (as a browser's `EventSource` does). HTTP/1.1 carries one request at a time and never hands
/// one to the executor.
pub fn is_event_stream<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_2
        && req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

impl ConnectionStreams {
    /// The future hyper hands over next is an event stream's: run it in this connection's task.
    fn next_is_stream(&self) {
        self.shared.next_here.store(true, SeqCst);
    }

    /// Runs `conn` and every event stream it starts, until `conn` ends; streams left then are
    /// dropped with it (their connection is gone).
    pub async fn drive<C: Future>(&self, conn: C) -> C::Output {
        let mut conn = std::pin::pin!(conn);
        let mut streams = Streams::new(self.shared.clone());
        // Everything in the turn is polled with this waker, so a wake during the turn is seen.
        let waker = Waker::from(self.shared.clone());
        let shared = &self.shared;
        std::future::poll_fn(|cx| {
            shared.task.register(cx.waker());
            let mut inner = Context::from_waker(&waker);
            for _ in 0..ROUNDS {
                shared.polling.store(true, SeqCst);
                shared.woken.store(false, SeqCst);
                streams.start();
                streams.poll_woken();
                // Then the connection: it reads new requests and writes what the streams queued.
                // Whatever woke it before this poll is seen by it.
                shared.conn_woken.store(false, SeqCst);
                if let Poll::Ready(out) = conn.as_mut().poll(&mut inner) {
                    shared.polling.store(false, SeqCst);
                    return Poll::Ready(out);
                }
                shared.polling.store(false, SeqCst);
                // With event streams the connection goes round for its own wakes too: the
                // writer's one yield before a small write (`coalesce`) would otherwise send the
                // end of each pass to the back of the run queue, when every stream here has
                // already queued its part.
                let conn_woken = shared.conn_woken.load(SeqCst);
                let again = shared.woken.load(SeqCst) || (conn_woken && streams.any());
                if !again {
                    if conn_woken {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
            }
            // Still busy: the back of the run queue, as tokio would put a task that yields.
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }
}

/// The connection's hyper service: tells its `ConnectionStreams` which requests are event
/// streams before hyper hands their futures over.
#[derive(Clone)]
pub struct Marking<S> {
    pub inner: S,
    pub streams: ConnectionStreams,
}

impl<S, B> hyper::service::Service<Request<B>> for Marking<S>
where
    S: hyper::service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: Request<B>) -> Self::Future {
        if is_event_stream(&req) {
            self.streams.next_is_stream();
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::rt::Executor;

    use super::*;

    fn request(version: Version, accept: Option<&str>) -> Request<String> {
        let mut req = Request::builder()
            .version(version)
            .uri("/api/connections/1/events");
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        req.body(String::new()).expect("request")
    }

    #[test]
    fn an_event_stream_is_an_http2_request_for_text_event_stream() {
        assert!(is_event_stream(&request(
            Version::HTTP_2,
            Some("text/event-stream")
        )));
        assert!(!is_event_stream(&request(
            Version::HTTP_2,
            Some("application/json")
        )));
        assert!(!is_event_stream(&request(Version::HTTP_2, None)));
        assert!(!is_event_stream(&request(
            Version::HTTP_11,
            Some("text/event-stream")
        )));
    }

    /// Where a handed-over future ran: in the driving task, or in a task of its own.
    fn runs_on_its_own_task(
        exec: &ConnectionStreams,
        tx: tokio::sync::mpsc::UnboundedSender<bool>,
    ) {
        let here = tokio::task::try_id();
        exec.execute(async move {
            let _ = tx.send(tokio::task::try_id() != here);
        });
    }

    #[tokio::test]
    async fn event_streams_run_in_the_connection_task_and_other_requests_are_spawned() {
        let streams = ConnectionStreams::default();
        let exec = streams.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let marking = Marking {
            inner: hyper::service::service_fn(|_req: Request<String>| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new()))
            }),
            streams: streams.clone(),
        };
        let out = streams
            .drive(async move {
                use hyper::service::Service;
                // As hyper does: call the service for a request, then hand its future over.
                for accept in ["text/event-stream", "application/json"] {
                    drop(marking.call(request(Version::HTTP_2, Some(accept))));
                    runs_on_its_own_task(&exec, tx.clone());
                }
                let first = rx.recv().await;
                let second = rx.recv().await;
                (first, second)
            })
            .await;
        let mut got = [out.0, out.1];
        got.sort();
        // The stream ran in the driving task (false), the JSON request on a task of its own.
        assert_eq!(got, [Some(false), Some(true)]);
    }

    /// A stream given send capacity at once wakes itself inside its own poll; a hundred such
    /// on one connection must still all be served in the same turn, not two or three a round.
    #[tokio::test]
    async fn every_woken_stream_is_polled_each_round_even_those_that_woke_themselves() {
        const STREAMS: usize = 100;
        let streams = ConnectionStreams::default();
        let exec = streams.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut conn_polls = 0;
        let mut done = 0;
        let polls = streams
            .drive(std::future::poll_fn(|_cx| {
                conn_polls += 1;
                if conn_polls == 1 {
                    for _ in 0..STREAMS {
                        let tx = tx.clone();
                        let mut polled = false;
                        exec.next_is_stream();
                        exec.execute(std::future::poll_fn(move |cx| {
                            if polled {
                                let _ = tx.send(());
                                return Poll::Ready(());
                            }
                            polled = true;
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }));
                    }
                }
                while rx.try_recv().is_ok() {
                    done += 1;
                }
                if done == STREAMS {
                    Poll::Ready(conn_polls)
                } else {
                    Poll::Pending
                }
            }))
            .await;
        // Round 1 starts them, round 2 polls each once, round 3 ends each.
        assert!(polls <= 3, "the connection was polled {polls} times");
    }

    /// Drives a connection that wakes itself in each of its polls and ends in its third, with an
    /// event stream opened in its first poll or not: how many turns of its task that took.
    async fn turns_for_three_self_woken_polls(with_stream: bool) -> usize {
        let streams = ConnectionStreams::default();
        let exec = streams.clone();
        let conn_polls = std::cell::Cell::new(0);
        let conn = std::future::poll_fn(|cx| {
            conn_polls.set(conn_polls.get() + 1);
            if conn_polls.get() == 1 && with_stream {
                exec.next_is_stream();
                exec.execute(std::future::pending::<()>());
            }
            if conn_polls.get() == 3 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let mut driving = std::pin::pin!(streams.drive(conn));
        let mut turns = 0;
        std::future::poll_fn(|cx| {
            turns += 1;
            driving.as_mut().poll(cx)
        })
        .await;
        assert_eq!(conn_polls.get(), 3);
        turns
    }

    /// A connection woken during its own poll (as a spawned JSON request's task on another
    /// thread does) is polled again in a later turn of the run queue, as tokio polls any task,
    /// not straight away in the same one.
    #[tokio::test]
    async fn a_connection_that_wakes_itself_waits_for_its_next_turn() {
        assert_eq!(
            turns_for_three_self_woken_polls(false).await,
            3,
            "one poll a turn"
        );
    }

    /// With an event stream open, the connection's own wake (the writer's yield before a small
    /// write) is served in the same turn: the stream's part of a pass is already queued.
    #[tokio::test]
    async fn with_an_event_stream_a_connection_that_wakes_itself_goes_round_in_its_turn() {
        assert_eq!(turns_for_three_self_woken_polls(true).await, 1, "one turn");
    }

    #[tokio::test]
    async fn streams_run_until_the_connection_ends_and_a_panic_ends_only_its_own() {
        let streams = ConnectionStreams::default();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
        let exec = streams.clone();
        let conn = async move {
            // A stream started from the connection's poll, one started later from elsewhere,
            // and one that panics.
            let tx = done_tx.clone();
            exec.next_is_stream();
            exec.execute(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let _ = tx.send("first");
            });
            exec.next_is_stream();
            exec.execute(async { panic!("a stream's handler panicked") });
            let later = exec.clone();
            let tx = done_tx.clone();
            tokio::spawn(async move {
                later.next_is_stream();
                later.execute(async move {
                    let _ = tx.send("second");
                });
            });
            let _ = end_rx.await;
            "ended"
        };
        let driving = tokio::spawn(async move { streams.drive(conn).await });
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(5), done_rx.recv())
                .await
                .expect("every started stream runs")
                .expect("a stream")
        };
        let mut seen = vec![next().await, next().await];
        seen.sort_unstable();
        assert_eq!(seen, ["first", "second"]);
        assert!(
            !driving.is_finished(),
            "the connection outlives its streams"
        );
        end_tx.send(()).expect("the connection listens");
        let ended = tokio::time::timeout(Duration::from_secs(5), driving)
            .await
            .expect("the connection's end ends the task");
        assert_eq!(ended.expect("no panic escapes"), "ended");
    }

    #[tokio::test]
    async fn streams_left_when_the_connection_ends_are_dropped() {
        let streams = ConnectionStreams::default();
        let exec = streams.clone();
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let out = streams
            .drive(async move {
                exec.next_is_stream();
                exec.execute(async move {
                    let _held = held_tx;
                    std::future::pending::<()>().await;
                });
                tokio::task::yield_now().await;
            })
            .await;
        assert_eq!(out, ());
        let held = tokio::time::timeout(Duration::from_secs(5), held_rx)
            .await
            .expect("the endless stream was dropped, not left running");
        assert!(held.is_err(), "the endless stream was dropped");
    }
}
