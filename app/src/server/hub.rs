//! The live channel of committed events: one per connection, in shards, each event's frame
//! encoded once, each sequence number sent once. What is published here is in the log already
//! (`events`); a subscriber that falls behind or misses one reads the log.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::model::ConnectionEvent;

/// What every subscriber of a connection receives: a committed event with its server-sent-events
/// frame encoded once at publish time (so fan-out to many subscribers costs a reference count
/// each, not a JSON serialisation each), or a keep-alive comment (`seq` None).
#[derive(Debug)]
pub struct Published {
    pub seq: Option<i64>,
    pub frame: Bytes,
}

impl Published {
    pub fn new(e: &ConnectionEvent) -> Self {
        Self {
            seq: Some(e.seq),
            frame: sse_frame(e),
        }
    }

    /// "Connection `id` has a new event", for the pages that follow every connection.
    fn changed(id: i64) -> Self {
        Self {
            seq: None,
            frame: Bytes::from(format!("event: changed\ndata: {id}\n\n")),
        }
    }

    fn keep_alive() -> Self {
        Self {
            seq: None,
            frame: Bytes::from_static(b":\n\n"),
        }
    }
}

/// `id:` is the sequence number (what the browser sends back as Last-Event-ID), `event:` the
/// event's name, `data:` its JSON on one line (serde_json escapes newlines inside strings).
pub fn sse_frame(e: &ConnectionEvent) -> Bytes {
    let json = serde_json::to_string(e).unwrap_or_else(|_| "null".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {json}\n\n",
        e.seq,
        e.body.name()
    ))
}

type Sender = broadcast::Sender<Arc<Published>>;

/// Subscribers of one connection per broadcast channel, at most. Every receiver of a channel
/// takes the same locks to read an event and to wait for the next; with tens of thousands of
/// them on 2 cores those locks are contended, so a connection's subscribers are spread over as
/// many channels as it takes (each event is sent on each of them: a reference count each).
const SUBSCRIBERS_PER_SHARD: usize = 1024;

/// One connection's live channel, in shards.
struct Channel {
    shards: Vec<Sender>,
}

impl Channel {
    /// A receiver on the first shard with room, or on a new one when all are full. First, not
    /// emptiest: subscribers that arrive together (the streams one HTTP/2 connection opens, or
    /// a balancer's upstream connection carries) share a shard and are woken one after another,
    /// so their connection's writer gathers their frames into one write. Spread over the
    /// emptiest shards (as they were once all of a connection's earlier subscribers had left),
    /// each connection's events went out in several writes: 3.3× the reads for the same bytes
    /// at 50,000 subscribers, and the load generator's CPU doubled (BENCHMARKS, fifteenth
    /// session).
    fn subscribe(&mut self, capacity: usize) -> broadcast::Receiver<Arc<Published>> {
        match self
            .shards
            .iter()
            .find(|tx| tx.receiver_count() < SUBSCRIBERS_PER_SHARD)
        {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(capacity);
                self.shards.push(tx);
                rx
            }
        }
    }

    /// Sends on every shard; false when nobody listens any more.
    fn send(&self, p: &Arc<Published>) -> bool {
        // Every shard, so no short-circuiting `any`.
        let mut listened = false;
        for tx in &self.shards {
            listened |= tx.send(p.clone()).is_ok();
        }
        listened
    }

    fn receivers(&self) -> usize {
        self.shards.iter().map(|tx| tx.receiver_count()).sum()
    }
}

/// The sequence numbers recently sent to one connection's subscribers: the newest, and which of
/// the 64 before it were sent too (events of concurrent writers may be published out of order,
/// and each must still go out once).
#[derive(Default, Debug, Clone, Copy)]
struct Sent {
    newest: i64,
    /// Bit `i` set: `newest - i` was sent.
    window: u64,
}

impl Sent {
    /// Records `seq`; false when it was sent before. One too old to remember is sent again
    /// (streams drop what they already have).
    fn first_time(&mut self, seq: i64) -> bool {
        if seq > self.newest {
            let shift = seq - self.newest;
            self.window = if shift >= 64 { 0 } else { self.window << shift };
            self.window |= 1;
            self.newest = seq;
            return true;
        }
        let back = self.newest - seq;
        if back >= 64 {
            return true;
        }
        let bit = 1u64 << back;
        let first = self.window & bit == 0;
        self.window |= bit;
        first
    }
}

#[derive(Default)]
struct Channels {
    by_connection: HashMap<i64, Channel>,
    /// What was sent per connection that has subscribers: with several replicas an event can
    /// reach the hub twice (its own commit, and the log read on an announcement, `relay`); the
    /// second time is dropped here, not once per subscriber.
    sent: HashMap<i64, Sent>,
    /// Subscribers of every connection's changes (the health dashboard): told which connection
    /// changed, not what (the page reads the dashboard again).
    changes: Option<Channel>,
    /// Set on shutdown: every stream ends and no new one starts.
    closed: bool,
}

/// Live fan-out of committed events: one channel per connection, so a subscriber is only woken
/// for its own connection's events. Keep-alives and shutdown also travel through the channels,
/// so a stream waits on one thing only (no timer or shutdown signal per subscriber: with tens of
/// thousands of subscribers those dominate the cost of a delivery).
#[derive(Clone)]
pub struct Hub {
    channels: Arc<Mutex<Channels>>,
    capacity: usize,
    /// True once closed: what background listeners (`relay`) wait on to stop.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Channels {
    /// Sends "`connection_id` changed" to the change subscribers, if there are any.
    fn tell_change(&mut self, connection_id: i64) {
        let Some(changes) = &self.changes else {
            return;
        };
        let frame = Arc::new(Published::changed(connection_id));
        if !changes.send(&frame) {
            self.changes = None;
        }
    }
}

impl Hub {
    /// `capacity`: how many events a subscriber may fall behind before it must resync from the
    /// log.
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: Arc::default(),
            capacity,
            closed: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, Channels> {
        // Every critical section is a single insert, remove or send, so a poisoned lock still
        // guards a consistent map.
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver of this connection's events from now on. After `close`, one that is already
    /// closed.
    pub fn subscribe(&self, connection_id: i64) -> broadcast::Receiver<Arc<Published>> {
        let mut channels = self.channels();
        if channels.closed {
            return broadcast::channel(1).1;
        }
        channels
            .by_connection
            .entry(connection_id)
            .or_insert_with(|| Channel { shards: Vec::new() })
            .subscribe(self.capacity)
    }

    /// A receiver of a `changed` frame for every event of any connection from now on (and the
    /// keep-alives). After `close`, one that is already closed.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<Published>> {
        let mut channels = self.channels();
        if channels.closed {
            return broadcast::channel(1).1;
        }
        channels
            .changes
            .get_or_insert_with(|| Channel { shards: Vec::new() })
            .subscribe(self.capacity)
    }

    /// Tells the subscribers of every connection's changes that `connection_id` has a new
    /// event: this replica's own commit (`publish`) or another's announcement (`relay`). A
    /// hint, not an event: repeating one is harmless, and what it points at is read afresh.
    pub fn changed(&self, connection_id: i64) {
        self.channels().tell_change(connection_id);
    }

    pub fn publish(&self, events: Vec<ConnectionEvent>) {
        let mut count = 0;
        for e in events {
            // Encoded before the lock is taken: subscribing and other publishers wait on it.
            let published = Arc::new(Published::new(&e));
            let mut channels = self.channels();
            let channels = &mut *channels;
            // Under the same lock as the event's own channel: one lock per event.
            channels.tell_change(e.connection_id);
            if let Some(channel) = channels.by_connection.get(&e.connection_id) {
                let sent = channels.sent.entry(e.connection_id).or_default();
                if !sent.first_time(e.seq) {
                    continue;
                }
                // Nobody listening is fine: the log has it.
                if !channel.send(&published) {
                    channels.by_connection.remove(&e.connection_id);
                    channels.sent.remove(&e.connection_id);
                }
            }
            count += 1;
        }
        super::metrics::events_published(count);
    }

    /// The connections someone here listens to, each with the newest sequence number sent to
    /// them (0 when nothing was sent yet): what `relay` reads the log after.
    pub fn listened(&self) -> Vec<(i64, i64)> {
        let channels = self.channels();
        channels
            .by_connection
            .keys()
            .map(|id| (*id, channels.sent.get(id).map_or(0, |s| s.newest)))
            .collect()
    }

    /// The newest sequence number sent to this connection's subscribers, if anyone listens.
    pub fn newest_sent(&self, connection_id: i64) -> Option<i64> {
        let channels = self.channels();
        channels
            .by_connection
            .contains_key(&connection_id)
            .then(|| channels.sent.get(&connection_id).map_or(0, |s| s.newest))
    }

    /// Sends a keep-alive comment on every channel (so proxies and browsers keep idle streams
    /// open) and drops channels nobody listens to any more.
    pub fn keep_alive(&self) {
        let frame = Arc::new(Published::keep_alive());
        let mut channels = self.channels();
        let channels = &mut *channels;
        channels
            .by_connection
            .retain(|_, channel| channel.send(&frame));
        if channels.changes.as_ref().is_some_and(|c| !c.send(&frame)) {
            channels.changes = None;
        }
        let listened = &channels.by_connection;
        channels.sent.retain(|id, _| listened.contains_key(id));
    }

    /// Keep-alives every `every` until the hub is closed.
    pub fn spawn_keep_alive(&self, every: std::time::Duration) {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                if hub.channels().closed {
                    break;
                }
                hub.keep_alive();
            }
        });
    }

    /// Shutdown: ends every stream (after what it has already been sent) and refuses new ones.
    pub fn close(&self) {
        let mut channels = self.channels();
        channels.closed = true;
        channels.by_connection.clear();
        channels.changes = None;
        channels.sent.clear();
        self.closed.send_replace(true);
    }

    /// Turns true when the hub closes.
    pub fn closed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Live subscribers of one connection.
    pub fn subscribers(&self, connection_id: i64) -> usize {
        self.channels()
            .by_connection
            .get(&connection_id)
            .map_or(0, Channel::receivers)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hub({} channels)", self.channels().by_connection.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventBody;

    #[test]
    fn each_sequence_number_is_sent_once_in_any_order() {
        let mut sent = Sent::default();
        // In order, then a repeat of each.
        assert!((1..=3).all(|seq| sent.first_time(seq)));
        assert!((1..=3).all(|seq| !sent.first_time(seq)));
        // Out of order (concurrent writers): the late one still goes out, once.
        assert!(sent.first_time(5));
        assert!(sent.first_time(4));
        assert!(!sent.first_time(4));
        assert!(!sent.first_time(5));
        // A jump beyond the window forgets what was before it; older ones go out again (the
        // streams drop them), never lost.
        assert!(sent.first_time(200));
        assert!(!sent.first_time(200));
        assert!(sent.first_time(137));
        assert!(!sent.first_time(137));
        assert!(sent.first_time(136));
        assert!(sent.first_time(5));
    }

    #[test]
    fn every_connections_changes_reach_the_change_subscribers_and_end_on_close() {
        let hub = Hub::new(16);
        let mut changes = hub.subscribe_changes();
        // Nobody follows connection 2 or 7 itself: the change is told all the same.
        hub.publish(vec![event(2, 1, "a")]);
        hub.changed(7);
        hub.keep_alive();
        let mut frames = Vec::new();
        while let Ok(p) = changes.try_recv() {
            frames.push(String::from_utf8_lossy(&p.frame).to_string());
        }
        assert_eq!(
            frames,
            vec![
                "event: changed\ndata: 2\n\n",
                "event: changed\ndata: 7\n\n",
                ":\n\n"
            ]
        );
        hub.close();
        assert!(matches!(
            changes.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        assert!(matches!(
            hub.subscribe_changes().try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn an_event_published_twice_reaches_a_subscriber_once() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe(1);
        hub.publish(vec![event(1, 1, "a"), event(1, 2, "b")]);
        hub.publish(vec![event(1, 2, "b"), event(1, 1, "a"), event(1, 3, "c")]);
        let mut seqs = Vec::new();
        while let Ok(p) = rx.try_recv() {
            seqs.push(p.seq);
        }
        assert_eq!(seqs, vec![Some(1), Some(2), Some(3)]);
        assert_eq!(hub.newest_sent(1), Some(3));
        assert_eq!(hub.newest_sent(2), None);
        assert_eq!(hub.listened(), vec![(1, 3)]);
    }

    #[test]
    fn subscribers_fill_the_first_shard_with_room_even_after_others_left() {
        let hub = Hub::new(16);
        let shard_sizes = |hub: &Hub| -> Vec<usize> {
            hub.channels().by_connection[&1]
                .shards
                .iter()
                .map(broadcast::Sender::receiver_count)
                .collect()
        };
        let first: Vec<_> = (0..SUBSCRIBERS_PER_SHARD * 2 + 1)
            .map(|_| hub.subscribe(1))
            .collect();
        assert_eq!(
            shard_sizes(&hub),
            vec![SUBSCRIBERS_PER_SHARD, SUBSCRIBERS_PER_SHARD, 1]
        );
        // Everyone leaves; the shards stay until a keep-alive finds them empty. The next ones
        // to arrive are kept together, not spread one per shard.
        drop(first);
        let _next: Vec<_> = (0..5).map(|_| hub.subscribe(1)).collect();
        assert_eq!(shard_sizes(&hub), vec![5, 0, 0]);
    }

    fn event(connection_id: i64, seq: i64, message: &str) -> ConnectionEvent {
        ConnectionEvent {
            connection_id,
            seq,
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            body: EventBody::Onboarding {
                step: "started".into(),
                message: message.into(),
                failed: false,
            },
        }
    }

    #[test]
    fn a_frame_is_one_sse_event_with_the_seq_as_id_and_json_on_one_line() {
        let e = event(7, 42, "line one\nline two");
        let frame = String::from_utf8(sse_frame(&e).to_vec()).unwrap_or_default();
        let lines: Vec<&str> = frame.split('\n').collect();
        assert_eq!(lines[0], "id: 42");
        assert_eq!(lines[1], "event: onboarding");
        let data = lines[2].strip_prefix("data: ").unwrap_or_default();
        let back: ConnectionEvent = serde_json::from_str(data).unwrap_or_else(|_| event(0, 0, ""));
        assert_eq!(back, e, "the data line carries the whole event");
        assert_eq!(&lines[3..], ["", ""], "a blank line ends the event");
    }

    #[test]
    fn subscribers_get_only_their_own_connections_events() {
        let hub = Hub::new(16);
        let mut one = hub.subscribe(1);
        let mut two = hub.subscribe(2);
        hub.publish(vec![event(1, 1, "a"), event(2, 1, "b"), event(1, 2, "c")]);
        let got: Vec<Option<i64>> =
            std::iter::from_fn(|| one.try_recv().ok().map(|p| p.seq)).collect();
        assert_eq!(got, [Some(1), Some(2)]);
        let got: Vec<Option<i64>> =
            std::iter::from_fn(|| two.try_recv().ok().map(|p| p.seq)).collect();
        assert_eq!(got, [Some(1)]);
        assert_eq!(hub.subscribers(1), 1);
    }

    #[test]
    fn a_channel_goes_once_its_last_subscriber_has_gone() {
        let hub = Hub::new(16);
        let rx = hub.subscribe(3);
        assert_eq!(hub.subscribers(3), 1);
        drop(rx);
        hub.publish(vec![event(3, 1, "nobody listens")]);
        assert_eq!(hub.channels().by_connection.len(), 0);
        // Publishing with no channel at all is fine too (the log has the event).
        hub.publish(vec![event(4, 1, "never subscribed")]);
        assert_eq!(hub.channels().by_connection.len(), 0);
        // Keep-alives prune idle channels too.
        drop(hub.subscribe(6));
        hub.keep_alive();
        assert_eq!(hub.channels().by_connection.len(), 0);
    }

    #[test]
    fn keep_alives_reach_every_subscriber_as_a_comment() {
        let hub = Hub::new(16);
        let mut one = hub.subscribe(1);
        let mut two = hub.subscribe(2);
        hub.keep_alive();
        for rx in [&mut one, &mut two] {
            let p = rx.try_recv().expect("a keep-alive");
            assert_eq!((p.seq, &p.frame[..]), (None, &b":\n\n"[..]));
        }
    }

    #[test]
    fn closing_ends_every_stream_and_refuses_new_ones() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe(1);
        hub.publish(vec![event(1, 1, "sent before the close")]);
        hub.close();
        assert_eq!(rx.try_recv().map(|p| p.seq).ok(), Some(Some(1)));
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        let mut late = hub.subscribe(1);
        assert!(matches!(
            late.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn many_subscribers_are_spread_over_shards_and_each_gets_every_event() {
        let hub = Hub::new(16);
        let n = SUBSCRIBERS_PER_SHARD * 2 + 1;
        let mut rxs: Vec<_> = (0..n).map(|_| hub.subscribe(8)).collect();
        assert_eq!(hub.channels().by_connection[&8].shards.len(), 3);
        assert_eq!(hub.subscribers(8), n);
        hub.publish(vec![event(8, 1, "a"), event(8, 2, "b")]);
        for rx in &mut rxs {
            let got: Vec<Option<i64>> =
                std::iter::from_fn(|| rx.try_recv().ok().map(|p| p.seq)).collect();
            assert_eq!(got, [Some(1), Some(2)]);
        }
        // A shard that emptied is refilled before a new one is made.
        rxs.truncate(SUBSCRIBERS_PER_SHARD);
        let _more: Vec<_> = (0..10).map(|_| hub.subscribe(8)).collect();
        assert_eq!(hub.channels().by_connection[&8].shards.len(), 3);
        drop(rxs);
        drop(_more);
        hub.publish(vec![event(8, 3, "nobody listens")]);
        assert_eq!(hub.channels().by_connection.len(), 0);
    }

    #[test]
    fn a_lagging_subscriber_is_told_how_far_behind_it_is() {
        let hub = Hub::new(2);
        let mut rx = hub.subscribe(5);
        hub.publish((1..=5).map(|s| event(5, s, "x")).collect());
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
