//! The consumer's inbound endpoints, called by the provider. Authenticated by the protocol's
//! signature with the connection's secret (not by a session).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{FromRequest, OriginalUri, Request, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use app::server::{connections, sealed, signing, AppState};

/// The inbound endpoints' state: the app's, and the signatures already accepted.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub state: AppState,
    pub seen: Arc<ReplayCache>,
}

impl Inbound {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            seen: Arc::new(ReplayCache::new(REPLAY_CACHE_CAPACITY)),
        }
    }
}

/// Far more signed calls than a provider makes within one clock window (a few per minute).
pub const REPLAY_CACHE_CAPACITY: usize = 100_000;

/// The signatures of accepted requests, each kept until its timestamp leaves the clock window
/// (after which the clock check refuses it anyway), so a captured request cannot be replayed.
///
/// In memory, per process: enough for one instance; several instances behind one address would
/// each keep their own (a replay could then succeed once per instance). Bounded: expired entries
/// are pruned whenever it is full, and when even that leaves no room new requests are refused
/// (fail closed) instead of forgetting signatures that are still valid.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    /// Signature → the unix second after which its timestamp is outside the window.
    seen: Mutex<HashMap<String, i64>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    First,
    Replayed,
    Full,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records a verified request's signature, unless it was seen before.
    pub fn check_and_record(&self, signature: &str, timestamp: i64, now: i64) -> Seen {
        // Hex is read in either case: both spellings are the same signature.
        let signature = signature.to_ascii_lowercase();
        let Ok(mut seen) = self.seen.lock() else {
            return Seen::Full;
        };
        if seen.get(&signature).is_some_and(|until| *until >= now) {
            return Seen::Replayed;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Seen::Full;
            }
        }
        seen.insert(signature, timestamp.saturating_add(signing::MAX_SKEW_SECS));
        Seen::First
    }

    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// One answer for an unknown consumer, a connection without a secret and a wrong signature, so
/// that nobody can tell which consumer ids exist.
fn bad_signature() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "bad_signature",
        "The request signature does not match.",
    )
}

/// The connection id whose secret verifies this request; refused unless the request is signed
/// with that connection's secret, within the clock window, and not seen before.
async fn verify(
    inbound: &Inbound,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, Response> {
    let state = &inbound.state;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let consumer = header(signing::HEADER_CONSUMER);
    let ts: i64 = header(signing::HEADER_TIMESTAMP).parse().unwrap_or(0);
    let sig = header(signing::HEADER_SIGNATURE);
    let now = chrono::Utc::now().timestamp();
    let row = if consumer.is_empty() {
        None
    } else {
        connections::by_consumer(&state.db, &consumer)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "inbound lookup failed");
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Try again shortly.",
                )
            })?
    };
    // Known consumer with a secret that opens, or nothing: fail closed. An unknown consumer is
    // checked against a throw-away key, so it is answered like (and as fast as) a bad signature,
    // clock check included.
    let open = |id: i64, stored: Option<String>| match state
        .keys
        .open(&sealed::connection_secret_context(id), &stored?)
    {
        Ok(secret) if !secret.is_empty() => Some(secret),
        Ok(_) => None,
        Err(e) => {
            tracing::error!(connection = id, error = %e, "a stored provider secret does not open");
            None
        }
    };
    let found = row.and_then(|r| {
        let previous = open(r.id, r.previous);
        open(r.id, r.secret).map(|secret| (r.id, secret, previous))
    });
    let (id, secret, previous) = match found {
        Some((id, secret, previous)) => (Some(id), secret, previous),
        None => (None, vec![0u8; 32], None),
    };
    let mut verified = signing::verify(&secret, method.as_str(), path, ts, body, &sig, now);
    // After a rotation, a call the provider signed with the old secret is still accepted while
    // its grace lasts.
    if let (Err(signing::VerifyError::BadSignature), Some(old)) = (&verified, &previous) {
        verified = signing::verify(old, method.as_str(), path, ts, body, &sig, now);
    }
    match (verified, id) {
        (Err(signing::VerifyError::ClockSkew), _) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "clock_skew",
            "The request timestamp is too far from our clock.",
        )),
        (Err(signing::VerifyError::BadSignature), _) | (Ok(()), None) => Err(bad_signature()),
        (Ok(()), Some(id)) => match inbound.seen.check_and_record(&sig, ts, now) {
            Seen::First => Ok(id),
            Seen::Replayed => {
                tracing::warn!(connection = id, "a replayed inbound request was refused");
                Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "replayed",
                    "This request was already received; sign each request anew.",
                ))
            }
            Seen::Full => {
                tracing::error!("the inbound replay cache is full");
                Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Too many requests at once; try again shortly.",
                ))
            }
        },
    }
}

/// A provider call whose signature checked out (`verify`): the connection it came from and its
/// body. As an extractor, every inbound handler gets it the same way, or the refusal is answered.
pub struct SignedCall {
    pub connection: i64,
    pub body: Bytes,
}

impl FromRequest<Inbound> for SignedCall {
    type Rejection = Response;

    async fn from_request(req: Request, inbound: &Inbound) -> Result<Self, Response> {
        let method = req.method().clone();
        let headers = req.headers().clone();
        // The path as the provider signed it, before any routing rewrote it.
        let path = req.extensions().get::<OriginalUri>().map_or_else(
            || req.uri().path().to_string(),
            |original| original.path().to_string(),
        );
        let body = Bytes::from_request(req, inbound)
            .await
            .map_err(IntoResponse::into_response)?;
        let connection = verify(inbound, &method, &path, &headers, &body).await?;
        // Counted for the health dashboard (messages each way over 24 hours).
        app::server::traffic::count(
            &inbound.state.db,
            connection,
            app::server::traffic::Direction::Inbound,
        )
        .await;
        Ok(Self { connection, body })
    }
}

fn ok() -> Response {
    Json(json!({ "ok": true })).into_response()
}

#[tracing::instrument(skip_all)]
pub async fn ping(_call: SignedCall) -> Response {
    ok()
}

/// The provider finished onboarding and reached us: Inbound is Up.
#[tracing::instrument(skip_all)]
pub async fn onboarded(State(inbound): State<Inbound>, call: SignedCall) -> Response {
    app::server::onboarding::inbound_confirmed(&inbound.state, call.connection).await;
    ok()
}

#[tracing::instrument(skip_all)]
pub async fn echo(State(inbound): State<Inbound>, call: SignedCall) -> Response {
    let nonce = serde_json::from_slice::<serde_json::Value>(&call.body)
        .ok()
        .and_then(|v| v["nonce"].as_str().map(str::to_string))
        .unwrap_or_default();
    app::server::verify::echo_arrived(&inbound.state, call.connection, &nonce).await;
    ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_accepted_once_within_its_window_and_the_cache_stays_bounded() {
        let cache = ReplayCache::new(2);
        let now = 1_000_000;
        assert_eq!(cache.check_and_record("aa", now, now), Seen::First);
        assert_eq!(cache.check_and_record("AA", now, now), Seen::Replayed);
        assert_eq!(cache.check_and_record("bb", now, now), Seen::First);
        // Full of signatures still in their window: refused, none forgotten.
        assert_eq!(cache.check_and_record("cc", now, now), Seen::Full);
        assert_eq!(cache.check_and_record("aa", now, now + 10), Seen::Replayed);
        // Once the window has passed they are pruned and room is made.
        let later = now + signing::MAX_SKEW_SECS + 1;
        assert_eq!(cache.check_and_record("cc", later, later), Seen::First);
        assert_eq!(cache.len(), 1);
    }
}
