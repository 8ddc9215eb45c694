//! Admission: at most `limit` requests are being handled at once; the rest wait their turn
//! (first come, first served) before any of the handler stack is built for them.
//!
//! Why: a request being handled holds its middleware and handler futures (a few KB: session
//! lookup, database queries), and a burst of tens of thousands of subscribers arriving together
//! would otherwise hold them all at once while they queue for the database's eight connections.
//! Waiting here costs the request only itself. A response body (an event stream) is not covered:
//! the turn ends when the handler has returned its response.
//!
//! Let through without a turn: the provider's calls to `/inbound/v1/…` (a check that is being
//! handled may be waiting on exactly such a call, which must not queue behind it), the
//! liveness and readiness probes (a burst must not look like a dead server to an orchestrator)
//! and the metrics (a burst is when the operator needs them; a scrape without the token is
//! refused before any work, see `edge::metrics`).
//!
//! The queue's length is a gauge in the metrics (`impact_admission_queue_length`).
//!
//! The queue is bounded: when `max_queued` requests already wait, the next is answered 503 with
//! `Retry-After` at once, rather than holding its connection for a turn that is far off.
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use tokio::sync::Semaphore;

/// Shared by every request of one server.
#[derive(Clone)]
pub struct Gate {
    turns: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
}

/// Counts one waiting request for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    /// Counts one more waiting request; returns how many waited before it.
    fn enter(count: &'a AtomicUsize) -> (Self, usize) {
        let before = count.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!(app::server::metrics::ADMISSION_QUEUE).increment(1.0);
        (Self(count), before)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(app::server::metrics::ADMISSION_QUEUE).decrement(1.0);
    }
}

impl Gate {
    /// `limit` of at least 1 (0 is taken as 1: nothing would ever be served); the queue is
    /// unbounded until `queue_bound`.
    pub fn new(limit: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(limit.max(1))),
            waiting: Arc::default(),
            max_queued: usize::MAX,
        }
    }

    /// At most `max_queued` requests wait; more are answered 503 at once.
    pub fn queue_bound(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// Requests that could start now.
    pub fn available(&self) -> usize {
        self.turns.available_permits()
    }

    /// Requests waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// Paths that never wait for a turn.
fn exempt(path: &str) -> bool {
    path.starts_with("/inbound/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

/// Middleware (outermost): waits for a turn, then runs the rest of the stack.
pub async fn admit(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let _turn = match gate.turns.try_acquire() {
        Ok(turn) => Some(turn),
        Err(_) => {
            let (_waiting, before) = Waiting::enter(&gate.waiting);
            if before >= gate.max_queued {
                return busy();
            }
            // The semaphore is never closed, so acquiring only fails if it were; serve rather
            // than fail.
            gate.turns.acquire().await.ok()
        }
    };
    next.run(req).await
}

fn busy() -> Response {
    let mut res = crate::edge::json::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "The server is busy. Try again in a moment.",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, sync::atomic::Ordering, time::Duration};

    use axum::{body::Body, middleware, routing::get, Router};
    use futures::StreamExt;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    use super::*;

    /// A gate of `limit` turns in front of a router whose `/slow`, `/inbound/v1/ping` and
    /// `/healthz` handlers count themselves in (`inside`) and wait for `release`; `/stream`
    /// answers at once with a body that never ends.
    struct Fixture {
        gate: Gate,
        router: Router,
        inside: Arc<AtomicUsize>,
        release: Arc<Notify>,
    }

    impl Fixture {
        fn new(limit: usize) -> Self {
            Self::queued(limit, usize::MAX)
        }

        fn queued(limit: usize, max_queued: usize) -> Self {
            let (gate, inside, release) = (
                Gate::new(limit).queue_bound(max_queued),
                Arc::new(AtomicUsize::new(0)),
                Arc::new(Notify::new()),
            );
            let slow = {
                let (inside, release) = (inside.clone(), release.clone());
                move || async move {
                    inside.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    "done"
                }
            };
            let router = Router::new()
                .route("/slow", get(slow.clone()))
                .route("/inbound/v1/ping", get(slow.clone()))
                .route("/healthz", get(slow))
                .route(
                    "/stream",
                    get(|| async {
                        Body::from_stream(futures::stream::pending::<
                            Result<bytes::Bytes, std::io::Error>,
                        >())
                    }),
                )
                .layer(middleware::from_fn_with_state(gate.clone(), admit));
            Self {
                gate,
                router,
                inside,
                release,
            }
        }

        fn inside(&self) -> usize {
            self.inside.load(Ordering::SeqCst)
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fn get_req(path: &str) -> Request {
        Request::get(path).body(Body::empty()).expect("request")
    }

    #[tokio::test]
    async fn only_limit_requests_are_handled_at_once_and_the_rest_wait_their_turn() {
        let f = Fixture::new(2);
        let calls: Vec<_> = (0..3)
            .map(|_| tokio::spawn(f.router.clone().oneshot(get_req("/slow"))))
            .collect();
        settle().await;
        assert_eq!(f.inside(), 2, "two handled, the third waits");
        assert_eq!(f.gate.available(), 0);
        f.release.notify_waiters();
        settle().await;
        assert_eq!(f.inside(), 3, "the third got its turn");
        f.release.notify_waiters();
        for c in calls {
            let res = c.await.expect("task").expect("response");
            assert_eq!(res.status(), 200);
        }
        assert_eq!(f.gate.available(), 2, "every turn given back");
    }

    #[tokio::test]
    async fn beyond_the_queue_bound_a_request_is_told_to_come_back_at_once() {
        let f = Fixture::queued(1, 1);
        let held = tokio::spawn(f.router.clone().oneshot(get_req("/slow")));
        settle().await;
        let queued = tokio::spawn(f.router.clone().oneshot(get_req("/slow")));
        settle().await;
        let res = f
            .router
            .clone()
            .oneshot(get_req("/slow"))
            .await
            .expect("response");
        assert_eq!(res.status(), 503);
        assert_eq!(
            res.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        f.release.notify_waiters();
        assert_eq!(held.await.expect("task").expect("response").status(), 200);
        settle().await;
        f.release.notify_waiters();
        assert_eq!(queued.await.expect("task").expect("response").status(), 200);
        assert_eq!(
            f.gate.waiting.load(Ordering::SeqCst),
            0,
            "the queue is empty again"
        );
    }

    #[tokio::test]
    async fn the_providers_inbound_calls_and_the_probes_never_wait() {
        for path in ["/inbound/v1/ping", "/healthz"] {
            let f = Fixture::new(1);
            let held = tokio::spawn(f.router.clone().oneshot(get_req("/slow")));
            settle().await;
            let exempt = tokio::spawn(f.router.clone().oneshot(get_req(path)));
            settle().await;
            assert_eq!(
                f.inside(),
                2,
                "{path} is handled while /slow holds the only turn"
            );
            f.release.notify_waiters();
            assert_eq!(held.await.expect("task").expect("response").status(), 200);
            assert_eq!(exempt.await.expect("task").expect("response").status(), 200);
        }
    }

    #[tokio::test]
    async fn an_open_event_stream_does_not_hold_a_turn() {
        let f = Fixture::new(1);
        let res = f
            .router
            .clone()
            .oneshot(get_req("/stream"))
            .await
            .expect("response");
        let mut body = res.into_body().into_data_stream();
        // The body is still open (nothing has come, nothing ended) …
        assert!(tokio::time::timeout(Duration::from_millis(20), body.next())
            .await
            .is_err());
        // … and its turn is already back.
        assert_eq!(f.gate.available(), 1);
    }
}
