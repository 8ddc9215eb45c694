//! Live events across replicas (PostgreSQL). Every appended event is announced with `NOTIFY`
//! (`events::append`), which PostgreSQL delivers when (and only if) the transaction commits; the
//! payload is the connection id and sequence number, never the event, which stays in the log.
//! Every replica
//! `LISTEN`s, reads from the log what it has not sent yet and feeds its own hub, so a browser's
//! stream on one replica gets what another replica committed. After the listening connection
//! is lost, the relay connects again and catches up from the log (announcements made meanwhile
//! are gone). With SQLite there is one process and nothing to relay. The same connection also
//! hears the echoes of "Verify the connection" that arrived at another replica (`verify`), and
//! the stream revocations (sign-outs, changed users) made on another replica (`revocations`).
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{
    clock,
    events::{self, ANNOUNCEMENTS},
    metrics,
    revocations::{self, Revocation, REVOCATIONS},
    verify::{self, ECHOES},
    AppState,
};

/// Pause before trying again when connecting or `LISTEN` failed, doubled on each failure in a
/// row up to `RETRY_MAX` (a database that is down is not asked twice a second for ever); a
/// connection that worked and was lost is replaced at once.
const RETRY: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// Listens for announcements until the hub closes (shutdown). `database_url` is the
/// PostgreSQL the replicas share; call only for PostgreSQL.
pub async fn run(state: AppState, database_url: String) {
    let mut closed = state.hub.closed();
    let mut pause = RETRY;
    loop {
        let listened = tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            listened = listen(&state, &database_url) => listened,
        };
        if listened {
            pause = RETRY;
            continue;
        }
        tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// One listening connection, for as long as it lasts; false when it could not listen at all.
async fn listen(state: &AppState, database_url: &str) -> bool {
    let mut listener = match PgListener::connect(database_url).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "event relay: cannot connect to listen; trying again");
            return false;
        }
    };
    if let Err(e) = listener
        .listen_all([ANNOUNCEMENTS, ECHOES, REVOCATIONS])
        .await
    {
        tracing::warn!(error = %e, "event relay: LISTEN failed; trying again");
        return false;
    }
    tracing::debug!("event relay listening");
    // What was announced before this connection listened is read from the log.
    catch_up(state).await;
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == ECHOES => echo(n.payload()),
            Ok(Some(n)) if n.channel() == REVOCATIONS => match Revocation::parse(n.payload()) {
                Some(r) => {
                    revocations::apply(state, &r);
                }
                None => tracing::warn!(payload = n.payload(), "relay: unknown revocation"),
            },
            Ok(Some(n)) => match parse(n.payload()) {
                Some((id, seq)) => {
                    // The dashboards here follow every connection, listened to here or not.
                    state.hub.changed(id);
                    relay(state, id, seq).await
                }
                None => tracing::warn!(payload = n.payload(), "event relay: unknown payload"),
            },
            // The connection was lost: connect again (and catch up) from the top.
            Ok(None) => {
                tracing::warn!("event relay: the listening connection was lost; reconnecting");
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "event relay: receiving failed; reconnecting");
                return true;
            }
        }
    }
}

/// An echo that arrived at another replica ("<connection>:<nonce>"): the run waiting for it
/// may be here (`verify`). An echo lost with the listening connection makes that run fail
/// saying so, and the admin runs the verification again.
fn echo(payload: &str) {
    if let Some((id, nonce)) = payload.split_once(':') {
        if let Ok(id) = id.parse() {
            verify::echo_received(id, nonce);
        }
    }
}

fn parse(payload: &str) -> Option<(i64, i64)> {
    let (id, seq) = payload.split_once(':')?;
    Some((id.parse().ok()?, seq.parse().ok()?))
}

/// An announcement: sends this connection's subscribers here what the log holds that they
/// were not sent yet. Nobody listening here: nothing to do.
async fn relay(state: &AppState, id: i64, seq: i64) {
    let Some(sent) = state.hub.newest_sent(id) else {
        return;
    };
    if seq <= sent {
        // This replica's own commit, already sent (or a late one the streams fill themselves).
        return;
    }
    // Nothing sent yet here: the announced event is what the subscribers are waiting for (what
    // came before it they read from the log when they subscribed).
    let after = if sent > 0 { sent } else { seq - 1 };
    publish_from_log(state, id, after).await;
}

/// After (re)connecting: for every connection listened to here, what was committed since.
async fn catch_up(state: &AppState) {
    for (id, sent) in state.hub.listened() {
        let after = if sent > 0 {
            sent
        } else {
            match events::newest_seq(&state.db, id).await {
                Ok(newest) => (newest - 1).max(0),
                Err(e) => {
                    tracing::warn!(connection = id, error = %e, "event relay: catching up failed");
                    continue;
                }
            }
        };
        publish_from_log(state, id, after).await;
    }
}

async fn publish_from_log(state: &AppState, id: i64, after: i64) {
    match events::since(&state.db, id, after).await {
        Ok(events) => {
            let now = clock::now();
            for e in &events {
                metrics::relayed((now - e.at).to_std().unwrap_or_default());
            }
            state.hub.publish(events)
        }
        Err(e) => {
            tracing::warn!(connection = id, error = %e, "event relay: reading the log failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn announcements_are_connection_and_sequence() {
        assert_eq!(parse("12:345"), Some((12, 345)));
        for bad in ["", "12", "12:", ":3", "a:1", "1:b", "1:2:3"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
