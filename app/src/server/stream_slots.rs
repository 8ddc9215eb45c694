//! The per-user cap on open event streams over all replicas (PostgreSQL). Each replica counts
//! the streams it holds open per user and says it is alive (a heartbeat from its sweep); a new
//! stream is allowed when the user's counts on live replicas add up to less than the cap
//! (one row per replica: the check does not grow with the streams), decided under a lock on
//! that user (`pg_advisory_xact_lock`), so two replicas cannot both let the last one through. A
//! replica that dies stops counting when its heartbeat expires; one that stops gives its rows
//! back. With SQLite there is one process: `streams` alone counts, in memory.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::oneshot;

use super::{clock, db::Backend, error::ServiceError, AppState, Db};

/// A stream's place in the shared count, given back when the stream ends (dropped).
pub struct Slot {
    places: Places,
    user_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.places.give_back(self.user_id);
    }
}

/// This replica's side of the shared count: places asked for and places given back, written in
/// batches. Asking is decided per user by one task at a time, one transaction for every request
/// of that user that came meanwhile (a user's streams opening together, as after a replica
/// stopped and its browsers came over, queue on one lock otherwise: one transaction each);
/// different users are decided side by side. Giving back is written by one task for all users,
/// one UPDATE per user for every stream that ended meanwhile (tens of thousands ending
/// together are a handful of writes, not one each on the same row while live events wait for
/// the same pool).
#[derive(Clone)]
pub struct Places {
    db: Db,
    owner: String,
    pending: Arc<Mutex<Pending>>,
}

/// One stream's request for a place: its cap, and where to say whether it got one.
struct Request {
    cap: usize,
    answer: oneshot::Sender<Result<bool, String>>,
}

/// Held by the task deciding one user's requests. Should that task end before it has decided
/// them all (a panic, or the runtime dropping it at shutdown), the requests still queued are
/// answered with an error and the user's entry removed: the next request starts a decider of
/// its own instead of queueing behind one that is gone.
struct Deciding {
    pending: Arc<Mutex<Pending>>,
    user_id: i64,
    finished: bool,
}

impl Drop for Deciding {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for r in lock(&self.pending)
            .requests
            .remove(&self.user_id)
            .unwrap_or_default()
        {
            let _ = r
                .answer
                .send(Err("the decision on the stream count stopped".into()));
        }
    }
}

/// The pending places and requests, locked. One insert or take per critical section: a
/// poisoned map is still whole.
fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct Pending {
    /// Places given back and not yet written, per user.
    returns: HashMap<i64, i64>,
    writing: bool,
    /// Requests not yet decided, per user with a task deciding them.
    requests: HashMap<i64, Vec<Request>>,
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.pending();
        write!(
            f,
            "Places({} users giving back, {} asking)",
            pending.returns.len(),
            pending.requests.len()
        )
    }
}

impl Places {
    /// Writes go to `db`, to the rows of `owner` (this replica).
    pub fn new(db: Db, owner: &str) -> Self {
        Self {
            db,
            owner: owner.to_string(),
            pending: Arc::default(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    /// Whether `user_id` may open one more stream under `cap`; the place is counted if so.
    async fn ask(&self, user_id: i64, cap: usize) -> Result<bool, ServiceError> {
        let (answer, answered) = oneshot::channel();
        {
            let mut pending = self.pending();
            let first = !pending.requests.contains_key(&user_id);
            pending
                .requests
                .entry(user_id)
                .or_default()
                .push(Request { cap, answer });
            if first {
                // Its own task: a request given up half-way (the browser left) must not stop
                // the decision the others wait for.
                let places = self.clone();
                tokio::spawn(async move { places.decide(user_id).await });
            }
        }
        match answered.await {
            Ok(Ok(granted)) => Ok(granted),
            Ok(Err(e)) => Err(anyhow::anyhow!("counting the stream over all replicas: {e}").into()),
            Err(_) => Err(anyhow::anyhow!("counting the stream over all replicas stopped").into()),
        }
    }

    /// Decides `user_id`'s requests until none are left.
    async fn decide(&self, user_id: i64) {
        let mut deciding = Deciding {
            pending: self.pending.clone(),
            user_id,
            finished: false,
        };
        loop {
            let requests = {
                let mut pending = self.pending();
                let Some(requests) = pending.requests.get_mut(&user_id) else {
                    deciding.finished = true;
                    return;
                };
                if requests.is_empty() {
                    pending.requests.remove(&user_id);
                    deciding.finished = true;
                    return;
                }
                std::mem::take(requests)
            };
            let caps: Vec<usize> = requests.iter().map(|r| r.cap).collect();
            match self.grant(user_id, &caps).await {
                Ok(granted) => {
                    for (r, got) in requests.into_iter().zip(granted) {
                        // Counted for a request that went away meanwhile: given back.
                        if r.answer.send(Ok(got)).is_err() && got {
                            self.give_back(user_id);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "counting streams over all replicas failed");
                    for r in requests {
                        let _ = r.answer.send(Err(e.to_string()));
                    }
                }
            }
        }
    }

    /// One transaction for a batch of one user's requests, in order: each is granted while the
    /// user's streams on live replicas, with those granted before it, stay under its cap. The
    /// database's own error, whose words reach the log and every waiter's (a `ServiceError`
    /// would show only "something went wrong" there).
    async fn grant(&self, user_id: i64, caps: &[usize]) -> Result<Vec<bool>, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(s.open), 0) AS BIGINT) FROM replica_streams s \
             JOIN replicas r ON r.owner = s.owner WHERE s.user_id = $1 AND r.expires_at >= $2",
        )
        .bind(user_id)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let mut taken = 0i64;
        let granted: Vec<bool> = caps
            .iter()
            .map(|&cap| {
                let got = open + taken < cap as i64;
                taken += i64::from(got);
                got
            })
            .collect();
        if taken > 0 {
            sqlx::query(
                "INSERT INTO replica_streams (owner, user_id, open) VALUES ($1, $2, $3) \
                 ON CONFLICT (owner, user_id) DO UPDATE SET open = replica_streams.open + $3",
            )
            .bind(&self.owner)
            .bind(user_id)
            .bind(taken)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(granted)
    }

    fn give_back(&self, user_id: i64) {
        let mut pending = self.pending();
        *pending.returns.entry(user_id).or_default() += 1;
        if pending.writing {
            return;
        }
        // Dropped with its stream, inside the runtime; outside it (shutdown) `release_all`
        // gives every place back.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        pending.writing = true;
        let places = self.clone();
        rt.spawn(async move { places.write_returns().await });
    }

    /// Writes the places given back until none are pending.
    async fn write_returns(&self) {
        loop {
            let batch = {
                let mut pending = self.pending();
                if pending.returns.is_empty() {
                    pending.writing = false;
                    return;
                }
                std::mem::take(&mut pending.returns)
            };
            for (user_id, ended) in batch {
                let gone = sqlx::query(
                    "UPDATE replica_streams SET open = GREATEST(open - $3, 0) \
                     WHERE owner = $1 AND user_id = $2",
                )
                .bind(&self.owner)
                .bind(user_id)
                .bind(ended)
                .execute(&self.db.pool)
                .await;
                if let Err(e) = gone {
                    tracing::warn!(error = %e, "giving back streams' places failed; they go with the replica's rows");
                }
            }
        }
    }
}

/// What `take` found.
pub enum Taken {
    /// One more stream is allowed; hold the slot for as long as it is open.
    Slot(Slot),
    /// Counted in memory only (SQLite: one process).
    Local,
    /// The user has this many open on the replicas together.
    Full(usize),
}

fn now_ms() -> i64 {
    clock::now().timestamp_millis()
}

/// A place for one more stream of `user_id`, unless the user's streams on live replicas reach
/// `cap`.
pub async fn take(state: &AppState, user_id: i64, cap: usize) -> Result<Taken, ServiceError> {
    if state.db.backend != Backend::Postgres {
        return Ok(Taken::Local);
    }
    Ok(if state.stream_places.ask(user_id, cap).await? {
        Taken::Slot(Slot {
            places: state.stream_places.clone(),
            user_id,
        })
    } else {
        Taken::Full(cap)
    })
}

/// This replica is alive for one more lease time; the rows of replicas whose heartbeat expired
/// go. Called by the sweep (and once before serving).
pub async fn heartbeat(state: &AppState) -> Result<(), ServiceError> {
    if state.db.backend != Backend::Postgres {
        return Ok(());
    }
    let now = now_ms();
    let until = now.saturating_add(state.settings.lease.as_millis() as i64);
    sqlx::query(
        "INSERT INTO replicas (owner, expires_at) VALUES ($1, $2) \
         ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(state.work.leases.owner())
    .bind(until)
    .execute(&state.db.pool)
    .await?;
    sqlx::query(
        "DELETE FROM replica_streams WHERE owner NOT IN (SELECT owner FROM replicas WHERE expires_at >= $1)",
    )
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    sqlx::query("DELETE FROM replicas WHERE expires_at < $1")
        .bind(now)
        .execute(&state.db.pool)
        .await?;
    Ok(())
}

/// A graceful stop: this replica's streams (ended now) and its heartbeat go.
pub async fn release_all(state: &AppState) {
    if state.db.backend != Backend::Postgres {
        return;
    }
    let owner = state.work.leases.owner();
    for sql in [
        "DELETE FROM replica_streams WHERE owner = $1",
        "DELETE FROM replicas WHERE owner = $1",
    ] {
        if let Err(e) = sqlx::query(sql).bind(owner).execute(&state.db.pool).await {
            tracing::warn!(error = %e, "giving back the replica's streams failed; they expire");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(
        pending: &Arc<Mutex<Pending>>,
        user_id: i64,
    ) -> oneshot::Receiver<Result<bool, String>> {
        let (answer, answered) = oneshot::channel();
        let mut p = lock(pending);
        p.requests
            .entry(user_id)
            .or_default()
            .push(Request { cap: 10, answer });
        answered
    }

    #[tokio::test]
    async fn a_decider_that_dies_answers_what_it_left_and_leaves_no_user_stranded() {
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let waiting = queued(&pending, 7);
        let other_user = queued(&pending, 8);
        let died = {
            let pending = pending.clone();
            tokio::spawn(async move {
                let _deciding = Deciding {
                    pending,
                    user_id: 7,
                    finished: false,
                };
                panic!("a decider's bug");
            })
        };
        assert!(died.await.is_err(), "the task panicked");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("answered at once, not left waiting")
            .expect("answered, not dropped");
        assert!(answer.is_err(), "an error to the waiting request");
        let p = lock(&pending);
        assert!(
            !p.requests.contains_key(&7),
            "the next request of user 7 starts a decider of its own"
        );
        assert!(
            p.requests.contains_key(&8),
            "another user's requests untouched"
        );
        drop(p);
        drop(other_user);
    }

    #[test]
    fn a_decider_that_finished_touches_nothing() {
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let _later = queued(&pending, 7);
        drop(Deciding {
            pending: pending.clone(),
            user_id: 7,
            finished: true,
        });
        let p = lock(&pending);
        assert_eq!(p.requests.get(&7).map(Vec::len), Some(1));
    }
}
