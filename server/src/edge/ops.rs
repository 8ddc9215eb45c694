//! Operator endpoints: liveness and readiness.
use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};

use app::server::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers.
#[tracing::instrument(skip(state))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "message": "The database is not reachable." }),
                ),
            )
        }
    }
}
