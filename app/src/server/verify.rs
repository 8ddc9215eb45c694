//! "Verify the connection": a real round trip. We ask the provider to echo a nonce back to our
//! inbound endpoint and wait for it; `echo_received` is called by that endpoint once the
//! provider's signature checked out.
use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use tokio::sync::oneshot;

use super::AppState;

type Waiters = Mutex<HashMap<(i64, String), oneshot::Sender<()>>>;

fn waiters() -> &'static Waiters {
    static W: OnceLock<Waiters> = OnceLock::new();
    W.get_or_init(Default::default)
}

/// Registers interest in the echo of `nonce` for this connection.
pub fn expect_echo(connection_id: i64, nonce: &str) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = waiters().lock() {
        w.insert((connection_id, nonce.to_string()), tx);
    }
    rx
}

/// Forgets a waiter that timed out.
pub fn forget_echo(connection_id: i64, nonce: &str) {
    if let Ok(mut w) = waiters().lock() {
        w.remove(&(connection_id, nonce.to_string()));
    }
}

/// The provider echoed a nonce back to us.
pub fn echo_received(_state: &AppState, connection_id: i64, nonce: &str) {
    let waiter = waiters().lock().ok().and_then(|mut w| w.remove(&(connection_id, nonce.to_string())));
    match waiter {
        Some(tx) => {
            let _ = tx.send(());
        }
        None => tracing::info!(connection = connection_id, "an echo nobody waits for (late or unknown)"),
    }
}
