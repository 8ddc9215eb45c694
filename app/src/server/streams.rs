//! The event streams each signed-in user has open: at most a set number per user, and each ends
//! as soon as the session it was opened with is signed out, or the user is disabled or given
//! other roles (the stream was authorised for the old ones).
//!
//! A stream holds a [`StreamTicket`] for as long as it is open; revoking drops the ticket's
//! sender, which wakes the stream (one more future in its wait, polled only when woken).
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use tokio::sync::oneshot;

/// Open streams per user when not configured.
pub const DEFAULT_STREAMS_PER_USER: usize = 16;

struct Entry {
    /// The session's key (the hash of its token, as stored).
    session: String,
    /// Dropped to end the stream.
    _revoke: oneshot::Sender<()>,
}

#[derive(Default)]
struct Registry {
    /// By ticket id within each user: a stream's end removes its entry in constant time (one user
    /// may hold tens of thousands, and they often end together).
    by_user: HashMap<i64, HashMap<u64, Entry>>,
    next_id: u64,
}

/// Shared by every request of one server (in `AppState`).
#[derive(Clone)]
pub struct OpenStreams {
    registry: Arc<Mutex<Registry>>,
    per_user: Arc<AtomicUsize>,
}

impl Default for OpenStreams {
    fn default() -> Self {
        Self {
            registry: Arc::default(),
            per_user: Arc::new(AtomicUsize::new(DEFAULT_STREAMS_PER_USER)),
        }
    }
}

impl std::fmt::Debug for OpenStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenStreams({} users)", self.registry().by_user.len())
    }
}

/// Refused: the user already has this many streams open.
#[derive(Debug, PartialEq)]
pub struct TooManyStreams(pub usize);

impl OpenStreams {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every critical section is one insert or removal, so a poisoned map is still whole.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cap on open streams per user.
    pub fn limit(&self) -> usize {
        self.per_user.load(Ordering::Relaxed)
    }

    /// At most `n` (at least 1) open streams per user from now on.
    pub fn set_limit(&self, n: usize) {
        self.per_user.store(n.max(1), Ordering::Relaxed);
    }

    /// A ticket for one more stream of this user on this session, unless they are at the limit.
    pub fn open(&self, user_id: i64, session: &str) -> Result<StreamTicket, TooManyStreams> {
        let limit = self.per_user.load(Ordering::Relaxed);
        let mut registry = self.registry();
        registry.next_id += 1;
        let id = registry.next_id;
        let entries = registry.by_user.entry(user_id).or_default();
        if entries.len() >= limit {
            return Err(TooManyStreams(limit));
        }
        let (tx, rx) = oneshot::channel();
        entries.insert(
            id,
            Entry {
                session: session.to_string(),
                _revoke: tx,
            },
        );
        super::metrics::streams_open_changed(1.0);
        Ok(StreamTicket {
            id,
            user_id,
            streams: self.clone(),
            revoked: rx,
            ended: false,
            _held: None,
        })
    }

    /// Ends the streams opened with this session (signed out). Returns how many.
    pub fn revoke_session(&self, session: &str) -> usize {
        let mut registry = self.registry();
        let mut ended = 0;
        registry.by_user.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|_, e| e.session != session);
            ended += before - entries.len();
            !entries.is_empty()
        });
        ended
    }

    /// Ends every stream of this user (disabled, or their roles changed). Returns how many.
    pub fn revoke_user(&self, user_id: i64) -> usize {
        self.registry()
            .by_user
            .remove(&user_id)
            .map_or(0, |entries| entries.len())
    }

    /// Streams this user has open.
    pub fn open_for(&self, user_id: i64) -> usize {
        self.registry()
            .by_user
            .get(&user_id)
            .map_or(0, HashMap::len)
    }

    fn close(&self, user_id: i64, id: u64) {
        let mut registry = self.registry();
        if let Some(entries) = registry.by_user.get_mut(&user_id) {
            entries.remove(&id);
            if entries.is_empty() {
                registry.by_user.remove(&user_id);
            }
        }
    }
}

/// Held by an open stream; gives its place back when dropped.
pub struct StreamTicket {
    id: u64,
    user_id: i64,
    streams: OpenStreams,
    revoked: oneshot::Receiver<()>,
    ended: bool,
    /// Kept for as long as the stream is open (its place in the replicas' shared count).
    _held: Option<Box<dyn Send + Sync>>,
}

impl StreamTicket {
    /// Keeps `guard` until the stream ends.
    pub fn holding(mut self, guard: impl Send + Sync + 'static) -> Self {
        self._held = Some(Box::new(guard));
        self
    }

    /// Resolves once the stream must end (and at once ever after).
    pub async fn revoked(&mut self) {
        if !self.ended {
            // Either way (sent or sender dropped) the stream is to end.
            let _ = (&mut self.revoked).await;
            self.ended = true;
        }
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        self.streams.close(self.user_id, self.id);
        super::metrics::streams_open_changed(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn ends(ticket: &mut StreamTicket) -> bool {
        tokio::time::timeout(Duration::from_millis(50), ticket.revoked())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_user_may_hold_only_so_many_streams_and_a_closed_one_frees_its_place() {
        let streams = OpenStreams::default();
        streams.set_limit(2);
        let a = streams.open(1, "s1").expect("first");
        let _b = streams.open(1, "s1").expect("second");
        assert_eq!(streams.open(1, "s2").err(), Some(TooManyStreams(2)));
        let _other = streams
            .open(2, "s3")
            .expect("another user has places of their own");
        drop(a);
        assert_eq!(streams.open_for(1), 1);
        assert!(streams.open(1, "s2").is_ok());
    }

    #[tokio::test]
    async fn signing_out_ends_that_sessions_streams_only() {
        let streams = OpenStreams::default();
        let mut out = streams.open(1, "signed-out").expect("open");
        let mut kept = streams.open(1, "other-tab-session").expect("open");
        assert!(!ends(&mut out).await, "nothing revoked yet");
        assert_eq!(streams.revoke_session("signed-out"), 1);
        assert!(ends(&mut out).await);
        assert!(ends(&mut out).await, "and stays ended");
        assert!(!ends(&mut kept).await);
        assert_eq!(streams.open_for(1), 1);
    }

    #[tokio::test]
    async fn changing_a_user_ends_all_their_streams() {
        let streams = OpenStreams::default();
        let mut one = streams.open(7, "a").expect("open");
        let mut two = streams.open(7, "b").expect("open");
        let mut someone_else = streams.open(8, "c").expect("open");
        assert_eq!(streams.revoke_user(7), 2);
        assert!(ends(&mut one).await && ends(&mut two).await);
        assert!(!ends(&mut someone_else).await);
        drop(one);
        assert_eq!(streams.open_for(7), 0);
    }
}
