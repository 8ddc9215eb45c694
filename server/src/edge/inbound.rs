//! The consumer's inbound endpoints, called by the provider. Authenticated by the protocol's
//! signature with the connection's secret (not by a session).
use axum::{
    body::Bytes,
    extract::{FromRequest, OriginalUri, Request, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use app::server::{connections, replay, sealed, signing, AppState};

/// The inbound endpoints' state: the app's (the signatures already accepted are in its
/// database, `replay`).
#[derive(Clone, Debug)]
pub struct Inbound {
    pub state: AppState,
}

impl Inbound {
    pub fn new(state: AppState) -> Self {
        Self { state }
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
/// with that connection's secret, within the clock window, and not seen before. A call let
/// through is recorded as seen and counted as an inbound message (`replay::take`).
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
        (Ok(()), Some(id)) => {
            // Kept until the timestamp leaves the window; after that the clock check refuses.
            let until = ts.saturating_add(signing::MAX_SKEW_SECS);
            match replay::take(&state.db, id, &sig, until, now).await {
                Ok(true) => Ok(id),
                Ok(false) => {
                    tracing::warn!(connection = id, "a replayed inbound request was refused");
                    Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "replayed",
                        "This request was already received; sign each request anew.",
                    ))
                }
                // Unknown whether it is a replay: refused (fail closed), to be tried again.
                Err(e) => {
                    tracing::error!(connection = id, error = %e, "taking an inbound call (its signature, its count) failed");
                    Err(refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Try again shortly.",
                    ))
                }
            }
        }
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
        // Counted for the health dashboard (messages each way over 24 hours) as it is taken.
        let connection = verify(inbound, &method, &path, &headers, &body).await?;
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
