//! Live, not replay: streams that are already open (their preamble received, nothing else) when
//! Connect or a Rescan starts receive every event of the run as it happens, in order, each once,
//! exactly as the log stores it. Streams opened mid-run with the pre-run position (`?after=`)
//! get the same: the stored backlog joined to the live events without a gap or a repeat.
//!
//! On a multi-thread runtime, so the scan's concurrent check writers, the stream handlers and
//! the readers here run on different threads at once; many Rescans in one test.
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};

use crate::helpers::{Backend, TestApp};
use crate::onboarding::{authorise, stored_seq, validated, wait_onboarding};
use crate::sse::SseFrames;

/// Streams open before the action starts.
const SUBSCRIBERS: usize = 5;
/// Streams opened while the run is writing its events.
const JOINERS: usize = 3;
/// Rescans in the Rescan test.
const ROUNDS: usize = 20;
/// Writers on other threads appending events during each Rescan, and how many each: the
/// scan's own writers are futures of one task, these run truly in parallel with them.
const WRITERS: usize = 3;
const WRITES: usize = 5;
/// Every provider answer is delayed this long, so a run lasts long enough that an event
/// delivered live arrives measurably before the run's last event is written.
const PROVIDER_DELAY_MS: u64 = 40;

const PREAMBLE: &[u8] = b"retry: 1000\n\n";

/// One event as a stream delivered it, and when it arrived here.
struct Received {
    seq: i64,
    name: String,
    data: Value,
    arrived: DateTime<Utc>,
}

/// An open event stream, read by its own task.
struct Subscriber {
    events: mpsc::UnboundedReceiver<Received>,
    got: Vec<Received>,
    reader: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Opens the connection's stream after `after` and returns once its first chunk, which starts
/// with the preamble, has arrived: from then on the stream is subscribed to the live channel.
async fn subscribe(app: &TestApp, id: i64, after: i64) -> Subscriber {
    let mut r = app
        .client
        .get(format!(
            "{}/api/connections/{id}/events?after={after}",
            app.base
        ))
        .send()
        .await
        .expect("open the stream");
    assert_eq!(r.status(), 200, "the stream opens");
    let first = tokio::time::timeout(Duration::from_secs(30), r.chunk())
        .await
        .expect("the preamble in time")
        .expect("chunk")
        .expect("open stream");
    assert!(first.starts_with(PREAMBLE), "preamble first: {first:?}");
    let (tx, events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut frames = SseFrames::default();
        let mut chunk = first.slice(PREAMBLE.len()..);
        loop {
            let arrived = Utc::now();
            for (seq, name, data) in frames.push(&chunk) {
                let e = Received {
                    seq,
                    name,
                    data,
                    arrived,
                };
                if tx.send(e).is_err() {
                    return;
                }
            }
            chunk = match r.chunk().await {
                Ok(Some(c)) => c,
                _ => return,
            };
        }
    });
    Subscriber {
        events,
        got: Vec::new(),
        reader,
    }
}

impl Subscriber {
    /// Waits (generously) until the stream has delivered `last`, then takes whatever else has
    /// already arrived (a repeat would show).
    async fn until(&mut self, last: i64, who: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.got.last().map(|e| e.seq) < Some(last) {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("{who}: event {last} never arrived; got {:?}", self.seqs())
                })
                .unwrap_or_else(|| panic!("{who}: the stream ended; got {:?}", self.seqs()));
            self.got.push(e);
        }
        while let Ok(e) = self.events.try_recv() {
            self.got.push(e);
        }
    }

    fn seqs(&self) -> Vec<i64> {
        self.got.iter().map(|e| e.seq).collect()
    }

    /// Exactly the stored events, in order, each once, each as stored.
    fn assert_matches(&self, stored: &[app::model::ConnectionEvent], who: &str) {
        let want: Vec<i64> = stored.iter().map(|e| e.seq).collect();
        assert_eq!(self.seqs(), want, "{who}: every event once, in order");
        for (got, e) in self.got.iter().zip(stored) {
            assert_eq!(got.name, e.body.name(), "{who}: event {} named", e.seq);
            assert_eq!(got.data["seq"], json!(e.seq), "{who}");
            assert_eq!(
                got.data["body"],
                serde_json::to_value(&e.body).expect("json"),
                "{who}: event {} as stored",
                e.seq
            );
        }
    }
}

/// Opens `JOINERS` streams at `after` while the run writes: the j-th once the log has grown by
/// 2j+1 events past `after` (every run here writes more than that).
async fn join_mid_run(app: &TestApp, id: i64, after: i64) -> Vec<Subscriber> {
    let mut joiners = Vec::new();
    for j in 0..JOINERS as i64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = stored_seq(app, id).await;
            if now > after + 2 * j {
                break;
            }
            assert!(Instant::now() < deadline, "the run wrote no events");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        joiners.push(subscribe(app, id, after).await);
    }
    joiners
}

/// The ready streams each got the run's first event before its last was written: live, not a
/// replay after the fact.
fn assert_live(subs: &[Subscriber], stored: &[app::model::ConnectionEvent], round: &str) {
    let last_written = stored.last().expect("the run wrote events").at;
    for (i, s) in subs.iter().enumerate() {
        let first = s.got.first().expect("events");
        assert!(
            first.arrived < last_written,
            "{round} subscriber {i}: the first event arrived at {} but the run's last was written at {last_written}",
            first.arrived
        );
    }
}

/// Connect: five streams open on the Validated connection before the named contact allows;
/// onboarding runs; each stream gets the whole run live.
async fn subscribers_open_before_connect_get_the_run_live(backend: Backend) {
    let app = crate::helpers::spawn(backend).await;
    // More streams than one person would open: a test setting, not a product change.
    app.state.streams.set_limit(100);
    let id = validated(&app).await;
    app.faults(json!({ "slow_ms": PROVIDER_DELAY_MS })).await;
    let before = stored_seq(&app, id).await;
    let mut subs =
        futures::future::join_all((0..SUBSCRIBERS).map(|_| subscribe(&app, id, before))).await;
    assert_eq!(
        stored_seq(&app, id).await,
        before,
        "every stream was open before the run's first event existed"
    );
    assert!(app.state.hub.subscribers(id) >= SUBSCRIBERS);

    let run = {
        let app = &app;
        async move { authorise(app, id, "ada@example.com").await }
    };
    let (done, mut joiners) = tokio::join!(run, join_mid_run(&app, id, before));
    assert_eq!(done.0, 303, "the named contact allows");
    wait_onboarding(&app, id, "complete").await;
    // The record reads Complete a moment before the run writes its last event: wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let stored = app::server::events::since(&app.state.db, id, before)
            .await
            .expect("log");
        let last = stored
            .last()
            .and_then(|e| serde_json::to_value(&e.body).ok())
            .and_then(|b| b["message"].as_str().map(String::from));
        if last.as_deref() == Some("Onboarding Complete") {
            break stored;
        }
        assert!(
            Instant::now() < deadline,
            "the run never wrote its last event"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let messages: Vec<String> = stored
        .iter()
        .filter_map(|e| serde_json::to_value(&e.body).ok())
        .filter_map(|b| b["message"].as_str().map(String::from))
        .collect();
    assert_eq!(
        messages.first().map(String::as_str),
        Some("Provider onboarding started"),
        "{messages:?}"
    );
    assert_eq!(
        messages.last().map(String::as_str),
        Some("Onboarding Complete"),
        "{messages:?}"
    );
    let last = stored.last().expect("events").seq;
    for (i, s) in subs.iter_mut().enumerate() {
        let who = format!("subscriber {i}");
        s.until(last, &who).await;
        s.assert_matches(&stored, &who);
    }
    assert_live(&subs, &stored, "connect");
    for (j, s) in joiners.iter_mut().enumerate() {
        let who = format!("joiner {j}");
        s.until(last, &who).await;
        s.assert_matches(&stored, &who);
    }
}

/// Rescan, many times: each round, five streams open before the Rescan, three more join while
/// the checks write their events concurrently (and three writers on other threads add theirs);
/// every stream gets the round's events exactly.
async fn subscribers_open_before_each_rescan_get_every_event_live(backend: Backend) {
    let app = crate::helpers::spawn(backend).await;
    app.state.streams.set_limit(100);
    let id = validated(&app).await;
    app.faults(json!({ "slow_ms": PROVIDER_DELAY_MS })).await;
    let rounds = async {
        for round in 0..ROUNDS {
            let round = format!("round {round}");
            let before = stored_seq(&app, id).await;
            let mut subs =
                futures::future::join_all((0..SUBSCRIBERS).map(|_| subscribe(&app, id, before)))
                    .await;
            assert_eq!(
                stored_seq(&app, id).await,
                before,
                "{round}: every stream was open before the run's first event existed"
            );
            let r = app.rescan(id).await;
            assert_eq!(r.status, 200, "{round}: {:?}", r.body);
            // Meanwhile, writers on other threads append through the product's own writer.
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let state = app.state.clone();
                    tokio::spawn(async move {
                        for k in 0..WRITES {
                            let body = app::model::EventBody::Onboarding {
                                step: "note".into(),
                                message: format!("writer {w}, event {k}"),
                                failed: false,
                            };
                            app::server::events::record(&state, id, body).await;
                        }
                    })
                })
                .collect();
            let mut joiners = join_mid_run(&app, id, before).await;
            for w in writers {
                w.await.expect("writer");
            }
            app.wait_for_state(id, "validated").await;

            let stored = app::server::events::since(&app.state.db, id, before)
                .await
                .expect("log");
            assert!(
                stored.len() > 10 + WRITERS * WRITES,
                "{round}: a scan records more than ten events, the writers {WRITERS} × {WRITES}"
            );
            let last = stored.last().expect("events").seq;
            for (i, s) in subs.iter_mut().enumerate() {
                let who = format!("{round} subscriber {i}");
                s.until(last, &who).await;
                s.assert_matches(&stored, &who);
            }
            assert_live(&subs, &stored, &round);
            for (j, s) in joiners.iter_mut().enumerate() {
                let who = format!("{round} joiner {j}");
                s.until(last, &who).await;
                s.assert_matches(&stored, &who);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(240), rounds)
        .await
        .expect("20 rescans within 240 s");
}

mod streams_open_before_connect_get_the_run_live {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::subscribers_open_before_connect_get_the_run_live(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::subscribers_open_before_connect_get_the_run_live(Backend::Postgres).await
    }
}

mod streams_open_before_each_of_20_rescans_get_every_event_live {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::subscribers_open_before_each_rescan_get_every_event_live(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::subscribers_open_before_each_rescan_get_every_event_live(Backend::Postgres).await
    }
}

/// Streams opened in a crowd while the connection's newest event is being written: each gets
/// that event, from the backlog or live. The one a stream could lose is an event committed after
/// its backlog was read and published before it was listening, when no later event follows to
/// reveal the gap: that is why each round writes exactly one event, into the middle of the
/// crowd's arrival, and many rounds run.
async fn streams_opened_while_the_last_event_is_written_get_it(backend: Backend) {
    let app = crate::helpers::spawn(backend).await;
    app.state.streams.set_limit(1000);
    let id = validated(&app).await;
    for round in 0..CROWD_ROUNDS {
        let after = stored_seq(&app, id).await;
        let mut arriving: futures::stream::FuturesUnordered<_> =
            (0..CROWD).map(|_| subscribe(&app, id, after)).collect();
        // Half the crowd is listening (their preamble came) …
        let mut crowd = Vec::new();
        while crowd.len() < CROWD / 2 {
            crowd.push(arriving.next().await.expect("a stream"));
        }
        // … the other half is on its way while the event is written.
        let write = app::server::events::record(
            &app.state,
            id,
            app::model::EventBody::Onboarding {
                step: "test".into(),
                message: format!("round {round}"),
                failed: false,
            },
        );
        let (rest, ()) = tokio::join!(arriving.collect::<Vec<_>>(), write);
        crowd.extend(rest);
        let last = stored_seq(&app, id).await;
        assert_eq!(last, after + 1, "one event per round");
        for (i, s) in crowd.iter_mut().enumerate() {
            s.until(last, &format!("round {round}, stream {i}")).await;
            assert_eq!(s.seqs(), vec![last], "round {round}, stream {i}: once");
        }
    }
}

/// Streams per round, and rounds.
const CROWD: usize = 24;
const CROWD_ROUNDS: usize = 60;

mod streams_opened_while_the_last_event_is_written_get_it {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::streams_opened_while_the_last_event_is_written_get_it(Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::streams_opened_while_the_last_event_is_written_get_it(Backend::Postgres).await
    }
}
