//! The consumer's inbound endpoints, called by the provider. Authenticated by the protocol's
//! signature with the connection's secret (not by a session).
use axum::{
    body::Bytes,
    extract::{OriginalUri, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde_json::json;
use sqlx::Row;

use app::server::{signing, AppState};

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// The connection id whose secret verifies this request.
async fn verify(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<i64, Response> {
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
    let row = sqlx::query("SELECT id, secret FROM connections WHERE consumer_id = $1")
        .bind(&consumer)
        .fetch_optional(&state.db.pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "inbound lookup failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Try again shortly.",
            )
        })?;
    let Some(row) = row else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unknown_consumer",
            "No connection has this consumer id.",
        ));
    };
    let id: i64 = row.try_get("id").unwrap_or(0);
    let secret = row
        .try_get::<Option<String>, _>("secret")
        .ok()
        .flatten()
        .and_then(|s| B64.decode(s).ok())
        .unwrap_or_default();
    match signing::verify(
        &secret,
        method.as_str(),
        path,
        ts,
        body,
        &sig,
        chrono::Utc::now().timestamp(),
    ) {
        Ok(()) => Ok(id),
        Err(signing::VerifyError::ClockSkew) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "clock_skew",
            "The request timestamp is too far from our clock.",
        )),
        Err(signing::VerifyError::BadSignature) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "The request signature does not match.",
        )),
    }
}

#[tracing::instrument(skip_all)]
pub async fn ping(
    State(state): State<AppState>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match verify(&state, &method, uri.path(), &headers, &body).await {
        Ok(_) => Json(json!({ "ok": true })).into_response(),
        Err(r) => r,
    }
}

/// The provider finished onboarding and reached us: Inbound is Up.
#[tracing::instrument(skip_all)]
pub async fn onboarded(
    State(state): State<AppState>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match verify(&state, &method, uri.path(), &headers, &body).await {
        Ok(id) => {
            app::server::onboarding::inbound_confirmed(&state, id).await;
            Json(json!({ "ok": true })).into_response()
        }
        Err(r) => r,
    }
}

#[tracing::instrument(skip_all)]
pub async fn echo(
    State(state): State<AppState>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match verify(&state, &method, uri.path(), &headers, &body).await {
        Ok(id) => {
            let nonce = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["nonce"].as_str().map(str::to_string))
                .unwrap_or_default();
            app::server::verify::echo_received(&state, id, &nonce);
            Json(json!({ "ok": true })).into_response()
        }
        Err(r) => r,
    }
}
