//! The id of the request a piece of work is done for, so that the provider calls it makes carry
//! it (`X-Request-Id`) and the provider's logs can be matched with ours.
//!
//! A task-local rather than a parameter: the id is set once, around the whole request, by the
//! server's request middleware (`server::edge::observe`), and read only where a call leaves the
//! process (`provider`), so none of the layers in between (commands, scan, onboarding) has to
//! pass it along. A task-local does not cross `tokio::spawn`, so background work takes the id
//! with it explicitly (`background::Background::spawn`): work started by a request carries that
//! request's id; work nobody asked for just now (resumed after a restart, the email pass) carries
//! its own (`scan-12`, `outbox`).
use std::{future::Future, sync::Arc};

/// The header in both directions: accepted on requests, returned on responses, sent on provider
/// calls.
pub const HEADER: &str = "x-request-id";

/// The longest id accepted from a client; a longer one is replaced with a fresh one.
pub const MAX_LEN: usize = 64;

tokio::task_local! {
    static CURRENT: Arc<str>;
}

/// The id of the request (or background work) this task is serving, if any.
pub fn current() -> Option<Arc<str>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: Arc<str>, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// An id as a client sent it, if it is one to keep: 1 to `MAX_LEN` characters of
/// `[A-Za-z0-9._-]` (nothing that could break a log line or a header).
pub fn accept(raw: &[u8]) -> Option<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_LEN
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    // All ASCII when `ok`, so always valid UTF-8.
    ok.then(|| std::str::from_utf8(raw).ok()).flatten()
}

/// A fresh id: 16 random hex digits (64 bits: unique enough to find one request in the logs).
pub fn fresh() -> String {
    use rand::RngCore;
    let n = rand::thread_rng().next_u64();
    format!("{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_accepted_from_a_client() {
        assert_eq!(accept(b"test-req-123"), Some("test-req-123"));
        assert_eq!(accept(b"A.b_C-9"), Some("A.b_C-9"));
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(accept(longest.as_bytes()), Some(longest.as_str()));
        for bad in [
            &b""[..],
            "a".repeat(MAX_LEN + 1).as_bytes(),
            b"has space",
            b"new\nline",
            b"quote\"",
            "\u{e9}t\u{e9}".as_bytes(),
            b"semi;colon",
        ] {
            assert_eq!(accept(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_fresh_id_is_one_a_client_could_have_sent() {
        let (a, b) = (fresh(), fresh());
        assert_eq!(accept(a.as_bytes()), Some(a.as_str()));
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_id_is_current_inside_its_scope_only() {
        assert_eq!(current(), None);
        let inside = scope("r-1".into(), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("r-1"));
        assert_eq!(current(), None);
    }
}
